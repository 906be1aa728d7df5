"""The editor's pure logic (no browser): class palette, canvas and uploads → ids, errors as the CLI's lines."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import infer
from models.app import MaskToImage, RegionStyles, StyleTransferPipeline
from models.app.editor import Workspace, load_mask_model
from models.app.editor.actions import ResultFolder, error_line, generate_image, parse_weights, save_mask
from models.app.editor.app import GRADIO_MISSING, import_gradio
from models.app.editor.classes import class_swatches, palette_file_text, stored_palette
from models.app.editor.masks import canvas_to_ids, ids_to_canvas, read_mask
from models.data.io import load_label
from models.data.label_layout import LabelLayout
from models.data.palette import load_palette, palette_colors
from tests.models.app.tiny_models import tiny_checkpoint, tiny_rain_checkpoint

SHAPES = LabelLayout(6, use_instance=True, dataset_mode="shapes")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MaskToImage]:
    ckpt = tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), SHAPES)
    return ckpt, MaskToImage.load(ckpt)


def _cli_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert infer.cli(argv) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]  # after tqdm's bar


def test_palette_lists_names_and_the_sample_grid_colours() -> None:
    swatches = class_swatches(SHAPES)
    assert [s.label for s in swatches] == ["0 sky", "1 ground", "2 circle", "3 square", "4 triangle", "5 bar"]
    assert [list(s.rgb) for s in swatches] == palette_colors(6).tolist()
    ade = LabelLayout(3, contain_dontcare_label=True, dataset_mode="ade20k")
    assert [s.name for s in class_swatches(ade)] == ["class 0", "class 1", "class 2", "unlabelled"]
    assert stored_palette(ade, class_swatches(ade)) == {1: (0, 0, 0), 2: (128, 0, 0), 3: (0, 128, 0), 0: (128, 128, 0)}


def test_a_recorded_palette_gives_the_colours_and_must_keep_them_distinct() -> None:
    layout = LabelLayout(2, palette=((0, 10, 20, 30), (1, 40, 50, 60)))
    assert [s.hex for s in class_swatches(layout)] == ["#0a141e", "#28323c"]
    clash = LabelLayout(2, palette=((0, 128, 0, 0),))  # id 1 keeps its default colour, (128, 0, 0)
    with pytest.raises(ValueError, match="two classes one colour"):
        class_swatches(clash)


def test_the_palette_file_reads_back_with_the_cli_reader(tmp_path: Path) -> None:
    palette = stored_palette(SHAPES, class_swatches(SHAPES))
    (tmp_path / "palette.txt").write_text(palette_file_text(palette))
    assert load_palette(tmp_path / "palette.txt") == palette


def test_colour_canvas_becomes_ids_with_blended_edges_snapped_and_erased_pixels_background() -> None:
    swatches = class_swatches(SHAPES)
    ids = torch.tensor([[0, 1, 2], [3, 4, 5]])
    canvas = ids_to_canvas(ids, swatches)
    assert torch.equal(canvas_to_ids(canvas, swatches), ids)
    assert torch.equal(canvas_to_ids(canvas[..., :3], swatches), ids)
    canvas[0, 1, :3] = (118, 6, 3)  # anti-aliased ground
    canvas[1, 2, 3] = 0  # erased
    assert canvas_to_ids(canvas, swatches, background=1).tolist() == [[0, 1, 2], [3, 4, 1]]
    with pytest.raises(ValueError, match="expected an"):
        canvas_to_ids(np.zeros((4, 4), np.uint8), swatches)


def test_uploads_of_ids_and_of_colour_masks_read_as_the_cli_reads_them(tmp_path: Path) -> None:
    swatches = class_swatches(SHAPES)
    ids = torch.tensor([[0, 1, 2, 5], [3, 4, 4, 0]])
    Image.fromarray(ids.numpy().astype(np.uint8)).save(tmp_path / "ids.png")
    Image.fromarray(ids_to_canvas(ids, swatches)[..., :3]).save(tmp_path / "colours.png")
    assert torch.equal(read_mask(tmp_path / "ids.png", SHAPES, swatches), ids)
    assert torch.equal(read_mask(tmp_path / "colours.png", SHAPES, swatches), ids)
    assert torch.equal(read_mask(tmp_path / "ids.png", SHAPES, swatches), SHAPES.read(tmp_path / "ids.png"))


def _bad_masks(tmp: Path) -> dict[str, Path]:
    out = {"ids": tmp / "bad_ids.png", "jpeg": tmp / "lossy.png", "text": tmp / "not_an_image.png",
           "colours": tmp / "odd_colours.png"}
    Image.fromarray(np.array([[0, 9], [1, 255]], dtype=np.uint8)).save(out["ids"])
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(out["jpeg"], format="JPEG")  # a JPEG named .png
    out["text"].write_text("not a PNG")
    Image.fromarray(np.array([[[1, 2, 3], [0, 0, 0]]], dtype=np.uint8)).save(out["colours"])
    return out


def test_bad_masks_give_the_cli_error_lines(tmp_path: Path, model: tuple[Path, MaskToImage],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, _ = model
    swatches = class_swatches(SHAPES)
    for kind, path in _bad_masks(tmp_path).items():
        with pytest.raises(ValueError) as err:
            read_mask(path, SHAPES, swatches)
        line = error_line(err.value)
        assert "\n" not in line and line.startswith(f"error: {path}"), kind
        if kind != "colours":  # the CLI needs --palette for colours; the editor brings its own
            argv = ["spade", "--checkpoint", str(ckpt), "--labels", str(path), "--out", str(tmp_path / "out")]
            assert _cli_line(capsys, argv) == line, kind
    palette = tmp_path / "palette.txt"
    palette.write_text(palette_file_text(stored_palette(SHAPES, swatches)))
    argv = ["spade", "--checkpoint", str(ckpt), "--labels", str(tmp_path / "odd_colours.png"), "--palette",
            str(palette), "--out", str(tmp_path / "out")]
    with pytest.raises(ValueError) as err:
        read_mask(tmp_path / "odd_colours.png", SHAPES, swatches)
    assert _cli_line(capsys, argv) == error_line(err.value)


def test_generate_and_the_mask_file_give_the_cli_image(tmp_path: Path, model: tuple[Path, MaskToImage]) -> None:
    ckpt, m2i = model
    ids = torch.randint(0, 6, (40, 48), generator=torch.Generator().manual_seed(0))
    folder = ResultFolder(tmp_path / "results")
    result = generate_image(m2i, ids, seed=3, folder=folder)
    mask = save_mask(ids, SHAPES, folder)
    assert torch.equal(load_label(mask), ids) and result.image.shape == (3, 40, 48)
    assert torch.equal(result.image, m2i.generate(mask, seed=3)[0])
    assert infer.cli(["spade", "--checkpoint", str(ckpt), "--labels", str(mask), "--out", str(tmp_path / "cli"),
                      "--seed", "3", "--ext", "png"]) == 0
    assert (tmp_path / "cli" / mask.name).read_bytes() == result.path.read_bytes()  # the same PNG


def test_ade20k_masks_are_written_as_stored_ids() -> None:
    layout = LabelLayout(3, contain_dontcare_label=True, dataset_mode="ade20k")
    ids = torch.tensor([[0, 1, 2, 3]])
    assert layout.to_stored(ids).tolist() == [[1, 2, 3, 0]]
    assert torch.equal(layout.to_ids(layout.to_stored(ids), "mask"), ids)


def test_style_weights_are_parsed_and_checked_by_the_api() -> None:
    assert parse_weights("0.3, 0.7") == [0.3, 0.7]
    assert parse_weights("") is None
    with pytest.raises(ValueError, match="must be numbers"):
        parse_weights("a b")


def test_workspace_tabs_follow_the_loaded_models(tmp_path: Path, model: tuple[Path, MaskToImage]) -> None:
    ckpt, _ = model
    layout = LabelLayout(6, dataset_mode="shapes")
    rain = load_mask_model(tiny_rain_checkpoint(tmp_path, layout))
    assert isinstance(rain, RegionStyles)
    assert isinstance(load_mask_model(ckpt), MaskToImage)
    from models.adain import StyleTransfer

    pipe = StyleTransferPipeline(StyleTransfer().eval())
    assert Workspace(load_mask_model(ckpt), pipe, tmp_path).tabs == ["Mask to image", "Style transfer"]
    assert Workspace(rain, None, tmp_path).tabs == ["Region styles"]
    assert Workspace(rain, None, tmp_path).canvas_size == (32, 32)
    with pytest.raises(ValueError, match="the editor needs a model"):
        Workspace(None, None, tmp_path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError) as first:
        MaskToImage.load(tmp_path / "other.ckpt")
    with pytest.raises(ValueError) as err:
        load_mask_model(tmp_path / "other.ckpt")
    assert str(err.value) == str(first.value)  # the mask-to-image reader's message


def test_without_gradio_serve_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, model: tuple[Path, MaskToImage],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    with pytest.raises(ValueError, match=r"pip install -e \"\.\[app\]\""):
        import_gradio()
    assert _cli_line(capsys, ["serve", "--checkpoint", str(model[0])]) == f"error: {GRADIO_MISSING}"
