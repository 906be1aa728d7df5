"""Find (image, label, instance) file triples in the folder layouts of the SPADE datasets.

=========== ====================================================================================
mode        layout under ``dataroot``
=========== ====================================================================================
custom      ``image_dir`` + ``label_dir`` [+ ``instance_dir``], paired by path relative to the
            folder without the suffix (``a/b.jpg`` ↔ ``a/b.png``)
ade20k      one tree, searched recursively: ``*_{phase}_*.jpg`` images and ``.png`` labels of
            the same stem (``images/training/ADE_train_00000001.jpg`` ↔
            ``annotations/training/ADE_train_00000001.png``)
cityscapes  ``leftImg8bit/{phase}/**/*_leftImg8bit.png``, ``gtFine/{phase}/**/*_labelIds.png``
            and ``*_instanceIds.png``, paired by the ``city_seq_frame`` prefix
coco        ``{phase}_img``, ``{phase}_label``, ``{phase}_inst``, paired by stem
=========== ====================================================================================

Every finder returns :class:`SamplePaths` in natural order (``img2`` before ``img10``) and
raises ``FileNotFoundError`` naming the folder when it is missing or empty, or ``ValueError``
listing, on each side, the names that have no partner.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

from .io import list_images

__all__ = ["DATASET_MODES", "SamplePaths", "find_ade20k", "find_cityscapes", "find_coco",
           "find_custom", "find_samples", "natural_key"]

DATASET_MODES = ("custom", "ade20k", "cityscapes", "coco", "shapes")
_MAX_LISTED = 10


@dataclass(frozen=True)
class SamplePaths:
    """Files of one sample; ``name`` is the pairing key (used to name outputs)."""

    name: str
    image: Path
    label: Path
    instance: Path | None = None


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders digit runs by value.

    Example:
        >>> sorted(["img10", "img2", "img1"], key=natural_key)
        ['img1', 'img2', 'img10']
    """
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _listed(names: Iterable[str]) -> str:
    names = sorted(names, key=natural_key)
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return f"{names[:_MAX_LISTED]}{more}"


def _keyed(files: Iterable[Path], key_of: Callable[[Path], str], what: str) -> dict[str, Path]:
    """Map each file to its pairing key; raise on two files with one key."""
    keyed: dict[str, Path] = {}
    clashes = []
    for path in files:
        key = key_of(path)
        if key in keyed:
            clashes.append(f"{keyed[key]} / {path}")
        keyed[key] = path
    if clashes:
        raise ValueError(f"{len(clashes)} {what} file(s) share a name with another (the pair would be "
                         f"ambiguous): {clashes[:_MAX_LISTED]}; remove or rename the duplicates")
    return keyed


def _pair(images: dict[str, Path], labels: dict[str, Path], instances: dict[str, Path] | None,
          where: str) -> list[SamplePaths]:
    """Join keyed files; report the keys without a partner on each side."""
    problems = []
    if images.keys() - labels.keys():
        problems.append(f"{len(images.keys() - labels.keys())} image(s) have no label: "
                        f"{_listed(images.keys() - labels.keys())}")
    if labels.keys() - images.keys():
        problems.append(f"{len(labels.keys() - images.keys())} label(s) have no image: "
                        f"{_listed(labels.keys() - images.keys())}")
    if instances is not None and images.keys() - instances.keys():
        problems.append(f"{len(images.keys() - instances.keys())} image(s) have no instance map: "
                        f"{_listed(images.keys() - instances.keys())}")
    if problems:
        raise ValueError(f"{where}: unpaired files; " + "; ".join(problems)
                         + ". Pairs are matched by file name without the extension")
    return [SamplePaths(key, images[key], labels[key], instances[key] if instances is not None else None)
            for key in sorted(images, key=natural_key)]


def _relative_stem(root: Path) -> Callable[[Path], str]:
    return lambda path: path.relative_to(root).with_suffix("").as_posix()


def find_custom(image_dir: str | Path, label_dir: str | Path,
                instance_dir: str | Path | None = None) -> list[SamplePaths]:
    """Pair images, labels (and instance maps) from separate folders by relative path stem.

    Example:
        >>> find_custom("/nonexistent/img", "/nonexistent/lbl")
        Traceback (most recent call last):
        ...
        FileNotFoundError: image folder /nonexistent/img does not exist; check the path in your config
    """
    folders = {"image_dir": Path(image_dir), "label_dir": Path(label_dir)}
    if instance_dir is not None:
        folders["instance_dir"] = Path(instance_dir)
    keyed = {name: _keyed(list_images(root), _relative_stem(root), name) for name, root in folders.items()}
    where = ", ".join(f"{name}={root}" for name, root in folders.items())
    return _pair(keyed["image_dir"], keyed["label_dir"], keyed.get("instance_dir"), where)


