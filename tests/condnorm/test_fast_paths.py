"""Every optimised path equals the formula it replaces.

- AdaIN: the custom autograd function (eager) and the plain composite (traced/compiled) against
  the paper's formula with ``var`` statistics, both conventions; float64 gradcheck.
- SemanticMap / label_conv2d / label_windows / fold_binary_extra: against the dense one-hot map.
- SPADE on ids (per-patch path, per-window path, static ``label_conv2d`` path, binary and dense
  extra channels) against the official conv formula; gradients of every parameter in float64.
- The SPADE generator on ids, on a ``SemanticMap`` and on a recognised one-hot map against the
  official per-layer forward on the dense map.

Tolerances: fp32 1e-5 (layers) / 1e-4 (generator); float64 gradients 1e-10; bf16 autocast
within 0.1 absolute on O(1) outputs.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import condnorm
from condnorm.functional import adain, calc_mean_std, paint_columns
from condnorm.semantic_map import SemanticMap, fold_binary_extra, label_conv2d, label_windows, window_conv
from models.spade.generator import SPADEGenerator
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import adain as reference_adain
from tests.condnorm.reference import batch_norm_train, nearest, onehot_of
from tests.condnorm.reference import spade as spade_reference


def regions(n: int, labels: int, h: int, w: int, seed: int = 0, cell: int = 4) -> Tensor:
    """Blocky id maps (regions of ``cell`` px), so distinct windows are few and the patch path runs."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randint(labels, (n, -(-h // cell), -(-w // cell)), generator=g)
    return low.repeat_interleave(cell, 1).repeat_interleave(cell, 2)[:, :h, :w]


# --- AdaIN ----------------------------------------------------------------------------------


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_adain_equals_formula(unbiased: bool, alpha: float, device: torch.device, dtype: torch.dtype) -> None:
    content = torch.randn(2, 5, 7, 9, device=device, dtype=dtype)
    style = torch.randn(2, 5, 4, 6, device=device, dtype=dtype) * 3 + 2
    expected = reference_adain(content, style, 1e-3, unbiased, alpha)
    torch.testing.assert_close(adain(content, style, eps=1e-3, unbiased=unbiased, alpha=alpha), expected,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("unbiased", [True, False])
def test_adain_gradcheck_style_map_and_statistics(unbiased: bool) -> None:
    content = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    style = (torch.randn(2, 3, 3, 3, dtype=torch.float64) * 2 + 1).requires_grad_()
    s_mean = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    s_std = (torch.rand(2, 3, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda c, s: adain(c, s, eps=1e-3, unbiased=unbiased, alpha=0.7),
                                    (content, style))
    assert torch.autograd.gradcheck(lambda c, m, s: adain(c, (m, s), unbiased=unbiased),
                                    (content, s_mean, s_std))
    assert torch.autograd.gradcheck(lambda s: calc_mean_std(s, 1e-3, unbiased), (style,))


def test_adain_channels_last_keeps_layout_and_gradient() -> None:
    content = torch.randn(2, 3, 4, 5, dtype=torch.float64).to(memory_format=torch.channels_last)
    content.requires_grad_()
    style = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    out = adain(content, style, unbiased=True)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(lambda c, s: adain(c, s, unbiased=True), (content, style))


def test_adain_eager_uses_the_analytic_backward_and_stays_twice_differentiable() -> None:
    content = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    style = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert "AdaINContent" in adain(content, style).grad_fn.name()
    assert torch.autograd.gradgradcheck(lambda c, s: adain(c, s, unbiased=True, alpha=0.5), (content, style))


def test_adain_compiles_fullgraph_with_gradients_and_one_graph_per_grad_mode() -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    graphs = counters["stats"]["unique_graphs"]
    compiled = torch.compile(functools.partial(adain, unbiased=True), fullgraph=True, dynamic=True,
                             backend="aot_eager")
    for shape in [(2, 3, 8, 6), (3, 5, 6, 10)]:  # no equal sizes in the first: dynamo's duck sizing
        content = torch.randn(shape, requires_grad=True)
        style = torch.randn((*shape[:2], 5, 7), requires_grad=True)
        got = torch.autograd.grad(compiled(content, style).square().sum(), (content, style))
        want = torch.autograd.grad(adain(content, style, unbiased=True).square().sum(), (content, style))
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
        with torch.no_grad():
            torch.testing.assert_close(compiled(content, style), adain(content, style, unbiased=True))
    assert counters["stats"]["unique_graphs"] - graphs == 2  # grad and no-grad; none for the 2nd shape


def test_adain_traces_and_exports_as_plain_operators(tmp_path) -> None:
    import onnxruntime as ort

    class Net(nn.Module):
        def forward(self, content: Tensor, style: Tensor) -> Tensor:
            return adain(content, style, unbiased=True)

    content, style = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 5, 5)
    traced = torch.jit.trace(Net(), (content, style))
    assert "PythonOp" not in str(traced.graph)
    torch.testing.assert_close(traced(content, style), adain(content, style, unbiased=True))
    path = tmp_path / "adain.onnx"
    torch.onnx.export(Net(), (content, style), str(path), dynamo=False, input_names=["c", "s"])
    (out,) = ort.InferenceSession(str(path)).run(None, {"c": content.numpy(), "s": style.numpy()})
    expected = adain(content, style, unbiased=True)
    torch.testing.assert_close(torch.from_numpy(out), expected, atol=1e-5, rtol=1e-5)


def test_adain_bf16_within_stated_tolerance() -> None:
    content, style = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16) * 2 + 1
    out = adain(content.bfloat16(), style.bfloat16(), unbiased=True)
    assert out.dtype == torch.bfloat16
    expected = reference_adain(content, style, 1e-5, True, 1.0)
    torch.testing.assert_close(out.float(), expected, atol=0.1, rtol=0.02)


