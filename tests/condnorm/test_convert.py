"""convert, SyncBatchNorm conversion and recalibration of running statistics."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from condnorm import (
    CLADE,
    RAIN,
    SPADE,
    convert,
    convert_sync_batchnorm,
    make_norm,
    recalibrate,
    revert_sync_batchnorm,
)
from tests.condnorm.layer_cases import randomize_
from tests.condnorm.reference import ids_map, onehot


def trained_bn(c: int, seed: int = 0, **kw) -> nn.BatchNorm2d:
    """A BatchNorm2d with non-default affine parameters and running statistics."""
    bn = nn.BatchNorm2d(c, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=g))
        bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
        bn.num_batches_tracked.fill_(9)
        if bn.affine:
            bn.weight.copy_(torch.randn(c, generator=g))
            bn.bias.copy_(torch.randn(c, generator=g))
    return bn


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), trained_bn(4),
                         nn.Sequential(nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), trained_bn(6, seed=1)))


def test_convert_with_class_name_and_module_factory() -> None:
    net = convert(small_net(), nn.BatchNorm2d, nn.InstanceNorm2d)
    assert type(net[1]) is nn.InstanceNorm2d and net[1].num_features == 4
    assert type(net[2][2]) is nn.InstanceNorm2d and net[2][2].num_features == 6
    net = convert(small_net(), nn.BatchNorm2d, "group")
    assert [type(m) for m in (net[1], net[2][2])] == [nn.GroupNorm, nn.GroupNorm]
    seen = []
    net = convert(small_net(), nn.BatchNorm2d, lambda m: seen.append(m) or nn.Identity())
    assert [m.num_features for m in seen] == [4, 6] and type(net[1]) is nn.Identity


def test_convert_replaces_the_root_and_tuple_of_types() -> None:
    assert type(convert(nn.BatchNorm2d(4), nn.BatchNorm2d, nn.InstanceNorm2d)) is nn.InstanceNorm2d
    net = nn.Sequential(nn.BatchNorm2d(4), nn.InstanceNorm2d(4))
    net = convert(net, (nn.BatchNorm2d, nn.InstanceNorm2d), "layer")
    assert all(type(m) is nn.GroupNorm and m.num_groups == 1 for m in net)


def test_convert_to_a_condnorm_layer_keeps_statistics_and_terminates() -> None:
    net = small_net()
    old = net[1]
    net = convert(net, nn.BatchNorm2d, functools.partial(SPADE, label_nc=3, hidden=8))
    assert isinstance(net[1], SPADE) and isinstance(net[1].param_free_norm, nn.BatchNorm2d)
    assert torch.equal(net[1].param_free_norm.running_mean, old.running_mean)
    assert int(net[1].param_free_norm.num_batches_tracked) == 9
    # and back: the condnorm layer's normalizer statistics move into the plain norm
    net = convert(net, SPADE, lambda m: nn.BatchNorm2d(m.num_features))
    assert torch.equal(net[1].running_var, old.running_var)


def test_convert_copies_state_mode_and_requires_grad() -> None:
    bn = trained_bn(4).eval()
    bn.weight.requires_grad_(False)
    new = convert(nn.Sequential(bn), nn.BatchNorm2d, lambda m: nn.BatchNorm2d(m.num_features))[0]
    assert new is not bn and not new.training and not new.weight.requires_grad and new.bias.requires_grad
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(new, name), getattr(bn, name))


def test_convert_keeps_dtype_and_device() -> None:
    net = small_net().double()
    net.insert(3, nn.InstanceNorm2d(6))  # holds no tensors: the model's dtype is used
    net = convert(net, (nn.BatchNorm2d, nn.InstanceNorm2d), functools.partial(CLADE, label_nc=3))
    assert all(p.dtype == torch.float64 for p in net.parameters())
    with torch.device("meta"):
        meta = small_net()
    meta = convert_sync_batchnorm(meta)
    assert all(t.device.type == "meta" for t in (*meta.parameters(), *meta.buffers()))


def test_convert_error_without_channel_count() -> None:
    with pytest.raises(TypeError, match=r"cannot read the channel count of LayerNorm"):
        convert(nn.Sequential(nn.LayerNorm(4)), nn.LayerNorm, nn.InstanceNorm2d)


def test_sync_batchnorm_round_trip_covers_condnorm_layers() -> None:
    model = nn.ModuleDict({
        "spade": randomize_(SPADE(4, label_nc=3, hidden=8)),
        "clade": CLADE(4, label_nc=3),
        "rain": RAIN(4, label_nc=3, style_dim=5, hidden=8),
        "plain": make_norm("batch", 4),
        "net": small_net(),
    })
    x = torch.randn(2, 4, 6, 6)
    for _ in range(2):  # non-trivial statistics
        model["spade"](x, onehot(2, 3, 6, 6))
        model["plain"](x * 3)
    model.eval()
    expected = model["spade"](x, onehot(2, 3, 6, 6))
    keys = set(model.state_dict())
    sync = convert_sync_batchnorm(copy.deepcopy(model))
    bns = [m for m in sync.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 6 and all(type(m) is nn.SyncBatchNorm for m in bns)
    assert set(sync.state_dict()) == keys and not sync.training
    torch.testing.assert_close(sync["spade"](x, onehot(2, 3, 6, 6)), expected)
    back = revert_sync_batchnorm(sync)
    assert sum(type(m) is nn.BatchNorm2d for m in back.modules()) == 6
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in back.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


# --- recalibrate -------------------------------------------------------------------------------------


def concat_stats(chunks: list[Tensor]) -> tuple[Tensor, Tensor]:
    data = torch.cat(chunks).transpose(0, 1).flatten(1)
    return data.mean(1), data.var(1, unbiased=True)


@pytest.mark.parametrize("training", [True, False])
def test_recalibrate_gives_the_statistics_of_the_concatenated_data(training: bool) -> None:
    net = small_net().double().train(training)
    params = copy.deepcopy(dict(net.named_parameters()))
    momenta = [net[1].momentum, net[2][2].momentum]
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(n, 3, 5, 5, generator=g, dtype=torch.float64) * 2 + 1 for n in (2, 5, 3)]
    recalibrate(net, batches)
    conv1, conv2 = net[0], net[2][1]
    with torch.no_grad():
        h1 = [conv1(b) for b in batches]
        # the first norm standardised each batch with its own statistics, then its affine map
        h2 = [conv2(torch.relu(F.batch_norm(h, None, None, net[1].weight, net[1].bias, training=True)))
              for h in h1]
    for bn, chunks in ((net[1], h1), (net[2][2], h2)):
        mean, var = concat_stats(chunks)
        torch.testing.assert_close(bn.running_mean, mean)
        torch.testing.assert_close(bn.running_var, var)
        assert bn.running_mean.dtype == torch.float64 and int(bn.num_batches_tracked) == 3
    for name, p in net.named_parameters():
        assert torch.equal(p, params[name]), name
    assert all(m.training == training for m in net.modules())
    assert [net[1].momentum, net[2][2].momentum] == momenta


def test_recalibrate_condnorm_layers_with_a_forward_function() -> None:
    layer = randomize_(RAIN(4, label_nc=3, style_dim=5, hidden=8))
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(2, 4, 6, 6, generator=g) + k for k in range(3)]
    codes = torch.randn(2, 3, 5, generator=g)
    noise = torch.randn(2, 1, 6, 6, generator=g)
    recalibrate(layer, xs, forward=lambda m, x: m(x, onehot(2, 3, 6, 6), codes, noise))
    mean, var = concat_stats([x + noise * layer.noise_var.view(1, -1, 1, 1) for x in xs])
    torch.testing.assert_close(layer.param_free_norm.running_mean, mean)
    torch.testing.assert_close(layer.param_free_norm.running_var, var)


def test_recalibrate_default_forward_unpacks_tuples_and_dicts() -> None:
    layer = CLADE(4, label_nc=3)
    xs = [torch.randn(3, 4, 4, 4) for _ in range(2)]
    recalibrate(layer, [(x, ids_map(3, 3, 4, 4)) for x in xs])
    first = layer.param_free_norm.running_mean.clone()
    torch.testing.assert_close(first, concat_stats(xs)[0])
    recalibrate(layer, [{"x": x, "segmap": ids_map(3, 3, 4, 4)} for x in xs])
    torch.testing.assert_close(layer.param_free_norm.running_mean, first)


def test_recalibrate_without_reset_averages_with_the_old_statistics() -> None:
    bn = trained_bn(3, affine=False)  # 9 earlier batches
    old_mean, old_var = bn.running_mean.clone(), bn.running_var.clone()
    xs = [torch.randn(4, 3, 4, 4) for _ in range(3)]
    recalibrate(bn, xs, reset=False)
    mean, var = concat_stats(xs)
    torch.testing.assert_close(bn.running_mean, (9 * old_mean + 3 * mean) / 12)
    torch.testing.assert_close(bn.running_var, (9 * old_var + 3 * var) / 12)
    assert int(bn.num_batches_tracked) == 12


def test_recalibrate_instance_norm_averages_instance_statistics() -> None:
    norm = nn.InstanceNorm2d(3, track_running_stats=True)
    xs = [torch.randn(2, 3, 4, 4) * 3, torch.randn(1, 3, 4, 4) + 2]
    recalibrate(norm, xs)
    per_instance = torch.cat(xs).flatten(2)
    torch.testing.assert_close(norm.running_mean, per_instance.mean(-1).mean(0))
    torch.testing.assert_close(norm.running_var, per_instance.var(-1).mean(0))


def test_recalibrate_leaves_spectral_norm_and_unreached_norms_alone() -> None:
    net = nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(3, 4, 3)), nn.BatchNorm2d(4))
    unused = trained_bn(4)
    net.add_module("unused", unused)
    state = copy.deepcopy(net.state_dict())

    def run(model: nn.Module, x: Tensor) -> Tensor:
        return model[1](model[0](x))

    recalibrate(net, [torch.randn(2, 3, 6, 6)], forward=run)
    after = net.state_dict()
    for key in ("0.weight_orig", "0.weight_u", "0.weight_v", "0.bias"):
        assert torch.equal(after[key], state[key]), key
    for key in ("unused.running_mean", "unused.running_var", "unused.num_batches_tracked"):
        assert torch.equal(after[key], state[key]), key
    assert not torch.equal(after["1.running_mean"], state["1.running_mean"])


def test_recalibrate_restores_everything_on_error() -> None:
    net = small_net().eval()
    state = copy.deepcopy(net.state_dict())

    def batches():
        yield torch.randn(2, 3, 4, 4)
        raise RuntimeError("loader broke")

    with pytest.raises(RuntimeError, match="loader broke"):
        recalibrate(net, batches())
    assert not any(m.training for m in net.modules())
    assert net[1].momentum == 0.1 and not net[1]._forward_pre_hooks
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
