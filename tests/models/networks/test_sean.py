"""SEAN (RAIN) networks: region pooling, SEAN checkpoints, any label_nc, locality; CLADE-G; codes files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

import condnorm
from models.app.checkpoint import load_generator
from models.data.label_layout import LabelLayout
from models.generators import GENERATORS, build_generator, generator_kind
from models.sean import SEANGenerator, StyleEncoder
from models.sean.codes import RegionCodes, mix_region_codes
from models.spade import ModulatedGenerator, SPADEGenerator
from models.spade.clade import clade_generator
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import batch_norm_train, nearest, onehot, onehot_of, random_state_dict, spade_gamma_beta

TINY = dict(ngf=4, style_dim=8, crop_size=32, norm="batch", hidden=8, encoder_ngf=4)


# ----------------------------------------------------------------------------- style encoder
def test_region_pooling_is_the_hand_computed_masked_mean() -> None:
    torch.manual_seed(0)
    enc = StyleEncoder(style_dim=6, ngf=4)
    image, seg = torch.randn(2, 3, 16, 16), onehot(2, 4, 16, 16, seed=3)
    seg[1, 2] = 0  # class 2 absent from sample 1
    seg[0, 3, ::2, ::2] = 0  # class 3 of sample 0 on odd pixels only: nothing left at half size
    features = enc.style_map(image)
    assert features.shape == (2, 6, 8, 8)  # stride 2, as SEAN's Zencoder
    m = nearest(seg, 8, 8).bool()  # SEAN: segmap.bool() after a nearest resize
    expected = torch.zeros(2, 4, 6)
    for b in range(2):
        for k in range(4):
            if m[b, k].any():
                expected[b, k] = features[b].masked_select(m[b, k]).view(6, -1).mean(1)
    codes, present = enc.encode_regions(image, seg)
    torch.testing.assert_close(codes, expected)
    torch.testing.assert_close(enc(image, seg), expected)
    assert present.tolist() == m.flatten(2).any(-1).tolist()
    assert not present[1, 2] and not present[0, 3] and present[0, 0]
    assert torch.count_nonzero(codes[1, 2]) == 0


def test_encoder_keys_and_shapes_are_seans() -> None:
    enc = StyleEncoder()  # SEAN: Zencoder(3, 512), ngf 32, two downsamplings
    shapes = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert shapes == {"model.1.weight": (32, 3, 3, 3), "model.1.bias": (32,),
                      "model.4.weight": (64, 32, 3, 3), "model.4.bias": (64,),
                      "model.7.weight": (128, 64, 3, 3), "model.7.bias": (128,),
                      "model.10.weight": (128, 256, 3, 3), "model.10.bias": (256,),  # ConvTranspose
                      "model.14.weight": (512, 256, 3, 3), "model.14.bias": (512,)}
    assert isinstance(enc.model[15], torch.nn.Tanh)


def test_encoder_errors() -> None:
    enc = StyleEncoder(style_dim=6, ngf=4)
    with pytest.raises(ValueError, match=r"StyleEncoder image: .*'C' is 1, expected 3"):
        enc(torch.randn(1, 1, 16, 16), torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        enc(torch.randn(1, 3, 18, 16), torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match=r"StyleEncoder segmap: .*'N' is 2, expected 1"):
        enc(torch.randn(1, 3, 16, 16), torch.rand(2, 2, 16, 16))


# ----------------------------------------------------------------------------- SEAN checkpoints
BLOCKS = [("head_0", 16, 16), ("G_middle_0", 16, 16), ("G_middle_1", 16, 16), ("up_0", 16, 8),
          ("up_1", 8, 4), ("up_2", 4, 2), ("up_3", 2, 1)]


def sean_generator_shapes(labels: int, nf: int, d: int, hidden: int = 128) -> dict[str, tuple[int, ...]]:
    """Key → shape of SEAN's ``netG.state_dict()``, written from the reference (layers-sean §3)."""
    shapes: dict[str, tuple[int, ...]] = {"fc.weight": (16 * nf, labels, 3, 3), "fc.bias": (16 * nf,),
                                          "conv_img.weight": (3, nf, 3, 3), "conv_img.bias": (3,)}
    enc = [(1, 32, 3), (4, 64, 32), (7, 128, 64), (14, d, 256)]
    for i, cout, cin in enc:
        shapes[f"Zencoder.model.{i}.weight"], shapes[f"Zencoder.model.{i}.bias"] = (cout, cin, 3, 3), (cout,)
    shapes["Zencoder.model.10.weight"], shapes["Zencoder.model.10.bias"] = (128, 256, 3, 3), (256,)

    def sn_conv(prefix: str, cin: int, cout: int, k: int, bias: bool = True) -> None:
        shapes[prefix + ".weight_orig"] = (cout, cin, k, k)
        shapes[prefix + ".weight_u"], shapes[prefix + ".weight_v"] = (cout,), (cin * k * k,)
        if bias:
            shapes[prefix + ".bias"] = (cout,)

    for name, fin, fout in BLOCKS:
        fin, fout = fin * nf, fout * nf
        fmid = min(fin, fout)
        sn_conv(f"{name}.conv_0", fin, fmid, 3)
        sn_conv(f"{name}.conv_1", fmid, fout, 3)
        aces = [("ace_0", fin), ("ace_1", fmid)]
        if fin != fout:
            sn_conv(f"{name}.conv_s", fin, fout, 1, bias=False)
            aces.append(("ace_s", fin))
        for ace, c in aces:
            p = f"{name}.{ace}."
            shapes.update({p + "blending_gamma": (1,), p + "blending_beta": (1,), p + "noise_var": (c,)})
            for norm in ("Spade.param_free_norm.", "param_free_norm."):
                shapes.update({p + norm + "running_mean": (c,), p + norm + "running_var": (c,),
                               p + norm + "num_batches_tracked": ()})
            shapes[p + "Spade.mlp_shared.0.weight"], shapes[p + "Spade.mlp_shared.0.bias"] = \
                (hidden, labels, 3, 3), (hidden,)
            for conv in ("mlp_gamma", "mlp_beta"):
                shapes[f"{p}Spade.{conv}.weight"], shapes[f"{p}Spade.{conv}.bias"] = (c, hidden, 3, 3), (c,)
            if name != "up_3":  # SEAN builds up_3 with use_rgb=False: no style branch
                for j in range(labels):
                    shapes[f"{p}fc_mu{j}.weight"], shapes[f"{p}fc_mu{j}.bias"] = (d, d), (d,)
                for conv in ("conv_gamma", "conv_beta"):
                    shapes[f"{p}{conv}.weight"], shapes[f"{p}{conv}.bias"] = (c, d, 3, 3), (c,)
    return shapes


