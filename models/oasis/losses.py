r"""OASIS losses: class-balanced (N+1)-class cross-entropy for D and G, and the LabelMix regulariser.

Written from the paper (Schönfeld, Sushko et al., ICLR 2021, eqs. 1–3 and §3.2); no code of the AGPL
public implementation is copied. Conventions:

- labels are class ids ``(N, H, W)`` (``torch.long``) in ``[0, label_nc)`` (from a one-hot map:
  ``segmap.argmax(1)``); an optional ``ignore_index`` (e.g. a "don't care" id) marks pixels that get weight 0;
- the discriminator's logits are ``(N, label_nc + 1, H, W)``: channel ``c < label_nc`` is class ``c``
  and channel ``label_nc`` is "fake" (:func:`fake_index`; OASIS issue 34: the public code uses
  channel 0 for "fake" and shifts the classes by one);
- every loss is a mean over the ``N·H·W`` pixels (the paper's sums over pixels and expectation over
  images, divided by the constant ``H·W``), and returns the unweighted term: the caller multiplies the
  LabelMix term by :data:`LAMBDA_LABELMIX` (10 in the paper; 5 for Cityscapes in the public scripts).

With :math:`t` the one-hot label map, :math:`D(\cdot)_c` the softmax over the ``N + 1`` channels and
:math:`\alpha_c` the class-balancing weights (:func:`class_balance_weights`):

.. math::
    \mathcal{L}_D = -\sum_{c<N} \alpha_c \sum_{i,j} t_{ijc} \log D(x)_{ijc}
                    - \sum_{i,j} \log D(\hat{x})_{ij,\mathrm{fake}}, \qquad
    \mathcal{L}_G = -\sum_{c<N} \alpha_c \sum_{i,j} t_{ijc} \log D(\hat{x})_{ijc}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from condnorm._check import check_ids, check_shape

__all__ = [
    "BALANCE_MODES",
    "LAMBDA_LABELMIX",
    "class_balance_map",
    "class_balance_weights",
    "discriminator_loss",
    "fake_index",
    "generator_loss",
    "labelmix",
    "labelmix_loss",
    "labelmix_mask",
    "n1_cross_entropy",
    "n1_target",
]

#: Weight of the LabelMix regulariser in the discriminator loss (the paper's λ_LM).
LAMBDA_LABELMIX = 10.0
#: ``"paper"``: α_c as the paper defines it; ``"code"``: the public code's (÷ number of present classes);
#: ``"none"``: every weight 1.
BALANCE_MODES = ("paper", "code", "none")


def fake_index(label_nc: int) -> int:
    """Channel / target id of the "fake" class in the ``label_nc + 1`` logits: ``label_nc`` (0-based, the last).

    Example:
        >>> fake_index(150)
        150
    """
    return label_nc


def _check_label(label: Tensor, label_nc: int, ignore_index: int | None) -> Tensor:
    check_shape(label, ("N", "H", "W"), "label (class ids)")
    if ignore_index is None:
        check_ids(label, label_nc, "label")
    else:
        check_ids(torch.where(label == ignore_index, torch.zeros_like(label), label), label_nc, "label")
    return label


def class_balance_weights(
    label: Tensor, label_nc: int, *, ignore_index: int | None = None, mode: str = "paper"
) -> Tensor:
    r"""Per-class weights :math:`\alpha_c`, inversely proportional to the class's pixel count in the batch.

    The paper (eq. 2) defines :math:`\alpha_c = \dfrac{H W}{\sum_{i,j} \mathbb{E}_t[\mathbb{1}[t_{ijc} = 1]]}`;
    estimating the expectation on the batch of ``B`` maps gives

    .. math::
        \alpha_c = \frac{B H W}{n_c}, \qquad n_c = \#\{\text{pixels of class } c \text{ in the batch}\},

    the inverse of the class's pixel frequency (``mode="paper"``). A class absent from the batch
    gets weight 0 (it weighs no pixel). Ignored pixels count in ``B H W`` but in no :math:`n_c`.

    Where the public code differs (OASIS issue 20): it divides further by the number :math:`K` of
    classes present in the batch, :math:`\alpha_c = B H W / (K\, n_c)`, which keeps the loss's scale
    independent of :math:`K`; the authors confirmed their results use that version. ``mode="code"``
    reproduces it; ``mode="none"`` gives weight 1 to every class.

    Args:
        label: class ids ``(N, H, W)``.
        label_nc: number of semantic classes.
        ignore_index: id of pixels to leave out (weight 0), or ``None``.
        mode: one of :data:`BALANCE_MODES`.

    Returns:
        ``(label_nc,)`` float weights.

    Example:
        >>> label = torch.tensor([[[0, 0, 0, 1]]])          # 3 pixels of class 0, 1 of class 1, none of 2
        >>> [round(w, 4) for w in class_balance_weights(label, 3).tolist()]         # 4/3, 4/1, absent
        [1.3333, 4.0, 0.0]
        >>> [round(w, 4) for w in class_balance_weights(label, 3, mode="code").tolist()]  # ÷ 2 present
        [0.6667, 2.0, 0.0]
    """
    if mode not in BALANCE_MODES:
        raise ValueError(f"class_balance_weights: mode must be one of {BALANCE_MODES}, got {mode!r}")
    _check_label(label, label_nc, ignore_index)
    valid = label != ignore_index if ignore_index is not None else torch.ones_like(label, dtype=torch.bool)
    counts = torch.bincount(label[valid], minlength=label_nc).float()
    present = counts > 0
    if mode == "none":
        return torch.ones(label_nc, device=label.device)
    weights = torch.where(present, label.numel() / counts.clamp(min=1), torch.zeros_like(counts))
    if mode == "code":
        weights = weights / present.sum().clamp(min=1)
    return weights


def class_balance_map(
    label: Tensor, label_nc: int, *, ignore_index: int | None = None, mode: str = "paper"
) -> Tensor:
    """Per-pixel weights: each pixel gets its class's :func:`class_balance_weights`, ignored pixels 0.

    Args:
        label: class ids ``(N, H, W)``.
        label_nc: number of semantic classes.
        ignore_index: id of pixels to leave out, or ``None``.
        mode: one of :data:`BALANCE_MODES`.

    Returns:
        ``(N, H, W)`` float weights.

    Example:
        >>> class_balance_map(torch.tensor([[[0, 0, 1, 2]]]), 3).tolist()
        [[[2.0, 2.0, 4.0, 4.0]]]
    """
    weights = class_balance_weights(label, label_nc, ignore_index=ignore_index, mode=mode)
    if ignore_index is None:
        return weights[label]
    valid = label != ignore_index
    return torch.where(valid, weights[torch.where(valid, label, torch.zeros_like(label))], torch.zeros_like(weights[0]))


def n1_target(label: Tensor, label_nc: int, *, real: bool) -> Tensor:
    """Targets of the (N+1)-class cross-entropy: a real pixel → its class id, a fake pixel → ``label_nc``.

    Args:
        label: class ids ``(N, H, W)``.
        label_nc: number of semantic classes; the "fake" target is :func:`fake_index` ``(label_nc)``.
        real: targets for real images (the label itself) or for generated ones (all "fake").

    Returns:
        ``(N, H, W)`` long targets.

    Example:
        >>> n1_target(torch.tensor([[[0, 2]]]), 3, real=False).tolist()
        [[[3, 3]]]
    """
    check_shape(label, ("N", "H", "W"), "label (class ids)")
    return label.clone() if real else torch.full_like(label, fake_index(label_nc))


def n1_cross_entropy(
    logits: Tensor,
    label: Tensor,
    *,
    real: bool,
    balanced: bool | None = None,
    ignore_index: int | None = None,
    mode: str = "paper",
) -> Tensor:
    r"""Per-pixel (N+1)-class cross-entropy, mean over the ``N·H·W`` pixels, optionally class-balanced.

    .. math::
        \frac{1}{B H W} \sum_{b,i,j} w_{bij}\, \bigl(-\log \mathrm{softmax}(\text{logits})_{bij,\,y_{bij}}\bigr)

    with :math:`y` = :func:`n1_target` and :math:`w` = :func:`class_balance_map` of ``label`` when
    ``balanced`` (1 otherwise; ignored pixels always 0). As in the paper, only the terms whose
    targets are the semantic classes are balanced by default (``balanced=None`` means ``real``).

    Args:
        logits: discriminator output ``(N, label_nc + 1, H, W)``.
        label: class ids ``(N, H, W)`` of the image's label map.
        real: targets are the classes (``True``) or "fake" (``False``).
        balanced: weight the pixels by their class's :math:`\alpha_c`; ``None``: ``real``.
        ignore_index: id of pixels to leave out, or ``None``.
        mode: class-balancing variant (:data:`BALANCE_MODES`).

    Returns:
        a scalar.

    Example:
        >>> logits = torch.zeros(1, 3, 1, 2)                    # uniform over 2 classes + fake
        >>> round(n1_cross_entropy(logits, torch.tensor([[[0, 1]]]), real=False).item(), 4)   # log 3
        1.0986
    """
    sizes = check_shape(logits, ("N", "C", "H", "W"), "logits")
    check_shape(label, ("N", "H", "W"), "label (class ids)", sizes)
    label_nc = sizes["C"] - 1
    _check_label(label, label_nc, ignore_index)
    target = n1_target(label, label_nc, real=real)
    if balanced is None:
        balanced = real
    if ignore_index is not None:
        valid = label != ignore_index
        target = torch.where(valid, target, torch.zeros_like(target))
    loss = F.cross_entropy(logits, target, reduction="none")
    if balanced:
        weight = class_balance_map(label, label_nc, ignore_index=ignore_index, mode=mode).to(loss.dtype)
    elif ignore_index is not None:
        weight = valid.to(loss.dtype)
    else:
        return loss.mean()
    return (loss * weight).mean()


def discriminator_loss(
    logits_real: Tensor,
    logits_fake: Tensor,
    label: Tensor,
    *,
    ignore_index: int | None = None,
    mode: str = "paper",
) -> Tensor:
    r"""OASIS discriminator loss :math:`\mathcal{L}_D`: class-balanced CE on real, plain CE to "fake" on fake.

    The real term weights each pixel by its class's :math:`\alpha_c`; the fake term (every pixel →
    class ``label_nc``) is unweighted, as in the paper. Both are means over pixels; the result is
    their sum. The generated image is drawn from ``label``, so both terms use the same map.
    ``ignore_index`` pixels drop out of the real term only: every pixel of a generated image,
    "don't care" ones included, is "fake" (the paper's fake term sums over all pixels, and so does
    the public code).

    Args:
        logits_real: ``D(real)``, ``(N, label_nc + 1, H, W)``.
        logits_fake: ``D(G(z, label))``, same shape (detach the fake image for the D step).
        label: class ids ``(N, H, W)``.
        ignore_index: id of pixels to leave out of the real term, or ``None``.
        mode: class-balancing variant (:data:`BALANCE_MODES`).

    Returns:
        a scalar.

    Example:
        >>> label = torch.tensor([[[0, 1]]])
        >>> real = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]], [[-9.0, -9.0]]]])   # confident, right
        >>> fake = torch.tensor([[[[-9.0, -9.0]], [[-9.0, -9.0]], [[9.0, 9.0]]]])   # confidently "fake"
        >>> discriminator_loss(real, fake, label).item() < 1e-6
        True
    """
    check_shape(logits_fake, tuple(logits_real.shape), "logits_fake")
    real = n1_cross_entropy(logits_real, label, real=True, ignore_index=ignore_index, mode=mode)
    fake = F.cross_entropy(logits_fake, torch.full_like(label, fake_index(logits_fake.shape[1] - 1)))
    return real + fake


def generator_loss(
    logits_fake: Tensor, label: Tensor, *, ignore_index: int | None = None, mode: str = "paper"
) -> Tensor:
    r"""OASIS generator loss :math:`\mathcal{L}_G`: class-balanced CE of ``D(G(z, label))`` to the label's classes.

    Args:
        logits_fake: ``D(G(z, label))``, ``(N, label_nc + 1, H, W)`` (not detached).
        label: class ids ``(N, H, W)``.
        ignore_index: id of pixels to leave out, or ``None``.
        mode: class-balancing variant (:data:`BALANCE_MODES`).

    Returns:
        a scalar.

    Example:
        >>> logits = torch.zeros(2, 4, 8, 8, requires_grad=True)
        >>> generator_loss(logits, torch.randint(3, (2, 8, 8))).backward()
        >>> tuple(logits.grad.shape)
        (2, 4, 8, 8)
    """
    return n1_cross_entropy(logits_fake, label, real=True, ignore_index=ignore_index, mode=mode)


def labelmix_mask(label: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """LabelMix's binary mask: every class region of every map goes wholly to the real (1) or fake (0) image.

    One fair coin per (image, class), drawn for all ``label.max() + 1`` ids so that the draw does not
    depend on which classes are present. The public code draws one coin per class for the whole batch,
    and reassigns ids in place so that classes 0 and 1 can inherit earlier draws; here the draws are
    independent per image and per class.

    Args:
        label: class ids ``(N, H, W)`` (any non-negative ids; an ignore id is one more region).
        generator: random generator for the coins.

    Returns:
        ``(N, 1, H, W)`` float mask of 0s and 1s, constant on each class region.

    Example:
        >>> label = torch.tensor([[[0, 0, 1, 1]]])
        >>> m = labelmix_mask(label, generator=torch.Generator().manual_seed(0))
        >>> m.shape, bool(m[0, 0, 0, 0] == m[0, 0, 0, 1]), bool(m[0, 0, 0, 2] == m[0, 0, 0, 3])
        (torch.Size([1, 1, 1, 4]), True, True)
    """
    check_shape(label, ("N", "H", "W"), "label (class ids)")
    if label.numel() and int(label.min()) < 0:
        raise ValueError("labelmix_mask: label ids must be non-negative")
    num_ids = int(label.max()) + 1 if label.numel() else 1
    gen_device = generator.device if generator is not None else torch.device("cpu")
    coins = torch.randint(0, 2, (label.shape[0], num_ids), generator=generator, device=gen_device).to(label.device)
    mask = torch.gather(coins, 1, label.flatten(1)).view_as(label)
    return mask.unsqueeze(1).float()


def labelmix(real: Tensor, fake: Tensor, mask: Tensor) -> Tensor:
    r"""The LabelMix image :math:`M \odot x + (1 - M) \odot \hat{x}`.

    Args:
        real: real images ``(N, C, H, W)``.
        fake: generated images, same shape (detached for the D step).
        mask: :func:`labelmix_mask` ``(N, 1, H, W)``.

    Returns:
        ``(N, C, H, W)``.

    Example:
        >>> labelmix(torch.ones(1, 3, 1, 2), torch.zeros(1, 3, 1, 2), torch.tensor([[[[1.0, 0.0]]]]))[0, :, 0]
        tensor([[1., 0.],
                [1., 0.],
                [1., 0.]])
    """
    sizes = check_shape(real, ("N", "C", "H", "W"), "real")
    check_shape(fake, ("N", "C", "H", "W"), "fake", sizes)
    check_shape(mask, ("N", 1, "H", "W"), "mask", sizes)
    mask = mask.to(real.dtype)
    return mask * real + (1 - mask) * fake


def labelmix_loss(logits_mixed: Tensor, logits_real: Tensor, logits_fake: Tensor, mask: Tensor) -> Tensor:
    r"""LabelMix consistency regulariser: D's logits of the mix should be the mix of D's logits.

    .. math::
        \mathcal{L}_{LM} = \bigl\| D_{\mathrm{logits}}(\mathrm{LabelMix}(x, \hat{x}, M))
        - \mathrm{LabelMix}(D_{\mathrm{logits}}(x), D_{\mathrm{logits}}(\hat{x}), M) \bigr\|^2

    taken as the mean of the squared differences over the ``N·(label_nc+1)·H·W`` entries (the paper's
    squared L2 norm up to that constant; the public code uses the same mean). Multiply by
    :data:`LAMBDA_LABELMIX` and add it to the discriminator's loss; gradients reach all three logits.

    Args:
        logits_mixed: ``D(labelmix(real, fake, mask))``, ``(N, label_nc + 1, H, W)``.
        logits_real: ``D(real)``, same shape.
        logits_fake: ``D(fake)``, same shape.
        mask: :func:`labelmix_mask` ``(N, 1, H, W)``.

    Returns:
        a scalar.

    Example:
        >>> lr, lf, m = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.ones(1, 1, 2, 2)
        >>> labelmix_loss(lr, lr, lf, m).item(), labelmix_loss(lf, lr, lf, m).item()
        (0.0, 1.0)
    """
    sizes = check_shape(logits_mixed, ("N", "C", "H", "W"), "logits_mixed")
    check_shape(logits_real, ("N", "C", "H", "W"), "logits_real", sizes)
    check_shape(logits_fake, ("N", "C", "H", "W"), "logits_fake", sizes)
    check_shape(mask, ("N", 1, "H", "W"), "mask", sizes)
    mask = mask.to(logits_mixed.dtype)
    target = mask * logits_real + (1 - mask) * logits_fake
    return F.mse_loss(logits_mixed, target)
