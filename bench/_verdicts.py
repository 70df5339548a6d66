"""Verdicts of the recorded comparison evidence, shared by train_compare.py and learn_compare.py.

A comparison's verdict needs only its per-seed differences, which every recorded ``NAME.json``
holds, so the evidence can be judged again under the current rule without training anything
(``--render-only`` in both scripts): :func:`rerender` rewrites one recorded report, and
:func:`judge_rows` judges an overview table's rows as one family (Holm's correction over all
the comparisons the table makes, not only those of one setting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphwalk.train.report import recompute_verdicts, render_markdown
from graphwalk.train.verdict import RULE, judge

_START = "Paired differences against "
_RULE_LINE = "Verdict rule — "


def _section(md: str) -> tuple[int, int] | None:
    """Where the paired-differences table and its verdict rule are: [start, end) of the text."""
    start = md.find("\n" + _START)
    rule = md.find("\n" + _RULE_LINE, start)
    if start < 0 or rule < 0:
        return None
    end = md.find("\n", rule + 1)
    return start + 1, len(md) if end < 0 else end


def replace_differences(old_md: str, new_md: str) -> str:
    """``old_md`` with its paired-differences table and verdict rule taken from ``new_md``.

    Everything else in the recorded Markdown (a note above the table, hand-shortened paths in
    the settings paragraph) stays as it was; without that section in both texts, ``new_md``.
    """
    old, new = _section(old_md), _section(new_md)
    if old is None or new is None:
        return new_md
    return old_md[: old[0]] + new_md[new[0] : new[1]] + old_md[old[1] :]


def rerender(json_path: Path) -> dict[str, Any]:
    """Judge one recorded report again: rewrite ``NAME.json`` and ``NAME.md`` beside it.

    The JSON keeps its values and gains the new verdict keys (same layout as ``write_report``
    writes); in the Markdown only the paired-differences table and the rule change.
    """
    text = json_path.read_text(encoding="utf-8")
    summary = recompute_verdicts(json.loads(text))
    out = json.dumps(summary, indent=2, allow_nan=False, default=str)
    json_path.write_text(out + ("\n" if text.endswith("\n") else ""), encoding="utf-8")
    md_path = json_path.with_suffix(".md")
    new_md = render_markdown(summary)
    old_md = md_path.read_text(encoding="utf-8") if md_path.is_file() else new_md
    md_path.write_text(replace_differences(old_md, new_md), encoding="utf-8")
    return summary


def judge_rows(rows: list[dict[str, Any]]) -> int:
    """Judge an overview's rows as one family; return how many comparisons it makes.

    A row with ``diff_values`` (the per-seed differences against the reference) gets ``ci95``,
    ``p``, ``p_holm``, ``comparisons`` and ``verdict`` from :func:`graphwalk.train.verdict.judge`
    over all such rows; the reference rows (``diff_values`` None) keep ``verdict: reference``.
    """
    tested = {i: r["diff_values"] for i, r in enumerate(rows) if r.get("diff_values") is not None}
    verdicts = judge({str(i): v for i, v in tested.items()})
    m = 0
    for i in tested:
        rows[i].update(verdicts[str(i)])
        m = verdicts[str(i)]["comparisons"]
    return m


def rule_note(m: int, rows: list[dict[str, Any]], per_setting: str) -> str:
    """The verdict rule, the table's family size, and the verdicts its settings' tables give."""
    differ = [
        f"{r['setting']} `{r['sampler']}` {r['verdict_in_setting']}"
        for r in rows
        if r.get("verdict_in_setting") not in (None, "reference", r["verdict"])
    ]
    note = (
        f"Verdict rule — {RULE}. This table makes {m} comparisons; Holm's correction is over all "
        f"{m}. Each setting's own table ({per_setting}) corrects only for its own comparisons"
    )
    if differ:
        return note + "; there these verdicts differ from this table's: " + "; ".join(differ) + "."
    return note + "; no verdict differs there."


def _points(x: float) -> str:
    return f"{round(100 * x, 2) + 0.0:+.2f}"  # + 0.0 turns -0.0 into 0.0


def interval(ci: list[float] | None) -> str:
    """A confidence interval of differences in points: ``[-1.20, +0.35]``."""
    return "–" if ci is None else f"[{_points(ci[0])}, {_points(ci[1])}]"


def p_holm(r: dict[str, Any]) -> str:
    """``p (p adjusted)``, three decimals, or a dash for the reference."""
    if r.get("p") is None:
        return "–"

    def fmt(p: float) -> str:
        return "<0.001" if p < 0.001 else f"{p:.3f}"

    return f"{fmt(r['p'])} ({fmt(r['p_holm'])})"
