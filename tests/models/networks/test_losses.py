"""GAN, feature-matching, VGG perceptual, KL and AdaIN losses against their formulas."""

from __future__ import annotations

import math
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models import VGG19_Weights

from models.losses import (
    GANLoss,
    VGGPerceptualLoss,
    content_loss,
    feature_matching_loss,
    kld_loss,
    style_statistics_loss,
)

# ----------------------------------------------------------------------------- GAN losses


def _formula(mode: str, x: torch.Tensor, real: bool, for_d: bool) -> torch.Tensor:
    if mode == "hinge":
        if not for_d:
            return -x.mean()
        return torch.clamp(1 - x, min=0).mean() if real else torch.clamp(1 + x, min=0).mean()
    if mode == "ls":
        return ((x - float(real)) ** 2).mean()
    if mode == "original":
        p = torch.sigmoid(x)
        return -(torch.log(p) if real else torch.log(1 - p)).mean()
    return -x.mean() if real else x.mean()


CASES = [(True, True), (False, True), (True, False)]


@pytest.mark.parametrize("mode", ["hinge", "ls", "original", "wgan"])
@pytest.mark.parametrize(("real", "for_d"), CASES)
def test_gan_loss_formula_single_and_multiscale(mode: str, real: bool, for_d: bool) -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 1, 6, 6, generator=g) * 2, torch.randn(2, 1, 3, 3, generator=g) * 2
    loss = GANLoss(mode)
    torch.testing.assert_close(loss(a, real, for_discriminator=for_d), _formula(mode, a, real, for_d))
    multiscale = [[torch.randn(2, 4, 6, 6), a], [torch.randn(2, 4, 3, 3), b]]
    expected = (_formula(mode, a, real, for_d) + _formula(mode, b, real, for_d)) / 2
    torch.testing.assert_close(loss(multiscale, real, for_discriminator=for_d), expected)
    torch.testing.assert_close(loss([a, b], real, for_discriminator=for_d), expected)


def test_gan_loss_hinge_values_and_errors() -> None:
    x = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    loss = GANLoss("hinge")
    assert math.isclose(loss(x, True).item(), (3 + 1 + 0.5 + 0) / 4)
    assert math.isclose(loss(x, False).item(), (0 + 1 + 1.5 + 4) / 4)
    assert math.isclose(loss(x, True, for_discriminator=False).item(), -1.5 / 4)
    with pytest.raises(ValueError, match="needs target_is_real=True"):
        loss(x, False, for_discriminator=False)
    with pytest.raises(ValueError, match="mode must be one of"):
        GANLoss("w")
    with pytest.raises(ValueError, match="empty prediction"):
        loss([], True)


# ----------------------------------------------------------------------------- feature matching / KL


def test_feature_matching_formula_and_detach() -> None:
    g = torch.Generator().manual_seed(1)

    def feats(requires_grad: bool) -> list[list[torch.Tensor]]:
        return [[torch.randn(2, c, s, s, generator=g).requires_grad_(requires_grad) for c, s in
                 [(4, 8), (8, 4), (1, 3)]] for _ in range(2)]

    fake, real = feats(True), feats(True)
    loss = feature_matching_loss(fake, real)
    expected = sum((f - r).abs().mean() for fs, rs in zip(fake, real) for f, r in zip(fs[:-1], rs[:-1])) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert fake[0][0].grad is not None and real[0][0].grad is None
    assert fake[0][-1].grad is None  # the logits are not matched
    with pytest.raises(ValueError, match="same non-zero number of scales"):
        feature_matching_loss(fake, real[:1])


def test_kld_formula() -> None:
    mu, logvar = torch.randn(3, 7), torch.randn(3, 7)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kld_loss(mu, logvar), torch.distributions.kl_divergence(q, p).sum())
    with pytest.raises(ValueError, match="dimension 'Z' is 6, expected 7"):
        kld_loss(mu, logvar[:, :6])


# ----------------------------------------------------------------------------- AdaIN losses


def test_content_loss() -> None:
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(content_loss(a, b), ((a - b) ** 2).mean())
    with pytest.raises(ValueError, match="shapes differ"):
        content_loss(a, b[:1])


