"""The evaluation protocol (issue 15): ``models.app.evaluation.evaluate`` and ``infer.py evaluate``.

Segmentation scores on a hand-computed case, LPIPS diversity 0 for a deterministic generator and
> 0 for a noisy one, FID/KID with a stand-in Inception file, the built-in shapes segmenter on real
images, TorchScript segmenters, and the command end to end. Metric networks are random stand-ins
(no download), generators are 4-channel and untrained.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import infer
from condnorm import SemanticMap
from models.app import MaskToImage
from models.app.evaluation import METRICS, evaluate
from models.app.shapes_segmenter import load_segmenter, shapes_segmenter
from models.data.label_layout import LabelLayout
from models.data.shapes import SHAPES_LABEL_NC, ShapesDataset, write_shapes
from models.generators import build_generator
from models.metrics import confusion_matrix, optional_lpips, segmentation_scores
from models.oasis import OASISGenerator
from tests.models.app.tiny_models import TINY_OASIS, tiny_checkpoint
from tests.models.metric_stand_ins import stand_in_alexnet, stand_in_inception

SHAPES = LabelLayout(SHAPES_LABEL_NC)


def _spade(layout: LabelLayout = SHAPES) -> MaskToImage:
    torch.manual_seed(0)
    return MaskToImage(build_generator("spade", layout.semantic_nc, ngf=4, crop_size=32, norm="batch").eval(), layout)


def _oasis(layout: LabelLayout = SHAPES) -> MaskToImage:
    torch.manual_seed(0)
    net = build_generator("spade", layout.semantic_nc + 8, ngf=4, crop_size=32, norm="batch")
    return MaskToImage(OASISGenerator(net, z_dim=8).eval(), layout)


def _shapes_pairs(count: int, size: int = 32, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Held-out ``(ids, real image in [0, 1])`` pairs."""
    return [(s["label"], s["image"].add(1).div(2)) for s in ShapesDataset(count, size=size, seed=seed)]


