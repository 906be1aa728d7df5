"""A small DiT (Peebles & Xie, 2023) built from condnorm's adaLN-Zero, with DiT's state-dict keys."""

from .blocks import DiT, FinalLayer, dit_block, timestep_embedding

__all__ = ["DiT", "FinalLayer", "dit_block", "timestep_embedding"]
