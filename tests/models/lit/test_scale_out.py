"""Scale-out: synchronised normalisation across processes (gloo, CPU) and gradient accumulation.

The spawned workers import this module, so Lightning and the models are imported inside the
accumulation test only (keeps each worker's start-up short).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

import condnorm

if TYPE_CHECKING:
    import pytorch_lightning as pl

WORLD = 2
C = 4


def _batch() -> tuple[Tensor, Tensor, Tensor]:
    """The full batch (N=6, split 4 + 2 across the ranks), class ids and an upstream gradient."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, C, 5, 5, generator=g, dtype=torch.float64) * 3 + 1
    return x, torch.tensor([0, 2, 1, 1, 0, 2]), torch.randn(6, C, 5, 5, generator=g, dtype=torch.float64)


_SPLITS = ((0, 4), (4, 6))  # unequal parts: the statistics must be weighted by the counts


def _layer() -> nn.Module:
    """A CBN whose normalizer is ``make_norm("syncbatch")``, with non-trivial class tables."""
    layer = condnorm.CBN(C, num_classes=3, norm="syncbatch").double()
    with torch.no_grad():
        layer.gamma.weight.copy_(torch.linspace(-0.5, 0.5, 3 * C).view(3, C))
        layer.beta.weight.copy_(torch.linspace(1.0, -1.0, 3 * C).view(3, C))
    return layer


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        x, ids, grad = _batch()
        lo, hi = _SPLITS[rank]
        x = x[lo:hi].clone().requires_grad_(True)
        model = DistributedDataParallel(_layer())  # refuses nn.SyncBatchNorm on the CPU
        for _ in range(2):  # two steps: running statistics accumulate
            y = model(x, ids[lo:hi])
        y.backward(grad[lo:hi])
        norm = model.module.param_free_norm
        torch.save({"y": y.detach(), "x_grad": x.grad, "gamma_grad": model.module.gamma.weight.grad,
                    "mean": norm.running_mean, "var": norm.running_var,
                    "tracked": norm.num_batches_tracked}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_syncbatch_in_two_gloo_processes_equals_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    # One process, the whole batch, plain batch norm: the independent reference.
    x, ids, grad = _batch()
    x.requires_grad_(True)
    reference = _layer()
    reference.param_free_norm = nn.BatchNorm2d(C, affine=False).double()
    for _ in range(2):
        y = reference(x, ids)
    y.backward(grad)

    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach())
    torch.testing.assert_close(torch.cat([r["x_grad"] for r in ranks]), x.grad)
    norm = reference.param_free_norm
    for r in ranks:
        torch.testing.assert_close(r["mean"], norm.running_mean)
        torch.testing.assert_close(r["var"], norm.running_var)
        assert int(r["tracked"]) == 2
        # DDP averages the parameter gradients of the two processes' losses.
        torch.testing.assert_close(r["gamma_grad"] * WORLD, reference.gamma.weight.grad)
    # A per-process (unsynchronised) statistic would differ: the check can fail.
    assert not torch.allclose(nn.functional.batch_norm(x[:4], None, None, training=True), y.detach()[:4])


def test_syncbatch_is_plain_batch_norm_outside_a_process_group() -> None:
    x = torch.randn(3, C, 4, 4)
    sync, plain = condnorm.make_norm("syncbatch", C), nn.BatchNorm2d(C, affine=False)
    assert isinstance(sync, condnorm.SyncBatchNorm2d) and isinstance(sync, nn.BatchNorm2d)
    torch.testing.assert_close(sync(x), plain(x))
    torch.testing.assert_close(sync.running_var, plain.running_var)
    sync.load_state_dict(plain.state_dict())  # same state-dict keys as BatchNorm2d


# ---------------------------------------------------------------- gradient accumulation
TINY = dict(label_nc=3, contain_dontcare_label=False, use_instance=False, crop_size=32, aspect_ratio=1.0,
            ngf=4, ndf=4, num_D=1, n_layers_D=2, norm_G="none", lambda_vgg=0.0, lpips=False)


class _Pairs(Dataset):
    """Eight fixed (label, image) samples."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.labels = torch.randint(3, (8, 32, 32), generator=g)
        self.images = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"label": self.labels[i], "image": self.images[i]}


def _train(tiny_trainer: Callable[..., pl.Trainer], root: Path, accumulate: int,
           batch_size: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One optimizer step of G and D (float64, no spectral norm).

    Returns the gradients each optimizer stepped with (by parameter name) and the weights after.
    The gradients are the sharp check: Adam's first step is nearly ``lr · sign(g)``, blind to
    the gradient's scale.
    """
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from models.lit.mask_to_image import MaskToImageModule

    class Grads(pl.Callback):
        def __init__(self) -> None:
            self.grads: dict[str, Tensor] = {}

        def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                     optimizer: torch.optim.Optimizer) -> None:
            stepped = {p for group in optimizer.param_groups for p in group["params"]}
            self.grads.update({name: p.grad.clone() for name, p in pl_module.named_parameters()
                               if p in stepped and p.grad is not None})

    pl.seed_everything(0)
    model = MaskToImageModule(**TINY, accumulate_grad_batches=accumulate)
    for module in list(model.modules()):  # power iterations would differ per forward
        if hasattr(module, "weight_orig"):
            nn.utils.remove_spectral_norm(module)
    grads = Grads()
    trainer = tiny_trainer(root, max_steps=2, precision="64-true", callbacks=[grads], enable_checkpointing=False)
    loader = DataLoader(_Pairs(), batch_size=batch_size, shuffle=False)
    trainer.fit(model, train_dataloaders=loader)
    assert trainer.global_step == 2  # one G step and one D step
    return grads.grads, {k: v.clone() for k, v in model.state_dict().items()}


def test_accumulating_k_batches_of_b_equals_one_batch_of_k_times_b(tiny_trainer: Callable[..., pl.Trainer],
                                                                    tmp_path: Path) -> None:
    acc_grads, accumulated = _train(tiny_trainer, tmp_path, accumulate=2, batch_size=2)
    grads, whole = _train(tiny_trainer, tmp_path, accumulate=1, batch_size=4)
    half_grads, _ = _train(tiny_trainer, tmp_path, accumulate=1, batch_size=2)  # one step on the first two only
    assert {k.split(".")[0] for k in grads} == {"generator", "discriminator"}
    assert acc_grads.keys() == grads.keys()
    for key, value in grads.items():
        torch.testing.assert_close(acc_grads[key], value, rtol=1e-10, atol=1e-14, msg=key)
        # Adam's first step moves each weight by about ±lr (1e-4): compare far below it.
        torch.testing.assert_close(accumulated[key], whole[key], rtol=1e-9, atol=1e-10, msg=key)
    assert not all(torch.allclose(half_grads[k], grads[k]) for k in grads)  # the check can fail
