"""Per-region style codes as data: which regions an image has, mixing several sources, files.

A :class:`RegionCodes` holds one image's codes ``(L, D)`` and a ``present`` flag per region
(the region had pixels where the encoder pooled it). Mixing lays sources over each other: a
region takes its code from the last source that has it (optionally only for the regions
that source is asked for), and keeps the zero code when no source has it.

Files hold two plain tensors, ``codes`` and ``present``: ``.safetensors`` through
safetensors, anything else through ``torch.save`` (read back with ``weights_only=True``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

from models.weights import atomic_save, atomic_write

__all__ = ["RegionCodes", "mix_region_codes"]


@dataclass(frozen=True)
class RegionCodes:
    """Style codes of one image's regions.

    Attributes:
        codes: ``(L, D)`` float codes (zero rows for absent regions).
        present: ``(L,)`` bool, the regions the codes were pooled from.

    Example:
        >>> a = RegionCodes(torch.ones(3, 2), torch.tensor([True, False, True]))
        >>> a.label_nc, a.style_dim
        (3, 2)
    """

    codes: Tensor
    present: Tensor

    def __post_init__(self) -> None:
        if self.codes.dim() != 2 or self.present.shape != self.codes.shape[:1]:
            raise ValueError(f"RegionCodes: expected codes (L, D) and present (L,), got "
                             f"{tuple(self.codes.shape)} and {tuple(self.present.shape)}")
        if self.present.dtype != torch.bool:
            raise TypeError(f"RegionCodes: present must be bool, got {self.present.dtype}")

    @property
    def label_nc(self) -> int:
        """L, the number of regions."""
        return self.codes.shape[0]

    @property
    def style_dim(self) -> int:
        """D, the length of a code."""
        return self.codes.shape[1]

    @classmethod
    def empty(cls, label_nc: int, style_dim: int) -> RegionCodes:
        """Zero codes, no region present."""
        return cls(torch.zeros(label_nc, style_dim), torch.zeros(label_nc, dtype=torch.bool))

    def save(self, path: str | Path) -> Path:
        """Write ``codes`` and ``present`` to ``path`` atomically (safetensors by suffix, else ``torch.save``)."""
        path = Path(path)
        tensors = {"codes": self.codes.detach().float().cpu().contiguous(),
                   "present": self.present.cpu().contiguous()}
        if path.suffix == ".safetensors":
            return atomic_write(path, lambda f: f.write(safetensors_bytes(tensors)))
        return atomic_save(tensors, path)

    @classmethod
    def load(cls, path: str | Path) -> RegionCodes:
        """Read a file written by :meth:`save` (plain tensors only; no pickled code runs)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"codes file {path} does not exist")
        try:
            if path.suffix == ".safetensors":
                tensors = load_file(str(path))
            else:
                tensors = torch.load(path, map_location="cpu", weights_only=True)
            return cls(tensors["codes"].float(), tensors["present"].bool())
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not a codes file (expected tensors 'codes' (L, D) and "
                             f"'present' (L,), as written by --codes-out): {err}") from err

    def check_fits(self, label_nc: int, style_dim: int, name: str) -> RegionCodes:
        """Return self; raise ``ValueError`` naming ``name`` unless the codes are (label_nc, style_dim)."""
        if (self.label_nc, self.style_dim) != (label_nc, style_dim):
            raise ValueError(f"{name}: codes of {self.label_nc} regions × {self.style_dim} do not fit a "
                             f"generator with label_nc={label_nc}, style_dim={style_dim}")
        return self


def mix_region_codes(layers: Sequence[tuple[RegionCodes, Iterable[int] | None]]) -> RegionCodes:
    """Lay code sources over each other: later layers win, for the regions they have.

    Args:
        layers: ``(source, regions)`` pairs, lowest priority first; ``regions=None`` offers all of
            the source's regions, a list only those. A region a source does not have (``present``
            False) never overrides.

    Returns:
        The mixed codes; ``present`` marks regions some layer supplied (others keep zeros).

    Raises:
        ValueError: if ``layers`` is empty, the sources differ in size, or a region id is out of range.

    Example:
        >>> ref = RegionCodes(torch.ones(3, 1), torch.tensor([True, True, False]))
        >>> other = RegionCodes(torch.full((3, 1), 2.0), torch.tensor([True, True, True]))
        >>> mixed = mix_region_codes([(ref, None), (other, [1, 2])])
        >>> mixed.codes.flatten().tolist(), mixed.present.tolist()
        ([1.0, 2.0, 2.0], [True, True, True])
    """
    if not layers:
        raise ValueError("mix_region_codes: no sources given")
    first = layers[0][0]
    codes, present = torch.zeros_like(first.codes), torch.zeros_like(first.present)
    for source, regions in layers:
        source.check_fits(first.label_nc, first.style_dim, "mix_region_codes source")
        take = source.present.clone()
        if regions is not None:
            wanted = torch.zeros_like(take)
            for r in regions:
                if not 0 <= r < first.label_nc:
                    raise ValueError(f"mix_region_codes: region {r} is outside [0, {first.label_nc})")
                wanted[r] = True
            take &= wanted
        codes = torch.where(take[:, None], source.codes.to(codes.dtype), codes)
        present |= take
    return RegionCodes(codes, present)
