"""Test-wide settings for the suite and the doctests.

The tests use tiny tensors, where a second intra-op thread only adds synchronisation cost
(and on a shared 2-core machine, contention); one thread keeps them fast and repeatable.

``--device`` / ``--dtype`` (kornia's convention) choose where and in what precision the layer
tests that take the ``device`` / ``dtype`` fixtures build their tensors and modules, e.g.
``pytest tests/condnorm --dtype float64``. Tests that need a precision of their own (gradcheck:
float64) keep it.
"""

import pytest
import torch

torch.set_num_threads(1)

DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""The tests' tolerances are float32's (1e-5); half precisions have their own autocast tests."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--device`` and ``--dtype``."""
    parser.addoption("--device", default="cpu", help="device for the layer tests' tensors (default: cpu)")
    parser.addoption("--dtype", default="float32", choices=sorted(DTYPES),
                     help="floating dtype for the layer tests' tensors and modules (default: float32)")


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The ``--device`` the layer tests build on."""
    return torch.device(pytestconfig.getoption("--device"))


@pytest.fixture(scope="session")
def dtype(pytestconfig: pytest.Config) -> torch.dtype:
    """The ``--dtype`` the layer tests build in (the floating tensors and the modules)."""
    return DTYPES[pytestconfig.getoption("--dtype")]
