"""The bad-input catalogue (docs/robustness.md): every row is one parametrised case here.

Each failing case asserts the exception type and a message naming the file or argument and
saying how to fix it; "handled" cases assert the input is read correctly, and the dataset's
skip mode asserts its warning.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from PIL import Image

import condnorm
import train
from models.adain import StyleTransfer
from models.app.checkpoint import load_generator
from models.data.io import ImageReadError, image_size, list_images, load_label, load_rgb
from models.data.label_layout import LabelLayout
from models.data.layouts import find_custom
from models.data.palette import rgb_to_ids
from models.data.semantic import PairedSemanticDataset
from models.data.style_folders import ContentStylePairs
from models.spade import SPADEGenerator
from models.weights import WeightsFileError, read_weights
from tests.condnorm.layer_cases import CASES
from tests.models.data.data_files import write_ids, write_image, write_pair
from tests.models.networks.adain_official import save_official

if TYPE_CHECKING:
    import pytorch_lightning as pl

Case = Callable[[Path], tuple[Callable[[], object], type[BaseException], str]]
FILE_CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        FILE_CASES[name] = fn
        return fn
    return register


def _truncated(path: Path) -> Path:
    write_image(path, 24, 32)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# ---------------------------------------------------------------- image files
@case("truncated-jpeg")
def _(tmp):
    path = _truncated(tmp / "photo.jpg")
    return lambda: load_rgb(path), ImageReadError, r"photo\.jpg: is not a readable image .*re-export"


@case("truncated-png")
def _(tmp):
    path = _truncated(tmp / "photo.png")
    return lambda: load_rgb(path), ImageReadError, r"photo\.png: is not a readable image .*re-export"


@case("not-an-image")
def _(tmp):
    path = tmp / "notes.png"
    path.write_text("these are notes, not pixels")
    return lambda: load_rgb(path), ImageReadError, r"notes\.png: is not a readable image .*cannot identify"


@case("zero-byte-image")
def _(tmp):
    path = tmp / "empty.jpg"
    path.touch()
    return lambda: load_rgb(path), ImageReadError, r"empty\.jpg: is empty \(0 bytes\); re-export or remove"


@case("zero-byte-label")
def _(tmp):
    path = tmp / "empty.png"
    path.touch()
    return lambda: load_label(path), ImageReadError, r"empty\.png: is empty \(0 bytes\)"


@case("missing-image")
def _(tmp):
    return lambda: load_rgb(tmp / "nope.png"), FileNotFoundError, r"nope\.png"


@case("decompression-bomb")
def _(tmp):
    path = write_image(tmp / "huge.png", 64, 64)  # 4096 px > 2 x the limit set below: PIL's error
    return lambda: load_rgb(path), ImageReadError, r"huge\.png: image is too large to decode.*MAX_IMAGE_PIX"


@case("decompression-bomb-header-only")
def _(tmp):
    path = write_image(tmp / "big.png", 40, 40)  # 1600 px: PIL only warns and decodes; refused here
    return lambda: image_size(path), ImageReadError, r"big\.png: image is too large to decode safely"


# ---------------------------------------------------------------- label maps
@case("label-as-rgb-colours")
def _(tmp):
    path = tmp / "mask.png"
    Image.fromarray(np.stack([np.full((8, 8), v, np.uint8) for v in (200, 10, 10)], -1)).save(path)
    return lambda: load_label(path), ImageReadError, r"mask\.png: label map is stored as RGB colours.*palette"


def _dataset(tmp: Path, ids: np.ndarray, *, label_nc: int, dontcare: bool = False,
             image_hw: tuple[int, int] | None = None) -> PairedSemanticDataset:
    write_pair(tmp, "a", ids)
    if image_hw is not None:
        write_image(tmp / "img" / "a.jpg", *image_hw)
    return PairedSemanticDataset(find_custom(tmp / "img", tmp / "lbl"), LabelLayout(label_nc, dontcare))


@case("label-ids-over-label_nc")
def _(tmp):
    data = _dataset(tmp, np.array([[0, 1], [7, 2]]), label_nc=5)
    return (lambda: data.validate(progress=False), ValueError,
            r"a\.png: label ids \[7\] are outside \[0, 5\).*Fix: set label_nc")


@case("label-255-without-dontcare")
def _(tmp):
    data = _dataset(tmp, np.array([[0, 255], [1, 2]]), label_nc=5)
    return (lambda: data.validate(progress=False), ValueError,
            r"a\.png: label ids \[255\].*set contain_dontcare_label=True")


@case("label-colour-not-in-palette")
def _(tmp):
    img = Image.fromarray(np.array([[[0, 0, 0], [9, 9, 9]]], np.uint8))
    return (lambda: rgb_to_ids(img, {0: (0, 0, 0)}, name="seg.png"), ValueError,
            r"seg\.png: 1 colour\(s\) are not in the palette: \[9, 9, 9\]")


@case("label-size-differs-from-image")
def _(tmp):
    data = _dataset(tmp, np.zeros((8, 8), np.int64), label_nc=3, image_hw=(8, 10))
    return (lambda: data.validate(progress=False), ValueError,
            r"a\.png: size \(8, 8\) differs from its image .*a\.jpg \(8, 10\).*nearest-neighbour")


# ---------------------------------------------------------------- folders and pairs
@case("image-without-label")
def _(tmp):
    write_pair(tmp, "a", np.zeros((4, 4)))
    write_image(tmp / "img" / "b.jpg")
    return (lambda: find_custom(tmp / "img", tmp / "lbl"), ValueError,
            r"1 image\(s\) have no label: \['b'\].*matched by file name")


@case("label-without-image")
def _(tmp):
    write_pair(tmp, "a", np.zeros((4, 4)))
    write_ids(tmp / "lbl" / "c.png", np.zeros((4, 4)))
    return (lambda: find_custom(tmp / "img", tmp / "lbl"), ValueError,
            r"1 label\(s\) have no image: \['c'\]")


@case("two-images-one-name")
def _(tmp):
    write_pair(tmp, "a", np.zeros((4, 4)))
    write_image(tmp / "img" / "a.png")
    return (lambda: find_custom(tmp / "img", tmp / "lbl"), ValueError,
            r"share a name with another.*a\.jpg / .*a\.png.*remove or rename")


@case("empty-folder")
def _(tmp):
    (tmp / "empty").mkdir()
    (tmp / "empty" / "readme.txt").write_text("no images here")
    return lambda: list_images(tmp / "empty"), FileNotFoundError, r"empty holds no images with extensions"


@case("missing-folder")
def _(tmp):
    return (lambda: list_images(tmp / "nowhere"), FileNotFoundError,
            r"nowhere does not exist; check the path in your config")


@case("unreadable-style-image")
def _(tmp):
    bad = tmp / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    pairs = ContentStylePairs([bad], [bad], lambda x: x)
    return lambda: pairs[0], ImageReadError, r"broken\.jpg: is not a readable image"


# ---------------------------------------------------------------- checkpoints and weights
@case("truncated-checkpoint")
def _(tmp):
    path = tmp / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    return lambda: load_generator(path), WeightsFileError, r"last\.ckpt: cannot be read: not a complete"


@case("zero-byte-checkpoint")
def _(tmp):
    path = tmp / "net_G.pth"
    path.touch()
    return lambda: read_weights(path), WeightsFileError, r"net_G\.pth: cannot be read: the file is empty"


@case("missing-checkpoint")
def _(tmp):
    return lambda: load_generator(tmp / "gone.ckpt"), FileNotFoundError, r"gone\.ckpt does not exist"


@case("generator-of-another-architecture")
def _(tmp):
    path = tmp / "latest_net_G.pth"
    torch.save(SPADEGenerator(5, ngf=4, crop_size=32, norm="batch").state_dict(), path)
    layout = LabelLayout(7, False, False)  # the file was trained with 5 input channels
    return (lambda: load_generator(path, layout=layout, crop_size=32, norm="batch"), ValueError,
            r"(?s)latest_net_G\.pth: does not match the SPADEGenerator architecture:\n.*"
            r"fc\.weight: checkpoint \(64, 5, 3, 3\) vs model \(64, 7, 3, 3\).*Check label_nc")


@case("adain-decoder-of-another-architecture")
def _(tmp):
    vgg_path, dec_path, *_ = save_official(tmp)
    wrong = tmp / "decoder_small.pth"
    torch.save({**torch.load(dec_path, weights_only=True), "1.weight": torch.zeros(128, 512, 3, 3)}, wrong)
    return (lambda: StyleTransfer.from_official(vgg=vgg_path, decoder=wrong), RuntimeError,
            r"size mismatch for 1\.weight: copying a param with shape torch\.Size\(\[128, 512, 3, 3\]\)")


@pytest.mark.parametrize("name", list(FILE_CASES))
def test_bad_file_raises_a_clear_error(name: str, tmp_path: Path, monkeypatch) -> None:
    if name.startswith("decompression-bomb"):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # stands in for PIL's 89.5 Mpx
    call, error, match = FILE_CASES[name](tmp_path)
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- handled, not errors
def _save(path: Path, img: Image.Image) -> Path:
    img.save(path)
    return path


HANDLED = {  # mode → (image, expected RGB of pixel (0, 0) in [0, 1])
    "greyscale-L": (Image.new("L", (6, 4), 51), (0.2, 0.2, 0.2)),
    "greyscale-alpha-LA": (Image.new("LA", (6, 4), (0, 0)), (1.0, 1.0, 1.0)),  # transparent → white
    "rgba-half-transparent": (Image.new("RGBA", (6, 4), (0, 0, 0, 128)), (127 / 255,) * 3),
    "palette-P": (Image.new("P", (6, 4), 1), None),
    "16-bit-I;16": (Image.fromarray(np.full((4, 6), 65535, np.uint16)), (1.0, 1.0, 1.0)),
    "cmyk-jpeg": (Image.new("CMYK", (6, 4), (0, 0, 0, 0)), (1.0, 1.0, 1.0)),
}


@pytest.mark.parametrize("name", list(HANDLED))
def test_any_image_mode_loads_as_rgb(name: str, tmp_path: Path) -> None:
    img, expected = HANDLED[name]
    if img.mode == "P":
        img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
        expected = (1.0, 0.0, 0.0)
    rgb = load_rgb(_save(tmp_path / ("a.jpg" if img.mode == "CMYK" else "a.png"), img))
    assert rgb.shape == (3, 4, 6) and rgb.dtype == torch.float32
    torch.testing.assert_close(rgb[:, 0, 0], torch.tensor(expected), atol=0.02, rtol=0)


def test_dontcare_255_is_accepted_with_contain_dontcare_label(tmp_path: Path) -> None:
    data = _dataset(tmp_path, np.array([[0, 255], [1, 2]]), label_nc=5, dontcare=True)
    data.validate(progress=False)
    assert data.read_label(0).tolist() == [[0, 5], [1, 2]]


def test_unreadable_style_image_is_skipped_with_a_warning_in_skip_mode(tmp_path: Path) -> None:
    bad, good = tmp_path / "broken.jpg", write_image(tmp_path / "good.png", 8, 8)
    bad.write_bytes(b"")
    pairs = ContentStylePairs([bad, good], [good], lambda x: x, skip_corrupt=True)
    with pytest.warns(UserWarning, match=r"skipping unreadable image: .*broken\.jpg: is empty"):
        item = pairs[0]
    assert item["content"].shape == (3, 8, 8)


# ---------------------------------------------------------------- condition tensors
NON_FINITE = {
    "CBN-vector-nan": (lambda: condnorm.CBN(4, cond_dim=3), lambda: torch.tensor([[0.0, float("nan"), 1.0]]),
                       "ConditionalBatchNorm2d condition"),
    "CBN-class-weights-inf": (lambda: condnorm.CBN(4, num_classes=3),
                              lambda: torch.tensor([[0.5, float("inf"), 0.5]]),
                              "ConditionalBatchNorm2d condition"),
    "CIN-style-weights-nan": (lambda: condnorm.CIN(4, num_styles=3),
                              lambda: torch.tensor([[float("nan"), 0.5, 0.5]]),
                              "ConditionalInstanceNorm2d condition"),
    "AdaptiveInstanceNorm2d-style-nan": (lambda: condnorm.AdaptiveInstanceNorm2d(4, style_dim=3),
                                         lambda: torch.tensor([[1.0, float("nan"), 0.0]]),
                                         "AdaptiveInstanceNorm2d style"),
    "AdaCoN-style-inf": (lambda: condnorm.AdaCoN(4, style_dim=3, hidden=8),
                         lambda: torch.tensor([[1.0, -float("inf"), 0.0]]), "AdaCoN style"),
    "AdaIN-mean-std-nan": (lambda: condnorm.AdaIN(4),
                           lambda: (torch.zeros(1, 4), torch.tensor([[1.0, float("nan"), 1.0, 1.0]])),
                           "adain style std"),
}


@pytest.mark.parametrize("name", list(NON_FINITE))
def test_non_finite_condition_is_rejected(name: str) -> None:
    build, condition, argument = NON_FINITE[name]
    with pytest.raises(ValueError, match=rf"{argument}: contains 1 non-finite value\(s\) \(NaN or Inf\)"):
        build()(torch.randn(1, 4, 8, 8), condition())


def test_non_finite_region_codes_are_rejected() -> None:
    layer, segmap = condnorm.RAIN(4, label_nc=2, style_dim=3, hidden=8), torch.ones(1, 2, 8, 8) / 2
    codes = torch.zeros(1, 2, 3).index_fill_(2, torch.tensor([1]), float("nan"))
    with pytest.raises(ValueError, match=r"RAIN style_codes: contains 2 non-finite value\(s\)"):
        layer(torch.randn(1, 4, 8, 8), segmap, codes)


def _wrong_shapes() -> list:
    """Every layer of the registry, every condition: one extra sample, and one dimension dropped."""
    params = []
    for layer_case in CASES:
        n_conditions = len(layer_case.inputs()) - 1
        for index in range(max(n_conditions, 1)):
            for how in ("wrong-size", "dim-dropped"):
                params.append(pytest.param(layer_case, index, how, id=f"{layer_case.name}-{index}-{how}"))
    return params


@pytest.mark.parametrize(("layer_case", "index", "how"), _wrong_shapes())
def test_wrong_condition_shape_names_the_argument(layer_case, index: int, how: str) -> None:
    layer, inputs = layer_case.build(), list(layer_case.inputs())
    target = index + 1 if len(inputs) > 1 else 0  # layers without a condition: corrupt x
    t = inputs[target]
    if how == "dim-dropped":
        inputs[target] = t[0]
    else:  # one sample too many in a condition; one channel too few in x
        inputs[target] = torch.cat([t, t[:1]]) if target else t[:, :-1]
    with pytest.raises(ValueError, match=r"^[^:]+: expected .*shape .*got"):
        layer(*inputs)


def test_class_id_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"ids must be in \[0, 3\), found \[7\]; raise num_classes"):
        condnorm.CBN(4, num_classes=3)(torch.randn(2, 4, 5, 5), torch.tensor([0, 7]))


# ---------------------------------------------------------------- configs and resuming
_TINY = ["--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--model.init_args.ngf=4",
         "--model.init_args.ndf=4", "--model.init_args.num_D=1", "--model.init_args.n_layers_D=2",
         "--data.init_args.crop_size=32", "--data.init_args.num_train=4", "--data.init_args.num_val=2",
         "--data.init_args.batch_size=2"]


_CLASSES = """model:
  class_path: models.lit.mask_to_image.MaskToImageModule{model}
