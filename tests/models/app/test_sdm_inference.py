"""``infer.py sdm``, ``MaskToImage`` on SDM checkpoints and ``infer.py evaluate`` on them, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import infer
from models.app.mask_to_image import MaskToImage
from models.data.io import load_rgb
from models.data.shapes import write_shapes
from models.sdm import DDIMSampler
from tests.models.app.sdm_models import SHAPES, sdm_checkpoint
from tests.models.app.tiny_models import tiny_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sdm")
    write_shapes(root / "masks" / "a", 2, images_dir=root / "images" / "a", size=24)
    write_shapes(root / "masks" / "b", 1, images_dir=root / "images" / "b", size=20)
    return {"root": root, "ckpt": sdm_checkpoint(root), "masks": root / "masks", "images": root / "images"}


def _run(files: dict[str, Path], out: Path, *extra: str) -> int:
    return infer.cli(["sdm", "--checkpoint", str(files["ckpt"]), "--labels", str(files["masks"]), "--out", str(out),
                      "--steps", "2", *extra])


def test_the_command_writes_k_samples_per_mask_named_after_it_at_its_size(files: dict[str, Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run(files, out, "--samples", "2", "--guidance", "2.0") == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a/shapes_1_000000_s0.png", "a/shapes_1_000000_s1.png", "a/shapes_1_000001_s0.png",
                       "a/shapes_1_000001_s1.png", "b/shapes_1_000000_s0.png", "b/shapes_1_000000_s1.png"]
    assert Image.open(out / "a/shapes_1_000000_s0.png").size == (24, 24)
    assert Image.open(out / "b/shapes_1_000000_s1.png").size == (20, 20)
    assert "wrote 6 image(s)" in capsys.readouterr().out
    samples = [load_rgb(out / f"a/shapes_1_000000_s{k}.png") for k in range(2)]
    assert not torch.equal(*samples)  # samples start from different noise
    again = tmp_path / "again"
    assert _run(files, again, "--samples", "2", "--guidance", "2.0", "--batch-size", "1") == 0
    for path in out.rglob("*.png"):  # same seed, any batching: the same images
        assert torch.equal(load_rgb(path), load_rgb(again / path.relative_to(out)))


def test_guidance_help_states_the_sdm_convention(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        infer.main(["sdm", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "eps = eps(zero mask) + s * (eps(mask) - eps(zero mask))" in text


@pytest.mark.parametrize("bad, message", [
    (["--steps", "0"], "--steps"),
    (["--steps", "101"], "steps must be between 1 and the 100"),
    (["--guidance", "nan"], "--guidance"),
    (["--samples", "0"], "--samples"),
])
def test_bad_options_are_one_line_errors(bad: list[str], message: str, files: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    status = infer.cli(["sdm", "--checkpoint", str(files["ckpt"]), "--labels", str(files["masks"]),
                        "--out", str(tmp_path / "out"), *bad])
    err = capsys.readouterr().err.strip()
    assert status == 2 and message in err
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_bad_inputs_are_one_line_errors(files: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    spade = tiny_checkpoint(tmp_path, SHAPES)
    clash = tmp_path / "clash"
    clash.mkdir()
    for ext in ("png", "bmp"):
        Image.open(files["masks"] / "a" / "shapes_1_000000.png").save(clash / f"x.{ext}")
    cases = [
        (["--checkpoint", str(tmp_path / "missing.ckpt"), "--labels", str(files["masks"])], "does not exist"),
        (["--checkpoint", str(spade), "--labels", str(files["masks"])], "not an SDM diffusion model"),
        (["--checkpoint", str(files["ckpt"]), "--labels", str(tmp_path / "nothing")], "does not exist"),
        (["--checkpoint", str(files["ckpt"]), "--labels", str(clash)], "would both be written"),
    ]
    for args, message in cases:
        status = infer.cli(["sdm", *args, "--out", str(tmp_path / "out"), "--steps", "1"])
        err = capsys.readouterr().err.strip()
        assert status == 2, args
        assert message in err and len(err.splitlines()) == 1, err


def test_mask_to_image_loads_the_checkpoint_as_a_ddim_sampler(files: dict[str, Path]) -> None:
    model = MaskToImage.load(files["ckpt"])
    assert isinstance(model.generator, DDIMSampler) and model.layout == SHAPES and model.output_size == (16, 16)
    ids = torch.randint(0, 6, (2, 16, 16))
    model.generator.steps = 2
    together = model.generate_ids(list(ids), seed=3)
    alone = model.generate_ids([ids[1]], seed=4)  # image i draws its noise with seed + i
    torch.testing.assert_close(together[1], alone[0], atol=1e-5, rtol=0)
    model.generator.guidance = 0.0  # unconditional: the mask no longer matters
    a = model.generate_ids([ids[0]], seed=0)[0]
    b = model.generate_ids([torch.zeros(16, 16, dtype=torch.long)], seed=0)[0]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_evaluate_accepts_the_sdm_checkpoint_unchanged(files: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    status = infer.cli(["evaluate", "--checkpoint", str(files["ckpt"]), "--labels", str(files["masks"]),
                        "--images", str(files["images"]), "--shapes-segmenter", "--samples", "2", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["num_images"] == 3 and report["num_samples"] == 2
    assert 0 <= report["class_color_error"] <= 1 and 0 <= report["miou"] <= 1
