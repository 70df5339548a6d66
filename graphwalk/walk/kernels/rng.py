"""The random number primitives of every kernel: an explicit xorshift64* state (one ``uint64``
per stream) passed in, so results depend only on the seed, never on the thread count or on global
NumPy state (pynndescent's ``tau_rand_int(state)`` pattern)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["below", "mix64", "next_u64", "seed_state", "uniform"]

_M = np.uint64(0x2545F4914F6CDD1D)
_S12, _S25, _S27, _S32 = np.uint64(12), np.uint64(25), np.uint64(27), np.uint64(32)


def seed_state(*words: int) -> np.ndarray:
    """A non-zero xorshift state (uint64[1]) derived from ``words`` (e.g. seed, epoch, stream)."""
    s = np.random.SeedSequence([int(w) & 0xFFFFFFFFFFFFFFFF for w in words]).generate_state(
        1, np.uint64
    )
    s[0] |= np.uint64(1)
    return s


@njit(inline="always")
def next_u64(state: np.ndarray, i: int) -> np.uint64:
    """Advance stream ``i`` of ``state`` and return its next 64 random bits."""
    x = state[i]
    x ^= x >> _S12
    x ^= x << _S25
    x ^= x >> _S27
    state[i] = x
    return x * _M


@njit(inline="always")
def below(state: np.ndarray, n: int) -> np.int64:
    """Uniform integer in ``[0, n)`` for ``1 <= n < 2**32`` (Lemire's multiply-shift)."""
    r = next_u64(state, 0) >> _S32
    return np.int64((r * np.uint64(n)) >> _S32)  # int64: mixing uint64 with int64 gives float64


@njit(inline="always")
def uniform(state: np.ndarray) -> float:
    """Uniform float in ``[0, 1)`` with 53 random bits."""
    return float(next_u64(state, 0) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True)
def mix64(x: np.uint64) -> np.uint64:
    """SplitMix64's finaliser, made odd: a non-zero stream state from any 64-bit word."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))) | np.uint64(1)