data:
  class_path: models.data.semantic_datamodule.SemanticDataModule{data}
"""
BAD_YAML = {
    "unknown-model-key": (_CLASSES.format(model="\n  init_args:\n    ngff: 4", data=""),
                          r"Option 'ngff' is not accepted"),
    "wrong-type": (_CLASSES.format(model="", data="\n  init_args:\n    batch_size: four"),
                   r"Expected a <class 'int'>\. Got value: four"),
    "unknown-trainer-key": ("trainer:\n  max_epoch: 3\n" + _CLASSES.format(model="", data=""),
                            r"does not accept option 'trainer\.max_epoch'"),
}


@pytest.mark.parametrize("name", list(BAD_YAML))
def test_bad_yaml_is_reported_by_the_cli(name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py"])
    text, message = BAD_YAML[name]
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", "--config", str(config)])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_resume_uses_the_checkpoint_architecture_and_a_mismatch_names_keys_and_shapes(
        tiny_trainer: Callable[..., pl.Trainer], tmp_path: Path, monkeypatch) -> None:
    from models.data.semantic_datamodule import SemanticDataModule
    from models.lit.crash_safety import AtomicCheckpointIO
    from models.lit.mask_to_image import MaskToImageModule

    monkeypatch.setattr(sys, "argv", ["train.py"])
    base = ["fit", "--config", "configs/spade_shapes.yaml", *_TINY, f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}"]
    train.main(base)
    last = next(tmp_path.rglob("last.ckpt"))
    # train.py: LightningCLI rebuilds the model from the checkpoint's hyperparameters (ngf 4 wins).
    cli = train.main([*base, "--trainer.max_epochs=2", "--model.init_args.ngf=8", f"--ckpt_path={last}"])
    assert cli.model.hparams.ngf == 4 and cli.trainer.global_step == 8
    # The Trainer API with a model of another width: Lightning's strict load names keys and shapes.
    model = MaskToImageModule(ngf=8, ndf=4, num_D=1, n_layers_D=2, norm_G="batch", lambda_vgg=0.0,
                              lpips=False)
    data = SemanticDataModule("shapes", crop_size=32, num_train=4, num_val=2, batch_size=2, num_workers=0)
    trainer = tiny_trainer(tmp_path, max_epochs=2, plugins=[AtomicCheckpointIO()])
    with pytest.raises(RuntimeError, match=r"size mismatch for generator\.fc\.weight: copying a param with "
                                           r"shape torch\.Size\(\[64, 7, 3, 3\]\) from checkpoint, the shape "
                                           r"in current model is torch\.Size\(\[128, 7, 3, 3\]\)"):
        trainer.fit(model, datamodule=data, ckpt_path=last, weights_only=True)
