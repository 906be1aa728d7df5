"""SPADE generator, VAE encoder and multiscale discriminator: official keys, shapes, resize parity."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F

import condnorm
import condnorm.spade
from models.spade import (
    ConvEncoder,
    ModulatedResBlock,
    MultiscaleDiscriminator,
    SPADEGenerator,
    reparameterize,
)
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import onehot, random_state_dict

# ----------------------------------------------------------------------------- official layouts
# Written from /work/shared/reference/spade-oasis-clade.md §1, independently of the implementation.


def _sn_conv(shapes: dict, prefix: str, out: int, inp: int, k: int, bias: bool) -> None:
    shapes[f"{prefix}.weight_orig"] = (out, inp, k, k)
    shapes[f"{prefix}.weight_u"] = (out,)
    shapes[f"{prefix}.weight_v"] = (inp * k * k,)
    if bias:
        shapes[f"{prefix}.bias"] = (out,)


def official_generator_shapes(semantic_nc: int, nf: int, *, most: bool = False,
                              vae_latent: tuple[int, int, int] | None = None) -> dict[str, tuple]:
    """Key → shape of an official SPADEGenerator state dict (vae_latent = (z_dim, sh, sw))."""
    shapes: dict[str, tuple] = {}
    if vae_latent is None:
        shapes["fc.weight"], shapes["fc.bias"] = (16 * nf, semantic_nc, 3, 3), (16 * nf,)
    else:
        z_dim, sh, sw = vae_latent
        shapes["fc.weight"], shapes["fc.bias"] = (16 * nf * sh * sw, z_dim), (16 * nf * sh * sw,)
    blocks = [("head_0", 16, 16), ("G_middle_0", 16, 16), ("G_middle_1", 16, 16), ("up_0", 16, 8),
              ("up_1", 8, 4), ("up_2", 4, 2), ("up_3", 2, 1)]
    widths = [(name, a * nf, b * nf) for name, a, b in blocks]
    if most:
        widths.append(("up_4", nf, nf // 2))
    for name, fin, fout in widths:
        fmid = min(fin, fout)
        _sn_conv(shapes, f"{name}.conv_0", fmid, fin, 3, True)
        _sn_conv(shapes, f"{name}.conv_1", fout, fmid, 3, True)
        norms = [("norm_0", fin), ("norm_1", fmid)]
        if fin != fout:
            _sn_conv(shapes, f"{name}.conv_s", fout, fin, 1, False)
            norms.append(("norm_s", fin))
        for norm, c in norms:
            p = f"{name}.{norm}"
            shapes[f"{p}.param_free_norm.running_mean"] = (c,)
            shapes[f"{p}.param_free_norm.running_var"] = (c,)
            shapes[f"{p}.param_free_norm.num_batches_tracked"] = ()
            shapes[f"{p}.mlp_shared.0.weight"] = (128, semantic_nc, 3, 3)
            shapes[f"{p}.mlp_shared.0.bias"] = (128,)
            for branch in ("mlp_gamma", "mlp_beta"):
                shapes[f"{p}.{branch}.weight"] = (c, 128, 3, 3)
                shapes[f"{p}.{branch}.bias"] = (c,)
    final = nf // 2 if most else nf
    shapes["conv_img.weight"], shapes["conv_img.bias"] = (3, final, 3, 3), (3,)
    return shapes


def official_discriminator_shapes(input_nc: int, ndf: int, num_D: int) -> dict[str, tuple]:
    """n_layers_D = 4: widths ndf, 2ndf, 4ndf, 8ndf, then 1; SN + IN (no bias) on model1..3."""
    shapes: dict[str, tuple] = {}
    for i in range(num_D):
        p = f"discriminator_{i}"
        shapes[f"{p}.model0.0.weight"], shapes[f"{p}.model0.0.bias"] = (ndf, input_nc, 4, 4), (ndf,)
        for n, (fin, fout) in enumerate([(ndf, 2 * ndf), (2 * ndf, 4 * ndf), (4 * ndf, 8 * ndf)], 1):
            _sn_conv(shapes, f"{p}.model{n}.0.0", fout, fin, 4, False)
        shapes[f"{p}.model4.0.weight"], shapes[f"{p}.model4.0.bias"] = (1, 8 * ndf, 4, 4), (1,)
    return shapes


def official_encoder_shapes(ndf: int, z_dim: int) -> dict[str, tuple]:
    """Input resized to 256 → six stride-2 SN+IN convs (no bias) → 4×4 → fc_mu / fc_var."""
    shapes: dict[str, tuple] = {}
    widths = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf, 8 * ndf]
    for i in range(6):
        _sn_conv(shapes, f"layer{i + 1}.0", widths[i + 1], widths[i], 3, False)
    for head in ("fc_mu", "fc_var"):
        shapes[f"{head}.weight"], shapes[f"{head}.bias"] = (z_dim, 8 * ndf * 16), (z_dim,)
    return shapes


def shapes_of(module: torch.nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- generator


@pytest.mark.parametrize("mode", ["normal", "most"])
def test_generator_official_keys_and_strict_load(mode: str) -> None:
    crop = 32 if mode == "normal" else 128
    g = SPADEGenerator(6, ngf=4, crop_size=crop, num_upsampling_layers=mode)
    expected = official_generator_shapes(6, 4, most=mode == "most")
    assert shapes_of(g) == expected
    if mode == "most":
        return  # the forward of the largest variant is covered by the shape test
    sd = random_state_dict(expected)
    g.load_state_dict(sd, strict=True)
    for key, value in g.state_dict().items():
        torch.testing.assert_close(value, sd[key], msg=key)
    out = g.eval()(onehot(2, 6, 32, 32, seed=1))
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1


def test_vae_generator_keys() -> None:
    g = SPADEGenerator(6, ngf=4, z_dim=8, crop_size=64, aspect_ratio=2.0, use_vae=True)
    assert g.latent_size == (1, 2)
    assert shapes_of(g) == official_generator_shapes(6, 4, vae_latent=(8, 1, 2))


@pytest.mark.parametrize(("semantic_nc", "millions"), [(151, 96.49), (184, 97.48)])
def test_generator_parameter_count(semantic_nc: int, millions: float) -> None:
    # ADE20K (151 channels) per the reference's analytic count; COCO (184) printed 97.5M (SPADE #12).
    g = SPADEGenerator(semantic_nc, device="meta")
    assert round(sum(p.numel() for p in g.parameters()) / 1e6, 2) == millions


@pytest.mark.parametrize(("mode", "crop", "aspect", "size"), [
    ("normal", 32, 1.0, (32, 32)),
    ("normal", 64, 2.0, (32, 64)),
    ("normal", 32, 0.5, (64, 32)),
    ("more", 64, 1.0, (64, 64)),
    ("most", 128, 1.0, (128, 128)),
])
def test_generator_output_shapes(mode: str, crop: int, aspect: float, size: tuple[int, int]) -> None:
    g = SPADEGenerator(3, ngf=4, crop_size=crop, aspect_ratio=aspect, num_upsampling_layers=mode)
    assert g.output_size == size
    out = g(onehot(2, 3, *size, seed=1))
    assert out.shape == (2, 3, *size)


def _per_layer_forward(g: SPADEGenerator, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
    """The official forward: every block gets the full-size segmap and SPADE resizes it."""
    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2, mode="nearest")

    sh, sw = g.latent_size
    if z is None:
        x = g.fc(F.interpolate(seg, size=(sh, sw), mode="nearest"))
    else:
        x = g.fc(z).view(z.shape[0], -1, sh, sw)
    x = g.G_middle_0(up(g.head_0(x, seg)), seg)
    if g.num_upsamplings >= 6:
        x = up(x)
    x = g.G_middle_1(x, seg)
    for name in ["up_0", "up_1", "up_2", "up_3"] + (["up_4"] if g.num_upsamplings == 7 else []):
        x = getattr(g, name)(up(x), seg)
    return torch.tanh(g.conv_img(F.leaky_relu(x, 0.2)))


@pytest.mark.parametrize(("mode", "crop", "aspect", "use_vae"), [
    ("normal", 64, 2.0, False), ("more", 64, 1.0, False), ("normal", 64, 2.0, True)])
def test_pyramid_equals_per_layer_resize(mode: str, crop: int, aspect: float, use_vae: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    g = randomize_(SPADEGenerator(5, ngf=4, z_dim=8, crop_size=crop, aspect_ratio=aspect,
                                  num_upsampling_layers=mode, use_vae=use_vae))
    reference = copy.deepcopy(g)  # both copies run in train mode from the same state
    # A soft map keeps the dense path (a one-hot map would run on ids: see test_fast_paths.py).
    seg = torch.rand(2, 5, *g.output_size, generator=torch.Generator().manual_seed(3))
    z = torch.randn(2, 8) if use_vae else None
    expected = _per_layer_forward(reference, seg, z)

    resizes = []
    original = condnorm.spade.resize_segmap

    def spy(segmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        resizes.append(tuple(segmap.shape[-2:]) != tuple(size))
        return original(segmap, size)

    monkeypatch.setattr(condnorm.spade, "resize_segmap", spy)
    out = g(seg, z)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert resizes and not any(resizes)  # every SPADE layer got a map of its own size


def test_vae_path_with_encoder() -> None:
    torch.manual_seed(0)
    enc = ConvEncoder(ngf=4, z_dim=8, input_size=32)
    g = SPADEGenerator(4, ngf=4, z_dim=8, crop_size=32, use_vae=True)
    image, seg = torch.rand(2, 3, 32, 32) * 2 - 1, onehot(2, 4, 32, 32, seed=1)
    mu, logvar = enc(image)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(1))
    out = g(seg, z)
    assert out.shape == (2, 3, 32, 32)
    out.square().mean().backward()
    assert enc.layer1[0].weight_orig.grad is not None and enc.fc_var.weight.grad.abs().sum() > 0

    g.eval()
    with torch.no_grad():
        a = g(seg, generator=torch.Generator().manual_seed(5))
        b = g(seg, generator=torch.Generator().manual_seed(5))
        c = g(seg, generator=torch.Generator().manual_seed(6))
        d = g(seg, torch.randn(2, 8, generator=torch.Generator().manual_seed(5)))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, d)  # z=None draws z ~ N(0, I) of shape (N, z_dim)
    assert not torch.allclose(a, c)


def test_reparameterize_formula() -> None:
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(2))
    eps = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(z, mu + eps * torch.exp(logvar / 2))


def test_generator_errors() -> None:
    g = SPADEGenerator(6, ngf=4, crop_size=32)
    with pytest.raises(ValueError, match=r"expected spatial size \(32, 32\).*got \(16, 16\)"):
        g(onehot(1, 6, 16, 16))
    with pytest.raises(ValueError, match="dimension 'L' is 5, expected 6"):
        g(onehot(1, 5, 32, 32))
    with pytest.raises(ValueError, match="z is only used with use_vae=True"):
        g(onehot(1, 6, 32, 32), torch.randn(1, 256))
    with pytest.raises(ValueError, match="dimension 'Z' is 3, expected 8"):
        SPADEGenerator(6, ngf=4, z_dim=8, crop_size=32, use_vae=True)(onehot(1, 6, 32, 32), torch.randn(1, 3))
    with pytest.raises(ValueError, match="use crop_size >= 128"):
        SPADEGenerator(6, ngf=4, crop_size=64, num_upsampling_layers="most")
    with pytest.raises(ValueError, match="num_upsampling_layers must be one of"):
        SPADEGenerator(6, ngf=4, crop_size=32, num_upsampling_layers="many")


def test_generator_init() -> None:
    torch.manual_seed(0)
    g = SPADEGenerator(6, ngf=4, crop_size=32)
    for conv in (g.fc, g.conv_img, g.up_0.conv_0, g.up_0.conv_s):
        weight = getattr(conv, "weight_orig", None)
        weight = conv.weight if weight is None else weight
        fan_in, fan_out = weight.shape[1] * weight[0, 0].numel(), weight.shape[0] * weight[0, 0].numel()
        xavier_std = 0.02 * (2 / (fan_in + fan_out)) ** 0.5
        assert 0.7 < weight.std().item() / xavier_std < 1.3
        assert conv.bias is None or not conv.bias.any()
    # SPADE layers keep condnorm's init: every block is identity-after-normalisation.
    assert not g.head_0.norm_0.mlp_gamma.weight.any() and not g.up_3.norm_1.mlp_beta.bias.any()


def test_block_custom_norm_layer() -> None:
    """Any conditional norm called as norm(x, *cond) plugs in; no shortcut when fin == fout."""
    calls = []

    class Recording(torch.nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.norm = condnorm.make_norm("instance", c)

        def forward(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            calls.append((a, b))
            return self.norm(x) * a.mean() + b.mean()

    same = ModulatedResBlock(4, 4, Recording, spectral=False)
    assert not hasattr(same, "conv_s") and not hasattr(same, "norm_s")
    assert set(same.state_dict()) == {"conv_0.weight", "conv_0.bias", "conv_1.weight", "conv_1.bias"}
    x, a, b = torch.randn(1, 4, 8, 8), torch.ones(1), torch.zeros(1)
    out = same(x, a, b)
    assert len(calls) == 2
    mid = same.conv_0(F.leaky_relu(same.norm_0(x, a, b), 0.2))
    torch.testing.assert_close(out, x + same.conv_1(F.leaky_relu(same.norm_1(mid, a, b), 0.2)))

    spade = functools.partial(condnorm.SPADE, label_nc=3, hidden=8)
    changing = randomize_(ModulatedResBlock(8, 4, spade)).eval()
    assert changing.conv_0.weight_orig.shape == (4, 8, 3, 3) and changing.conv_s.bias is None
    x, seg = torch.randn(2, 8, 4, 4), onehot(2, 3, 8, 8, seed=1)
    out = changing(x, seg)
    assert out.shape == (2, 4, 4, 4)
    b = changing  # learned shortcut: no activation between norm_s and conv_s
    dx = b.conv_1(F.leaky_relu(b.norm_1(b.conv_0(F.leaky_relu(b.norm_0(x, seg), 0.2)), seg), 0.2))
    torch.testing.assert_close(out, b.conv_s(b.norm_s(x, seg)) + dx)


# ----------------------------------------------------------------------------- encoder


def test_encoder_official_keys_and_resize() -> None:
    enc = ConvEncoder(ngf=4, z_dim=8)
    assert shapes_of(enc) == official_encoder_shapes(4, 8)
    enc.load_state_dict(random_state_dict(official_encoder_shapes(4, 8)), strict=True)

    small = ConvEncoder(ngf=4, z_dim=8, input_size=32).eval()
    image = torch.randn(2, 3, 48, 40)
    mu, logvar = small(image)
    mu_ref, logvar_ref = small(F.interpolate(image, size=(32, 32), mode="bilinear", align_corners=False))
    torch.testing.assert_close(mu, mu_ref)
    torch.testing.assert_close(logvar, logvar_ref)
    assert mu.shape == logvar.shape == (2, 8)


def test_encoder_errors() -> None:
    with pytest.raises(ValueError, match="power of two >= 8"):
        ConvEncoder(input_size=48)
    with pytest.raises(ValueError, match="dimension 'fixed' is 1, expected 3"):
        ConvEncoder(ngf=4, z_dim=8, input_size=32)(torch.randn(1, 1, 32, 32))


# ----------------------------------------------------------------------------- discriminator


def test_discriminator_official_keys_and_strict_load() -> None:
    d = MultiscaleDiscriminator(9, ndf=4)
    expected = official_discriminator_shapes(9, 4, num_D=2)
    assert shapes_of(d) == expected
    d.load_state_dict(random_state_dict(expected), strict=True)
    out = d(torch.randn(2, 9, 32, 32))
    assert [len(s) for s in out] == [5, 5]
    assert [tuple(f.shape[1:]) for f in out[0]] == [(4, 17, 17), (8, 9, 9), (16, 5, 5), (32, 6, 6), (1, 7, 7)]
    assert [tuple(f.shape[1:]) for f in out[1]] == [(4, 9, 9), (8, 5, 5), (16, 3, 3), (32, 4, 4), (1, 5, 5)]


def test_discriminator_scales_and_prediction_only() -> None:
    torch.manual_seed(0)
    d = randomize_(MultiscaleDiscriminator(3, num_D=3, n_layers=2, ndf=4)).eval()
    x = torch.full((1, 3, 16, 16), 0.7)
    out = d(x)
    # Average pooling that excludes padding keeps a constant image constant at every scale.
    torch.testing.assert_close(out[2][-1], d.discriminator_2(torch.full((1, 3, 4, 4), 0.7))[-1])
    torch.testing.assert_close(out[0][-1], d.discriminator_0(x)[-1])

    d.get_intermediate_features = False
    preds = d(x)
    assert [len(s) for s in preds] == [1, 1, 1]
    for scale, full in zip(preds, out):
        torch.testing.assert_close(scale[0], full[-1])


def test_discriminator_errors_and_plain_variant() -> None:
    with pytest.raises(ValueError, match="dimension 'fixed' is 4, expected 5"):
        MultiscaleDiscriminator(5, ndf=4)(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="num_D must be >= 1"):
        MultiscaleDiscriminator(5, num_D=0)
    plain = MultiscaleDiscriminator(5, num_D=1, n_layers=2, ndf=4, spectral=False, norm="none")
    assert set(plain.state_dict()) == {
        "discriminator_0.model0.0.weight", "discriminator_0.model0.0.bias",
        "discriminator_0.model1.0.0.weight", "discriminator_0.model1.0.0.bias",
        "discriminator_0.model2.0.weight", "discriminator_0.model2.0.bias"}
