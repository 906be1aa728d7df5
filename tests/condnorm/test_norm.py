"""The parameter-free normalizer factory."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from condnorm import make_norm
from condnorm.norm import PARAMETER_FREE_KINDS


def _x() -> torch.Tensor:
    return torch.randn(4, 8, 5, 6, generator=torch.Generator().manual_seed(0)) * 3 + 2


@pytest.mark.parametrize("kind", PARAMETER_FREE_KINDS)
def test_every_kind_is_parameter_free(kind: str) -> None:
    norm = make_norm(kind, 8)
    assert list(norm.parameters()) == []
    assert norm(_x()).shape == (4, 8, 5, 6)


@pytest.mark.parametrize(
    ("kind", "dims"),
    [("batch", (0, 2, 3)), ("syncbatch", (0, 2, 3)), ("instance", (2, 3)), ("layer", (1, 2, 3))],
)
def test_statistics_are_taken_over_the_documented_dimensions(kind: str, dims: tuple[int, ...]) -> None:
    x = _x()
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)
    torch.testing.assert_close(make_norm(kind, 8).train()(x), (x - mean) / torch.sqrt(var + 1e-5))


def test_group_uses_gcd_of_32_and_channels_and_normalises_per_group() -> None:
    norm = make_norm("group", 8)
    assert norm.num_groups == 8
    x = _x()
    g = x.view(4, 2, 4, 5, 6)
    norm2 = make_norm("group", 8, num_groups=2)
    mean = g.mean((2, 3, 4), keepdim=True)
    var = ((g - mean) ** 2).mean((2, 3, 4), keepdim=True)
    torch.testing.assert_close(norm2(x), ((g - mean) / torch.sqrt(var + 1e-5)).view_as(x))


def test_running_statistics_where_the_kind_has_them() -> None:
    assert make_norm("batch", 8).track_running_stats
    assert make_norm("syncbatch", 8).track_running_stats
    assert not make_norm("instance", 8).track_running_stats
    assert isinstance(make_norm("none", 8), nn.Identity)


@pytest.mark.parametrize("alias", ["BatchNorm2d", "batch_norm", "bn", "BN", "in", "ln", "gn", "syncbn"])
def test_aliases_are_case_and_underscore_insensitive(alias: str) -> None:
    assert list(make_norm(alias, 8).parameters()) == []


def test_callables_partials_and_none() -> None:
    assert isinstance(make_norm(None, 8), nn.Identity)
    norm = make_norm(functools.partial(nn.GroupNorm, 2, affine=False), 8)
    assert norm.num_groups == 2 and norm.num_channels == 8
    assert make_norm(nn.InstanceNorm2d, 8).num_features == 8


def test_keyword_arguments_reach_the_module() -> None:
    norm = make_norm("batch", 8, eps=1e-3, momentum=0.5, dtype=torch.float64)
    assert (norm.eps, norm.momentum, norm.running_mean.dtype) == (1e-3, 0.5, torch.float64)


def test_unknown_kind_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown kind 'batchy'; choose one of batch, syncbatch"):
        make_norm("batchy", 8)


def test_group_count_must_divide_the_channels() -> None:
    with pytest.raises(ValueError, match="num_features=8 is not divisible by num_groups=3"):
        make_norm("group", 8, num_groups=3)


def test_wrong_spec_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="kind must be a str, a callable or None"):
        make_norm(3, 8)  # type: ignore[arg-type]
