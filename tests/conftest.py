import pytest
import torch


def cuda_ok():
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (9, 0)


def pytest_collection_modifyitems(config, items):
    if cuda_ok():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU of compute capability >= 9.0 (Hopper)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
