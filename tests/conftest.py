from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Property tests: 40 examples each by default; GRAPHWALK_HYPOTHESIS=thorough runs 400.
settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("GRAPHWALK_HYPOTHESIS", "default"))


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
