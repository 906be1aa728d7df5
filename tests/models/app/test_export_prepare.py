"""Preparing networks for export, and safetensors + JSON weights that rebuild without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import condnorm
from models.adain import StyleTransfer
from models.app.export.architecture import (
    describe,
    load_exported_safetensors,
    read_description,
    save_exported_safetensors,
)
from models.app.export.prepare import fold_reparameterizations, inference_network, prepare_for_export
from models.spade import ConvEncoder, SPADEGenerator
from models.spade.clade import clade_generator
from tests.models.app.export_cases import perturbed_


def _power_iterated(module: nn.Module, *inputs: torch.Tensor) -> nn.Module:
    """Training-mode forwards move spectral norm's u, v away from their init; then eval."""
    with torch.no_grad():
        for _ in range(3):
            module.train()(*inputs)
    return module.eval()


def test_folding_hook_spectral_norm_gives_the_eval_weight_and_output() -> None:
    conv = _power_iterated(nn.utils.spectral_norm(nn.Conv2d(3, 5, 3)), torch.randn(2, 3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = conv(x)
        w = conv.weight_orig.flatten(1)
        sigma = conv.weight_u @ (w @ conv.weight_v)  # the hook's eval-mode σ, written out
        folded = fold_reparameterizations(conv)
    assert sorted(folded.state_dict()) == ["bias", "weight"]
    assert not folded._forward_pre_hooks
    torch.testing.assert_close(folded.weight, (w / sigma).view_as(folded.weight))
    torch.testing.assert_close(folded(x), expected, rtol=0, atol=1e-6)


def test_folded_module_loads_its_own_state_dict() -> None:
    # remove_spectral_norm leaves the (wrapped) load hook that maps weight → weight_orig.
    conv = fold_reparameterizations(nn.utils.spectral_norm(nn.Conv2d(3, 4, 1)))
    state = {k: v + 1 for k, v in conv.state_dict().items()}
    conv.load_state_dict(state)
    torch.testing.assert_close(conv.weight, state["weight"])


def test_folding_parametrized_spectral_norm_matches_eval_and_never_iterates() -> None:
    layer = condnorm.CBN(8, cond_dim=6, spectral=True)
    x, c = torch.randn(4, 8, 5, 5), torch.randn(4, 6)
    _power_iterated(layer, x, c)
    with torch.no_grad():
        expected = layer(x, c)
    layer.train()  # folding must not run a power iteration even when the module trains
    fold_reparameterizations(layer)
    assert not hasattr(layer.gamma, "parametrizations")
    with torch.no_grad():
        torch.testing.assert_close(layer.eval()(x, c), expected, rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")
def test_folding_weight_norm() -> None:
    lin = torch.nn.utils.weight_norm(nn.Linear(4, 3))
    x = torch.randn(2, 4)
    expected = lin(x).detach()
    fold_reparameterizations(lin)
    assert sorted(lin.state_dict()) == ["bias", "weight"]
    torch.testing.assert_close(lin(x).detach(), expected)


def test_prepare_reverts_sync_batchnorm_keeps_statistics_and_the_original() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4), condnorm.SyncBatchNorm2d(4, affine=False))
    for bn in (net[1], net[2]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 6, 6)
    expected = net.eval()(x)
    net.train()
    ready = prepare_for_export(net)
    assert [type(m) for m in ready] == [nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm2d]
    assert not ready.training and not any(p.requires_grad for p in ready.parameters())
    assert type(net[1]) is nn.SyncBatchNorm and net[0].weight.requires_grad  # the original is untouched
    torch.testing.assert_close(ready(x), expected.detach())


def test_prepare_picks_the_ema_generator() -> None:
    holder = nn.Module()
    holder.generator = nn.Linear(2, 2)
    assert inference_network(holder) is holder.generator
    holder.generator_ema = nn.Linear(2, 2)
    assert inference_network(holder) is holder.generator_ema
    ready = prepare_for_export(holder)
    torch.testing.assert_close(ready.weight, holder.generator_ema.weight)


def test_prepared_generator_equals_the_eval_generator() -> None:
    g = perturbed_(SPADEGenerator(5, ngf=4, crop_size=32, norm="syncbatch"))
    seg = torch.rand(2, 5, 32, 32)
    _power_iterated(g, seg)
    with torch.no_grad():
        expected = g(seg)
        got = prepare_for_export(g)(seg)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


NETWORKS = {
    "spade-vae": lambda: SPADEGenerator(5, ngf=4, crop_size=64, aspect_ratio=2.0, use_vae=True, z_dim=8),
    "clade-instance": lambda: clade_generator(5, ngf=4, crop_size=32, norm="instance", plain_gamma=True),
    "encoder": lambda: ConvEncoder(ngf=4, z_dim=8, input_size=16),
    "adacon": lambda: StyleTransfer(modulation="adacon", style_dim=8, style_hidden=16, adacon_groups=64),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_safetensors_round_trip_rebuilds_the_prepared_network(name: str, tmp_path: Path) -> None:
    net = perturbed_(NETWORKS[name]())
    path = save_exported_safetensors(net, tmp_path / "net.safetensors", metadata={"task": "test"})
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar == read_description(path) and sidecar["task"] == "test"
    again = load_exported_safetensors(path)
    expected = prepare_for_export(net).state_dict()
    assert not again.training and again.state_dict().keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(again.state_dict()[key], value), key
    assert not any("weight_orig" in k for k in load_file(str(path)))  # folded weights only


def test_safetensors_generator_output_survives(tmp_path: Path) -> None:
    g = perturbed_(SPADEGenerator(5, ngf=4, crop_size=32, norm="batch"))
    seg = torch.rand(2, 5, 32, 32)
    with torch.no_grad():
        expected = g.eval()(seg)
        got = load_exported_safetensors(save_exported_safetensors(g, tmp_path / "g.safetensors"))(seg)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_describe_reads_the_training_architecture() -> None:
    g = SPADEGenerator(7, ngf=2, crop_size=128, aspect_ratio=2.0, num_upsampling_layers="more",
                       norm="syncbatch")
    d = describe(g)
    assert d["builder"] == "spade"
    assert {k: d["args"][k] for k in ("semantic_nc", "ngf", "crop_size", "aspect_ratio", "norm", "spectral",
                                      "num_upsampling_layers")} == \
        {"semantic_nc": 7, "ngf": 2, "crop_size": 128, "aspect_ratio": 2.0, "norm": "syncbatch",
         "spectral": True, "num_upsampling_layers": "more"}
    assert describe(prepare_for_export(g))["args"]["spectral"] is False


def test_describe_refuses_what_it_cannot_rebuild(tmp_path: Path) -> None:
    custom = SPADEGenerator(5, ngf=2, crop_size=32, norm_layer=lambda c: condnorm.SPADE(c, 5, hidden=8))
    with pytest.raises(ValueError, match="cannot be rebuilt from"):
        describe(custom)
    with pytest.raises(ValueError, match="no architecture builder for Linear"):
        describe(nn.Linear(2, 2))
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="no 'condnorm' architecture description"):
        load_exported_safetensors(foreign)
