"""SDM's UNet and blocks: shapes, where the mask and the timestep enter, float64 gradients."""

from __future__ import annotations

import pytest
import torch

import condnorm
from models.adm import ResBlock
from models.sdm import SIZES, AttentionBlock, SDMResBlock, SDMUNet, timestep_embedding

TINY = {"model_channels": 8, "channel_mult": (1, 2), "num_res_blocks": 1, "attention_ds": (2,), "head_channels": 8,
        "num_groups": 4, "spade_hidden": 8}


def _randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give the zero-initialised layers (output convs, SPADE predictors) random weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.2)
    return net


@pytest.mark.parametrize("batch,size", [(1, (8, 8)), (3, (16, 8))])
def test_unet_output_has_the_image_shape(batch: int, size: tuple[int, int]) -> None:
    net = SDMUNet(5, **TINY)
    out = net(torch.randn(batch, 3, *size), torch.randint(0, 1000, (batch,)), torch.rand(batch, 5, 32, 32))
    assert out.shape == (batch, 3, *size)


def test_unet_encoder_is_adagn_and_decoder_is_spade_group_norm() -> None:
    net = SDMUNet(5, **TINY)
    encoder = [m for m in net.encoder.modules() if isinstance(m, ResBlock)]
    decoder = [m for m in net.decoder.modules() if isinstance(m, SDMResBlock)]
    assert encoder and decoder
    assert not any(isinstance(m, condnorm.SPADEGroupNorm) for m in net.encoder.modules())
    assert all(isinstance(b.out_norm, condnorm.AdaGN) for b in encoder)
    assert all(b.out_norm.emb_dim == 32 and b.in_norm.emb_dim is None for b in decoder)
    assert any(isinstance(m, AttentionBlock) for m in net.modules())


def test_unet_output_depends_on_mask_and_timestep_once_trained_weights_are_nonzero() -> None:
    net = _randomize(SDMUNet(3, **TINY)).double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    mask = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    t = torch.tensor([10.0, 500.0], dtype=torch.float64)
    base = net(x, t, mask)
    assert not torch.allclose(base, net(x, t, torch.zeros_like(mask)))
    assert not torch.allclose(base, net(x, t + 100, mask))
    # one sample's output does not depend on the other samples of the batch
    torch.testing.assert_close(net(x[:1], t[:1], mask[:1]), base[:1])


def test_unet_starts_at_zero_and_refuses_sizes_it_cannot_halve() -> None:
    net = SDMUNet(3, **TINY)
    assert torch.equal(net(torch.randn(1, 3, 8, 8), torch.tensor([3]), torch.rand(1, 3, 8, 8)), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="multiples of 2"):
        net(torch.randn(1, 3, 7, 8), torch.tensor([3]), torch.rand(1, 3, 7, 8))


def test_named_sizes_hold_the_paper_configuration() -> None:
    paper = SIZES["paper_256"]
    assert paper["model_channels"] == 256 and tuple(paper["channel_mult"]) == (1, 1, 2, 2, 4, 4)
    assert paper["num_res_blocks"] == 2 and tuple(paper["attention_ds"]) == (8, 16, 32)
    assert paper["head_channels"] == 64
    assert SDMUNet.from_size("tiny", 4).model_channels == SIZES["tiny"]["model_channels"]
    with pytest.raises(ValueError, match="size must be one of"):
        SDMUNet.from_size("huge", 4)


def test_sdm_res_block_gradcheck_float64() -> None:
    block = _randomize(SDMResBlock(4, emb_dim=3, label_nc=2, out_channels=2, num_groups=2, spade_hidden=3)).double()
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    emb = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x, mask, emb))


def test_attention_gradcheck_float64_and_heads() -> None:
    block = _randomize(AttentionBlock(4, head_channels=2, num_groups=2)).double()
    x = torch.randn(1, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))
    with pytest.raises(ValueError, match="multiple of head_channels"):
        AttentionBlock(6, head_channels=4)


def test_timestep_embedding_values() -> None:
    e = timestep_embedding(torch.tensor([2.0]), 4)
    expected = torch.tensor([[torch.cos(torch.tensor(2.0)), torch.cos(torch.tensor(0.02)),
                              torch.sin(torch.tensor(2.0)), torch.sin(torch.tensor(0.02))]])
    torch.testing.assert_close(e, expected)
    with pytest.raises(ValueError, match="even"):
        timestep_embedding(torch.tensor([1.0]), 3)


def test_unet_runs_under_bf16_autocast() -> None:
    net = _randomize(SDMUNet(3, **TINY))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(2, 3, 8, 8), torch.tensor([1, 2]), torch.rand(2, 3, 8, 8))
    assert out.shape == (2, 3, 8, 8) and bool(torch.isfinite(out).all())