# --- label maps -----------------------------------------------------------------------------


def test_semantic_map_round_trip_and_recognition() -> None:
    ids = regions(2, 5, 8, 12)
    edges = (torch.rand(2, 1, 8, 12) > 0.7).float()
    dense = torch.cat([onehot_of(ids, 5), edges], 1)
    found = SemanticMap.from_dense(dense)
    assert torch.equal(found.ids, ids) and torch.equal(found.extra, edges)
    assert torch.equal(found.to_dense(6), dense)
    assert torch.equal(SemanticMap.from_dense(onehot_of(ids, 5)).ids, ids)
    assert SemanticMap.from_dense(dense * 0.5) is None
    assert SemanticMap.from_dense(onehot_of(ids, 5) * 2 - onehot_of(ids, 5).roll(1, 1)) is None
    resized = found.resize((4, 5))
    torch.testing.assert_close(resized.to_dense(6), nearest(dense, 4, 5), rtol=0, atol=0)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_label_conv2d_equals_dense_conv_and_its_gradient(kernel: int) -> None:
    ids = torch.randint(6, (2, 7, 9))
    extra = torch.rand(2, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 8, kernel, kernel, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    dense = torch.cat([onehot_of(ids, 6).double(), extra], 1)
    expected = F.conv2d(dense, weight, bias, padding=kernel // 2)
    got = label_conv2d(SemanticMap(ids, extra), weight, bias)
    torch.testing.assert_close(got, expected)
    grad = torch.randn_like(expected)
    for g, w in zip(torch.autograd.grad(got, (weight, bias, extra), grad),
                    torch.autograd.grad(expected, (weight, bias, extra), grad)):
        torch.testing.assert_close(g, w)


def test_window_conv_is_the_conv_at_each_window_centre() -> None:
    ids, weight = torch.randint(4, (1, 5, 6)), torch.randn(3, 4, 3, 3)
    lw = label_windows(ids, 3)
    per_window = window_conv(lw.windows, weight)  # (V, 3)
    expected = F.conv2d(onehot_of(ids, 4), weight, padding=1)
    torch.testing.assert_close(paint_columns(per_window.t().contiguous(), lw.pixel_window), expected)


def test_label_windows_hold_each_pixels_window_and_patch() -> None:
    ids = regions(2, 4, 9, 11, cell=3)
    lw = label_windows(ids, 3)
    padded = F.pad(ids + 1, (1, 1, 1, 1))
    windows = padded.unfold(1, 3, 1).unfold(2, 3, 1).reshape(2, 9, 11, 9)
    torch.testing.assert_close(lw.windows[lw.pixel_window], windows, rtol=0, atol=0)
    grid = F.pad(lw.pixel_window + 1, (1, 1, 1, 1))
    window_grid = grid.unfold(1, 3, 1).unfold(2, 3, 1).reshape(2, 9, 11, 9)
    torch.testing.assert_close(lw.patches[lw.pixel_patch], window_grid, rtol=0, atol=0)
    assert len(lw.windows) == len(torch.unique(windows.reshape(-1, 9), dim=0))
    assert len(lw.patches) == len(torch.unique(window_grid.reshape(-1, 9), dim=0))


def test_fold_binary_extra_gives_the_same_convolution() -> None:
    ids, edges = torch.randint(5, (2, 6, 6)), (torch.rand(2, 2, 6, 6) > 0.5).float()
    weight = torch.randn(3, 7, 3, 3)
    folded_ids, folded_weight = fold_binary_extra(SemanticMap(ids, edges), weight)
    dense = torch.cat([onehot_of(ids, 5), edges], 1)
    torch.testing.assert_close(F.conv2d(onehot_of(folded_ids, 20), folded_weight, padding=1),
                               F.conv2d(dense, weight, padding=1), atol=1e-5, rtol=1e-5)
    assert fold_binary_extra(SemanticMap(ids, edges * 0.5), weight) is None


# --- SPADE ----------------------------------------------------------------------------------


SPADE_PATHS = {  # force each path whatever the map's count of distinct windows
    "patches": float("inf"),
    "windows then convs": 0.0,
}


@pytest.mark.parametrize("path", list(SPADE_PATHS))
@pytest.mark.parametrize(("map_size", "kernel"), [(16, 3), (32, 3), (16, 5)])
def test_spade_on_ids_equals_the_official_formula(path: str, map_size: int, kernel: int, device: torch.device,
                                                  dtype: torch.dtype) -> None:
    layer = randomize_(condnorm.SPADE(6, label_nc=5, hidden=8, kernel_size=kernel,
                                      window_fraction=SPADE_PATHS[path], device=device, dtype=dtype))
    x, ids = torch.randn(2, 6, 16, 16, device=device, dtype=dtype), regions(2, 5, map_size, map_size).to(device)
    expected = spade_reference(x, onehot_of(ids, 5).to(dtype), layer.state_dict(), batch_norm_train(x))
    torch.testing.assert_close(layer(x, ids), expected, atol=1e-5, rtol=1e-5)


def test_spade_patch_path_runs_on_region_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = condnorm.SPADE._paint_patches
    monkeypatch.setattr(condnorm.SPADE, "_paint_patches", lambda *a: calls.append(1) or original(*a))
    condnorm.SPADE(4, label_nc=3, hidden=4)(torch.randn(1, 4, 32, 32), regions(1, 3, 32, 32, cell=8))
    assert calls


@pytest.mark.parametrize("path", list(SPADE_PATHS))
def test_spade_ids_gradients_equal_the_dense_path_in_float64(path: str) -> None:
    layer = randomize_(condnorm.SPADE(4, label_nc=5, hidden=6, window_fraction=SPADE_PATHS[path])).double()
    ids = regions(2, 5, 16, 16)
    x = torch.randn(2, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 4, 16, 16, dtype=torch.float64)
    inputs = [x, *layer.parameters()]
    got = torch.autograd.grad(layer(x, ids), inputs, grad)
    want = torch.autograd.grad(layer(x, onehot_of(ids, 5).double()), inputs, grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)
    small = x[:, :, :8, :8].detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: layer(t, ids[:, :8, :8]), (small,))


@pytest.mark.parametrize("extra", ["binary", "dense"])
def test_spade_semantic_map_with_extra_channels(extra: str) -> None:
    layer = randomize_(condnorm.SPADE(4, label_nc=6, hidden=8))
    ids = regions(2, 5, 16, 16)
    edges = (torch.rand(2, 1, 16, 16) > 0.8).float() if extra == "binary" else torch.rand(2, 1, 16, 16)
    x = torch.randn(2, 4, 8, 8)
    expected = spade_reference(x, torch.cat([onehot_of(ids, 5), edges], 1), layer.state_dict(), batch_norm_train(x))
    torch.testing.assert_close(layer(x, SemanticMap(ids, edges)), expected, atol=1e-5, rtol=1e-5)


def test_spade_ids_under_tracing_and_compile_use_static_shapes() -> None:
    layer = randomize_(condnorm.SPADE(4, label_nc=5, hidden=8)).eval()
    x, ids = torch.randn(2, 4, 8, 8), regions(2, 5, 16, 16)
    with torch.no_grad():
        expected = layer(x, onehot_of(ids, 5))
        traced = torch.jit.trace(layer, (x, ids), check_trace=False)
        torch.testing.assert_close(traced(x, ids), expected, atol=1e-5, rtol=1e-5)
        torch._dynamo.reset()
        compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(x, ids), expected, atol=1e-5, rtol=1e-5)