def find_ade20k(dataroot: str | Path, phase: str = "train", *,
                use_instance: bool = False) -> list[SamplePaths]:
    """ADE20K: ``*_{phase}_*`` ``.jpg`` images and ``.png`` labels anywhere under ``dataroot``.

    ADE20K has no instance maps, so ``use_instance=True`` is an error.
    """
    if use_instance:
        raise ValueError("ade20k has no instance maps; set no_instance=True in the data config")
    root = Path(dataroot)
    files = [p for p in list_images(root) if f"_{phase}_" in p.name]
    images = [p for p in files if p.suffix.lower() in (".jpg", ".jpeg")]
    labels = [p for p in files if p.suffix.lower() == ".png"]
    if not images or not labels:
        raise FileNotFoundError(f"ade20k: found {len(images)} '*_{phase}_*.jpg' image(s) and {len(labels)} "
                                f"'*_{phase}_*.png' label(s) under {root}; point dataroot at "
                                "ADEChallengeData2016 (holding images/ and annotations/)")
    stem = attrgetter("stem")
    return _pair(_keyed(images, stem, "ade20k image"), _keyed(labels, stem, "ade20k label"), None,
                 f"ade20k {phase} under {root}")


def _glob(folder: Path, suffix: str, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"cityscapes: {what} folder {folder} does not exist; point dataroot at "
                                "the folder holding gtFine/ and leftImg8bit/")
    files = sorted(folder.rglob(f"*{suffix}"))
    if not files:
        raise FileNotFoundError(f"cityscapes: no '*{suffix}' files under {folder}")
    return _keyed(files, lambda path: path.name[: -len(suffix)], f"cityscapes {what}")


def find_cityscapes(dataroot: str | Path, phase: str = "train", *,
                    use_instance: bool = True) -> list[SamplePaths]:
    """Cityscapes: ``leftImg8bit/{phase}`` images with ``gtFine/{phase}`` label/instance ids."""
    root = Path(dataroot)
    images = _glob(root / "leftImg8bit" / phase, "_leftImg8bit.png", "image")
    labels = _glob(root / "gtFine" / phase, "_gtFine_labelIds.png", "label")
    instances = (_glob(root / "gtFine" / phase, "_gtFine_instanceIds.png", "instance") if use_instance
                 else None)
    return _pair(images, labels, instances, f"cityscapes {phase} under {root}")


def find_coco(dataroot: str | Path, phase: str = "train", *, use_instance: bool = True) -> list[SamplePaths]:
    """COCO-Stuff: ``{phase}_img``, ``{phase}_label`` and ``{phase}_inst`` under ``dataroot``."""
    root = Path(dataroot)
    folders = [root / f"{phase}_img", root / f"{phase}_label"] + ([root / f"{phase}_inst"] if use_instance
                                                                 else [])
    keyed = [_keyed(list_images(folder, recursive=False), attrgetter("stem"), f"coco {folder.name}")
             for folder in folders]
    return _pair(keyed[0], keyed[1], keyed[2] if use_instance else None, f"coco {phase} under {root}")


def find_samples(dataset_mode: str, *, dataroot: str | Path | None = None, phase: str = "train",
                 image_dir: str | Path | None = None, label_dir: str | Path | None = None,
                 instance_dir: str | Path | None = None, use_instance: bool = False) -> list[SamplePaths]:
    """Dispatch to the finder of ``dataset_mode`` (one of the file-based :data:`DATASET_MODES`).

    For ``custom``, relative ``image_dir``/``label_dir``/``instance_dir`` are taken under
    ``dataroot`` when it is given; ``instance_dir`` is only read when ``use_instance``.
    """
    if dataset_mode == "custom":
        if image_dir is None or label_dir is None:
            raise ValueError("custom: set both image_dir and label_dir in the data config")
        if use_instance and instance_dir is None:
            raise ValueError("custom: use_instance needs instance_dir; set it or set no_instance=True")
        base = Path(dataroot) if dataroot is not None else Path()
        return find_custom(base / image_dir, base / label_dir,
                           base / instance_dir if use_instance and instance_dir is not None else None)
    finders = {"ade20k": find_ade20k, "cityscapes": find_cityscapes, "coco": find_coco}
    if dataset_mode not in finders:
        raise ValueError(f"unknown dataset_mode {dataset_mode!r}; choose one of {', '.join(DATASET_MODES)}")
    if dataroot is None:
        raise ValueError(f"{dataset_mode}: set dataroot in the data config")
    return finders[dataset_mode](dataroot, phase, use_instance=use_instance)

