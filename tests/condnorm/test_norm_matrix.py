"""Every normalizer of condnorm.norms (``norm_cases.CASES``) under the cross-cutting checks.

Float64 gradcheck (input, context and the normalizer's own parameters), train/eval behaviour,
``torch.compile(fullgraph=True)``, ONNX export parity with onnxruntime (≤ 1e-4, at new sizes),
the kinds under SPADE / AdaptiveInstanceNorm2d / CBN with the context passed through, and
``make_norm`` / ``is_batch_statistics`` / ``recalibrate``.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call

from condnorm import CBN, NORM_KINDS, SPADE, AdaptiveInstanceNorm2d, make_norm, recalibrate
from condnorm.norm import PARAMETER_FREE_KINDS, is_batch_statistics
from models.app.export.graphs import layer_spec
from models.app.export.verify import parity
from tests.condnorm.norm_cases import CASES, IDS, NormCase

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")


def build(case: NormCase, channels: int = 4, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The case's normalizer with its own parameters moved off their init (so no term hides)."""
    torch.manual_seed(0)
    norm = make_norm(case.kind, channels, dtype=dtype, **case.kwargs)
    with torch.no_grad():
        for p in norm.parameters():
            p.add_(torch.randn(p.shape, dtype=p.dtype) * 0.2)
    return norm


def data(n: int = 4, c: int = 4, h: int = 5, w: int = 6, seed: int = 0, dtype=torch.float32) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, h, w, generator=g) * 2 + 0.5).to(dtype)