def test_spade_ids_bf16_autocast_within_stated_tolerance() -> None:
    layer = randomize_(condnorm.SPADE(8, label_nc=5, hidden=16))
    x, ids = torch.randn(2, 8, 16, 16), regions(2, 5, 16, 16)
    expected = spade_reference(x, onehot_of(ids, 5), layer.state_dict(), batch_norm_train(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, ids)
    torch.testing.assert_close(out.float(), expected, atol=0.1, rtol=0.05)


@pytest.mark.parametrize(
    ("segmap", "match"),
    [
        (torch.full((2, 8, 8), 5), r"SPADE segmap ids: ids must be in \[0, 5\)"),
        (SemanticMap(torch.zeros(2, 8, 8, dtype=torch.long), torch.zeros(2, 1, 4, 4)),
         r"SPADE segmap extra: .*dimension 'H'' is 4, expected 8"),
        (torch.zeros(3, 8, 8, dtype=torch.long), r"SPADE segmap ids: .*dimension 'N' is 3, expected 2"),
    ],
)
def test_spade_label_errors(segmap: Tensor | SemanticMap, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        condnorm.SPADE(4, label_nc=5, hidden=4)(torch.randn(2, 4, 8, 8), segmap)


# --- the SPADE generator --------------------------------------------------------------------


def official_forward(g: SPADEGenerator, seg: Tensor) -> Tensor:
    """Every block gets the full-size dense map; SPADE layers resize it themselves (dense path)."""
    x = g.fc(F.interpolate(seg, size=g.latent_size, mode="nearest"))
    for name, upsample in g._schedule:
        if upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = getattr(g, name)(x, seg)
    return torch.tanh(g.conv_img(F.leaky_relu(x, 0.2)))


def _generator_pair(semantic_nc: int,
                    dtype: torch.dtype = torch.float32) -> tuple[SPADEGenerator, SPADEGenerator]:
    torch.manual_seed(0)
    g = randomize_(SPADEGenerator(semantic_nc, ngf=4, crop_size=64, norm="batch", spectral=False)).to(dtype)
    return g, copy.deepcopy(g)


@pytest.mark.parametrize("form", ["ids", "semantic map", "one-hot (recognised)"])
def test_generator_label_inputs_equal_the_official_dense_forward(form: str) -> None:
    g, reference = _generator_pair(6)
    ids = regions(2, 6, 64, 64)
    dense = onehot_of(ids, 6)
    segmap = {"ids": ids, "semantic map": SemanticMap(ids), "one-hot (recognised)": dense}[form]
    condition = g.condition(segmap)
    assert isinstance(condition, SemanticMap) and condition.extra is None  # the hard-label path
    torch.testing.assert_close(g(segmap), official_forward(reference, dense), atol=1e-4, rtol=1e-4)


def test_generator_finds_the_label_windows_once_per_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    import condnorm.semantic_map as semantic_map

    g, reference = _generator_pair(6)
    ids = regions(2, 6, 64, 64)
    calls: list[tuple[int, ...]] = []
    find = semantic_map.label_windows
    monkeypatch.setattr(semantic_map, "label_windows",
                        lambda i, k: calls.append(tuple(i.shape)) or find(i, k))
    out = g(ids)
    assert calls == [(2, 2 << k, 2 << k) for k in range(6)]  # 2² … 64², once each
    expected = official_forward(reference, onehot_of(ids, 6))
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_generator_instance_edges_take_the_semantic_map_path() -> None:
    g, reference = _generator_pair(6)
    ids, edges = regions(2, 5, 64, 64), (torch.rand(2, 1, 64, 64) > 0.9).float()
    dense = torch.cat([onehot_of(ids, 5), edges], 1)
    assert isinstance(g.condition(dense), SemanticMap)
    torch.testing.assert_close(g(dense), official_forward(reference, dense), atol=1e-4, rtol=1e-4)


def test_generator_gradients_equal_the_official_dense_path_in_float64() -> None:
    g, reference = _generator_pair(5, torch.float64)
    ids = regions(2, 5, 64, 64)
    grad = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    got = torch.autograd.grad(g(ids), list(g.parameters()), grad)
    want = torch.autograd.grad(official_forward(reference, onehot_of(ids, 5).double()),
                               list(reference.parameters()), grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_generator_keeps_soft_and_differentiable_maps_dense() -> None:
    g, _ = _generator_pair(4)
    soft = torch.rand(1, 4, 64, 64)
    assert g.condition(soft).is_floating_point()
    onehot = onehot_of(regions(1, 4, 64, 64), 4).requires_grad_()
    assert g.condition(onehot).is_floating_point()
    g(onehot).sum().backward()
    assert onehot.grad is not None and onehot.grad.abs().sum() > 0


def test_generator_with_other_norms_gets_the_dense_map() -> None:
    clade = SPADEGenerator(5, ngf=4, crop_size=64, norm="batch", spectral=False,
                           norm_layer=functools.partial(condnorm.CLADE, label_nc=5))
    ids = regions(1, 4, 64, 64)
    assert not clade.condition(ids).is_floating_point()  # CLADE takes ids
    edges = (torch.rand(1, 1, 64, 64) > 0.9).float()
    dense = torch.cat([onehot_of(ids, 4), edges], 1)
    assert clade.condition(SemanticMap(ids, edges)).equal(dense)  # but not extra channels
    torch.testing.assert_close(clade(SemanticMap(ids, edges)), clade(dense), atol=1e-5, rtol=1e-5)


def test_generator_label_errors() -> None:
    g = SPADEGenerator(6, ngf=4, crop_size=64, norm="batch")
    with pytest.raises(ValueError, match=r"SPADEGenerator segmap ids: ids must be in \[0, 6\)"):
        g(torch.full((1, 64, 64), 6))
    with pytest.raises(ValueError, match="expected spatial size"):
        g(torch.zeros(1, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match=r"SPADEGenerator segmap extra: .*dimension 'N' is 2, expected 1"):
        g(SemanticMap(torch.zeros(1, 64, 64, dtype=torch.long), torch.zeros(2, 1, 64, 64)))