# ---------------------------------------------------------------- segmentation scores
def test_miou_and_pixel_accuracy_on_a_hand_computed_case() -> None:
    target = torch.tensor([[0, 0], [1, 2]])
    pred = torch.tensor([[0, 1], [1, 1]])
    # class 0: TP 1, FN 1 → 1/2; class 1: TP 1, FP 2 → 1/3; class 2: FN 1 → 0; class 3 absent: not scored
    confusion = confusion_matrix(pred, target, 4)
    scores = segmentation_scores(confusion)
    assert scores["miou"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert scores["pixel_accuracy"] == 0.5 and scores["classes_scored"] == 3
    assert scores["class_iou"][:3] == pytest.approx([1 / 2, 1 / 3, 0]) and math.isnan(scores["class_iou"][3])
    # predicted / target pixels: class 1 is segmented on 3 pixels for its 1
    assert scores["class_area_ratio"][:3] == [1 / 2, 3, 0] and math.isnan(scores["class_area_ratio"][3])
    assert segmentation_scores(confusion_matrix(torch.tensor([3, 3]), torch.tensor([0, 0]), 4))["miou"] == 0.0
    with pytest.raises(ValueError, match="prediction ids outside"):
        confusion_matrix(torch.tensor([4]), torch.tensor([0]), 4)


@pytest.mark.parametrize("mode", ["coco", "ade20k"])
def test_evaluate_scores_the_segmenter_on_the_label_contract_and_skips_dontcare(mode: str) -> None:
    layout = LabelLayout(3, contain_dontcare_label=True, dataset_mode=mode)
    # the same training ids [[0, 0, dontcare], [1, 2, dontcare]] as each dataset stores them (ade20k: 1-based,
    # 0 = "other"); the id shift is applied once, don't-care pixels are not counted
    stored = torch.tensor([[0, 0, 255], [1, 2, 255]] if mode == "coco" else [[1, 1, 0], [2, 3, 0]])
    pred = torch.tensor([[0, 1, 0], [1, 1, 2]])
    logits = torch.nn.functional.one_hot(pred, 4).permute(2, 0, 1)[None].float()  # 4 channels: the extra is cut
    seen: list[torch.Tensor] = []
    real = torch.rand(3, 2, 3)
    truth = torch.nn.functional.one_hot(torch.tensor([[0, 0, 2], [1, 2, 2]]), 4).permute(2, 0, 1)[None].float()
    report = evaluate(_spade(layout), [(stored, real)],
                      segmenter=lambda images: logits if not seen.append(images) and len(seen) == 1 else truth,
                      num_samples=1)
    assert torch.equal(seen[0][0], _spade(layout).generate(stored)[0])  # the generator saw the ids generate() sees
    assert torch.equal(seen[1][0], real)  # then the real image: the segmenter's ceiling on these masks
    assert report["miou"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3) and report["pixel_accuracy"] == 0.5
    assert report["class_iou"] == pytest.approx([1 / 2, 1 / 3, 0]) and report["class_area_ratio"] == [1 / 2, 3, 0]
    assert report["real_class_iou"] == [1, 1, 1] and report["real_class_area_ratio"] == [1, 1, 1]
    assert report["real_miou"] == 1.0 and report["real_pixel_accuracy"] == 1.0  # don't-care pixels not counted
    assert report["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]  # rows: the label's class
    assert report["real_confusion"] == [[2, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert report["lpips_diversity"] is None and report["fid"] is None and 0 <= report["class_color_error"] <= 1
    with pytest.raises(ValueError, match="logits"):
        evaluate(_spade(layout), [(stored, torch.rand(3, 2, 3))], segmenter=lambda images: logits[:, :2],
                 num_samples=1)


# ---------------------------------------------------------------- LPIPS diversity
def test_lpips_diversity_is_zero_for_a_deterministic_generator_and_positive_for_a_noisy_one(
        tmp_path: Path, monkeypatch) -> None:
    stand_in_alexnet(monkeypatch, tmp_path)
    lpips = optional_lpips()
    assert lpips is not None
    pairs = _shapes_pairs(3)
    deterministic = evaluate(_spade(), pairs, num_samples=3, lpips=lpips)
    noisy = evaluate(_oasis(), pairs, num_samples=3, lpips=lpips)
    assert deterministic["lpips_diversity"] == 0.0 and deterministic["pixel_diversity"] == 0.0
    assert noisy["lpips_diversity"] > 0 and noisy["pixel_diversity"] > 0
    again = evaluate(_oasis(), pairs, num_samples=3, lpips=lpips, batch_size=1)  # seeds do not depend on batching
    assert again["lpips_diversity"] == pytest.approx(noisy["lpips_diversity"], rel=1e-5)
    assert evaluate(_oasis(), pairs, num_samples=1, lpips=lpips)["lpips_diversity"] is None  # no pair to compare


# ---------------------------------------------------------------- FID / KID
def test_fid_and_kid_run_on_a_local_inception_file(tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "inception.pth"
    stand_in_inception(monkeypatch, weights)
    report = evaluate(_spade(), _shapes_pairs(3), num_samples=1, fid_weights=weights)
    assert math.isfinite(report["fid"]) and math.isfinite(report["kid_mean"]) and math.isfinite(report["kid_std"])
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        evaluate(_spade(), _shapes_pairs(3), fid_weights=tmp_path / "missing.pth")


# ---------------------------------------------------------------- segmenters
def test_the_shapes_segmenter_recovers_real_shapes_labels() -> None:
    segmenter = shapes_segmenter()
    data = ShapesDataset(32, size=64, seed=1)  # held out: the segmenter trains on seed 100
    images = torch.stack([s["image"] for s in data]).add(1).div(2)
    labels = torch.stack([s["label"] for s in data])
    with torch.no_grad():
        scores = segmentation_scores(confusion_matrix(segmenter(images).argmax(1), labels, SHAPES_LABEL_NC))
    assert scores["miou"] > 0.9 and scores["pixel_accuracy"] > 0.97, scores  # measured 0.96 / 0.99
    assert shapes_segmenter() is segmenter  # trained once per process


@pytest.mark.parametrize("how", ["script", "trace"])
def test_a_torchscript_segmenter_file_gives_the_scores_of_its_net(how: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, SHAPES_LABEL_NC, 3, padding=1).eval()
    scripted = torch.jit.script(net) if how == "script" else torch.jit.trace(net, torch.rand(1, 3, 32, 32))
    path = tmp_path / "segmenter.pt"
    torch.jit.save(scripted, str(path))
    pairs = _shapes_pairs(2)
    from_file = evaluate(_spade(), pairs, segmenter=load_segmenter(path), num_samples=1)
    eager = evaluate(_spade(), pairs, segmenter=net, num_samples=1)
    assert from_file["miou"] == pytest.approx(eager["miou"]) and 0 <= from_file["miou"] <= 1
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"bad\.pt: not a TorchScript file"):
        load_segmenter(tmp_path / "bad.pt")


# ---------------------------------------------------------------- infer.py evaluate
def _files(tmp_path: Path, count: int = 3) -> tuple[Path, Path, Path]:
    labels, images = tmp_path / "labels", tmp_path / "images"
    write_shapes(labels, count, images_dir=images, size=32)
    return tiny_checkpoint(tmp_path, SHAPES), labels, images


def test_the_command_writes_the_report_and_the_grid(tmp_path: Path, capsys) -> None:
    ckpt, labels, images = _files(tmp_path)
    out = tmp_path / "eval"
    status = infer.cli(["evaluate", "--checkpoint", str(ckpt), "--labels", str(labels), "--images", str(images),
                        "--shapes-segmenter", "--samples", "2", "--out", str(out), "--names", "SPADE"])
    printed = capsys.readouterr().out
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert set(METRICS) <= report.keys() and report["num_images"] == 3 and report["num_samples"] == 2
    assert 0 <= report["miou"] <= 1 and 0 <= report["pixel_accuracy"] <= 1 and report["fid"] is None
    markdown = (out / "report.md").read_text()
    assert "| miou |" in printed and "| miou |" in markdown
    assert "| metric | SPADE |" in printed and "| metric | SPADE |" in markdown  # --names, not the file's path
    assert "| class | SPADE IoU | SPADE area | real IoU | real area |" in markdown
    # the per-class table: a row for each class in the labels, with the JSON's IoU and area ratios
    present = [c for c, iou in enumerate(report["class_iou"]) if iou is not None]
    assert markdown.count("\n| class |") == 1 and len(present) >= 3
    for c in present:
        values = [report[k][c] for k in ("class_iou", "class_area_ratio", "real_class_iou", "real_class_area_ratio")]
        assert f"\n| {c} | " + " | ".join(f"{v:.4f}" for v in values) + " |" in markdown
    # 3 rows × (mask │ sample │ real) of 32 px tiles, 2 px padding, a 14 px title strip: a deterministic
    # generator's two samples are one column
    assert report["pixel_diversity"] == 0.0
    assert Image.open(out / "grid.png").size == (3 * 34 + 2, 3 * 34 + 2 + 14)


def test_the_command_compares_checkpoints_on_the_same_masks_and_seeds(tmp_path: Path, capsys) -> None:
    spade, labels, images = _files(tmp_path)
    oasis = tiny_checkpoint(tmp_path, SHAPES, "oasis.ckpt", **TINY_OASIS)
    out = tmp_path / "eval"
    status = infer.cli(["evaluate", "--checkpoint", str(spade), str(oasis), "--names", "SPADE", "OASIS",
                        "--labels", str(labels), "--images", str(images), "--samples", "2", "--seed", "5",
                        "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "| metric | SPADE | OASIS |" in printed
    report = json.loads((out / "report.json").read_text())["models"]
    assert report["SPADE"]["pixel_diversity"] == 0.0 and report["OASIS"]["pixel_diversity"] > 0
    # mask │ SPADE │ OASIS s1 │ OASIS s2 │ real, 3 rows; each tile is what the Python API makes with that seed
    grid = torch.from_numpy(np.array(Image.open(out / "grid.png"))).permute(2, 0, 1).float() / 255
    assert tuple(grid.shape[1:]) == (3 * 34 + 2 + 14, 5 * 34 + 2)

    def tile(row: int, column: int) -> torch.Tensor:
        top, left = 14 + 2 + row * 34, 2 + column * 34
        return grid[:, top:top + 32, left:left + 32]

    first_label = sorted(labels.iterdir())[0]
    want_spade = MaskToImage.load(spade).generate(first_label, seed=5)[0]
    oasis_model = MaskToImage.load(oasis)
    s1, s2 = oasis_model.generate(first_label, seed=5)[0], oasis_model.generate(first_label, seed=5 + 3)[0]
    for column, want in ((1, want_spade), (2, s1), (3, s2)):
        assert (tile(0, column) - want).abs().max() <= 1 / 255 + 1e-6, column
    assert (tile(0, 2) - tile(0, 3)).abs().max() > 0.05  # the two OASIS samples differ
    status = infer.cli(["evaluate", "--checkpoint", str(spade), str(oasis), "--names", "same", "same",
                        "--labels", str(labels), "--images", str(images), "--out", str(tmp_path / "e2")])
    assert status == 2 and "--names: give 2 distinct name(s)" in capsys.readouterr().err


def test_the_command_measures_lpips_fid_and_kid_when_asked(tmp_path: Path, monkeypatch, capsys) -> None:
    stand_in_alexnet(monkeypatch, tmp_path)
    stand_in_inception(monkeypatch, tmp_path / "inception.pth")
    ckpt, labels, images = _files(tmp_path, 2)
    out = tmp_path / "eval"
    status = infer.cli(["evaluate", "--checkpoint", str(ckpt), "--labels", str(labels), "--images", str(images),
                        "--lpips", "--fid-weights", str(tmp_path / "inception.pth"), "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["lpips_diversity"] == 0.0  # a SPADE generator without VAE is deterministic
    assert all(math.isfinite(report[k]) for k in ("fid", "kid_mean", "kid_std")) and report["miou"] is None


@pytest.mark.parametrize("bad", [["--samples", "0"], ["--segmenter", "x.pt", "--shapes-segmenter"],
                                 ["--segmenter", "missing.pt"], ["--fid-weights", "missing.pth"]])
def test_bad_options_are_refused_before_any_work(bad: list[str], tmp_path: Path, capsys) -> None:
    ckpt, labels, images = _files(tmp_path, 1)
    out = tmp_path / "eval"
    status = infer.cli(["evaluate", "--checkpoint", str(ckpt), "--labels", str(labels), "--images", str(images),
                        "--out", str(out), *bad])
    assert status == 2 and "error" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- instance maps
def test_instance_maps_reach_an_edge_model() -> None:
    layout = LabelLayout(3, contain_dontcare_label=False, use_instance=True)
    label = torch.zeros(32, 32, dtype=torch.long)
    label[:, 16:] = 1
    instance = label.clone()
    instance[:16, :16] = 7  # two objects of class 0: an edge the class map does not have
    model = _spade(layout)
    inputs: list[SemanticMap] = []
    model.generator.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    evaluate(model, [(label, torch.rand(3, 32, 32), instance)], num_samples=1)
    with_edges, without = model.encode([label], [instance]).extra, model.encode([label]).extra
    assert torch.equal(inputs[0].extra, with_edges) and not torch.equal(with_edges, without)
    with pytest.raises(ValueError, match="1 of 2 samples have an instance map"):
        evaluate(model, [(label, torch.rand(3, 32, 32), instance), (label, torch.rand(3, 32, 32))])


def test_the_command_pairs_instance_maps_and_names_a_missing_one(tmp_path: Path, capsys) -> None:
    layout = LabelLayout(SHAPES_LABEL_NC, contain_dontcare_label=False, use_instance=True)
    ckpt = tiny_checkpoint(tmp_path, layout)
    labels, images, instances = tmp_path / "labels", tmp_path / "images", tmp_path / "instances"
    write_shapes(labels, 2, images_dir=images, instances_dir=instances, size=32)
    args = ["evaluate", "--checkpoint", str(ckpt), "--labels", str(labels), "--images", str(images), "--samples", "1"]
    assert infer.cli([*args, "--instances", str(instances), "--out", str(tmp_path / "a")]) == 0
    assert "stand in" not in capsys.readouterr().out
    assert infer.cli([*args, "--out", str(tmp_path / "b")]) == 0
    assert "no --instances folder was given" in capsys.readouterr().out
    with_edges = json.loads((tmp_path / "a" / "report.json").read_text())["class_color_error"]
    model = MaskToImage.load(ckpt)
    pairs = sorted(labels.glob("*.png"))
    want = evaluate(model, [(p, images / p.name, instances / p.name) for p in pairs], num_samples=1)
    assert with_edges == pytest.approx(want["class_color_error"])
    (instances / pairs[1].name).unlink()
    assert infer.cli([*args, "--instances", str(instances), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and pairs[1].stem in err, err
