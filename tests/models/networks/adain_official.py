"""An independent, hand-written stand-in for pytorch-AdaIN's ``net.py``/``function.py``/``test.py``.

Written from the reference notes (shared/reference/adain-adacon.md §1), not from the project's
code: the 53-module ``vgg`` and 29-module ``decoder`` layer lists, the published state-dict keys
and shapes, random weights in that format, and ``style_transfer`` as ``test.py`` runs it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

# Published files: index → (out, in, k, k) of each conv weight (each also has a bias).
VGG_SHAPES = {
    0: (3, 3, 1, 1), 2: (64, 3, 3, 3), 5: (64, 64, 3, 3), 9: (128, 64, 3, 3), 12: (128, 128, 3, 3),
    16: (256, 128, 3, 3), 19: (256, 256, 3, 3), 22: (256, 256, 3, 3), 25: (256, 256, 3, 3),
    29: (512, 256, 3, 3), 32: (512, 512, 3, 3), 35: (512, 512, 3, 3), 38: (512, 512, 3, 3),
    42: (512, 512, 3, 3), 45: (512, 512, 3, 3), 48: (512, 512, 3, 3), 51: (512, 512, 3, 3),
}
DECODER_SHAPES = {
    1: (256, 512, 3, 3), 5: (256, 256, 3, 3), 8: (256, 256, 3, 3), 11: (256, 256, 3, 3),
    14: (128, 256, 3, 3), 18: (128, 128, 3, 3), 21: (64, 128, 3, 3), 25: (64, 64, 3, 3), 28: (3, 64, 3, 3),
}


def _pc(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(c_in, c_out, (3, 3))]


def official_vgg() -> nn.Sequential:
    """net.py's ``vgg``, written out layer by layer."""
    pool = lambda: nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)  # noqa: E731
    r = nn.ReLU
    return nn.Sequential(
        nn.Conv2d(3, 3, (1, 1)),
        *_pc(3, 64), r(), *_pc(64, 64), r(), pool(),                                   # 1..7
        *_pc(64, 128), r(), *_pc(128, 128), r(), pool(),                               # 8..14
        *_pc(128, 256), r(), *_pc(256, 256), r(), *_pc(256, 256), r(), *_pc(256, 256), r(), pool(),
        *_pc(256, 512), r(), *_pc(512, 512), r(), *_pc(512, 512), r(), *_pc(512, 512), r(), pool(),
        *_pc(512, 512), r(), *_pc(512, 512), r(), *_pc(512, 512), r(), *_pc(512, 512), r(),
    )


def official_decoder() -> nn.Sequential:
    """net.py's ``decoder``, written out layer by layer."""
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    r = nn.ReLU
    return nn.Sequential(
        *_pc(512, 256), r(), up(),
        *_pc(256, 256), r(), *_pc(256, 256), r(), *_pc(256, 256), r(), *_pc(256, 128), r(), up(),
        *_pc(128, 128), r(), *_pc(128, 64), r(), up(),
        *_pc(64, 64), r(), *_pc(64, 3),
    )


def randomize_official(vgg: nn.Sequential, decoder: nn.Sequential, seed: int = 0) -> None:
    """He-normal weights, small biases; the decoder's output sits around 0.5 so little is clamped."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for net in (vgg, decoder):
            for m in net:
                if isinstance(m, nn.Conv2d):
                    fan_in = m.weight[0].numel()
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.01)
        vgg[0].weight.mul_(20.0)  # like the real file's ×255 input scale: features of order 1–10
        decoder[-1].weight.mul_(0.003)
        decoder[-1].bias.fill_(0.5)


def save_official(tmp_path: Path, seed: int = 0) -> tuple[Path, Path, nn.Sequential, nn.Sequential]:
    """Random weights saved as plain state dicts, like ``vgg_normalised.pth`` and ``decoder.pth``."""
    vgg, decoder = official_vgg(), official_decoder()
    randomize_official(vgg, decoder, seed)
    vgg_path, dec_path = tmp_path / "vgg_normalised.pth", tmp_path / "decoder.pth"
    torch.save(vgg.state_dict(), vgg_path)
    torch.save(decoder.state_dict(), dec_path)
    return vgg_path, dec_path, vgg, decoder


def calc_mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """function.py: unbiased ``var`` plus eps, then sqrt."""
    n, c = feat.shape[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def ref_adain(content_feat: Tensor, style_feat: Tensor) -> Tensor:
    """function.py's ``adaptive_instance_normalization``."""
    size = content_feat.size()
    s_mean, s_std = calc_mean_std(style_feat)
    c_mean, c_std = calc_mean_std(content_feat)
    normalized = (content_feat - c_mean.expand(size)) / c_std.expand(size)
    return normalized * s_std.expand(size) + s_mean.expand(size)


def ref_style_transfer(vgg: nn.Sequential, decoder: nn.Sequential, content: Tensor, style: Tensor,
                       alpha: float = 1.0, weights: list[float] | None = None) -> Tensor:
    """test.py's ``style_transfer`` (encoder = ``vgg[:31]``), output clamped like ``save_image``."""
    encoder = vgg[:31]
    content_f = encoder(content)
    style_f = encoder(style)
    if weights is None:
        feat = ref_adain(content_f, style_f)
    else:
        base = ref_adain(content_f.expand(len(weights), -1, -1, -1), style_f)
        feat = sum(w * base[i:i + 1] for i, w in enumerate(weights))
    feat = feat * alpha + content_f * (1 - alpha)
    return decoder(feat).clamp(0, 1)
