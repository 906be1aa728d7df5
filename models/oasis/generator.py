"""OASIS's generator input: a SPADE-family generator fed the label map plus fresh 3-D noise on every call.

The wrapped network is any generator built for ``semantic_nc + z_dim`` input channels (SPADE, CLADE);
its segmap — label map and noise together — reaches ``fc`` and every conditional norm, so the noise
modulates every layer as in the paper. The wrapper adds no parameters: its state dict is the
network's under ``net.``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .noise import NOISE_MODES, Z_DIM, concat_noise, draw_noise

__all__ = ["OASISGenerator"]


class OASISGenerator(nn.Module):
    """Wrap ``net`` so that ``forward(segmap)`` runs ``net(cat(segmap, noise))`` with newly drawn 3-D noise.

    The noise can also be given (``noise=``): the exported graph takes it as an input, and the
    runtime draws it with :meth:`draw` exactly as ``forward`` would, so a seed gives the same image.

    Args:
        net: a generator taking ``semantic_nc + z_dim`` channels (dense maps).
        z_dim: noise channels (64 in the paper).
        noise_mode: ``"pixel"`` (a vector per pixel, the paper's) or ``"region"`` (a vector per class region).

    Example:
        >>> from models.spade import SPADEGenerator
        >>> g = OASISGenerator(SPADEGenerator(3 + 8, ngf=4, crop_size=64, norm="instance"), z_dim=8)
        >>> seg = torch.nn.functional.one_hot(torch.randint(3, (1, 64, 64)), 3).permute(0, 3, 1, 2).float()
        >>> g(seg).shape, bool((g(seg) != g(seg)).any())       # fresh noise on every call
        (torch.Size([1, 3, 64, 64]), True)
        >>> g = g.eval()                                       # no spectral-norm power iteration per call
        >>> noise = g.draw(seg, generator=torch.Generator().manual_seed(0))
        >>> bool((g(seg, noise=noise) == g(seg, generator=torch.Generator().manual_seed(0))).all())
        True
    """

    def __init__(self, net: nn.Module, *, z_dim: int = Z_DIM, noise_mode: str = "pixel") -> None:
        super().__init__()
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"OASISGenerator: noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        self.net, self.z_dim, self.noise_mode = net, int(z_dim), noise_mode

    @property
    def output_size(self) -> tuple[int, int]:
        """The wrapped generator's ``(H, W)``."""
        return tuple(self.net.output_size)

    def draw(self, segmap: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """The noise map ``(N, z_dim, H, W)`` for a dense ``segmap``, drawn from ``generator`` (seedable)."""
        return draw_noise(segmap, z_dim=self.z_dim, mode=self.noise_mode, generator=generator)

    def forward(self, segmap: Tensor, *, noise: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Generate from a dense label map ``(N, semantic_nc, H, W)`` and ``noise`` (drawn when None)."""
        if noise is None:
            noise = self.draw(segmap, generator=generator)
        return self.net(concat_noise(segmap, noise))

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, noise_mode={self.noise_mode!r}"
