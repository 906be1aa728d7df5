r"""OASIS's 3-D noise: a noise map ``(N, z_dim, H, W)`` concatenated to the one-hot label map.

The paper samples the noise as a 3-D tensor, one ``z_dim``-vector per pixel, so that the generator
can vary the image locally. The public code's default draws one vector per image and broadcasts it
over ``H×W`` (OASIS issue 24), which makes every pixel share its noise. Here:

- :func:`pixel_noise` (the paper's form, the default): every pixel gets its own N(0, 1) vector;
- :func:`region_noise`: one N(0, 1) vector per (image, class region), broadcast inside the region
  (re-sample one region to change only that region; the "local noise" of the paper's Fig. 1);
- :func:`draw_noise` picks one of the two by name; :func:`concat_noise` / :func:`with_noise`: the
  generator's input, ``cat(one-hot, noise)`` with ``label_nc + z_dim`` channels.

All sampling is seedable through a :class:`torch.Generator` (drawn on the CPU, so the values do not
depend on the device).
"""

from __future__ import annotations

import torch
from torch import Tensor

from condnorm._check import check_ids, check_shape

__all__ = ["NOISE_MODES", "Z_DIM", "concat_noise", "draw_noise", "pixel_noise", "region_noise", "with_noise"]

#: The paper's noise width.
Z_DIM = 64
#: Noise layouts accepted by :func:`with_noise`.
NOISE_MODES = ("pixel", "region")


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype) -> Tensor:
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def pixel_noise(
    batch: int,
    height: int,
    width: int,
    *,
    z_dim: int = Z_DIM,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Per-pixel 3-D noise: ``N·z_dim·H·W`` independent N(0, 1) samples.

    Args:
        batch: ``N``.
        height: ``H``.
        width: ``W``.
        z_dim: noise channels (64 in the paper).
        generator: random generator (same seed → same noise).
        device: device of the result.
        dtype: dtype of the result (default: torch's default float dtype).

    Returns:
        ``(N, z_dim, H, W)``.

    Example:
        >>> z = pixel_noise(2, 4, 4, generator=torch.Generator().manual_seed(0))
        >>> tuple(z.shape), bool((z[:, :, 0, 0] != z[:, :, 0, 1]).all())
        ((2, 64, 4, 4), True)
    """
    return _randn((batch, z_dim, height, width), generator, device, dtype)


def region_noise(
    label: Tensor,
    label_nc: int,
    *,
    z_dim: int = Z_DIM,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Per-region 3-D noise: one N(0, 1) vector per (image, class), broadcast over that class's pixels.

    A vector is drawn for each of the ``label_nc`` classes of each image, present or not, so the
    vector of class ``c`` does not depend on which other classes the map holds.

    Args:
        label: class ids ``(N, H, W)`` in ``[0, label_nc)``.
        label_nc: number of classes.
        z_dim: noise channels.
        generator: random generator.
        dtype: dtype of the result.

    Returns:
        ``(N, z_dim, H, W)`` on ``label``'s device, constant on each class region.

    Example:
        >>> z = region_noise(torch.tensor([[[0, 0, 1]]]), 2, z_dim=3, generator=torch.Generator().manual_seed(0))
        >>> bool((z[..., 0] == z[..., 1]).all()), bool((z[..., 1] != z[..., 2]).all())
        (True, True)
    """
    check_shape(label, ("N", "H", "W"), "label (class ids)")
    check_ids(label, label_nc, "label")
    n = label.shape[0]
    codes = _randn((n, label_nc, z_dim), generator, label.device, dtype)  # (N, L, z)
    index = label.flatten(1).unsqueeze(-1).expand(-1, -1, z_dim)  # (N, HW, z)
    per_pixel = torch.gather(codes, 1, index)  # (N, HW, z)
    return per_pixel.transpose(1, 2).reshape(n, z_dim, *label.shape[1:])


def concat_noise(segmap: Tensor, noise: Tensor) -> Tensor:
    """The generator's input: the one-hot map and the noise map along channels (map first).

    Args:
        segmap: one-hot label map ``(N, label_nc, H, W)``.
        noise: ``(N, z_dim, H, W)``.

    Returns:
        ``(N, label_nc + z_dim, H, W)``.

    Example:
        >>> tuple(concat_noise(torch.zeros(2, 5, 8, 8), torch.zeros(2, 64, 8, 8)).shape)
        (2, 69, 8, 8)
    """
    sizes = check_shape(segmap, ("N", "L", "H", "W"), "segmap")
    check_shape(noise, ("N", "Z", "H", "W"), "noise", {k: sizes[k] for k in ("N", "H", "W")})
    return torch.cat((segmap, noise.to(segmap.dtype)), dim=1)


def draw_noise(
    segmap: Tensor,
    *,
    z_dim: int = Z_DIM,
    mode: str = "pixel",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample the 3-D noise map for a one-hot label map (what :func:`with_noise` concatenates).

    Args:
        segmap: one-hot label map ``(N, label_nc, H, W)``; in ``"region"`` mode the class of a pixel is
            its argmax.
        z_dim: noise channels.
        mode: ``"pixel"`` (:func:`pixel_noise`) or ``"region"`` (:func:`region_noise`).
        generator: random generator.

    Returns:
        ``(N, z_dim, H, W)`` in ``segmap``'s dtype, on its device.

    Example:
        >>> seg = torch.nn.functional.one_hot(torch.randint(3, (1, 8, 8)), 3).permute(0, 3, 1, 2).float()
        >>> tuple(draw_noise(seg, z_dim=4, mode="region").shape)
        (1, 4, 8, 8)
    """
    sizes = check_shape(segmap, ("N", "L", "H", "W"), "segmap")
    if mode == "pixel":
        return pixel_noise(sizes["N"], sizes["H"], sizes["W"], z_dim=z_dim, generator=generator,
                           device=segmap.device, dtype=segmap.dtype)
    if mode == "region":
        return region_noise(segmap.argmax(1), sizes["L"], z_dim=z_dim, generator=generator, dtype=segmap.dtype)
    raise ValueError(f"draw_noise: mode must be one of {NOISE_MODES}, got {mode!r}")


def with_noise(
    segmap: Tensor,
    *,
    z_dim: int = Z_DIM,
    mode: str = "pixel",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample 3-D noise for a one-hot map (:func:`draw_noise`) and concatenate it (:func:`concat_noise`).

    Returns:
        ``(N, label_nc + z_dim, H, W)``.

    Example:
        >>> seg = torch.nn.functional.one_hot(torch.randint(3, (1, 8, 8)), 3).permute(0, 3, 1, 2).float()
        >>> tuple(with_noise(seg, mode="region").shape)
        (1, 67, 8, 8)
    """
    return concat_noise(segmap, draw_noise(segmap, z_dim=z_dim, mode=mode, generator=generator))
