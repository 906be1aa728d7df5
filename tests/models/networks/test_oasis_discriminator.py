"""OASIS U-Net discriminator: N+1 output channels, shapes, the paper's widths, a functional restatement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.oasis import OASIS_D_WIDTHS, OASISDiscriminator, UNetResBlock
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import rand

TINY = {"widths": (4, 4, 8), "last_width": 4}


def _paper_shapes(label_nc: int) -> dict[str, tuple]:
    """Key -> weight shape of the paper's discriminator, written from the reference (3-128-128-256-256-512-512,
    U-Net with skip concatenation, last up block -> 64, 1x1 conv to N+1)."""
    ch = [3, 128, 128, 256, 256, 512, 512]
    shapes = {}
    for i in range(6):
        fin, fout = ch[i], ch[i + 1]
        c1 = "conv1.0" if i == 0 else "conv1.1"
        shapes[f"body_down.{i}.{c1}.weight_orig"] = (fout, fin, 3, 3)
        shapes[f"body_down.{i}.conv2.1.weight_orig"] = (fout, fout, 3, 3)
        if fin != fout:
            shapes[f"body_down.{i}.conv_s.weight_orig"] = (fout, fin, 1, 1)
    ups = [(512, 512), (1024, 256), (512, 256), (512, 128), (256, 128), (256, 64)]
    for i, (fin, fout) in enumerate(ups):
        shapes[f"body_up.{i}.conv1.2.weight_orig"] = (fout, fin, 3, 3)
        shapes[f"body_up.{i}.conv2.1.weight_orig"] = (fout, fout, 3, 3)
        if fin != fout:
            shapes[f"body_up.{i}.conv_s.weight_orig"] = (fout, fin, 1, 1)
    shapes["layer_up_last.weight"] = (label_nc + 1, 64, 1, 1)
    return shapes


def test_paper_configuration_layout():
    d = OASISDiscriminator(151)
    assert d.widths == OASIS_D_WIDTHS == (128, 128, 256, 256, 512, 512)
    weights = {k: tuple(v.shape) for k, v in d.state_dict().items() if k.endswith(("weight_orig", "weight"))}
    assert weights == _paper_shapes(151)
    assert "layer_up_last.weight_orig" not in d.state_dict()  # the output conv has no spectral norm


@pytest.mark.parametrize(("n", "h", "w"), [(2, 8, 8), (1, 16, 24), (3, 32, 8)])
def test_output_shape_is_n_plus_one_logits_at_full_resolution(n, h, w):
    d = OASISDiscriminator(5, **TINY)
    assert d.fake_index == 5 and d.divisor == 8
    assert d(torch.randn(n, 3, h, w)).shape == (n, 6, h, w)


def test_input_checks():
    d = OASISDiscriminator(5, **TINY)
    with pytest.raises(ValueError, match="multiples of 8"):
        d(torch.randn(1, 3, 12, 16))
    with pytest.raises(ValueError, match="image"):
        d(torch.randn(1, 4, 16, 16))
    with pytest.raises(ValueError, match="at least 2"):
        OASISDiscriminator(5, widths=(4,))
    with pytest.raises(ValueError, match="direction"):
        UNetResBlock(4, 4, direction="sideways")


def test_spectral_norm_everywhere_but_the_output_conv():
    d = OASISDiscriminator(3, **TINY)
    convs = {n: m for n, m in d.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert {n for n, m in convs.items() if not hasattr(m, "weight_orig")} == {"layer_up_last"}
    plain = OASISDiscriminator(3, spectral=False, **TINY)
    assert not any(k.endswith("weight_orig") for k in plain.state_dict())


def test_init_xavier_normal_002_zero_bias():
    d = OASISDiscriminator(3)
    conv = d.body_up[1].conv1[2]  # 1024 -> 256, 3x3: fan_in 9216, fan_out 2304
    std = 0.02 * (2 / (9216 + 2304)) ** 0.5
    assert conv.weight_orig.std().item() == pytest.approx(std, rel=0.05)
    assert all(torch.count_nonzero(m.bias) == 0 for m in d.modules() if isinstance(m, torch.nn.Conv2d))


# ----------------------------------------------------------------------------- functional restatement


def _lrelu(x):
    return F.leaky_relu(x, 0.2)


def _conv(x, m):
    return F.conv2d(x, m.weight, m.bias, padding=m.padding)


def _ref_block(x, blk: UNetResBlock, first: bool):
    """Residual block from the paper's description, with the block's own weights (spectral=False)."""
    conv1 = next(m for m in blk.conv1 if isinstance(m, torch.nn.Conv2d))
    conv2 = blk.conv2[1]
    skip = x
    if blk.direction == "down":
        h = x if first else _lrelu(x)
        r = F.avg_pool2d(_conv(_lrelu(_conv(h, conv1)), conv2), 2)
        if blk.learned_shortcut:
            skip = _conv(skip, blk.conv_s)
        skip = F.avg_pool2d(skip, 2)  # 1x1 conv then pool (== pool then conv for the first block)
    else:
        up = F.interpolate(_lrelu(x), scale_factor=2, mode="nearest")
        r = _conv(_lrelu(_conv(up, conv1)), conv2)
        skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        if blk.learned_shortcut:
            skip = _conv(skip, blk.conv_s)
    return skip + r


def _ref_d(x, d: OASISDiscriminator):
    feats = []
    for i, blk in enumerate(d.body_down):
        x = _ref_block(x, blk, first=i == 0)
        feats.append(x)
    x = _ref_block(x, d.body_up[0], first=False)
    # each later up block sees cat(encoder map of the same resolution, decoder map)
    for k, blk in enumerate(d.body_up[1:], start=1):
        x = _ref_block(torch.cat([feats[len(feats) - 1 - k], x], 1), blk, first=False)
    return _conv(x, d.layer_up_last)


def test_forward_matches_the_functional_restatement():
    d = OASISDiscriminator(4, spectral=False, widths=(4, 6, 6, 8), last_width=5).double()
    randomize_(d, seed=3)
    x = rand(2, 3, 16, 32, seed=1, dtype=torch.float64)
    torch.testing.assert_close(d(x), _ref_d(x, d))


def test_receptive_field_spans_the_image():
    # the bottleneck (H/8 here) makes one pixel's logits depend on most of the image.
    d = OASISDiscriminator(2, spectral=False, **TINY).double()
    randomize_(d, seed=4)
    x = rand(1, 3, 16, 16, seed=2, dtype=torch.float64).requires_grad_()
    d(x)[0, :, 8, 8].sum().backward()
    assert (x.grad.abs().sum(1) > 0).float().mean() > 0.5  # receptive field spans most of the image


def test_gradcheck_tiny_discriminator_float64():
    d = OASISDiscriminator(2, widths=(2, 2), last_width=2).double().eval()  # eval: no power iteration
    randomize_(d, seed=5)
    x = rand(1, 3, 4, 4, seed=6, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(d, (x,))


def test_train_step_runs_with_the_losses():
    from models.oasis import discriminator_loss, labelmix, labelmix_loss, labelmix_mask

    d = OASISDiscriminator(3, **TINY)
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    label = torch.randint(3, (2, 8, 8), generator=torch.Generator().manual_seed(0))
    mask = labelmix_mask(label, generator=torch.Generator().manual_seed(1))
    lr, lf = d(real), d(fake)
    loss = discriminator_loss(lr, lf, label) + 10 * labelmix_loss(d(labelmix(real, fake, mask)), lr, lf, mask)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
