"""Test-wide settings for the suite and the doctests.

The tests use tiny tensors, where a second intra-op thread only adds synchronisation cost
(and on a shared 2-core machine, contention); one thread keeps them fast and repeatable.
"""

import torch

torch.set_num_threads(1)