def sean_state_dict(labels: int, nf: int, d: int, seed: int = 0) -> dict[str, Tensor]:
    return random_state_dict(sean_generator_shapes(labels, nf, d), seed, std=0.05)


@pytest.mark.parametrize("labels", [19, 3])
def test_sean_generator_state_dict_loads_strict(labels: int) -> None:
    sd = sean_state_dict(labels, nf=2, d=8)
    g = SEANGenerator(labels, ngf=2, style_dim=8, crop_size=32, norm="batch")
    g.load_state_dict(dict(sd), strict=True)
    last = labels - 1
    torch.testing.assert_close(g.up_0.ace_s.fc_mu_weight[last], sd[f"up_0.ace_s.fc_mu{last}.weight"])
    assert torch.equal(g.Zencoder.model[10].weight, sd["Zencoder.model.10.weight"])
    assert torch.equal(g.up_3.ace_1.Spade.mlp_gamma.weight, sd["up_3.ace_1.Spade.mlp_gamma.weight"])
    assert torch.equal(g.up_3.ace_1.noise_var, sd["up_3.ace_1.noise_var"])
    assert torch.equal(g.head_0.conv_0.weight_orig, sd["head_0.conv_0.weight_orig"])
    dropped = {k for k in sd if "Spade.param_free_norm" in k or (k.startswith("up_3.") and "blending" in k)}
    stacked = {k for k in sd if ".fc_mu" in k}
    own = set(g.state_dict())
    assert own - set(sd) == {k.replace(".fc_mu0.", ".fc_mu_") for k in stacked if ".fc_mu0." in k}
    assert set(sd) - own == dropped | stacked
    seg = onehot(2, labels, 32, 32)
    out = g.eval()(seg, style_image=torch.rand(2, 3, 32, 32), noise=torch.Generator())
    assert out.shape == (2, 3, 32, 32)
    incomplete = {k: v for k, v in sd.items() if k != "up_2.ace_0.conv_beta.bias"}
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*up_2\.ace_0\.conv_beta\.bias"):
        SEANGenerator(labels, ngf=2, style_dim=8, crop_size=32, norm="batch").load_state_dict(incomplete)


