"""OASIS 3-D noise: per-pixel sampling (not one broadcast vector, OASIS issue 24), per-region option, concat."""

from __future__ import annotations

import pytest
import torch

from models.oasis import Z_DIM, concat_noise, pixel_noise, region_noise, with_noise
from tests.condnorm.reference import ids_map, onehot_of


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_pixel_noise_shape_and_default_width():
    z = pixel_noise(3, 5, 7, generator=_gen(0))
    assert Z_DIM == 64
    assert z.shape == (3, 64, 5, 7)
    assert pixel_noise(1, 2, 2, z_dim=8, dtype=torch.float64).dtype == torch.float64


def test_pixel_noise_differs_at_every_pixel():
    z = pixel_noise(2, 6, 6, generator=_gen(1))
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 64)  # one z-vector per pixel
    assert torch.unique(vectors, dim=0).shape[0] == vectors.shape[0]
    # not a broadcast vector: the spatial spread is that of N(0, 1), per channel
    assert z.std(dim=(2, 3)).min() > 0.3


def test_pixel_noise_is_independent_standard_normal():
    z = pixel_noise(16, 32, 32, generator=_gen(2))
    assert abs(z.mean().item()) < 0.02 and abs(z.std().item() - 1) < 0.02
    right = torch.corrcoef(torch.stack([z[..., :-1].flatten(), z[..., 1:].flatten()]))[0, 1]
    down = torch.corrcoef(torch.stack([z[..., :-1, :].flatten(), z[..., 1:, :].flatten()]))[0, 1]
    channel = torch.corrcoef(torch.stack([z[:, :-1].flatten(), z[:, 1:].flatten()]))[0, 1]
    assert max(abs(right), abs(down), abs(channel)) < 0.02


def test_pixel_noise_seeding():
    assert torch.equal(pixel_noise(2, 4, 4, generator=_gen(3)), pixel_noise(2, 4, 4, generator=_gen(3)))
    assert not torch.equal(pixel_noise(2, 4, 4, generator=_gen(3)), pixel_noise(2, 4, 4, generator=_gen(4)))


def test_region_noise_constant_inside_regions_distinct_across():
    label = ids_map(3, 4, 8, 8, seed=5)
    z = region_noise(label, 4, z_dim=16, generator=_gen(6))
    assert z.shape == (3, 16, 8, 8)
    for n in range(3):
        codes = []
        for c in range(4):
            inside = z[n][:, label[n] == c]  # (z_dim, pixels of c)
            assert torch.equal(inside, inside[:, :1].expand_as(inside))
            codes.append(inside[:, 0])
        assert torch.unique(torch.stack(codes), dim=0).shape[0] == 4
    # the same class gets different vectors in different images
    assert not torch.equal(z[0][:, label[0] == 0][:, 0], z[1][:, label[1] == 0][:, 0])


def test_region_noise_of_a_class_does_not_depend_on_the_other_regions():
    label = ids_map(1, 5, 8, 8, seed=7)
    other = torch.where((label == 1) | (label == 3), torch.full_like(label, 4), label)  # classes 1, 3 vanish
    assert torch.equal(other == 2, label == 2) and not torch.equal(other, label)
    a = region_noise(label, 5, z_dim=8, generator=_gen(8))
    b = region_noise(other, 5, z_dim=8, generator=_gen(8))
    sel = label[0] == 2
    assert torch.equal(a[0][:, sel], b[0][:, sel])


def test_region_noise_seeding_and_checks():
    label = ids_map(2, 3, 4, 4, seed=9)
    assert torch.equal(region_noise(label, 3, generator=_gen(1)), region_noise(label, 3, generator=_gen(1)))
    with pytest.raises(ValueError, match="ids must be in"):
        region_noise(label, 2)


def test_concat_noise_layout():
    seg = onehot_of(ids_map(2, 5, 4, 6, seed=1), 5)
    z = pixel_noise(2, 4, 6, z_dim=7, generator=_gen(2))
    x = concat_noise(seg, z)
    assert x.shape == (2, 5 + 7, 4, 6)
    assert torch.equal(x[:, :5], seg) and torch.equal(x[:, 5:], z)
    with pytest.raises(ValueError, match="noise"):
        concat_noise(seg, pixel_noise(2, 4, 5, z_dim=7))


@pytest.mark.parametrize("mode", ["pixel", "region"])
def test_with_noise(mode):
    seg = onehot_of(ids_map(2, 3, 8, 8, seed=4), 3)
    x = with_noise(seg, mode=mode, generator=_gen(5))
    assert x.shape == (2, 3 + 64, 8, 8)
    assert torch.equal(x[:, :3], seg)
    assert torch.equal(x, with_noise(seg, mode=mode, generator=_gen(5)))
    want = (pixel_noise(2, 8, 8, generator=_gen(5)) if mode == "pixel"
            else region_noise(seg.argmax(1), 3, generator=_gen(5)))
    assert torch.equal(x[:, 3:], want)
    with pytest.raises(ValueError, match="mode"):
        with_noise(seg, mode="image")


def test_noisy_map_feeds_a_spade_generator_with_label_nc_plus_z_dim_channels():
    from models.spade import SPADEGenerator

    torch.manual_seed(0)
    g = SPADEGenerator(3 + 8, ngf=4, crop_size=64, norm="instance")
    seg = onehot_of(ids_map(1, 3, 64, 64, seed=1), 3)
    a = g(with_noise(seg, z_dim=8, generator=_gen(1)))
    b = g(with_noise(seg, z_dim=8, generator=_gen(2)))
    assert a.shape == (1, 3, 64, 64)
    assert not torch.allclose(a, b)  # the noise reaches the image
