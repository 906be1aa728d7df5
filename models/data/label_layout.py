"""The label contract: how a label file on disk becomes a mask-to-image generator's input.

One :class:`LabelLayout` answers every question between a PNG of ids and the generator's
``(N, semantic_nc, H, W)`` input: how many classes there are, whether 255 means "unlabelled",
whether the dataset stores 1-based ids (ADE20K), whether instance edges are appended, and which
palette turns a colour mask into ids. The DataModule builds it, the training module records it
in every checkpoint, exports record it in their metadata, and inference (PyTorch and ONNX, the
CLI and the Python API) applies the same object, so a mask that trains is a mask that infers.

The id conventions are the official SPADE ones:

============  ================================================================================
dataset_mode  stored id → training id
============  ================================================================================
ade20k        ``k → k - 1`` (the file's 0, "other", becomes the don't-care id ``label_nc``)
any           with ``contain_dontcare_label``: ``255 → label_nc``
============  ================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from condnorm import SemanticMap

from .io import load_label
from .palette import Palette
from .semantic_input import instance_edges, semantic_input, semantic_nc

__all__ = ["DONTCARE_VALUE", "LabelLayout", "check_label_ids", "remap_ids"]

DONTCARE_VALUE = 255
_SHIFTED_MODES = ("ade20k",)


def remap_ids(label: Tensor, *, dataset_mode: str, label_nc: int, contain_dontcare_label: bool) -> Tensor:
    """Map the ids stored in a label file to training ids.

    ADE20K: ``k -> k - 1`` and ``0 -> label_nc``. Any mode, with ``contain_dontcare_label``:
    ``255 -> label_nc``.

    Example:
        >>> remap_ids(torch.tensor([0, 1, 150]), dataset_mode="ade20k", label_nc=150,
        ...           contain_dontcare_label=True)
        tensor([150,   0, 149])
        >>> remap_ids(torch.tensor([3, 255]), dataset_mode="coco", label_nc=182, contain_dontcare_label=True)
        tensor([  3, 182])
    """
    dontcare = label == DONTCARE_VALUE if contain_dontcare_label else None
    if dataset_mode in _SHIFTED_MODES:
        label = label - 1
        label[label < 0] = label_nc
    if dontcare is not None:
        label = label.masked_fill(dontcare, label_nc)
    return label


def check_label_ids(label: Tensor, name: str, *, label_nc: int, contain_dontcare_label: bool) -> None:
    """Raise a ValueError naming ``name``, the ids outside the valid range and how to fix it.

    Example:
        >>> try:
        ...     check_label_ids(torch.tensor([0, 7, 255]), "a.png", label_nc=5, contain_dontcare_label=False)
        ... except ValueError as err:
        ...     message = str(err)
        >>> message.split(" Fix")[0]
        'a.png: label ids [7, 255] are outside [0, 5) (label_nc=5, contain_dontcare_label=False).'
        >>> "set contain_dontcare_label=True" in message
        True
    """
    num_ids = label_nc + int(contain_dontcare_label)
    if label.numel() == 0 or (int(label.min()) >= 0 and int(label.max()) < num_ids):
        return
    bad = torch.unique(label[(label < 0) | (label >= num_ids)]).tolist()
    hints = ["set label_nc to the number of classes (the largest valid id + 1)"]
    if DONTCARE_VALUE in bad and not contain_dontcare_label:
        hints.append(f"set contain_dontcare_label=True if {DONTCARE_VALUE} marks unlabelled pixels")
    hints.append("if the mask is a colour (RGB) image, map colours to ids with a palette file")
    listed = f"{bad[:20]}{f' and {len(bad) - 20} more' if len(bad) > 20 else ''}"
    raise ValueError(f"{name}: label ids {listed} are outside [0, {num_ids}) (label_nc={label_nc}, "
                     f"contain_dontcare_label={contain_dontcare_label}). Fix: " + "; ".join(hints))


@dataclass(frozen=True)
class LabelLayout:
    """How label files become a generator's input; recorded in checkpoints and exports.

    Args:
        label_nc: number of classes, not counting the don't-care id.
        contain_dontcare_label: keep a don't-care id ``label_nc`` (255 and ADE20K's 0 map to it).
        use_instance: append the instance-edge channel (instance maps are needed, or the class
            boundaries stand in for them at inference).
        dataset_mode: the dataset whose id convention the files follow (``ade20k`` shifts ids
            down by one; every other mode stores training ids).
        palette: ``((id, r, g, b), ...)`` to read colour-coded masks; ``None``: files hold ids.

    Example:
        >>> layout = LabelLayout(150, contain_dontcare_label=True, dataset_mode="ade20k")
        >>> layout.semantic_nc, layout.num_ids
        (151, 151)
        >>> layout.to_ids(torch.tensor([[0, 1, 150]]), "a.png")
        tensor([[150,   0, 149]])
        >>> LabelLayout.from_dict(layout.to_dict()) == layout
        True
    """

    label_nc: int
    contain_dontcare_label: bool = False
    use_instance: bool = False
    dataset_mode: str = "custom"
    palette: tuple[tuple[int, int, int, int], ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.label_nc, int) or self.label_nc < 1:
            raise ValueError(f"label_nc must be an integer >= 1, got {self.label_nc!r}")
        if self.palette is not None:  # normalise lists (from JSON/YAML) to a hashable tuple
            object.__setattr__(self, "palette", tuple(tuple(int(v) for v in e) for e in self.palette))

    # ------------------------------------------------------------------ sizes
    @property
    def num_ids(self) -> int:
        """Distinct training ids: the classes plus the don't-care id when there is one."""
        return self.label_nc + int(self.contain_dontcare_label)

    @property
    def semantic_nc(self) -> int:
        """Channels of the generator's input: one-hot ids plus the instance-edge channel."""
        return semantic_nc(self.label_nc, self.contain_dontcare_label, self.use_instance)

    @property
    def palette_map(self) -> Palette | None:
        """The palette as ``{id: (r, g, b)}``, or None."""
        return None if self.palette is None else {i: (r, g, b) for i, r, g, b in self.palette}

    # ------------------------------------------------------------------ files → ids
    def to_ids(self, stored: Tensor, name: str) -> Tensor:
        """Map the ids stored in a file to training ids and check them (the error names ``name``)."""
        label = remap_ids(stored, dataset_mode=self.dataset_mode, label_nc=self.label_nc,
                          contain_dontcare_label=self.contain_dontcare_label)
        check_label_ids(label, name, label_nc=self.label_nc, contain_dontcare_label=self.contain_dontcare_label)
        return label

    def to_stored(self, ids: Tensor) -> Tensor:
        """Training ids back to the ids a label file stores (the inverse of :meth:`to_ids`).

        What an editor writes so that the file reads back as ``ids`` (ADE20K: ``k → k + 1`` and the
        don't-care id → 0; otherwise the don't-care id → 255).

        Example:
            >>> layout = LabelLayout(150, contain_dontcare_label=True, dataset_mode="ade20k")
            >>> layout.to_stored(torch.tensor([150, 0, 149]))
            tensor([  0,   1, 150])
            >>> torch.equal(layout.to_ids(layout.to_stored(torch.tensor([3, 150])), "ids"), torch.tensor([3, 150]))
            True
        """
        ids = ids.long()
        if self.dataset_mode in _SHIFTED_MODES:
            return torch.where(ids == self.label_nc, torch.zeros_like(ids), ids + 1)
        if self.contain_dontcare_label:
            return ids.masked_fill(ids == self.label_nc, DONTCARE_VALUE)
        return ids

    def read(self, label: str | Path | Tensor, palette: Palette | None = None) -> Tensor:
        """Read a label file as training ids ``(H, W)``, exactly as training reads it.

        Args:
            label: a lossless label file (PNG, BMP, integer TIFF) of ids, or of colours when the
                layout (or ``palette``) has a palette; or the stored ids themselves, ``(H, W)``.
            palette: overrides the recorded palette (``{id: (r, g, b)}``).

        Raises:
            ImageReadError: for unreadable, lossy (JPEG) or floating-point label files, and for
                colour masks without a palette.
            ValueError: for ids outside the layout (the message names the file and the fix), or
                an id tensor that is not ``(H, W)``.
        """
        if isinstance(label, Tensor):
            if label.dim() != 2:
                raise ValueError(f"labels: expected an (H, W) id map per image, got shape {tuple(label.shape)}")
            return self.to_ids(label.long(), "labels")
        stored = load_label(label, palette if palette is not None else self.palette_map)
        return self.to_ids(stored, str(label))

    def encode(self, label: Tensor, instance: Tensor | None = None, *,
               dtype: torch.dtype = torch.float32) -> Tensor:
        """``(N, H, W)`` training ids (+ instance ids) → the dense ``(N, semantic_nc, H, W)`` map.

        What networks that take the dense map get (the discriminator, RAIN/SEAN generators). With
        ``use_instance`` and no instance map, the class boundaries stand in for the instance
        boundaries (touching objects of one class are not separated).
        """
        if self.use_instance and instance is None:
            instance = label
        return semantic_input(label, instance, label_nc=self.label_nc,
                              contain_dontcare_label=self.contain_dontcare_label,
                              use_instance=self.use_instance, dtype=dtype)

    def semantic_map(self, label: Tensor, instance: Tensor | None = None, *,
                     dtype: torch.dtype = torch.float32) -> SemanticMap:
        """The same input kept as ids: a :class:`condnorm.SemanticMap` of ids and the edge channel.

        SPADE and CLADE generators (and their ONNX graphs) take it directly, so ids stay ids from
        the file to the norm layers; it equals :meth:`encode` made dense.

        Example:
            >>> layout = LabelLayout(3, use_instance=True)
            >>> ids = torch.tensor([[[0, 1], [2, 2]]])
            >>> m = layout.semantic_map(ids)
            >>> torch.equal(m.to_dense(layout.semantic_nc, torch.float32), layout.encode(ids))
            True
        """
        check_label_ids(label, "labels", label_nc=self.label_nc, contain_dontcare_label=self.contain_dontcare_label)
        if not self.use_instance:
            return SemanticMap(label.long())
        edges = instance_edges(label if instance is None else instance, dtype=dtype)
        return SemanticMap(label.long(), edges)

    # ------------------------------------------------------------------ records
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-friendly fields (checkpoint hyperparameters, ONNX metadata)."""
        return {"label_nc": self.label_nc, "contain_dontcare_label": self.contain_dontcare_label,
                "use_instance": self.use_instance, "dataset_mode": self.dataset_mode,
                "palette": [list(e) for e in self.palette] if self.palette is not None else None}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> LabelLayout:
        """Rebuild from :meth:`to_dict` or a checkpoint's hyperparameters (extra keys are ignored).

        Records written before ``dataset_mode``/``palette`` were kept read as ``custom``/None.
        """
        missing = [k for k in ("label_nc", "contain_dontcare_label", "use_instance") if record.get(k) is None]
        if missing:
            raise ValueError(f"the label layout record lacks {missing}; it was not written by this project")
        return cls(int(record["label_nc"]), bool(record["contain_dontcare_label"]),
                   bool(record["use_instance"]), str(record.get("dataset_mode") or "custom"),
                   record.get("palette"))

    @classmethod
    def with_palette(cls, palette: Palette | None, **fields: Any) -> LabelLayout:
        """Build with a ``{id: (r, g, b)}`` palette (as :func:`~models.data.palette.load_palette` gives).

        Example:
            >>> LabelLayout.with_palette({1: (255, 0, 0)}, label_nc=2).palette
            ((1, 255, 0, 0),)
        """
        entries = None if palette is None else tuple((i, *rgb) for i, rgb in sorted(palette.items()))
        return cls(palette=entries, **fields)