def test_official_sean_file_loads_through_load_generator(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G.pth"
    torch.save(sean_state_dict(19, nf=2, d=8), path)
    layout = LabelLayout(19, False, False)
    g, layout = load_generator(path, layout=layout, crop_size=32, norm="batch", kind="rain")
    assert isinstance(g, SEANGenerator) and (g.style_dim, g.label_nc, g.output_size) == (8, 19, (32, 32))
    assert layout.semantic_nc == 19 and not g.training
    with pytest.raises(ValueError, match="official clade files are not supported"):
        load_generator(path, layout=LabelLayout(19, False, False), crop_size=32, kind="clade")


def spade_only(**kw: object) -> condnorm.RAIN:
    """SEAN's up_3 layer: RAIN without its style branch."""
    return condnorm.RAIN(4, label_nc=3, hidden=8, style_dim=5, style_branch=False, **kw)


def test_rain_without_style_branch_matches_the_formula_and_drops_seans_unused_keys() -> None:
    layer = randomize_(spade_only())
    x, seg, z = torch.randn(2, 4, 8, 8), onehot(2, 3, 16, 16), torch.randn(2, 1, 8, 8)
    sd = layer.state_dict()
    gamma, beta = spade_gamma_beta(nearest(seg, 8, 8), sd, "Spade.")
    expected = batch_norm_train(x + z * sd["noise_var"].view(1, -1, 1, 1)) * (1 + gamma) + beta
    torch.testing.assert_close(layer(x, seg, torch.randn(2, 3, 5), z), expected, atol=1e-5, rtol=1e-5)
    assert set(sd) == {"noise_var", "param_free_norm.running_mean", "param_free_norm.running_var",
                       "param_free_norm.num_batches_tracked", "Spade.mlp_shared.0.weight", "Spade.mlp_shared.0.bias",
                       "Spade.mlp_gamma.weight", "Spade.mlp_gamma.bias", "Spade.mlp_beta.weight", "Spade.mlp_beta.bias"}
    sean = {**sd, "blending_gamma": torch.zeros(1), "blending_beta": torch.zeros(1),
            "Spade.param_free_norm.running_mean": torch.zeros(4),
            "Spade.param_free_norm.running_var": torch.ones(4),
            "Spade.param_free_norm.num_batches_tracked": torch.tensor(0)}
    spade_only().load_state_dict(dict(sean), strict=True)
    spade_only(noise=False).load_state_dict(dict(sean), strict=True)
    with pytest.raises(ValueError, match="built with noise=False"):
        spade_only(noise=False)(x, seg, None, z)


def test_explicit_noise_maps_equal_the_seeded_draw_and_are_counted() -> None:
    g = SEANGenerator(3, **TINY).eval()
    for m in g.norms():
        torch.nn.init.normal_(m.noise_var)
    seg, codes = onehot(2, 3, 32, 32, seed=1), torch.randn(2, 3, TINY["style_dim"])
    seeded = g(seg, style_codes=codes, noise=torch.Generator().manual_seed(4))
    gen = torch.Generator().manual_seed(4)
    draws = [torch.randn(2, 1, h, w, generator=gen) for h, w in g.noise_shapes()]
    assert len(draws) == sum(1 for m in g.norms())  # every norm draws once, in forward order
    torch.testing.assert_close(g(seg, style_codes=codes, noise=draws), seeded, atol=0, rtol=0)
    with pytest.raises(ValueError, match="fewer noise maps than noisy layers"):
        g(seg, style_codes=codes, noise=draws[:-1])
    with pytest.raises(ValueError, match=f"got {len(draws) + 1} noise maps for {len(draws)} noisy layers"):
        g(seg, style_codes=codes, noise=[*draws, draws[0]])


# ----------------------------------------------------------------------------- generator behaviour
@pytest.mark.parametrize("labels", [3, 25])
def test_any_label_nc(labels: int) -> None:
    torch.manual_seed(0)
    g = SEANGenerator(labels, **TINY)
    seg = onehot(2, labels, 32, 32, seed=1)
    codes = g.encode(torch.rand(2, 3, 32, 32) * 2 - 1, seg)
    assert codes.shape == (2, labels, 8)
    assert g.head_0.ace_0.fc_mu_weight.shape == (labels, 8, 8)
    out = g(seg, style_codes=codes, noise=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    assert g.state_dict()["up_1.ace_0.Spade.mlp_shared.0.weight"].shape[1] == labels


def test_same_noise_seed_same_image_and_codes_match_the_image_path() -> None:
    torch.manual_seed(0)
    g = randomize_(SEANGenerator(3, **TINY)).eval()
    seg, image = onehot(2, 3, 32, 32), torch.rand(2, 3, 32, 32) * 2 - 1
    a = g(seg, style_image=image, noise=torch.Generator().manual_seed(3))
    b = g(seg, style_codes=g.encode(image, seg), noise=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, g(seg, style_image=image, noise=torch.Generator().manual_seed(4)))


def chebyshev_distance_to(mask: Tensor) -> Tensor:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    yy, xx = torch.meshgrid(torch.arange(mask.shape[0]), torch.arange(mask.shape[1]), indexing="ij")
    return torch.maximum((yy[..., None] - ys).abs(), (xx[..., None] - xs).abs()).amin(-1)


def test_a_regions_code_reaches_only_its_receptive_field() -> None:
    """Random init; only up_2's style branch is switched on (coarser blocks keep their zero init).

    A new code for region 1 is painted into region 1's pixels only (at up_2's 32², nearest);
    from there it spreads through 3×3 convs: up_2's conv_gamma/beta, conv_0, conv_1 (3 px at
    32², ≤ 7 at 64² after the ×2 upsampling), up_3's two convs and conv_img (3 more). Pixels
    farther than 10 px from the region must be bit-identical. (No spectral norm: with the
    untrained power-iteration vectors, eval-mode SN inflates the weights and saturates tanh.)
    """
    torch.manual_seed(0)
    g = SEANGenerator(3, ngf=4, style_dim=8, crop_size=64, norm="batch", hidden=8, encoder_ngf=4,
                      spectral=False)
    with torch.no_grad():
        for conv in (g.up_2.ace_0, g.up_2.ace_1, g.up_2.ace_s):
            torch.nn.init.normal_(conv.conv_gamma.weight, 0, 0.05)
            torch.nn.init.normal_(conv.conv_beta.weight, 0, 0.05)
    g.eval()
    ids = torch.zeros(1, 64, 64, dtype=torch.long)
    ids[:, 24:40, 20:44] = 1
    ids[:, 48:] = 2
    codes = torch.randn(1, 3, 8)
    swapped = codes.clone()
    swapped[:, 1] = torch.randn(8)
    seg = onehot_of(ids, 3)
    a = g(seg, style_codes=codes, noise=torch.Generator().manual_seed(0))
    b = g(seg, style_codes=swapped, noise=torch.Generator().manual_seed(0))
    change = (a - b).abs().amax(1)[0]
    far = chebyshev_distance_to(ids[0] == 1) > 10
    assert far.float().mean() > 0.5
    assert torch.count_nonzero(change[far]) == 0
    assert (change[ids[0] == 1] > 0).float().mean() > 0.9
    other_code = swapped.clone()
    other_code[:, 1] = codes[:, 1]
    other_code[:, 0] = torch.randn(8)  # region 0 (around region 1) does change region 0
    assert torch.count_nonzero(g(seg, style_codes=other_code, noise=torch.Generator().manual_seed(0)) - a)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(), "pass exactly one of style_image="),
        (dict(style_image=torch.zeros(2, 3, 32, 32), style_codes=torch.zeros(2, 3, 8)), "exactly one"),
        (dict(style_codes=torch.zeros(2, 4, 8)), r"style_codes: .*'L' is 4, expected 3"),
        (dict(style_codes=torch.zeros(2, 3, 5)), r"style_codes: .*'D' is 5, expected 8"),
        (dict(style_image=torch.zeros(2, 3, 16, 16)), r"style_image: .*'H' is 16, expected 32"),
    ],
)
def test_generator_errors(kwargs: dict, match: str) -> None:
    g = SEANGenerator(3, **TINY)
    with pytest.raises(ValueError, match=match):
        g(onehot(2, 3, 32, 32), **kwargs)


