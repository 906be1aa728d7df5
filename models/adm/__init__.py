"""ADM (guided-diffusion) residual block with condnorm's AdaGN, reading ADM's state-dict keys."""

from .resblocks import ResBlock

__all__ = ["ResBlock"]
