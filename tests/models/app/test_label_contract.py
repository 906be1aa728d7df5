"""One label contract from training to inference, and inference that never fails silently.

Each test is one finding of the real-data review (docs/robustness.md, "Inference and the label
contract"): it failed before the label contract (``LabelLayout``) and the Python API existed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import infer
from models.app import MaskToImage
from models.app.cli import export as export_cli
from models.app.mask_to_image import resize_ids
from models.data.io import ImageReadError, image_size, load_label, load_rgb, save_image
from models.data.label_layout import LabelLayout
from models.data.layouts import find_custom
from models.data.semantic import PairedSemanticDataset
from models.data.semantic_datamodule import SemanticDataModule
from models.data.shapes import write_shapes
from tests.models.app.tiny_models import tiny_checkpoint as _checkpoint
from tests.models.data.data_files import write_ids, write_image, write_pair
from tests.models.networks.adain_official import save_official


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    status = infer.cli(argv)
    return status, capsys.readouterr().err


# ---------------------------------------------------------------- the contract travels with the model
def test_coco_style_255_is_dontcare_at_inference_as_in_training(tmp_path: Path) -> None:
    layout = LabelLayout(3, contain_dontcare_label=True, dataset_mode="coco")
    ckpt = _checkpoint(tmp_path, layout)
    mask = write_ids(tmp_path / "masks" / "a.png", np.array([[0, 1, 2, 255]] * 4))
    assert infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(mask), "--out", str(tmp_path / "o")]) == 0
    assert MaskToImage.load(ckpt).read_labels(mask).unique().tolist() == [0, 1, 2, 3]
    assert Image.open(tmp_path / "o" / "a.png").size == (4, 4)


def test_ade20k_ids_are_shifted_at_inference_exactly_as_in_training(tmp_path: Path) -> None:
    stored = np.array([[0, 1, 2, 3, 4]] * 5)  # ADE20K files: 0 = "other", classes 1..4
    write_pair(tmp_path, "ADE_train_0001", stored)
    layout = LabelLayout(4, contain_dontcare_label=True, dataset_mode="ade20k")
    training = PairedSemanticDataset(find_custom(tmp_path / "img", tmp_path / "lbl"), layout).read_label(0)
    model = MaskToImage.load(_checkpoint(tmp_path, layout))
    inferred = model.read_labels(tmp_path / "lbl" / "ADE_train_0001.png")
    assert torch.equal(inferred, training) and inferred[0].tolist() == [4, 0, 1, 2, 3]
    # the image comes from exactly those ids (not the stored, unshifted ones)
    direct = model.generator(model.layout.encode(resize_ids(training, model.output_size)[None]))  # dense path
    assert torch.allclose(model.generate(tmp_path / "lbl" / "ADE_train_0001.png", model_size=True)[0],
                          (direct[0].clamp(-1, 1) + 1) / 2)


def test_palette_recorded_at_training_maps_colour_masks_and_255_at_inference(tmp_path: Path) -> None:
    palette = tmp_path / "palette.json"
    palette.write_text(json.dumps({"0": [0, 0, 0], "1": [255, 0, 0], "255": [255, 255, 255]}))
    dm = SemanticDataModule("custom", image_dir="i", label_dir="l", label_nc=2, contain_dontcare_label=True,
                            palette_file=str(palette))
    ckpt = _checkpoint(tmp_path, dm.layout)
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[:3] = (255, 0, 0)
    rgb[5] = (255, 255, 255)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    model = MaskToImage.load(ckpt)  # no --palette: the checkpoint recorded it
    assert model.layout.palette_map == {0: (0, 0, 0), 1: (255, 0, 0), 255: (255, 255, 255)}
    assert model.read_labels(tmp_path / "colour.png")[:, 0].tolist() == [1, 1, 1, 0, 0, 2]
    assert infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(tmp_path / "colour.png"),
                       "--out", str(tmp_path / "o")]) == 0


def test_exports_record_the_whole_contract(tmp_path: Path) -> None:
    layout = LabelLayout(4, contain_dontcare_label=True, dataset_mode="ade20k")
    ckpt = _checkpoint(tmp_path, layout)
    out = tmp_path / "g.safetensors"
    assert infer.main(["export", "--task", "spade", "--checkpoint", str(ckpt), "--format", "safetensors",
                       "--out", str(out)]) == 0
    exported = MaskToImage.load(out)
    assert exported.layout == layout
    mask = write_ids(tmp_path / "m.png", np.array([[0, 1, 4]] * 3))
    torch.testing.assert_close(exported.generate(mask)[0], MaskToImage.load(ckpt).generate(mask)[0],
                               atol=1e-5, rtol=0)


def test_readme_inference_command_runs_on_an_instance_edge_model(tmp_path: Path, capsys) -> None:
    """The demo model takes instance edges; `infer.py spade --checkpoint <ckpt> --labels new_masks/`
    must run as printed: the class boundaries stand in for the instance boundaries, and it says so."""
    ckpt = _checkpoint(tmp_path, LabelLayout(6, use_instance=True, dataset_mode="shapes"))
    labels, instances = tmp_path / "new_masks", tmp_path / "new_instances"
    write_shapes(labels, 3, instances_dir=instances, size=32)
    assert infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(labels),
                       "--out", str(tmp_path / "o")]) == 0
    assert "class boundaries stand in" in capsys.readouterr().out
    assert infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(labels),
                       "--instances", str(instances), "--out", str(tmp_path / "o2")]) == 0
    assert len(list((tmp_path / "o2").iterdir())) == 3
    missing = tmp_path / "no_instances"
    missing.mkdir()
    status, err = _cli(["spade", "--checkpoint", str(ckpt), "--labels", str(labels),
                        "--instances", str(missing), "--out", str(tmp_path / "o3")], capsys)
    assert status == 2 and "no instance map" in err and "shapes_1_000000" in err


# ---------------------------------------------------------------- label files: lossless integer ids only
def test_one_bit_masks_read_as_zero_and_one(tmp_path: Path) -> None:
    path = tmp_path / "bit.png"
    Image.fromarray(np.array([[0, 255, 255]], np.uint8)).convert("1").save(path)
    assert load_label(path).tolist() == [[0, 1, 1]]
    ckpt = _checkpoint(tmp_path, LabelLayout(2))
    assert infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(path), "--out", str(tmp_path / "o")]) == 0


def test_jpeg_and_float_label_maps_are_refused_with_the_reason(tmp_path: Path) -> None:
    ids = np.zeros((8, 8), np.uint8)
    ids[:, 4:] = 5
    Image.fromarray(ids).save(tmp_path / "a.jpg", quality=75)
    Image.fromarray(ids).save(tmp_path / "disguised.png", format="JPEG")  # a JPEG under a PNG name
    Image.fromarray(ids.astype(np.float32) + 0.7).save(tmp_path / "f.tif")
    for name, reason in (("a.jpg", "stored losslessly"), ("disguised.png", "stored losslessly"),
                         ("f.tif", "floating-point")):
        with pytest.raises(ImageReadError, match=reason):
            load_label(tmp_path / name)
    # and the dataset check reports it before training, with the file
    write_image(tmp_path / "ds" / "img" / "a.png", 8, 8)
    (tmp_path / "ds" / "lbl").mkdir()
    Image.fromarray(ids).save(tmp_path / "ds" / "lbl" / "a.jpg", quality=75)
    data = PairedSemanticDataset(find_custom(tmp_path / "ds" / "img", tmp_path / "ds" / "lbl"), LabelLayout(6))
    with pytest.raises(ValueError, match=r"lbl/a\.jpg: label maps must be stored losslessly"):
        data.validate(progress=False)


def test_exif_rotated_photo_pairs_with_its_upright_label_map(tmp_path: Path) -> None:
    photo = Image.new("RGB", (6, 4), (200, 10, 10))  # stored 6 wide, shown 4 wide (rotated 90°)
    exif = photo.getexif()
    exif[0x0112] = 6
    (tmp_path / "img").mkdir()
    photo.save(tmp_path / "img" / "a.jpg", exif=exif)
    write_ids(tmp_path / "lbl" / "a.png", np.zeros((6, 4), np.uint8))  # drawn on the upright photo
    assert image_size(tmp_path / "img" / "a.jpg") == (6, 4)
    data = PairedSemanticDataset(find_custom(tmp_path / "img", tmp_path / "lbl"), LabelLayout(2))
    data.validate(progress=False)
    assert load_rgb(tmp_path / "img" / "a.jpg").shape == (3, 6, 4)
    assert data[0]["image"].shape[0] == 3  # no size mismatch between the photo and its label map


# ---------------------------------------------------------------- outputs: unique, validated, atomic
def test_outputs_mirror_the_input_tree_so_equal_names_do_not_collide(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, LabelLayout(3))
    for sub in ("sub1", "sub2"):
        write_ids(tmp_path / "masks" / sub / "a.png", np.array([[0, 1], [2, 1]]))
    assert infer.main(["spade", "--checkpoint", str(ckpt), "--labels", str(tmp_path / "masks"),
                       "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.png")) == [
        "sub1/a.png", "sub2/a.png"]


def test_two_inputs_for_one_output_are_refused_before_any_work(tmp_path: Path, capsys) -> None:
    ckpt = _checkpoint(tmp_path, LabelLayout(3))
    write_ids(tmp_path / "masks" / "a.png", np.array([[0, 1]]))
    Image.fromarray(np.array([[2, 1]], np.uint8)).save(tmp_path / "masks" / "a.bmp")
    status, err = _cli(["spade", "--checkpoint", str(ckpt), "--labels", str(tmp_path / "masks"),
                        "--out", str(tmp_path / "o")], capsys)
    assert status == 2 and "would both be written to" in err and not (tmp_path / "o").exists()
    vgg, decoder, *_ = save_official(tmp_path)
    for folder, suffix in (("c1", ".png"), ("c2", ".jpg")):
        write_image(tmp_path / folder / f"a{suffix}", 16, 16)
    status, err = _cli(["adain", "--content", str(tmp_path / "c1" / "a.png"), str(tmp_path / "c2" / "a.jpg"),
                        "--style", str(tmp_path / "c1" / "a.png"), "--vgg", str(vgg), "--decoder", str(decoder),
                        "--out", str(tmp_path / "ao"), "--device", "cpu"], capsys)
    assert status == 2 and "would both be written to" in err and not (tmp_path / "ao").exists()


@pytest.mark.parametrize(("option", "message"), [
    (["--batch-size", "-1"], "--batch-size: must be an integer >= 1"),
    (["--batch-size", "0"], "--batch-size: must be an integer >= 1"),
    (["--ext", "gif"], "--ext: choose one of"),
    (["--label-nc", "0"], "--label-nc: must be an integer >= 1"),
])
def test_bad_options_are_refused_at_parse_time(tmp_path: Path, capsys, option, message) -> None:
    ckpt = _checkpoint(tmp_path, LabelLayout(3))
    mask = write_ids(tmp_path / "a.png", np.array([[0, 1]]))
    status, err = _cli(["spade", "--checkpoint", str(ckpt), "--labels", str(mask), "--out", str(tmp_path / "o"),
                        *option], capsys)
    assert status == 2 and message in err and not (tmp_path / "o").exists()


def test_checkpoint_with_non_finite_weights_is_refused_not_turned_into_black_images(tmp_path: Path,
                                                                                    capsys) -> None:
    ckpt = _checkpoint(tmp_path, LabelLayout(3))
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k in state["state_dict"] if k.startswith("generator.") and k.endswith("weight_orig"))
    state["state_dict"][key] = torch.full_like(state["state_dict"][key], float("nan"))
    torch.save(state, ckpt)
    mask = write_ids(tmp_path / "a.png", np.array([[0, 1]]))
    status, err = _cli(["spade", "--checkpoint", str(ckpt), "--labels", str(mask), "--out", str(tmp_path / "o")],
                       capsys)
    assert status == 2 and "NaN or Inf" in err and key in err and not (tmp_path / "o").exists()


def test_non_finite_outputs_are_never_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NaN/Inf pixels"):
        save_image(torch.full((3, 4, 4), float("nan")), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    ckpt = _checkpoint(tmp_path, LabelLayout(3))
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"previous good export")

    def crash(args, network, spec, meta, path):
        path.write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(export_cli, "_write", crash)
    with pytest.raises(KeyboardInterrupt):
        infer.main(["export", "--task", "spade", "--checkpoint", str(ckpt), "--format", "safetensors",
                    "--out", str(out)])
    assert out.read_bytes() == b"previous good export" and sorted(p.name for p in tmp_path.iterdir()) == [
        "model.ckpt", "model.safetensors"]


def test_foreign_class_paths_in_a_checkpoint_are_refused_before_import(tmp_path: Path, capsys,
                                                                       monkeypatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "payload_mod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass P: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = _checkpoint(tmp_path, LabelLayout(3))
    state = torch.load(ckpt, weights_only=True)
    state["hyper_parameters"]["_instantiator"] = "payload_mod.P"
    torch.save(state, ckpt)
    image = write_image(tmp_path / "c.png", 16, 16)
    for argv in (["spade", "--checkpoint", str(ckpt), "--labels", str(image), "--out", str(tmp_path / "o")],
                 ["adain", "--checkpoint", str(ckpt), "--content", str(image), "--style", str(image),
                  "--out", str(tmp_path / "o"), "--device", "cpu"],
                 ["export", "--task", "spade", "--checkpoint", str(ckpt), "--format", "onnx",
                  "--out", str(tmp_path / "x.onnx")]):
        status, err = _cli(argv, capsys)
        assert status == 2 and "names 'payload_mod.P', which is not a class of this project" in err, argv
    assert not marker.exists()