def test_make_norm_lists_every_kind() -> None:
    assert set(NORM_KINDS) == set(PARAMETER_FREE_KINDS) | set(IDS) | {"region_learned"}
    assert len(NORM_KINDS) == 21
    for alias, kind in [("SwitchableNorm2d", "switchable"), ("SSN", "sparse_switchable"),
                        ("sparse-switchable", "sparse_switchable"), ("FilterResponseNorm2d", "frn"),
                        ("LocalContextNorm", "local_context"), ("DSBN", "domain_specific"),
                        ("L1BatchNorm2d", "l1_batch"), ("AdaptiveBatchNorm2d", "adaptive_batch"),
                        ("CrossIterationBatchNorm2d", "cross_iteration"), ("RN-L", "region_learned")]:
        assert type(make_norm(alias, 4)) is type(make_norm(kind, 4)), alias


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_no_affine_by_default_and_affine_on_request(case: NormCase) -> None:
    norm = make_norm(case.kind, 4, **case.kwargs)
    own = {name for name, _ in norm.named_parameters(recurse=False)}
    assert not own & {"weight", "bias"}
    affine = make_norm(case.kind, 4, affine=True, **case.kwargs)
    names = {name for name, _ in affine.named_parameters()}
    assert {"weight", "bias"} <= names or {"bn.weight", "bn.bias"} <= names


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case: NormCase) -> None:
    norm = build(case, dtype=torch.float64).train()
    x = data(3, 4, 3, 4, dtype=torch.float64).requires_grad_()
    context = case.context(x)
    grad_context = {k: v.requires_grad_() for k, v in context.items()
                    if v.is_floating_point() and k != "mask"}
    params = dict(norm.named_parameters())
    buffers = dict(norm.named_buffers())
    keys = [*grad_context, *params]

    def fn(x: Tensor, *tensors: Tensor) -> Tensor:
        given = dict(zip(keys, tensors))
        state = {**{k: b.clone() for k, b in buffers.items()}, **{k: given[k] for k in params}}
        ctx = {**context, **{k: given[k] for k in grad_context}}
        return functional_call(norm, state, (x,), ctx)  # buffers are copies: every call is the same

    assert torch.autograd.gradcheck(fn, (x, *grad_context.values(), *params.values()), atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_train_and_eval(case: NormCase) -> None:
    norm = build(case)
    x, other = data(seed=0), data(seed=1)
    before = {k: b.clone() for k, b in norm.named_buffers()}
    y = norm.train()(x, **case.context(x))
    changed = [k for k, b in norm.named_buffers() if not torch.equal(b, before[k])]
    norm.eval()
    y_eval = norm(x, **case.context(x))
    # eval output of one sample depends on the rest of the batch only for RN (no running statistics)
    mixed = torch.cat([x[:2], other[2:]])
    same = torch.allclose(norm(mixed, **case.context(mixed))[:2], y_eval[:2], atol=1e-6)
    assert same != case.batch_stats_in_eval
    if case.running:
        assert any(is_batch_statistics(m) for m in norm.modules())
        assert any("running" in k for k in changed)
        assert not torch.allclose(y, y_eval, atol=1e-3)
    else:
        assert not any(is_batch_statistics(m) for m in norm.modules()) and not changed
        torch.testing.assert_close(y, y_eval)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compile_fullgraph(case: NormCase, mode: str) -> None:
    norm = build(case).train(mode == "train")
    eager = copy.deepcopy(norm)
    compiled = torch.compile(norm, fullgraph=True, backend="aot_eager")
    for seed in (0, 1):  # twice: buffer updates (running and past statistics) must match too
        x = data(seed=seed)
        torch.testing.assert_close(compiled(x, **case.context(x)), eager(x, **case.context(x)))
    for (name, a), b in zip(norm.named_buffers(), eager.buffers()):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "tracing"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_onnx_export_matches_eager(case: NormCase, dynamo: bool) -> None:
    norm = build(case)
    for seed in (1, 2):  # running statistics away from their init
        x = data(seed=seed)
        norm(x, **case.context(x))
    x = data(2, 4, 5, 6)
    context = case.context(x) if case.onnx_context else {}
    assert parity(layer_spec(norm.eval(), x, *context.values()), "onnx", dynamo=dynamo) <= 1e-4


def _layers(case: NormCase) -> list[tuple[nn.Module, Tensor]]:
    norm = functools.partial(make_norm, case.kind, **case.kwargs)  # options reach the normalizer
    return [(SPADE(4, label_nc=3, norm=norm, hidden=8), torch.rand(4, 3, 10, 12)),
            (AdaptiveInstanceNorm2d(4, style_dim=6, norm=norm), torch.randn(4, 6)),
            (CBN(4, num_classes=3, norm=norm), torch.tensor([0, 2, 1, 2]))]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_under_spade_adain_and_cbn_with_the_context(case: NormCase) -> None:
    x = data()
    for layer, condition in _layers(case):
        norm = copy.deepcopy(layer.param_free_norm)
        out = layer.train()(x, condition, **case.context(x))
        # γ = β = 0 at init: the layer is its normalizer, which saw the same context
        torch.testing.assert_close(out, norm(x, **case.context(x)), msg=type(layer).__name__)
        out.square().sum().backward()
        assert all(p.grad is not None for p in layer.param_free_norm.parameters())


@pytest.mark.parametrize("case", [c for c in CASES if c.kind != "adaptive_batch"],
                         ids=[c.kind for c in CASES if c.kind != "adaptive_batch"])
def test_wrong_input_shape_is_a_clear_error(case: NormCase) -> None:
    norm = make_norm(case.kind, 4, **case.kwargs)
    x = data(c=5)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, C=4, H, W\), got \(4, 5, 5, 6\)"):
        norm(x, **case.context(x))
    with pytest.raises(ValueError, match=r"expected a 4-d tensor of shape \(N, C=4, H, W\)"):
        norm(x[0], **case.context(x))


def test_context_for_a_kind_without_it_is_a_clear_error() -> None:
    layer = SPADE(4, label_nc=3, norm="batch", hidden=8)
    with pytest.raises(TypeError, match="BatchNorm2d does not accept the normalizer context mask="):
        layer(data(), torch.rand(4, 3, 5, 6), mask=torch.ones(4, 1, 5, 6))


@pytest.mark.parametrize("case", [c for c in CASES if c.running], ids=[c.kind for c in CASES if c.running])
def test_recalibrate_re_estimates_the_running_statistics(case: NormCase) -> None:
    x = data(seed=4)
    net = build(case)
    reference = copy.deepcopy(net).train()
    for m in reference.modules():  # one batch with momentum 1: the statistics of exactly that batch
        if is_batch_statistics(m):
            m.momentum = 1.0
    reference(x, **case.context(x))
    with torch.no_grad():
        for name, b in net.named_buffers():
            if "running" in name:
                b.add_(3.0)  # stale statistics recalibration must replace
    net.eval()

    def forward(model: nn.Module, batch: Tensor) -> Tensor:
        return model(batch, **case.context(batch))

    recalibrate(net, [x], forward=forward)
    assert not net.training
    got = {k: b for k, b in net.named_buffers() if "running" in k}
    want = dict(reference.named_buffers())
    assert got
    for k, b in got.items():
        torch.testing.assert_close(b, want[k], msg=k)