@pytest.mark.parametrize("unbiased", [False, True])
def test_style_statistics_loss_formula(unbiased: bool) -> None:
    g = torch.Generator().manual_seed(2)
    out = [torch.randn(2, c, s, s, generator=g) for c, s in [(4, 8), (8, 4)]]
    style = [torch.randn(2, c, s, s, generator=g) * 2 + 1 for c, s in [(4, 8), (8, 4)]]

    def stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = t.flatten(2)
        var = flat.var(-1, correction=int(unbiased))
        return flat.mean(-1), (var + 1e-5).sqrt()

    expected = sum(((stats(o)[0] - stats(s)[0]) ** 2).mean() + ((stats(o)[1] - stats(s)[1]) ** 2).mean()
                   for o, s in zip(out, style))
    torch.testing.assert_close(style_statistics_loss(out, style, unbiased=unbiased), expected)
    with pytest.raises(ValueError, match="same non-zero number of layers"):
        style_statistics_loss(out, style[:1])


# ----------------------------------------------------------------------------- VGG perceptual

# torchvision vgg19.features indices up to relu5_1: conv indices, "M" = max-pool.
_PLAN = [0, 2, "M", 5, 7, "M", 10, 12, 14, 16, "M", 19, 21, 23, 25, "M", 28]
_TAPPED_CONVS = (0, 5, 10, 19, 28)  # their ReLUs are relu1_1 … relu5_1
_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512]


@pytest.fixture(scope="module")
def vgg_features_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    state, fin = {}, 3
    for idx, fout in zip([i for i in _PLAN if i != "M"], _WIDTHS):
        state[f"{idx}.weight"] = torch.randn(fout, fin, 3, 3, generator=g) * (2 / (9 * fin)) ** 0.5
        state[f"{idx}.bias"] = torch.randn(fout, generator=g) * 0.01
        fin = fout
    return state


def _vgg_reference(state: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = ((x + 1) / 2 - mean) / std
    taps = []
    for step in _PLAN:
        if step == "M":
            x = F.max_pool2d(x, 2)
            continue
        x = F.relu(F.conv2d(x, state[f"{step}.weight"], state[f"{step}.bias"], padding=1))
        if step in _TAPPED_CONVS:
            taps.append(x)
    return taps


def test_vgg_layout_matches_torchvision() -> None:
    with torch.device("meta"):
        tv = torchvision.models.vgg19(weights=None).features[:30]
    ours = VGGPerceptualLoss(weights=None).features
    expected = {k: v.shape for k, v in tv.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == expected


def test_vgg_loss_from_local_file(vgg_features_state: dict, tmp_path) -> None:
    path = tmp_path / "vgg19_features.pth"
    torch.save(vgg_features_state, path)
    loss_fn = VGGPerceptualLoss(weights=str(path))
    assert not any(p.requires_grad for p in loss_fn.parameters())
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(2, 3, 32, 32, generator=g) * 2 - 1).requires_grad_()
    y = (torch.rand(2, 3, 32, 32, generator=g) * 2 - 1).requires_grad_()
    loss = loss_fn(x, y)
    weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    expected = sum(w * (a - b).abs().mean() for w, a, b in
                   zip(weights, _vgg_reference(vgg_features_state, x), _vgg_reference(vgg_features_state, y)))
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and y.grad is None


def test_vgg_accepts_full_torchvision_state_dict(vgg_features_state: dict, tmp_path) -> None:
    full = {f"features.{k}": v for k, v in vgg_features_state.items()}
    full["features.30.weight"] = torch.zeros(1)  # conv5_2 onwards is dropped
    full["classifier.0.weight"] = torch.zeros(1)
    path = tmp_path / "vgg19_full.pth"
    torch.save(full, path)
    loaded = VGGPerceptualLoss(weights=path).features.state_dict()
    assert set(loaded) == set(vgg_features_state)
    for key, value in vgg_features_state.items():
        torch.testing.assert_close(loaded[key], value)


def test_vgg_bad_state_dict_and_path(vgg_features_state: dict, tmp_path) -> None:
    partial = {k: v for k, v in vgg_features_state.items() if not k.startswith("28.")}
    with pytest.raises(ValueError, match=r"missing \['28.weight', '28.bias'\]"):
        VGGPerceptualLoss(weights=partial)
    with pytest.raises(FileNotFoundError, match="neither a file nor one of"):
        VGGPerceptualLoss(weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="layer_weights needs 5 values"):
        VGGPerceptualLoss(weights=None, layer_weights=(1.0, 1.0))


@pytest.mark.parametrize("weights", ["DEFAULT", "VGG19_Weights.IMAGENET1K_V1", VGG19_Weights.DEFAULT])
def test_vgg_download_failure_is_explained(weights, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    # An empty cache, and the download itself fails: never touches the network.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match=r"could not obtain the VGG-19 weights.*no network.*"
                                           r"pass its path.*lambda_vgg"):
        VGGPerceptualLoss(weights=weights)
