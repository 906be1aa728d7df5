"""models/adm: guided-diffusion's ResBlock(use_scale_shift_norm) keys load strict=True; forward restated."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.adm import ResBlock
from tests.condnorm.reference import group_norm, rand, silu


def _canonical_state_dict(c: int, e: int, o: int, skip: int | None) -> dict[str, torch.Tensor]:
    shapes = {
        "in_layers.0.weight": (c,),
        "in_layers.0.bias": (c,),
        "in_layers.2.weight": (o, c, 3, 3),
        "in_layers.2.bias": (o,),
        "emb_layers.1.weight": (2 * o, e),
        "emb_layers.1.bias": (2 * o,),
        "out_layers.0.weight": (o,),
        "out_layers.0.bias": (o,),
        "out_layers.3.weight": (o, o, 3, 3),
        "out_layers.3.bias": (o,),
    }
    if skip is not None:
        shapes |= {"skip_connection.weight": (o, c, skip, skip), "skip_connection.bias": (o,)}
    return {k: rand(*s, seed=i) * 0.2 for i, (k, s) in enumerate(shapes.items())}


def _gn_affine(x, sd, name):
    return group_norm(x, 32, 1e-5) * sd[name + ".weight"][:, None, None] + sd[name + ".bias"][:, None, None]


def _adm_forward(sd, x, emb):
    """ResBlock._forward (no up/down): in_layers; out_norm(h)(1 + scale) + shift; out_rest; + skip(x)."""
    h = F.conv2d(
        silu(_gn_affine(x, sd, "in_layers.0")), sd["in_layers.2.weight"], sd["in_layers.2.bias"], padding=1
    )
    emb_out = (silu(emb) @ sd["emb_layers.1.weight"].T + sd["emb_layers.1.bias"])[:, :, None, None]
    scale, shift = emb_out.chunk(2, dim=1)
    h = _gn_affine(h, sd, "out_layers.0") * (1 + scale) + shift
    h = F.conv2d(silu(h), sd["out_layers.3.weight"], sd["out_layers.3.bias"], padding=1)
    if "skip_connection.weight" in sd:
        k = sd["skip_connection.weight"].shape[-1]
        x = F.conv2d(x, sd["skip_connection.weight"], sd["skip_connection.bias"], padding=k // 2)
    return x + h


@pytest.mark.parametrize("out, use_conv, skip", [(64, False, None), (96, False, 1), (96, True, 3)])
def test_adm_resblock_state_dict_loads_strict_and_forward_matches(out: int, use_conv: bool, skip) -> None:
    sd = _canonical_state_dict(64, 40, out, skip)
    block = ResBlock(64, emb_channels=40, out_channels=out, use_conv=use_conv)
    block.load_state_dict(sd, strict=True)
    x, emb = rand(2, 64, 8, 8, seed=30), rand(2, 40, seed=31)
    with torch.no_grad():
        torch.testing.assert_close(block(x, emb), _adm_forward(sd, x, emb), atol=1e-4, rtol=1e-4)


def test_own_state_dict_round_trips() -> None:
    block = ResBlock(64, emb_channels=16, out_channels=32)
    fresh = ResBlock(64, emb_channels=16, out_channels=32)
    fresh.load_state_dict(block.state_dict(), strict=True)
    x, emb = rand(1, 64, 4, 4), rand(1, 16)
    torch.testing.assert_close(fresh(x, emb), block(x, emb))
