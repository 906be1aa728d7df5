"""Input validation shared by every layer.

Shape checks name their dimensions (``("N", "C", "H", "W")``) so one named size can be
matched across several tensors, and every failure says which argument, what was expected
and what arrived. Data-dependent checks (label ids in range, finite values) are skipped
while tracing or compiling, where reading a tensor's values would break the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .graph_mode import capturing_graph

__all__ = ["check_finite", "check_ids", "check_shape"]


def _fmt(dims: Sequence[str | int], sizes: dict[str, int]) -> str:
    parts = []
    for d in dims:
        if isinstance(d, int):
            parts.append(str(d))
        elif d in sizes:
            parts.append(f"{d}={sizes[d]}")
        else:
            parts.append(d)
    return "(" + ", ".join(parts) + ")"


def check_shape(
    tensor: Tensor,
    dims: Sequence[str | int],
    name: str,
    sizes: dict[str, int] | None = None,
) -> dict[str, int]:
    """Check a tensor's rank and named sizes; return the sizes bound so far.

    Args:
        tensor: the tensor to check.
        dims: one entry per dimension: a name (``"N"``), or an exact size.
        name: the argument's name, used in the message.
        sizes: sizes already bound to names (from the layer or earlier tensors).

    Returns:
        ``sizes`` extended with this tensor's named dimensions.

    Raises:
        TypeError: if ``tensor`` is not a tensor.
        ValueError: on a wrong rank or a size that contradicts ``dims``/``sizes``.

    Example:
        >>> import torch
        >>> check_shape(torch.zeros(2, 3, 4, 4), ("N", "C", "H", "W"), "x", {"C": 3})["N"]
        2
        >>> check_shape(torch.zeros(2, 5), ("N", "C"), "x", {"C": 3})
        Traceback (most recent call last):
        ...
        ValueError: x: expected shape (N, C=3), got (2, 5) (dimension 'C' is 5, expected 3)
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor of shape {_fmt(dims, sizes or {})}, "
                        f"got {type(tensor).__name__}")
    bound = dict(sizes or {})
    shape = tuple(tensor.shape)
    if len(shape) != len(dims):
        raise ValueError(f"{name}: expected a {len(dims)}-d tensor of shape {_fmt(dims, bound)}, "
                         f"got {len(shape)}-d shape {shape}")
    for d, size in zip(dims, shape):
        want = d if isinstance(d, int) else bound.get(d)
        if want is not None and size != want:
            label = d if isinstance(d, str) else "fixed"
            raise ValueError(f"{name}: expected shape {_fmt(dims, sizes or {})}, got {shape} "
                             f"(dimension '{label}' is {size}, expected {want})")
        if isinstance(d, str):
            bound[d] = size
    return bound


def check_ids(ids: Tensor, num_classes: int, name: str) -> None:
    """Check that ``ids`` holds integer class ids in ``[0, num_classes)``.

    The range check reads the tensor's values, so it is skipped while exporting or compiling.

    Raises:
        TypeError: if ``ids`` is not an integer tensor.
        ValueError: if an id is negative or ``>= num_classes`` (the offending ids are listed).

    Example:
        >>> import torch
        >>> check_ids(torch.tensor([0, 2]), 3, "labels")
        >>> check_ids(torch.tensor([0, 5]), 3, "labels")
        Traceback (most recent call last):
        ...
        ValueError: labels: ids must be in [0, 3), found [5]; raise num_classes or remap the ids
    """
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer tensor of class ids (torch.long), "
                        f"got dtype {ids.dtype}")
    if capturing_graph() or ids.numel() == 0:
        return
    if int(ids.min()) < 0 or int(ids.max()) >= num_classes:
        bad = torch.unique(ids[(ids < 0) | (ids >= num_classes)])[:10].tolist()
        raise ValueError(f"{name}: ids must be in [0, {num_classes}), found {bad}; "
                         "raise num_classes or remap the ids")


def check_finite(tensor: Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``tensor`` holds NaN or Inf (skipped while exporting).

    Example:
        >>> import torch
        >>> check_finite(torch.tensor([1.0, float("nan")]), "style")
        Traceback (most recent call last):
        ...
        ValueError: style: contains 1 non-finite value(s) (NaN or Inf); check the condition's source
    """
    if capturing_graph() or not tensor.is_floating_point():
        return
    bad = int((~torch.isfinite(tensor)).sum())
    if bad:
        raise ValueError(f"{name}: contains {bad} non-finite value(s) (NaN or Inf); "
                         "check the condition's source")
