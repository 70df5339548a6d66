"""Tests of graphwalk.train.verdict: the t-interval, the paired t-test, Holm's correction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from graphwalk.train.verdict import VERDICT_ALPHA, holm, judge, paired_t

# t quantile 0.975 for 4 degrees of freedom, from a printed table (Student's t, two-sided 5%)
T975_DF4 = 2.776


def test_interval_matches_a_hand_computed_t_interval() -> None:
    d = [0.01, 0.02, 0.03, 0.04, 0.05]  # mean 0.03, std 0.0158114, se 0.0070711, df 4
    r = paired_t(d)
    se = math.sqrt(0.00025) / math.sqrt(5)
    assert r["n"] == 5 and r["mean"] == pytest.approx(0.03)
    assert r["std"] == pytest.approx(math.sqrt(0.00025))
    assert r["ci"] == pytest.approx([0.03 - T975_DF4 * se, 0.03 + T975_DF4 * se], abs=1e-5)
    # t = 0.03 / se = 4.2426; two-sided p with 4 df (independent check: scipy.stats)
    assert r["p"] == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue, rel=1e-9)
    assert r["p"] == pytest.approx(0.013236, abs=1e-6)
    lo, hi = stats.t.interval(0.95, 4, loc=0.03, scale=se)
    assert r["ci"] == pytest.approx([lo, hi], rel=1e-9)


def test_interval_is_symmetric_and_sign_follows_the_mean() -> None:
    r = paired_t([-0.02, -0.03, -0.025])
    lo, hi = r["ci"]
    assert lo < r["mean"] < hi < 0
    assert r["mean"] - lo == pytest.approx(hi - r["mean"])
    assert paired_t([0.02, 0.03, 0.025])["p"] == pytest.approx(r["p"])
    assert paired_t([0.02, 0.03, 0.025], level=0.99)["ci"][0] < -hi  # wider at 99%


def test_differences_without_spread() -> None:
    zero = paired_t([0.0, 0.0, 0.0, 0.0, 0.0])
    assert zero["std"] == 0.0 and zero["p"] == 1.0 and zero["ci"] == [0.0, 0.0]
    same = paired_t([0.01, 0.01, 0.01])
    assert same["std"] == 0.0 and same["p"] == 0.0 and same["ci"] == [0.01, 0.01]
    v = judge({"zero": [0.0] * 5, "same": [0.01] * 3, "down": [-0.01] * 3})
    assert v["zero"]["verdict"] == "n.s." and v["zero"]["p_holm"] == 1.0
    assert v["same"]["verdict"] == "beats" and v["down"]["verdict"] == "loses"


def test_fewer_than_two_differences() -> None:
    assert paired_t([]) == {"n": 0, "mean": None, "std": None, "ci": None, "p": None}
    assert paired_t([0.1]) == {"n": 1, "mean": 0.1, "std": None, "ci": None, "p": None}
    v = judge({"one": [0.1], "two": [0.02, 0.03, 0.025]})
    assert v["one"] == {
        "ci95": None,
        "p": None,
        "p_holm": None,
        "comparisons": 1,
        "verdict": "n<2",
    }
    assert v["two"]["comparisons"] == 1  # the untested comparison does not count
    assert v["two"]["p_holm"] == v["two"]["p"]


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="finite"):
        paired_t([0.1, float("nan")])
    with pytest.raises(ValueError, match="level"):
        paired_t([0.1, 0.2], level=95)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, float("nan")])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


def test_holm_hand_example() -> None:
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # None is not a test: m = 2
    assert holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1, then monotone
    assert holm([]) == []
    assert holm([0.03]) == [0.03]  # a family of one is not adjusted


def test_holm_properties() -> None:
    rng = np.random.default_rng(0)
    for m in (2, 5, 31):
        p = list(rng.uniform(0, 0.2, m))
        adj = holm(p)
        assert all(a is not None and pi <= a <= 1.0 for pi, a in zip(p, adj, strict=True))
        order = np.argsort(p, kind="stable")
        sorted_adj = [adj[i] for i in order]
        assert sorted_adj == sorted(sorted_adj)  # monotone in the raw p values
        # never stricter than Bonferroni, never looser than no correction
        assert all(a <= min(1.0, m * pi) + 1e-15 for pi, a in zip(p, adj, strict=True))


def test_judge_corrects_over_the_family() -> None:
    d = [0.02, 0.0, 0.003, 0.026, 0.019]  # mean 1.36 points, p = 0.056 alone
    alone = judge({"er": d})["er"]
    assert alone["verdict"] == "n.s." and alone["p"] == pytest.approx(0.0561, abs=1e-4)
    strong = [0.02, 0.03, 0.025, 0.022, 0.028]
    assert judge({"a": strong})["a"]["verdict"] == "beats"
    # p = 0.025 alone loses at 5%; in a family with three null comparisons Holm multiplies the
    # smallest p by 4 (0.101)
    mid = [-0.0111, -0.0056, -0.0083, 0.0, -0.0111]
    a = judge({"a": mid})["a"]
    assert a["verdict"] == "loses" and a["p"] == pytest.approx(0.02532, abs=1e-5)
    fam = judge({"a": mid, "b": [0.01, -0.01, 0.0], "c": [0.02, -0.02, 0.01], "d": [0.0, 0.01]})
    assert fam["a"]["p"] == pytest.approx(a["p"]) and fam["a"]["ci95"] == a["ci95"]
    assert fam["a"]["comparisons"] == 4 and fam["a"]["p_holm"] == pytest.approx(4 * a["p"])
    assert fam["a"]["p_holm"] > VERDICT_ALPHA
    assert fam["a"]["verdict"] == "n.s."
