"""Shared test setup: fixed seeds for every test, float64 brute-force references in reference.py."""

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "notebooks: executes the teaching notebooks in notebooks/ (minutes); deselect with -m 'not notebooks'"
    )
