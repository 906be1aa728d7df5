"""OASIS losses: class-balancing weights, N+1 targets, D/G cross-entropies, LabelMix.

Expected values are written by hand from the paper's formulas (and, where named, from the public
code's variant, OASIS issue 20), independently of models/oasis/losses.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from models.oasis import (
    LAMBDA_LABELMIX,
    class_balance_map,
    class_balance_weights,
    discriminator_loss,
    fake_index,
    generator_loss,
    labelmix,
    labelmix_loss,
    labelmix_mask,
    n1_cross_entropy,
    n1_target,
)
from tests.condnorm.reference import ids_map, rand

# Two 2x3 maps, label_nc = 5 (class 4 absent):
#   image 0: 0 0 1 / 0 2 2      image 1: 0 0 0 / 1 1 3
# counts: c0 = 6, c1 = 3, c2 = 2, c3 = 1, c4 = 0; B*H*W = 12; K (present classes) = 4.
LABEL = torch.tensor([[[0, 0, 1], [0, 2, 2]], [[0, 0, 0], [1, 1, 3]]])
L = 5
PAPER = [12 / 6, 12 / 3, 12 / 2, 12 / 1, 0.0]  # alpha_c = BHW / n_c
CODE = [w / 4 for w in PAPER]  # public code: / K


def test_class_weights_paper_by_hand():
    assert class_balance_weights(LABEL, L).tolist() == pytest.approx(PAPER)


def test_class_weights_public_code_variant_by_hand():
    assert class_balance_weights(LABEL, L, mode="code").tolist() == pytest.approx(CODE)


def test_class_weights_none_mode():
    assert class_balance_weights(LABEL, L, mode="none").tolist() == [1.0] * L


def test_class_weights_ignore_index_by_hand():
    label = LABEL.clone()
    label[1, 1, 2] = 255  # the only class-3 pixel becomes "don't care"
    # counts c0 = 6, c1 = 3, c2 = 2; BHW still 12 (ignored pixels count in the total), K = 3
    assert class_balance_weights(label, L, ignore_index=255).tolist() == pytest.approx([2.0, 4.0, 6.0, 0.0, 0.0])
    assert class_balance_weights(label, L, ignore_index=255, mode="code").tolist() == pytest.approx(
        [2 / 3, 4 / 3, 2.0, 0.0, 0.0])
    wmap = class_balance_map(label, L, ignore_index=255)
    assert wmap[1, 1, 2] == 0
    torch.testing.assert_close(wmap[0], torch.tensor([[2.0, 2.0, 4.0], [2.0, 6.0, 6.0]]))


def test_class_weight_map_by_hand():
    wmap = class_balance_map(LABEL, L)
    assert wmap.shape == (2, 2, 3)
    torch.testing.assert_close(wmap, torch.tensor([[[2.0, 2, 4], [2, 6, 6]], [[2, 2, 2], [4, 4, 12]]]))


def test_class_weights_each_present_class_weighs_the_same_total():
    label = ids_map(3, 7, 9, 11, seed=1)
    w = class_balance_map(label, 7)
    per_class = torch.stack([w[label == c].sum() for c in range(7) if (label == c).any()])
    assert torch.allclose(per_class, torch.full_like(per_class, label.numel()))


def test_class_weights_reject_out_of_range_ids():
    with pytest.raises(ValueError, match="ids must be in"):
        class_balance_weights(torch.tensor([[[0, 5]]]), 5)
    with pytest.raises(ValueError, match="mode"):
        class_balance_weights(LABEL, L, mode="median")


def test_n1_targets():
    assert fake_index(L) == 5
    assert n1_target(LABEL, L, real=True).tolist() == LABEL.tolist()
    assert n1_target(LABEL, L, real=False).tolist() == [[[5] * 3] * 2] * 2


def _ref_ce(logits, targets, weights):
    """-(1/BHW) sum_b,i,j w * log softmax(logits)[b, target, i, j], pixel by pixel."""
    b, _, h, w = logits.shape
    total = 0.0
    for n in range(b):
        for i in range(h):
            for j in range(w):
                col = logits[n, :, i, j]
                logp = col[targets[n][i][j]] - torch.logsumexp(col, 0)
                total = total - weights[n][i][j] * logp
    return total / (b * h * w)


def _weights_of(label, alpha):
    return [[[alpha[c] for c in row] for row in img] for img in label.tolist()]


def test_discriminator_loss_is_the_hand_restated_weighted_ce():
    real, fake = rand(2, L + 1, 2, 3, seed=1, dtype=torch.float64), rand(2, L + 1, 2, 3, seed=2, dtype=torch.float64)
    labels = LABEL.tolist()
    ones = [[[1.0] * 3] * 2] * 2
    want = _ref_ce(real, labels, _weights_of(LABEL, PAPER)) + _ref_ce(fake, [[[L] * 3] * 2] * 2, ones)
    assert discriminator_loss(real, fake, LABEL).item() == pytest.approx(want.item(), rel=1e-12)
    want_code = _ref_ce(real, labels, _weights_of(LABEL, CODE)) + _ref_ce(fake, [[[L] * 3] * 2] * 2, ones)
    assert discriminator_loss(real, fake, LABEL, mode="code").item() == pytest.approx(want_code.item(), rel=1e-12)


def test_generator_loss_is_the_hand_restated_weighted_ce():
    fake = rand(2, L + 1, 2, 3, seed=3, dtype=torch.float64)
    want = _ref_ce(fake, LABEL.tolist(), _weights_of(LABEL, PAPER))
    assert generator_loss(fake, LABEL).item() == pytest.approx(want.item(), rel=1e-12)


def test_losses_at_uniform_logits_by_hand():
    # every pixel's CE is log(L+1); the mean pixel weight is K = 4 in the paper's form, 1 in the code's.
    zeros = torch.zeros(2, L + 1, 2, 3)
    assert discriminator_loss(zeros, zeros, LABEL).item() == pytest.approx(5 * math.log(6), rel=1e-6)
    assert discriminator_loss(zeros, zeros, LABEL, mode="code").item() == pytest.approx(2 * math.log(6), rel=1e-6)
    assert generator_loss(zeros, LABEL).item() == pytest.approx(4 * math.log(6), rel=1e-6)


def test_fake_channel_is_the_last_one():
    # D sure that every pixel is "fake" (last channel): the fake term vanishes, the real term is large.
    logits = torch.full((2, L + 1, 2, 3), -20.0)
    logits[:, L] = 20.0
    assert n1_cross_entropy(logits, LABEL, real=False).item() < 1e-6
    assert generator_loss(logits, LABEL).item() > 10


def test_ignored_pixels_leave_the_real_terms_only():
    label = LABEL.clone()
    label[0, 0, 0] = 255
    a, b = rand(2, L + 1, 2, 3, seed=4), rand(2, L + 1, 2, 3, seed=5)
    a2 = a.clone()
    a2[0, :, 0, 0] += rand(L + 1, seed=6) * 5
    loss = discriminator_loss(a, b, label, ignore_index=255)
    assert discriminator_loss(a2, b, label, ignore_index=255).item() == pytest.approx(loss.item(), rel=1e-6)
    assert generator_loss(a2, label, ignore_index=255).item() == pytest.approx(
        generator_loss(a, label, ignore_index=255).item(), rel=1e-6)
    # a generated "don't care" pixel is still fake: the fake term covers every pixel, weight 1
    ones = [[[1.0] * 3] * 2] * 2
    alpha = [12 / 5, 4.0, 6.0, 12.0]  # counts 5, 3, 2, 1 without the ignored (class-0) pixel; BHW = 12
    w_real = [[[alpha[c] if c != 255 else 0.0 for c in row] for row in img] for img in label.tolist()]
    t_real = [[[c if c != 255 else 0 for c in row] for row in img] for img in label.tolist()]
    want = _ref_ce(a.double(), t_real, w_real) + _ref_ce(b.double(), [[[L] * 3] * 2] * 2, ones)
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


def test_loss_shape_errors():
    with pytest.raises(ValueError, match="label"):
        discriminator_loss(torch.zeros(2, 6, 2, 3), torch.zeros(2, 6, 2, 3), LABEL[:, :1])
    with pytest.raises(ValueError, match="ids must be in"):
        generator_loss(torch.zeros(2, 4, 2, 3), LABEL)  # label_nc = 3 from the logits, ids up to 3


def test_losses_gradcheck_float64():
    real = rand(1, 4, 2, 2, seed=8, dtype=torch.float64).requires_grad_()
    fake = rand(1, 4, 2, 2, seed=9, dtype=torch.float64).requires_grad_()
    label = torch.tensor([[[0, 0], [1, 2]]])
    assert torch.autograd.gradcheck(lambda r, f: discriminator_loss(r, f, label), (real, fake))
    assert torch.autograd.gradcheck(lambda f: generator_loss(f, label), (fake,))


# ----------------------------------------------------------------------------- LabelMix


def test_labelmix_mask_is_constant_per_class_and_binary():
    label = ids_map(4, 6, 16, 16, seed=2)
    mask = labelmix_mask(label, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (4, 1, 16, 16) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    for n in range(4):
        for c in range(6):
            assert mask[n, 0][label[n] == c].unique().numel() == 1


def test_labelmix_mask_varies_between_classes_and_images_and_is_seedable():
    label = ids_map(16, 8, 8, 8, seed=3)
    mask = labelmix_mask(label, generator=torch.Generator().manual_seed(1))
    values = torch.stack([torch.stack([mask[n, 0][label[n] == c][0] for c in range(8)]) for n in range(16)])
    assert 0 < values.mean() < 1  # both real and fake regions occur
    assert (values != values[0]).any(dim=1).any()  # not the same draw for every image
    again = labelmix_mask(label, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mask, again)


def test_labelmix_image_formula():
    real, fake = rand(2, 3, 4, 4, seed=1), rand(2, 3, 4, 4, seed=2)
    mask = labelmix_mask(ids_map(2, 3, 4, 4, seed=4), generator=torch.Generator().manual_seed(5))
    mixed = labelmix(real, fake, mask)
    for n in range(2):
        for i in range(4):
            for j in range(4):
                src = real if mask[n, 0, i, j] == 1 else fake
                assert torch.equal(mixed[n, :, i, j], src[n, :, i, j])


def test_labelmix_regulariser_formula():
    shape = (2, 4, 3, 3)
    lm, lr, lf = rand(*shape, seed=1), rand(*shape, seed=2), rand(*shape, seed=3)
    mask = labelmix_mask(ids_map(2, 3, 3, 3, seed=6), generator=torch.Generator().manual_seed(7))
    total = 0.0
    for n in range(2):
        for i in range(3):
            for j in range(3):
                m = mask[n, 0, i, j].item()
                for c in range(4):
                    d = lm[n, c, i, j].item() - (m * lr[n, c, i, j].item() + (1 - m) * lf[n, c, i, j].item())
                    total += d * d
    assert labelmix_loss(lm, lr, lf, mask).item() == pytest.approx(total / (2 * 4 * 3 * 3), rel=1e-5)
    assert LAMBDA_LABELMIX == 10.0


def test_labelmix_regulariser_vanishes_for_a_pixelwise_discriminator_and_gradchecks():
    # a discriminator acting pixel by pixel commutes with the mix: D(mix) = mix of D's outputs.
    real, fake = rand(2, 3, 4, 4, seed=1), rand(2, 3, 4, 4, seed=2)
    mask = labelmix_mask(ids_map(2, 3, 4, 4, seed=3), generator=torch.Generator().manual_seed(4))
    conv = torch.nn.Conv2d(3, 5, 1)
    loss = labelmix_loss(conv(labelmix(real, fake, mask)), conv(real), conv(fake), mask)
    assert loss.item() < 1e-12
    args = [rand(1, 3, 2, 2, seed=s, dtype=torch.float64).requires_grad_() for s in (5, 6, 7)]
    m = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b, c: labelmix_loss(a, b, c, m), args)


def test_labelmix_shape_errors():
    with pytest.raises(ValueError, match="mask"):
        labelmix(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="non-negative"):
        labelmix_mask(torch.tensor([[[-1, 0]]]))
