"""``infer.py adain``: every pair written, interpolation/mask outputs, odd inputs, checkpoints, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2.functional import resize

import infer
from models.adain import StyleTransfer
from models.data.io import load_rgb
from models.data.style_folders import make_synthetic_folders
from models.lit.style_transfer import StyleTransferModule
from tests.models.networks.adain_official import save_official


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    vgg_path, dec_path, *_ = save_official(root)
    return vgg_path, dec_path


def _run(argv: list[str]) -> int:
    return infer.cli(["adain", *argv])


def _folders(tmp_path):
    content, style = make_synthetic_folders(tmp_path / "in", num_content=2, num_style=2, size=(33, 45))
    Image.new("LA", (20, 28), (90, 128)).save(content / "grey_alpha.png")
    Image.fromarray(np.full((24, 30), 40000, dtype=np.uint16)).save(style / "sixteen_bit.png")
    return content, style


def test_all_pairs_from_two_folders(tmp_path, weights):
    content, style = _folders(tmp_path)
    out = tmp_path / "out"
    code = _run(["--content", str(content), "--style", str(style), "--vgg", str(weights[0]),
                 "--decoder", str(weights[1]), "--out", str(out), "--ext", ".png", "--content-size", "0",
                 "--style-size", "24", "--device", "cpu", "--alpha", "0.8"])
    assert code == 0
    written = sorted(p.name for p in out.iterdir())
    expected = sorted(f"{c}_stylized_{s}.png" for c in ("content_000", "content_001", "grey_alpha")
                      for s in ("sixteen_bit", "style_000", "style_001"))
    assert written == expected
    assert load_rgb(out / "grey_alpha_stylized_style_000.png").shape == (3, 28, 20)  # input size kept
    assert load_rgb(out / "content_000_stylized_style_001.png").shape == (3, 33, 45)


def test_interpolation_mask_and_colour_outputs_match_the_api(tmp_path, weights):
    content, style = _folders(tmp_path)
    c, s1, s2 = content / "content_000.png", style / "style_000.png", style / "style_001.png"
    base = ["--content", str(c), "--vgg", str(weights[0]), "--decoder", str(weights[1]), "--ext", "png",
            "--content-size", "32", "--style-size", "0"]
    assert _run([*base, "--style", str(s1), str(s2), "--style-weights", "1", "3", "--out",
                 str(tmp_path / "mix")]) == 0
    assert [p.name for p in (tmp_path / "mix").iterdir()] == ["content_000_interpolation.png"]
    net = StyleTransfer.from_official(vgg=weights[0], decoder=weights[1])
    content_t = resize(load_rgb(c), 32, antialias=True)[None]
    want = net.transfer(content_t, [load_rgb(s1)[None], load_rgb(s2)[None]], style_weights=[1, 3])
    got = load_rgb(tmp_path / "mix" / "content_000_interpolation.png")[None]
    torch.testing.assert_close(got, want, atol=1 / 255 + 1e-6, rtol=0)  # 8-bit PNG rounding

    mask = np.zeros((33, 45), dtype=np.uint8)
    mask[:, :20] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert _run([*base, "--style", str(s1), str(s2), "--mask", str(tmp_path / "mask.png"),
                 "--preserve-color", "coral", "--out", str(tmp_path / "masked")]) == 0
    names = [p.name for p in (tmp_path / "masked").iterdir()]
    assert names == ["content_000_stylized_style_000_style_001.png"]
    assert _run([*base, "--style", str(s1), "--preserve-color", "luminance", "--bf16",
                 "--out", str(tmp_path / "lum")]) == 0
    assert load_rgb(tmp_path / "lum" / "content_000_stylized_style_000.png").shape == (3, 32, 43)


def test_checkpoint_of_this_project(tmp_path):
    content, style = _folders(tmp_path)
    model = StyleTransferModule(modulation="adacon", encoder_weights=None, style_dim=8, style_hidden=16)
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": "2.6.0"}
    torch.save(ckpt, tmp_path / "model.ckpt")
    code = _run(["--content", str(content / "content_001.png"), "--style", str(style / "style_001.png"),
                 "--checkpoint", str(tmp_path / "model.ckpt"), "--out", str(tmp_path / "out"), "--ext", "png",
                 "--content-size", "24", "--style-size", "24"])
    assert code == 0 and (tmp_path / "out" / "content_001_stylized_style_001.png").is_file()


def test_errors_and_unreadable_content(tmp_path, weights, capsys):
    content, style = _folders(tmp_path)
    common = ["--content", str(content), "--out", str(tmp_path / "out"), "--content-size", "24",
              "--style-size", "24"]
    official = ["--vgg", str(weights[0]), "--decoder", str(weights[1])]
    cases = [
        ([*common, "--style", str(style)], "give --vgg and --decoder"),
        ([*common, "--style", str(style), *official, "--checkpoint", "x.ckpt"], "not both"),
        ([*common, "--style", str(style), *official, "--mask", "m.png"], "exactly two styles"),
        ([*common, "--style", str(style / "style_000.png"), *official, "--style-weights", "1", "2"],
         "2 value"),
        ([*common, "--style", str(tmp_path / "missing.jpg"), *official], "neither an image file"),
        ([*common, "--style", str(style / "style_000.png"), *official, "--style-weights", "nan", "1"],
         "must be a finite number"),
        ([*common, "--style", str(style), *official, "--alpha", "2"], "--alpha: must be in [0, 1]"),
    ]
    for argv, message in cases:
        assert _run(argv) == 2
        assert message in capsys.readouterr().err
    (content / "broken.jpg").write_bytes(b"")
    assert _run([*common, "--style", str(style / "style_000.png"), *official]) == 1
    assert "broken.jpg: is empty" in capsys.readouterr().err
    assert len(list((tmp_path / "out").iterdir())) == 3
