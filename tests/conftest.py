from __future__ import annotations

import numpy as np
import pytest


def make_blobs(n: int = 600, dim: int = 8, centers: int = 6, seed: int = 0):
    """Clustered float32 vectors with their blob labels."""
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=6.0, size=(centers, dim))
    y = rng.integers(0, centers, size=n)
    x = (c[y] + rng.normal(size=(n, dim))).astype(np.float32)
    return x, y.astype(np.int64)


@pytest.fixture
def blobs():
    return make_blobs()


@pytest.fixture(params=[0, 1, 2])
def seed(request):
    return request.param
