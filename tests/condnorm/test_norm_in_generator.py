"""A SPADE generator built on the new normalizers trains (the ``norm_G`` option of the demo)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condnorm.norms import FilterResponseNorm2d
from models.spade import SPADEGenerator


@pytest.mark.parametrize("kind", ["frn", "switchable"])
def test_tiny_generator_with_a_new_norm_takes_a_finite_training_step(kind: str) -> None:
    torch.manual_seed(0)
    g = SPADEGenerator(4, ngf=4, crop_size=32, norm=kind)
    ids = torch.randint(4, (2, 32, 32))
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    losses = []
    for _ in range(2):
        loss = F.l1_loss(g(ids), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    moved = [k for k, v in g.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith(("tau", "mean_weight")) for k in moved)  # the normalizers' own parameters learn
    if kind == "frn":
        assert sum(isinstance(m, FilterResponseNorm2d) for m in g.modules()) > 0