def test_generator_rejects_a_wrong_size_segmap() -> None:
    with pytest.raises(ValueError, match=r"segmap: expected spatial size \(32, 32\)"):
        SEANGenerator(3, **TINY)(onehot(1, 3, 16, 16), style_codes=torch.zeros(1, 3, 8))


# ----------------------------------------------------------------------------- CLADE and the registry
def test_clade_generator_is_spades_backbone_with_class_tables() -> None:
    torch.manual_seed(0)
    spade = SPADEGenerator(6, ngf=4, crop_size=32, norm="batch")
    clade = clade_generator(6, ngf=4, crop_size=32, norm="batch")
    assert tuple(clade.up_0.norm_s.weight.shape) == (6, 64) and not clade.up_0.norm_s.weight.any()
    backbone = {k for k in spade.state_dict() if ".norm_" not in k}
    assert backbone == {k for k in clade.state_dict() if ".norm_" not in k}
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(clade) < 0.5 * count(spade)
    seg = onehot(2, 6, 32, 32)
    randomize_(clade)
    out = clade(seg)
    assert out.shape == (2, 3, 32, 32)
    plain = clade_generator(6, ngf=4, crop_size=32, norm="batch", plain_gamma=True)
    assert plain.head_0.norm_0.plain_gamma and plain.head_0.norm_0.weight.min() >= 0


