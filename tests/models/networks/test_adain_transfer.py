"""StyleTransfer.transfer against a hand-written pytorch-AdaIN test.py, and the user controls."""

from __future__ import annotations

import pytest
import torch

from condnorm.functional import calc_mean_std
from models.adain import StyleTransfer
from models.adain.color import coral, merge_luminance, split_luminance
from models.adain.spatial import mask_to_regions, regional_adain
from tests.models.networks.adain_official import ref_adain, ref_style_transfer, save_official


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    vgg_path, dec_path, vgg, dec = save_official(tmp_path_factory.mktemp("adain"))
    net = StyleTransfer.from_official(vgg=vgg_path, decoder=dec_path).eval()
    return net, vgg.eval(), dec.eval()


def _images(seed: int, *shapes):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(s, generator=g) for s in shapes]


def test_bottleneck_takes_the_style_statistics(official):
    net, *_ = official
    content, style = _images(0, (2, 3, 32, 40), (2, 3, 48, 24))
    feat, sfeat = net.encoder.encode(content), net.encoder.encode(style)
    t = net.modulation(feat, sfeat)
    (t_mean, t_std), (s_mean, s_std) = calc_mean_std(t, 0.0, True), calc_mean_std(sfeat, 0.0, True)
    c_var = calc_mean_std(feat, 0.0, True)[1].square()
    torch.testing.assert_close(t_mean, s_mean, atol=1e-4, rtol=1e-4)
    # σ_t = sqrt(σ_s² + ε) · σ_c / sqrt(σ_c² + ε): the style's σ wherever σ_c² ≫ ε = 1e-5
    want = (s_std.square() + 1e-5).sqrt() * (c_var / (c_var + 1e-5)).sqrt()
    torch.testing.assert_close(t_std, want, atol=1e-4, rtol=1e-4)
    live = (c_var > 0.1) & (s_std.square() > 0.1)
    assert live.float().mean() > 0.3
    torch.testing.assert_close(t_std[live], s_std[live], atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_pipeline_equals_reference_test_py(official):
    net, vgg, dec = official
    content, style = _images(1, (1, 3, 40, 48), (1, 3, 32, 56))
    for alpha in (1.0, 0.6):
        want = ref_style_transfer(vgg, dec, content, style, alpha)
        assert ((want > 0) & (want < 1)).float().mean() > 0.9  # the comparison is not all clamped
        torch.testing.assert_close(net.transfer(content, style, alpha=alpha), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(net(content, style), ref_style_transfer(vgg, dec, content, style))


@torch.no_grad()
def test_alpha_zero_decodes_the_content_features(official):
    net, vgg, dec = official
    (content, style) = _images(2, (2, 3, 32, 32), (1, 3, 32, 32))
    want = dec(vgg[:31](content)).clamp(0, 1)
    torch.testing.assert_close(net.transfer(content, style, alpha=0.0), want, atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_float_interpolation_weights_mix_the_targets(official):
    net, vgg, dec = official
    content, s1, s2 = _images(3, (1, 3, 32, 32), (1, 3, 32, 32), (1, 3, 32, 32))
    got = net.transfer(content, [s1, s2], style_weights=[0.5, 1.5], alpha=0.8)
    want = ref_style_transfer(vgg, dec, content, torch.cat([s1, s2]), 0.8, weights=[0.25, 0.75])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    equal = net.transfer(content, [s1, s2])
    torch.testing.assert_close(equal, ref_style_transfer(vgg, dec, content, torch.cat([s1, s2]),
                                                         weights=[0.5, 0.5]), atol=1e-5, rtol=1e-4)


def test_regional_adain_gives_each_region_its_style_statistics():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, 8, 10, generator=g) * 3 + 1
    regions = torch.zeros(2, 3, 8, 10)
    regions[:, 0, :, :4], regions[:, 1, :, 4:7], regions[:, 2, :, 7:] = 1, 1, 1
    stats = [(torch.randn(2, 6, 1, 1, generator=g), torch.rand(2, 6, 1, 1, generator=g) + 0.5)
             for _ in range(3)]
    out = regional_adain(x, stats, regions, eps=0.0)
    for k, (mean, std) in enumerate(stats):
        part = out[..., regions[0, k, 0].bool()].flatten(2)
        torch.testing.assert_close(part.mean(-1)[..., None, None], mean, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(part.std(-1)[..., None, None], std, atol=1e-4, rtol=1e-4)
    style_feat = torch.randn(2, 6, 5, 5, generator=g) * 2 - 1
    whole = regional_adain(x, [calc_mean_std(style_feat, 1e-5, True)], torch.ones(1, 1, 8, 10))
    torch.testing.assert_close(whole, ref_adain(x, style_feat))


@torch.no_grad()
def test_mask_assigns_styles_to_regions(official):
    net, *_ = official
    (tile,) = _images(5, (1, 3, 64, 64))
    content = torch.cat([tile, tile], dim=-1)  # both halves alike, so region statistics ≈ global ones
    fg, bg = _images(6, (1, 3, 32, 32), (1, 3, 32, 32))
    fg = fg * 0.3 + torch.tensor([0.7, 0.1, 0.1]).view(1, 3, 1, 1)
    mask = torch.zeros(64, 128, dtype=torch.bool)
    mask[:, :64] = True
    out = net.transfer(content, [fg, bg], mask=mask)
    out_fg, out_bg = net.transfer(content, fg), net.transfer(content, bg)
    margin = 24
    left, right = slice(0, 64 - margin), slice(64 + margin, 128)
    for region, same, other in ((left, out_fg, out_bg), (right, out_bg, out_fg)):
        err = (out[..., region] - same[..., region]).abs().mean()
        gap = (other[..., region] - same[..., region]).abs().mean()
        assert err < 0.1 * gap, (err, gap)
    ids = mask.long().neg() + 1  # the same assignment as integer style ids
    torch.testing.assert_close(net.transfer(content, [fg, bg], mask=ids[None, None]), out)


def test_mask_to_regions_pads_and_resizes():
    ids = torch.tensor([[0, 1, 2]]).repeat_interleave(13, 1).repeat(37, 1)[None]  # (1, 37, 39)
    regions = mask_to_regions(ids, 3, (37, 39), (40, 40), (5, 5))
    assert regions.shape == (1, 3, 5, 5) and torch.equal(regions.sum(1), torch.ones(1, 5, 5))
    assert regions[0, :, 0].argmax(0).tolist() == [0, 0, 1, 1, 2]  # nearest picks columns 0, 8, …, 32
    with pytest.raises(ValueError, match="exactly two styles"):
        mask_to_regions(torch.ones(4, 4), 3, (4, 4), (8, 8), (1, 1))
    with pytest.raises(ValueError, match=r"ids must be in \[0, 2\)"):
        mask_to_regions(torch.full((4, 4), 2), 2, (4, 4), (8, 8), (1, 1))


def test_coral_matches_the_content_colour_statistics():
    style, content = _images(7, (2, 3, 24, 20), (2, 3, 16, 16))
    style = style * torch.tensor([1.0, 0.2, 0.5]).view(1, 3, 1, 1)
    out = coral(style, content)
    torch.testing.assert_close(out.mean((2, 3)), content.mean((2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std((2, 3), correction=0), content.std((2, 3), correction=0),
                               atol=1e-3, rtol=1e-3)
    flat_o, flat_c = out.flatten(2), content.flatten(2)
    cov = lambda f: (f - f.mean(-1, keepdim=True)) @ (f - f.mean(-1, keepdim=True)).mT / f.shape[-1]  # noqa: E731
    torch.testing.assert_close(cov(flat_o), cov(flat_c), atol=1e-4, rtol=1e-3)


@torch.no_grad()
def test_preserve_color_modes(official):
    net, *_ = official
    content, style = _images(8, (1, 3, 32, 32), (1, 3, 40, 40))
    content = 0.3 + 0.4 * content  # inside the gamut, so new luminance + old chroma is rarely clamped
    torch.testing.assert_close(net.transfer(content, style, preserve_color="coral"),
                               net.transfer(content, coral(style, content)))
    out = net.transfer(content, style, preserve_color="luminance")
    inside = ((out > 1e-3) & (out < 1 - 1e-3)).all(1, keepdim=True)
    _, uv_out = split_luminance(out)
    _, uv_content = split_luminance(content)
    assert inside.float().mean() > 0.9
    torch.testing.assert_close(uv_out * inside, uv_content * inside, atol=1e-5, rtol=0)
    x = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(merge_luminance(*split_luminance(x)), x, atol=1e-5, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("size", [(37, 53), (16, 17), (40, 40)])
def test_output_has_the_input_size(official, size):
    net, *_ = official
    content, style = _images(9, (1, 3, *size), (1, 3, 29, 31))
    assert net.transfer(content, style).shape == (1, 3, *size)
    mask = torch.zeros(size)
    mask[: size[0] // 2] = 1
    assert net.transfer(content, [style, content], mask=mask).shape == (1, 3, *size)


def test_transfer_errors(official):
    net, *_ = official
    c, s = torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"content: expected shape \(N, 3, H, W\)"):
        net.transfer(c[:, :2], s)
    with pytest.raises(ValueError, match="batch size 3 must be 1 or the content's 2"):
        net.transfer(c, s.expand(3, -1, -1, -1))
    with pytest.raises(ValueError, match="alpha must be in"):
        net.transfer(c, s, alpha=1.5)
    with pytest.raises(ValueError, match="2 weight"):
        net.transfer(c, [s], style_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        net.transfer(c, [s, s], style_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="preserve_color"):
        net.transfer(c, s, preserve_color="hsv")
    with pytest.raises(ValueError, match="not both"):
        net.transfer(c, [s, s], style_weights=[1, 1], mask=torch.ones(16, 16))
    with pytest.raises(ValueError, match="at least one style"):
        net.transfer(c, [])
    with pytest.raises(ValueError, match="modulation must be one of adain, adacon"):
        StyleTransfer(modulation="wct")


@torch.no_grad()
def test_adacon_modulation_runs_all_controls():
    torch.manual_seed(0)
    net = StyleTransfer(modulation="adacon", style_dim=8, style_hidden=16).eval()
    content, s1, s2 = _images(10, (2, 3, 24, 40), (1, 3, 32, 32), (2, 3, 24, 24))
    out = net.transfer(content, [s1, s2], style_weights=[1, 3], preserve_color="coral")
    assert out.shape == (2, 3, 24, 40)
    mask = torch.zeros(24, 40, dtype=torch.bool)
    mask[:, :20] = True
    assert net.transfer(content, [s1, s2], mask=mask, alpha=0.5).shape == (2, 3, 24, 40)
    # At init AdaCoN is pure instance standardisation, the same for every style.
    torch.testing.assert_close(net.transfer(content, s1), net.transfer(content, s2))
