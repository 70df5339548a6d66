"""Verdicts of a paired comparison over seeds: a t-interval, a paired t-test and Holm's correction.

A comparison report (:func:`graphwalk.train.report.summarize`) pairs each sampler with the
baseline by seed and looks at the per-seed differences ``d`` of final test accuracy. For each
comparison :func:`paired_t` gives the mean difference, its 95% t confidence interval and the
two-sided p value of the paired t-test (``H0: mean difference = 0``). A report makes several
comparisons at once, so :func:`holm` adjusts their p values together (Holm 1979, which controls
the chance of *any* false verdict in the family at ``alpha``, and is never less powerful than
Bonferroni). :func:`judge` does both for a whole family and names the verdict: **beats** or
**loses** (by the sign of the mean) when the Holm-adjusted p value is below ``VERDICT_ALPHA``,
**n.s.** (no difference detected) otherwise, **n<2** with fewer than two paired seeds.

.. warning::
    The confidence interval is per comparison (not adjusted for the family): with several
    comparisons an interval can exclude zero while the verdict, which is adjusted, is ``n.s.``.
    With 5 seeds the t-test has 4 degrees of freedom; it assumes the per-seed differences are
    roughly normal, which nobody can check on 5 values. Treat a verdict as a claim to confirm on
    fresh seeds, not as a result.

Reference: S. Holm, "A simple sequentially rejective multiple test procedure", Scandinavian
Journal of Statistics 6 (1979) 65-70, https://www.jstor.org/stable/4615733.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["RULE", "VERDICT_ALPHA", "holm", "judge", "paired_t"]

#: Family-wise error rate of the verdicts: "beats" / "loses" only when the Holm-adjusted p value
#: of the paired t-test is below this (and then the difference is claimed at 95% for the family).
VERDICT_ALPHA = 0.05

#: The rule in one sentence, as reports print it (the family's size is said beside it).
RULE = (
    "beats / loses: a two-sided paired t-test of the per-seed differences in final test accuracy "
    "(sampler − baseline) rejects 'no difference' at 5% after Holm's correction over all the "
    "comparisons of this table (positive mean: beats, negative: loses); otherwise n.s. (no "
    "difference detected); n<2: fewer than 2 paired seeds, no test. The 95% CI is the "
    "t-interval of the mean difference for that comparison alone (not adjusted), so with many "
    "comparisons a CI can exclude 0 while the verdict is n.s.; differences that are all equal "
    "have no spread: p = 1 when they are all 0, else p = 0"
)


def paired_t(diffs: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean paired difference, its t confidence interval and the paired t-test's p value.

    With ``n`` differences, ``se = std(d, ddof=1) / sqrt(n)`` and ``n - 1`` degrees of freedom,
    the interval is ``mean ± t_{(1+level)/2, n-1} · se`` and ``p = 2 · P(T_{n-1} > |mean| / se)``
    (Student's t from :mod:`scipy.special`: ``stdtrit`` and ``stdtr``).

    Differences without spread (all equal, ``std == 0``) have no t statistic; they are handled
    as its limit rather than failing: all zero gives ``p = 1`` and the interval ``[0, 0]``; all
    equal to ``c != 0`` gives ``p = 0`` and the interval ``[c, c]``.

    Args:
        diffs: The per-seed differences (finite floats).
        level: Confidence level of the interval, in (0, 1). Default 0.95.

    Returns:
        ``{"n", "mean", "std", "ci", "p"}``: ``std`` with ddof=1; ``ci`` is ``[low, high]``;
        with fewer than two differences ``std``, ``ci`` and ``p`` are None (``mean`` too when
        there are none).

    Raises:
        ValueError: A difference is not finite, or ``level`` is outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level should be a confidence level in (0, 1), but got level={level!r}")
    d = np.asarray(list(diffs), np.float64)
    if not np.isfinite(d).all():
        raise ValueError(f"diffs should be finite numbers, but got {list(diffs)!r}")
    n = int(d.size)
    mean = float(d.mean()) if n else None
    if n < 2 or mean is None:
        return {"n": n, "mean": mean, "std": None, "ci": None, "p": None}
    std = float(d.std(ddof=1))
    if std == 0.0:
        return {
            "n": n,
            "mean": mean,
            "std": 0.0,
            "ci": [mean, mean],
            "p": 1.0 if mean == 0 else 0.0,
        }
    from scipy import special  # lazily: scipy.special loads in ~0.1 s, only reports need it

    df = n - 1
    se = std / math.sqrt(n)
    half = float(special.stdtrit(df, 0.5 + level / 2)) * se
    p = 2.0 * float(special.stdtr(df, -abs(mean) / se))
    return {"n": n, "mean": mean, "std": std, "ci": [mean - half, mean + half], "p": min(p, 1.0)}


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p values.

    The ``m`` p values (None entries are not tests and do not count) are sorted, the ``i``-th
    smallest (``i`` from 0) is multiplied by ``m - i``, capped at 1, and made non-decreasing
    along the sorted order (each adjusted value is the running maximum). Rejecting where the
    adjusted value is below ``alpha`` is Holm's procedure at family-wise level ``alpha``. Ties
    keep their input order.

    Args:
        p_values: One p value in [0, 1] per comparison, or None where there is no test.

    Returns:
        The adjusted p values, in the input order (None where the input is None).

    Raises:
        ValueError: A p value is NaN or outside [0, 1].
    """
    for p in p_values:
        if p is not None and not 0.0 <= p <= 1.0:
            raise ValueError(f"p values should lie in [0, 1], but got {p!r} in {list(p_values)!r}")
    tested = sorted(((p, i) for i, p in enumerate(p_values) if p is not None), key=lambda pi: pi[0])
    m = len(tested)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def judge(
    diffs: Mapping[str, Sequence[float]], alpha: float = VERDICT_ALPHA
) -> dict[str, dict[str, Any]]:
    """Test a family of paired comparisons and name each one's verdict.

    Args:
        diffs: Comparison label -> its per-seed differences (group − baseline). All of them
            form one family for Holm's correction.
        alpha: Family-wise error rate. Default :data:`VERDICT_ALPHA` (0.05).

    Returns:
        Label -> ``{"ci95", "p", "p_holm", "comparisons", "verdict"}``: ``ci95`` the 95%
        t-interval of the mean (``[low, high]``, None under 2 seeds), ``p`` the paired t-test's
        two-sided p value, ``p_holm`` its Holm-adjusted value, ``comparisons`` the family's size
        (the comparisons with a test), ``verdict`` one of ``"beats"``, ``"loses"``, ``"n.s."``,
        ``"n<2"``.
    """
    tests = {label: paired_t(d) for label, d in diffs.items()}
    adjusted = holm([t["p"] for t in tests.values()])
    m = sum(p is not None for p in adjusted)
    out: dict[str, dict[str, Any]] = {}
    for (label, t), p_holm in zip(tests.items(), adjusted, strict=True):
        if p_holm is None:
            verdict = "n<2"
        elif p_holm < alpha and t["mean"] != 0:
            verdict = "beats" if t["mean"] > 0 else "loses"
        else:
            verdict = "n.s."
        out[label] = {
            "ci95": t["ci"],
            "p": t["p"],
            "p_holm": p_holm,
            "comparisons": m,
            "verdict": verdict,
        }
    return out
