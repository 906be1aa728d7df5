"""Independent reference pieces for the layer tests: written from the formulas, not from condnorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def nearest(seg: Tensor, h: int, w: int) -> Tensor:
    """Nearest resize by index arithmetic: output pixel i reads input pixel floor(i * in / out)."""
    rows = (torch.arange(h, device=seg.device) * seg.shape[-2]) // h
    cols = (torch.arange(w, device=seg.device) * seg.shape[-1]) // w
    return seg[..., rows[:, None], cols[None, :]]


def batch_norm_train(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Training-mode BatchNorm without affine: batch statistics, biased variance."""
    mean = x.mean((0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean((0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def batch_norm_eval(x: Tensor, running_mean: Tensor, running_var: Tensor, eps: float = 1e-5) -> Tensor:
    """Eval-mode BatchNorm without affine: the running statistics."""
    return (x - running_mean.view(1, -1, 1, 1)) / torch.sqrt(running_var.view(1, -1, 1, 1) + eps)


def instance_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """InstanceNorm without affine: statistics per sample and channel over all positions, biased variance."""
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    return (x - mean) / torch.sqrt(((x - mean) ** 2).mean(dims, keepdim=True) + eps)


def mean_std(feat: Tensor, eps: float = 1e-5, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Per sample and channel: the mean and sqrt(var + eps), shaped (N, C, 1, 1)."""
    flat = feat.flatten(2)
    var = flat.var(-1, unbiased=unbiased) + eps
    return flat.mean(-1)[..., None, None], var.sqrt()[..., None, None]


def adain(content: Tensor, style: Tensor, eps: float = 1e-5, unbiased: bool = True, alpha: float = 1.0) -> Tensor:
    """AdaIN as naoto0804/pytorch-AdaIN writes it ((x-μc)/σc·σs+μs, var + eps under the sqrt), blended by alpha."""
    (c_mean, c_std), (s_mean, s_std) = mean_std(content, eps, unbiased), mean_std(style, eps, unbiased)
    return alpha * ((content - c_mean) / c_std * s_std + s_mean) + (1 - alpha) * content


def ids_map(n: int, labels: int, h: int, w: int, seed: int = 0) -> Tensor:
    return torch.randint(labels, (n, h, w), generator=torch.Generator().manual_seed(seed))


def onehot_of(ids: Tensor, labels: int) -> Tensor:
    """(N, H, W) ids -> (N, labels, H, W) float one-hot maps."""
    return F.one_hot(ids, labels).permute(0, 3, 1, 2).float()


def onehot(n: int, labels: int, h: int, w: int, seed: int = 0) -> Tensor:
    return onehot_of(ids_map(n, labels, h, w, seed), labels)


def spade_gamma_beta(m: Tensor, sd: dict[str, Tensor], prefix: str = "") -> tuple[Tensor, Tensor]:
    """SPADE's conv-ReLU-conv on an already resized map, from official-layout weights."""
    k = sd[prefix + "mlp_shared.0.weight"].shape[-1]
    actv = torch.relu(F.conv2d(m, sd[prefix + "mlp_shared.0.weight"], sd[prefix + "mlp_shared.0.bias"],
                               padding=k // 2))
    gamma = F.conv2d(actv, sd[prefix + "mlp_gamma.weight"], sd[prefix + "mlp_gamma.bias"], padding=k // 2)
    beta = F.conv2d(actv, sd[prefix + "mlp_beta.weight"], sd[prefix + "mlp_beta.bias"], padding=k // 2)
    return gamma, beta


def spade(x: Tensor, seg: Tensor, sd: dict[str, Tensor], normalized: Tensor) -> Tensor:
    """SPADE: the map resized to x by nearest, then normalized · (1 + γ) + β."""
    gamma, beta = spade_gamma_beta(nearest(seg, *x.shape[-2:]), sd)
    return normalized * (1 + gamma) + beta


def group_norm(x: Tensor, groups: int, eps: float) -> Tensor:
    """GN without affine: statistics over each group's channels and all positions, biased variance."""
    g = x.reshape(x.shape[0], groups, -1)
    mean = g.mean(-1, keepdim=True)
    var = ((g - mean) ** 2).mean(-1, keepdim=True)
    return ((g - mean) / torch.sqrt(var + eps)).reshape(x.shape)


def layer_norm_last(x: Tensor, eps: float) -> Tensor:
    """LN over the last dimension without affine."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def rms_norm_last(x: Tensor, eps: float) -> Tensor:
    """x / sqrt(mean(x²) + eps) over the last dimension."""
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def silu(x: Tensor) -> Tensor:
    return x / (1 + torch.exp(-x))


def mish(x: Tensor) -> Tensor:
    return x * torch.tanh(torch.log1p(torch.exp(x)))


def randomize(module: nn.Module, seed: int = 0, std: float = 0.3) -> nn.Module:
    """Random, non-identity values for every parameter (so zero-init cannot hide a bug)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def random_state_dict(shapes: dict[str, tuple], seed: int = 0, std: float = 0.1) -> dict[str, Tensor]:
    """Random tensors for a state dict's keys and shapes: BN counters 7, running variances in [0.5, 1.5)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        else:
            out[key] = torch.randn(shape, generator=g) * std
    return out


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """Seeded N(0, 1) samples, drawn on the CPU (the same values whatever the device) and moved to ``device``."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)
