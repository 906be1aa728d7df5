"""Split / Domain-Specific BN against one nn.BatchNorm2d per domain."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from condnorm.norms import DomainSpecificBatchNorm2d


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(6, 4, 5, 5, generator=torch.Generator().manual_seed(seed)) * 2 + 1


def test_each_domain_is_batch_normalised_on_its_own_with_its_own_running_statistics() -> None:
    dsbn = DomainSpecificBatchNorm2d(4, num_domains=3, momentum=0.3)
    bns = [nn.BatchNorm2d(4, affine=False, momentum=0.3) for _ in range(3)]
    domain = torch.tensor([2, 0, 2, 2, 0, 0])
    for seed in (0, 1):
        x = _x(seed)
        out = dsbn.train()(x, domain=domain)
        for d in (0, 2):
            sel = domain == d
            torch.testing.assert_close(out[sel], bns[d].train()(x[sel]))
    for d in (0, 2):
        torch.testing.assert_close(dsbn.running_mean[d], bns[d].running_mean)
        torch.testing.assert_close(dsbn.running_var[d], bns[d].running_var)
    # domain 1 never appeared: untouched
    assert dsbn.num_batches_tracked.tolist() == [2, 0, 2]
    assert torch.equal(dsbn.running_mean[1], torch.zeros(4))
    assert torch.equal(dsbn.running_var[1], torch.ones(4))
    x = _x(2)
    out = dsbn.eval()(x, domain=domain)
    for d in (0, 2):
        torch.testing.assert_close(out[domain == d], bns[d].eval()(x[domain == d]))


def test_domain_errors() -> None:
    dsbn = DomainSpecificBatchNorm2d(4)
    x = _x()
    with pytest.raises(ValueError, match=r"needs domain= \(N,\) ids in \[0, 2\)"):
        dsbn(x)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 2\), found \[2\]"):
        dsbn(x, domain=torch.tensor([0, 1, 2, 0, 1, 0]))
    with pytest.raises(TypeError, match="expected an integer tensor of class ids"):
        dsbn(x, domain=torch.zeros(6))
    with pytest.raises(ValueError, match=r"domain: expected shape \(N=6\)"):
        dsbn(x, domain=torch.zeros(5, dtype=torch.long))
