"""Shared fixtures."""
import pytest


@pytest.fixture
def torch_threads():
    """Set torch's intra-op thread count for one test (`torch_threads(2)`); restored afterwards."""
    import torch

    old = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(old)
