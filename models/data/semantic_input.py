"""The generator's semantic input: one-hot label map plus an instance-boundary channel.

SPADE-family generators take ``semantic_nc = label_nc + contain_dontcare_label + use_instance``
channels: one per class, one more for the don't-care id ``label_nc`` when it is kept, and a
last channel that is 1 on instance boundaries (so touching objects of one class stay apart).
"""

from __future__ import annotations

import torch
from torch import Tensor

from condnorm._check import check_ids, check_shape
from condnorm.functional import labels_to_onehot

__all__ = ["instance_edges", "semantic_input", "semantic_nc"]


def semantic_nc(label_nc: int, contain_dontcare_label: bool, use_instance: bool) -> int:
    """Number of channels of :func:`semantic_input`.

    Example:
        >>> semantic_nc(150, True, False), semantic_nc(35, False, True), semantic_nc(182, True, True)
        (151, 36, 184)
    """
    if label_nc < 1:
        raise ValueError(f"label_nc must be >= 1, got {label_nc}")
    return label_nc + int(contain_dontcare_label) + int(use_instance)


def instance_edges(instance: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Mark pixels whose instance id differs from a 4-neighbour's (both sides of a boundary).

    Args:
        instance: ``(N, H, W)`` integer instance ids.
        dtype: dtype of the result.

    Returns:
        ``(N, 1, H, W)`` map, 1 on boundaries and 0 elsewhere.

    Example:
        >>> instance_edges(torch.tensor([[[1, 1, 2, 2]]]))[0, 0]
        tensor([[0., 1., 1., 0.]])
    """
    check_shape(instance, ("N", "H", "W"), "instance")
    horizontal = instance[:, :, 1:] != instance[:, :, :-1]
    vertical = instance[:, 1:, :] != instance[:, :-1, :]
    edge = torch.zeros_like(instance, dtype=torch.bool)
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    edge[:, 1:, :] |= vertical
    edge[:, :-1, :] |= vertical
    return edge.unsqueeze(1).to(dtype)


def semantic_input(
    label: Tensor,
    instance: Tensor | None = None,
    *,
    label_nc: int,
    contain_dontcare_label: bool,
    use_instance: bool,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Build the generator's semantic map from a batch of id maps (and instance maps).

    Args:
        label: ``(N, H, W)`` long ids in ``[0, label_nc + contain_dontcare_label)``.
        instance: ``(N, H, W)`` instance ids; required when ``use_instance``, ignored otherwise.
        label_nc: number of classes, not counting the don't-care id.
        contain_dontcare_label: keep a channel for the don't-care id ``label_nc``.
        use_instance: append the :func:`instance_edges` channel.
        dtype: dtype of the result.

    Returns:
        ``(N, semantic_nc, H, W)``: one-hot classes, then the edge channel if ``use_instance``.

    Raises:
        ValueError: on a wrong shape, ids out of range (the message names the settings to change),
            or a missing instance map.

    Example:
        >>> label = torch.tensor([[[0, 1], [2, 2]]])
        >>> x = semantic_input(label, label, label_nc=2, contain_dontcare_label=True, use_instance=True)
        >>> x.shape
        torch.Size([1, 4, 2, 2])
    """
    sizes = check_shape(label, ("N", "H", "W"), "label")
    num_ids = label_nc + int(contain_dontcare_label)
    check_ids(label, num_ids, f"label (label_nc={label_nc}, contain_dontcare_label={contain_dontcare_label})")
    onehot = labels_to_onehot(label, num_ids, dtype=dtype)
    if not use_instance:
        return onehot
    if instance is None:
        raise ValueError("semantic_input: use_instance=True needs an instance map (N, H, W); pass it or "
                         "set no_instance=True in the data config")
    check_shape(instance, ("N", "H", "W"), "instance", sizes)
    return torch.cat([onehot, instance_edges(instance, dtype=dtype)], dim=1)
