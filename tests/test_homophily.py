"""One homophily formula for every stage (graphwalk.homophily): one answer for sets without
pairs (None), the same value wherever it is computed."""

import numpy as np
import pytest

from graphwalk.homophily import homophily, homophily_of_counts
from graphwalk.train.data import batch_homophily
from graphwalk.walk.homophily import homophily_by_tenth


def test_the_share_of_same_label_pairs():
    assert homophily([3, 3, 3]) == 1.0
    assert homophily([0, 1]) == 0.0
    # two items of label 5 and one of 7: 1 same-label pair of 3
    assert homophily(np.array([5, 5, 7])) == pytest.approx(1 / 3)
    assert homophily_of_counts([2, 0, 1]) == pytest.approx(1 / 3)


@pytest.mark.parametrize("labels", [[], [4]])
def test_a_set_without_pairs_has_no_homophily(labels):
    assert homophily(labels) is None
    assert homophily_of_counts(np.bincount(np.asarray(labels, np.int64), minlength=3)) is None
    assert batch_homophily(np.asarray(labels, np.int64), 5) is None


def test_every_stage_gives_the_same_value():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    batches = [rng.choice(300, size=int(s), replace=False) for s in rng.integers(1, 40, 30)]
    tenth = homophily_by_tenth(batches, y)
    assert tenth["random"] == homophily(y[np.concatenate(batches)])
    counted = [homophily(y[b]) for b in batches]
    assert sum(h is not None for h in counted) == sum(tenth["batches"])
    for b in batches:
        assert batch_homophily(y[b], 4) == homophily(y[b])
