"""Stand-ins for the pretrained metric networks (no download): random weights where the loaders look.

``stand_in_alexnet`` serves LPIPS (torchvision's AlexNet in a private TORCH_HOME hub cache),
``stand_in_inception`` serves FID/KID (a torch-fidelity InceptionV3 state dict, the ``fid_weights``
format). The networks are untrained, so the metric values are meaningless; the code paths are real.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision

__all__ = ["stand_in_alexnet", "stand_in_inception"]


def stand_in_alexnet(monkeypatch, tmp_path: Path) -> None:
    """A random AlexNet where torchvision's hub cache expects the ImageNet one, under a private TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    name = Path(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url).name
    assert name == "alexnet-owt-7be5be79.pth"
    cache = tmp_path / "torch_home" / "hub" / "checkpoints" / name
    cache.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet().state_dict(), cache)


def stand_in_inception(monkeypatch, path: Path) -> None:
    """A random torch-fidelity InceptionV3 state dict at ``path`` (the ``fid_weights`` format)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    empty = path.with_name("empty.pth")
    torch.save({}, empty)
    with monkeypatch.context() as patch:  # build it without loading the real weights
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                          feature_extractor_weights_path=str(empty))
    torch.save(net.state_dict(), path)
