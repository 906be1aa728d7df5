"""Validation metrics: the download-free class colour error, and the optional pretrained ones."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from models.metrics import class_color_error, optional_fid, optional_lpips


def test_class_color_error_against_a_hand_computation() -> None:
    labels = torch.tensor([[[0, 0], [1, 1]]])  # class 0 on top, class 1 below
    real = torch.zeros(1, 3, 2, 2)
    fake = torch.zeros(1, 3, 2, 2)
    fake[:, 0, 0, :] = 0.4  # red of class 0 off by 0.4 in [-1, 1] -> 0.2 on [0, 1]
    fake[:, :, 1, 0] = 1.0  # one of two class-1 pixels off by 1.0 in every channel -> mean 0.5 -> 0.25
    # class 0: mean over channels of (0.2, 0, 0) = 0.0667; class 1: 0.25; average 0.1583
    expected = ((0.2 / 3) + 0.25) / 2
    assert class_color_error(fake, real, labels, 3) == pytest.approx(expected)


def test_class_color_error_ignores_absent_classes_and_is_zero_for_identical_images() -> None:
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    image = torch.rand(2, 3, 4, 4) * 2 - 1
    assert class_color_error(image, image, labels, 10) == 0


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every weight download fails at once, as on a machine without internet."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", "/nonexistent-torch-home")


def test_lpips_without_weights_warns_and_returns_none(offline: None) -> None:
    with pytest.warns(UserWarning, match="LPIPS disabled"):
        assert optional_lpips() is None


def test_fid_without_weights_warns_and_returns_none(offline: None) -> None:
    with pytest.warns(UserWarning, match="FID disabled"):
        assert optional_fid(None, feature=64) is None
