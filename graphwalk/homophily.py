"""Label homophily of a set of items: the one formula every stage uses.

The homophily of a set of ``n`` items (a batch, a community, a whole dataset) is the share of
same-label pairs among its ``n (n - 1) / 2`` pairs: ``sum_c n_c (n_c - 1) / (n (n - 1))`` with
``n_c`` the items of label ``c``. It is 1 when every item has one label, and for a uniformly
random set of the dataset's items about ``sum_c p_c²`` (the *random level*). A set of fewer than
two items has no pairs: its homophily is ``None`` (not 0, not NaN), and averages over sets skip
it; tables and plots that need a float show it as NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["homophily", "homophily_of_counts"]


def homophily_of_counts(counts: npt.ArrayLike) -> float | None:
    """Homophily from the number of items of each label (zeros allowed); ``None`` for fewer than
    two items."""
    c = np.asarray(counts, np.float64)
    n = float(c.sum())
    if n < 2:
        return None
    return float((c * (c - 1)).sum() / (n * (n - 1)))


def homophily(labels: npt.ArrayLike) -> float | None:
    """Homophily of a set of items given their labels (any hashable NumPy dtype); ``None`` for
    fewer than two items."""
    y = np.asarray(labels)
    if y.size < 2:
        return None
    return homophily_of_counts(np.unique(y, return_counts=True)[1])