def test_registry_names_and_errors() -> None:
    assert sorted(GENERATORS) == ["clade", "rain", "spade"]
    assert generator_kind("SEAN")[0] == "rain" and generator_kind("rain")[1].takes_style
    g = build_generator("rain", 3, **TINY)
    # one backbone, two generators with their own forward: SEAN is not a SPADEGenerator
    assert isinstance(g, SEANGenerator) and isinstance(g, ModulatedGenerator) and not isinstance(g, SPADEGenerator)
    with pytest.raises(ValueError, match=r"unknown generator 'oasis'; choose one of \['clade', 'rain', "):
        build_generator("oasis", 3)


# ----------------------------------------------------------------------------- codes as data
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_codes_file_round_trip(tmp_path: Path, suffix: str) -> None:
    codes = RegionCodes(torch.randn(4, 3), torch.tensor([True, False, True, True]))
    back = RegionCodes.load(codes.save(tmp_path / f"c{suffix}"))
    assert torch.equal(back.codes, codes.codes) and torch.equal(back.present, codes.present)


def test_codes_errors(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a codes file"):
        RegionCodes.load(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RegionCodes.load(tmp_path / "none.pt")
    with pytest.raises(ValueError, match=r"expected codes \(L, D\) and present \(L,\)"):
        RegionCodes(torch.zeros(3, 2), torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="codes of 3 regions × 2 do not fit a generator with label_nc=4"):
        RegionCodes.empty(3, 2).check_fits(4, 2, "--codes x")
    with pytest.raises(ValueError, match=r"region 5 is outside \[0, 3\)"):
        mix_region_codes([(RegionCodes.empty(3, 2), [5])])


def test_mixing_priority_and_fallback() -> None:
    def src(value: float, present: list[bool]) -> RegionCodes:
        return RegionCodes(torch.full((4, 1), value), torch.tensor(present))

    mixed = mix_region_codes([
        (src(1.0, [True, True, True, False]), None),  # e.g. the target's own photo
        (src(2.0, [True, False, True, False]), None),  # the reference lacks region 1
        (src(3.0, [True, True, False, False]), [0, 2]),  # region 2 asked for but absent: no effect
    ])
    assert mixed.codes.flatten().tolist() == [3.0, 1.0, 2.0, 0.0]  # region 3: nobody has it, zeros
    assert mixed.present.tolist() == [True, True, True, False]


def test_generator_benchmark_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.generators import main

    results = main(["--quick"])
    assert list(results) == ["SPADE-G", "SPADE-G (dense map)", "CLADE-G", "RAIN-G", "RAIN-G + encoder"]
    params = [results[name][0] for name in ("CLADE-G", "SPADE-G", "RAIN-G", "RAIN-G + encoder")]
    assert params == sorted(params) and all(results[name][1] > 0 for name in results)
    out = capsys.readouterr().out
    assert "threads" in out and "| generator | params (M) |" in out
