"""Summaries of finished training runs: read run directories, compare samplers over seeds.

A run directory, as ``graphwalk train`` writes it, holds ``config.json`` (the resolved settings),
``metrics.jsonl`` (one JSON event per line: ``step``, ``eval`` and ``refresh`` events) and, once
the run finished, ``summary.json``. :func:`read_run` loads one; :func:`summarize` compares groups
of runs (one group per sampler, one run per seed, paired by seed); :func:`render_markdown` turns
that comparison into GitHub Markdown tables; :func:`plot_accuracy` and :func:`plot_homophily` draw
the curves; :func:`write_report` does all of it into one directory. The verdicts (a paired t-test
per comparison, Holm's correction over the report's comparisons) come from
:mod:`graphwalk.train.verdict`; :func:`recompute_verdicts` applies the current rule to a stored
summary without rerunning anything.

Plots are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas directly, so the
process-wide pyplot backend is never touched (neither at import nor when plotting).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

from graphwalk._extras import require
from graphwalk._files import atomic_save, atomic_write
from graphwalk.errors import InputError
from graphwalk.train.metrics import read_metrics
from graphwalk.train.verdict import RULE, VERDICT_ALPHA, judge

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_TARGET_FACTOR",
    "HOMOPHILY_BINS",
    "plot_accuracy",
    "plot_homophily",
    "read_run",
    "recompute_verdicts",
    "render_markdown",
    "summarize",
    "write_report",
]

#: Without an explicit target, the target accuracy is this fraction of the first group's mean
#: final test accuracy.
DEFAULT_TARGET_FACTOR = 0.95
#: :func:`plot_homophily` averages per-step batch homophily over this many equal-width bins of the
#: step range (fewer when there are fewer steps: then one bin per step).
HOMOPHILY_BINS = 50

RunLike: TypeAlias = "str | os.PathLike[str] | Mapping[str, Any]"
Groups: TypeAlias = "Mapping[str, Sequence[RunLike]]"

_STEP_FIELDS = ("step", "epoch", "loss", "lr", "sampler_us", "homophily")
_EVAL_FIELDS = ("step", "epoch", "test_acc", "test_loss", "train_loss", "wall_s")
_INT_FIELDS = ("step", "epoch")
# Config keys expected to differ between the runs of a comparison (not worth a warning).
_VARYING_KEYS = frozenset(
    {"sampler", "seed", "out", "out_dir", "run_dir", "name", "label", "command", "argv", "date"}
)


# --------------------------------------------------------------------------- reading


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(
            f"{path} cannot be read as JSON ({e}); the {what} is damaged — rerun the run or "
            "restore the file"
        ) from e
    if not isinstance(obj, dict):
        raise InputError(
            f"{path} holds a JSON {type(obj).__name__}, not an object; it is not a {what} "
            "written by `graphwalk train`"
        )
    return obj


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _columns(
    rows: list[tuple[int, dict[str, Any]]], fields: tuple[str, ...], path: Path
) -> dict[str, npt.NDArray[Any]]:
    """Column arrays of one event kind: the known fields first, then any other numeric fields.

    Missing or null values become NaN; ``step`` and ``epoch`` are required integers.
    """
    extra: set[str] = set()
    non_numeric: set[str] = set()
    for _, r in rows:
        for k, v in r.items():
            if k == "event" or k in fields:
                continue
            (extra if v is None or _is_number(v) else non_numeric).add(k)
    keys = list(fields) + sorted(extra - non_numeric)
    cols: dict[str, npt.NDArray[Any]] = {}
    for k in keys:
        if k in _INT_FIELDS:
            vals = np.empty(len(rows), np.int64)
            for i, (line, r) in enumerate(rows):
                iv: Any = r.get(k)
                if not _is_number(iv) or not math.isfinite(iv) or iv != int(iv):
                    raise InputError(
                        f"{path}, line {line}: a {r['event']!r} event needs an integer {k!r}, "
                        f"got {iv!r}; the file was not written by `graphwalk train` or is damaged"
                    )
                vals[i] = int(iv)
            cols[k] = vals
        else:
            cols[k] = np.array(
                [float(r[k]) if _is_number(r.get(k)) else np.nan for _, r in rows], np.float64
            )
    return cols


def read_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Load one training run directory.

    Args:
        run_dir: A directory written by ``graphwalk train`` (holding ``config.json`` and
            ``metrics.jsonl``; ``summary.json`` once the run finished).

    Returns:
        ``{"path", "config", "steps", "evals", "refreshes", "summary", "truncated"}``:
        ``steps`` and ``evals`` are dicts of equal-length numpy arrays, one entry per event in
        file order (``steps``: step, epoch, loss, lr, sampler_us, homophily; ``evals``: step,
        epoch, test_acc, test_loss, train_loss, wall_s), plus any other numeric field the events
        carry; ``step`` and ``epoch`` are int64, the rest float64 with NaN for missing or null.
        ``refreshes`` is the list of refresh events as written; ``summary`` the parsed
        ``summary.json`` or None when absent; ``truncated`` is True when an unfinished last line
        was ignored.

    Raises:
        InputError: The directory, ``config.json`` or ``metrics.jsonl`` is missing, or a line of
            ``metrics.jsonl`` is not a JSON object (the message names the file and line). A
            last line without a trailing newline that does not parse is an interrupted write and
            is ignored instead.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(
            f"run directory {path} does not exist or is not a directory; pass a directory "
            "written by `graphwalk train` (it holds config.json and metrics.jsonl)"
        )
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise InputError(
            f"{cfg_path} is missing, so {path} is not a training run; pass the run directory "
            "that `graphwalk train` wrote (the one holding config.json and metrics.jsonl)"
        )
    config = _read_json(cfg_path, "run configuration")
    m_path = path / "metrics.jsonl"
    if not m_path.is_file():
        raise InputError(
            f"{m_path} is missing: the run in {path} never started training; rerun it or leave "
            "it out of the comparison"
        )
    metrics = read_metrics(m_path)
    steps = metrics.numbered("step")
    evals = metrics.numbered("eval")
    refreshes = metrics.of("refresh")
    truncated = metrics.truncated
    # other events: written by a newer version; nothing here needs them
    s_path = path / "summary.json"
    summary = _read_json(s_path, "run summary") if s_path.is_file() else None
    return {
        "path": str(path),
        "config": config,
        "steps": _columns(steps, _STEP_FIELDS, m_path),
        "evals": _columns(evals, _EVAL_FIELDS, m_path),
        "refreshes": refreshes,
        "summary": summary,
        "truncated": truncated,
    }


def _load_groups(groups: Groups) -> dict[str, list[dict[str, Any]]]:
    """Read every run of every group (runs already read, as dicts, are used as they are)."""
    if not groups:
        raise InputError("nothing to compare: pass at least one sampler label with its run dirs")
    out: dict[str, list[dict[str, Any]]] = {}
    for label, runs in groups.items():
        if isinstance(runs, (str, os.PathLike)):
            raise InputError(
                f"group {label!r}: expected a list of run directories, got the single path "
                f"{runs!s}; wrap it in a list"
            )
        loaded: list[dict[str, Any]] = []
        for r in runs:
            if isinstance(r, Mapping):
                if "config" not in r or "evals" not in r or "steps" not in r:
                    raise InputError(
                        f"group {label!r}: a run given as a dict must come from read_run() "
                        "(keys config, steps, evals)"
                    )
                loaded.append(dict(r))
            else:
                loaded.append(read_run(r))
        if not loaded:
            raise InputError(f"group {label!r} has no runs; give it at least one run directory")
        out[str(label)] = loaded
    return out


# --------------------------------------------------------------------------- summarising


def _seed_key(seed: Any) -> tuple[int, Any]:
    return (0, seed) if _is_number(seed) else (1, str(seed))


def _finite(v: Any) -> float | None:
    """A float, or None for missing / NaN / infinite (JSON has no NaN)."""
    if v is None or (not _is_number(v) and not isinstance(v, np.number)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _mean(x: npt.NDArray[np.float64]) -> float | None:
    ok = x[np.isfinite(x)]
    return float(ok.mean()) if ok.size else None


def _stat(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample std (ddof=1; 0.0 for one value), count of finite values, and the values."""
    x = np.array([v for v in values if v is not None], np.float64)
    n = int(x.size)
    return {
        "mean": float(x.mean()) if n else None,
        "std": float(x.std(ddof=1)) if n > 1 else (0.0 if n == 1 else None),
        "n": n,
        "values": [None if v is None else float(v) for v in values],
    }


def _eval_curve(run: Mapping[str, Any]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(steps, test acc) of the evals with a finite accuracy, by step, one per step (last wins)."""
    ev = run["evals"]
    st = np.asarray(ev["step"], np.float64)
    acc = np.asarray(ev["test_acc"], np.float64)
    ok = np.isfinite(acc) & np.isfinite(st)
    st, acc = st[ok], acc[ok]
    order = np.argsort(st, kind="stable")
    st, acc = st[order], acc[order]
    keep = np.append(st[1:] != st[:-1], True) if st.size else np.zeros(0, bool)
    return st[keep], acc[keep]


def _run_metrics(run: Mapping[str, Any], label: str) -> dict[str, Any]:
    """Per-run numbers that do not depend on the target."""
    path = run.get("path", "?")
    seed = run["config"].get("seed")
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, float, str)):
        raise InputError(
            f"group {label!r}: {path}/config.json has no usable 'seed' ({seed!r}); runs are "
            "paired by seed, so every run needs one"
        )
    summ = run.get("summary") or {}
    st, acc = _eval_curve(run)
    final: float | None
    best: float | None
    if acc.size:
        final, best = float(acc[-1]), float(acc.max())
    else:
        final, best = _finite(summ.get("final_test_acc")), _finite(summ.get("best_test_acc"))
        if final is None:
            raise InputError(
                f"group {label!r}: run {path} has no evaluation with a test accuracy (it "
                "stopped before the first one); rerun it or leave it out"
            )
        best = final if best is None else best
    steps_col = np.asarray(run["steps"]["step"])
    n_steps = _finite(summ.get("steps"))
    if n_steps is None:
        n_steps = float(steps_col.max()) if steps_col.size else (float(st[-1]) if st.size else 0.0)
    wall = _finite(summ.get("wall_s"))
    if wall is None:
        ev_wall = np.asarray(run["evals"]["wall_s"], np.float64)
        wall = _finite(ev_wall[np.isfinite(ev_wall)][-1]) if np.isfinite(ev_wall).any() else None
    s_us = _mean(np.asarray(run["steps"]["sampler_us"], np.float64))
    if s_us is None:
        s_us = _finite(summ.get("sampler_us_mean"))
    hom = _mean(np.asarray(run["steps"]["homophily"], np.float64))
    if hom is None:
        hom = _finite(summ.get("homophily_mean"))
    return {
        "seed": seed,
        "path": str(path),
        "final_acc": final,
        "best_acc": best,
        "steps": n_steps,
        "wall_s": wall,
        "steps_per_s": n_steps / wall if wall else None,
        "sampler_us": s_us,
        "homophily": hom,
        "eval_steps": st,
        "eval_acc": acc,
    }


def _steps_to_target(m: Mapping[str, Any], target: float) -> int | None:
    hit = np.flatnonzero(m["eval_acc"] >= target)
    return int(m["eval_steps"][hit[0]]) if hit.size else None


def _judge_comparisons(comparisons: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Add the verdict keys to every comparison (one Holm family); return the family's record.

    Each comparison gets ``ci95``, ``p``, ``p_holm``, ``comparisons`` and ``verdict`` (in that
    order, after its other keys) from its ``final_acc_diff`` values.
    """
    tested = judge(
        {
            label: [v for v in c["final_acc_diff"]["values"] if v is not None]
            for label, c in comparisons.items()
        }
    )
    m = 0
    for label, c in comparisons.items():
        c.pop("verdict", None)
        c.update(tested[label])
        m = tested[label]["comparisons"]
    return {"comparisons": m, "correction": "holm", "alpha": VERDICT_ALPHA, "test": "paired t"}


def _config_differences(loaded: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Config keys (other than sampler, seed, paths) whose values differ between runs."""
    keys: set[str] = set()
    for runs in loaded.values():
        for r in runs:
            keys.update(r["config"])
    out: dict[str, dict[str, Any]] = {}
    for k in sorted(keys - _VARYING_KEYS):
        seen = {
            json.dumps(r["config"].get(k), sort_keys=True, default=str)
            for runs in loaded.values()
            for r in runs
        }
        if len(seen) > 1:
            out[k] = {
                label: sorted(
                    {json.dumps(r["config"].get(k), sort_keys=True, default=str) for r in runs}
                )
                for label, runs in loaded.items()
            }
    return out


def _target(target_acc: float | None, first: str, first_final: float | None) -> tuple[float, str]:
    if target_acc is not None:
        t = float(target_acc)
        if not 0.0 < t <= 1.0:
            hint = f" — did you mean {t / 100:g}?" if 1.0 < t <= 100.0 else ""
            raise InputError(f"target_acc is a fraction in (0, 1], got {target_acc!r}{hint}")
        return t, "given"
    if first_final is None:  # pragma: no cover - _run_metrics guarantees a final accuracy
        raise InputError(f"group {first!r} has no final accuracy to derive a target from")
    return (
        DEFAULT_TARGET_FACTOR * first_final,
        f"{DEFAULT_TARGET_FACTOR:g} × mean final test accuracy of {first!r} "
        f"({100 * first_final:.1f}%)",
    )


def summarize(groups: Groups, *, target_acc: float | None = None) -> dict[str, Any]:
    """Compare samplers over seeds.

    Each group's statistics use all of its runs; paired differences use the seeds a group shares
    with the first group (the baseline). Seeds that are not in every group are listed under
    ``"unpaired"`` rather than being an error.

    The target accuracy, when ``target_acc`` is None, is ``DEFAULT_TARGET_FACTOR`` (0.95) times
    the first group's mean final test accuracy; ``"target"`` records the value and how it was
    chosen. A run's steps to target is the step of its first evaluation (in step order) whose
    test accuracy is ``>= target``; runs that never get there are counted in ``"reached"``
    (``"k/n"``) and left out of the mean ± std.

    Verdict rule, per group against the baseline (:mod:`graphwalk.train.verdict`): let ``d`` be
    the per-seed differences of final test accuracy (group − baseline). Each comparison gets the
    95% t confidence interval of ``mean(d)`` and the two-sided p value of the paired t-test;
    the p values of all the comparisons of this summary (one family: every group after the
    baseline that has at least two paired seeds) are adjusted together by Holm's method. The
    group **beats** the baseline when the adjusted p value is below 0.05 and ``mean(d) > 0``,
    **loses** when it is below 0.05 and ``mean(d) < 0``, and is **n.s.** (no difference
    detected) otherwise. With fewer than two paired seeds the verdict is ``"n<2"`` (no test,
    not counted in the family). Differences that are all equal have no spread and no t
    statistic: all zero gives ``p = 1`` (n.s.), all equal to ``c != 0`` gives ``p = 0``. The
    interval is not adjusted for the family (the verdict is), so it can exclude 0 under an
    ``n.s.`` verdict.

    Args:
        groups: Sampler label -> run directories (or :func:`read_run` results), one per seed;
            seeds come from each run's ``config["seed"]``. The first label is the baseline.
        target_acc: Target test accuracy as a fraction in (0, 1], or None for the default above.

    Returns:
        A JSON-serialisable dict (plain floats, ints, strings, lists, None for "no value")::

            {"baseline": label, "seeds": [seeds in every group], "unpaired": {label: [seeds]},
             "target": {"acc", "source"}, "rule": str,
             "family": {"comparisons", "correction": "holm", "alpha": 0.05, "test": "paired t"},
             "config": first run's config,
             "config_differences": {key: {label: [json values]}},
             "groups": {label: {"n", "seeds", "runs", "sampler", "final_acc", "best_acc",
                                "steps_to_target", "wall_s", "sampler_us", "homophily",
                                "steps", "steps_per_s"}},
             "comparisons": {label: {"baseline", "seeds", "final_acc_diff", "best_acc_diff",
                                     "steps_to_target_ratio", "ci95", "p", "p_holm",
                                     "comparisons", "verdict"}}}

        Each statistic is ``{"mean", "std", "n", "values"}`` with ``values`` per seed in the
        order of the group's (or comparison's) ``"seeds"``; ``steps_to_target`` adds
        ``"reached": "k/n"``. ``steps_to_target_ratio`` is group steps / baseline steps per seed
        where both reached the target (below 1: faster). ``ci95`` is ``[low, high]`` (fractions,
        like the differences), ``p`` and ``p_holm`` the raw and Holm-adjusted p values, and
        ``comparisons`` (also ``family["comparisons"]``) the number of comparisons Holm's
        correction counted; below two paired seeds the three are None and the comparison is not
        counted.

    Raises:
        InputError: No groups, an empty group, a run without a seed or without any evaluation,
            two runs of one group with the same seed, or a target outside (0, 1].
    """
    loaded = _load_groups(groups)
    labels = list(loaded)
    first = labels[0]
    metrics: dict[str, dict[Any, dict[str, Any]]] = {}
    for label in labels:
        by_seed: dict[Any, dict[str, Any]] = {}
        for run in loaded[label]:
            m = _run_metrics(run, label)
            if m["seed"] in by_seed:
                raise InputError(
                    f"group {label!r}: runs {by_seed[m['seed']]['path']} and {m['path']} both "
                    f"have seed {m['seed']!r}; give each group one run per seed"
                )
            by_seed[m["seed"]] = m
        metrics[label] = {s: by_seed[s] for s in sorted(by_seed, key=_seed_key)}

    target, source = _target(
        target_acc, first, _stat([m["final_acc"] for m in metrics[first].values()])["mean"]
    )
    for per_seed in metrics.values():
        for m in per_seed.values():
            m["steps_to_target"] = _steps_to_target(m, target)

    common = set.intersection(*(set(ms) for ms in metrics.values()))
    unpaired = {
        label: sorted(set(ms) - common, key=_seed_key)
        for label, ms in metrics.items()
        if set(ms) - common
    }

    out_groups: dict[str, Any] = {}
    for label, per_seed in metrics.items():
        ms = list(per_seed.values())
        stt = _stat([m["steps_to_target"] for m in ms])
        stt["reached"] = f"{stt['n']}/{len(ms)}"
        samplers = sorted({str(r["config"].get("sampler")) for r in loaded[label]})
        out_groups[label] = {
            "n": len(ms),
            "seeds": list(per_seed),
            "runs": [m["path"] for m in ms],
            "sampler": samplers[0] if len(samplers) == 1 else samplers,
            "final_acc": _stat([m["final_acc"] for m in ms]),
            "best_acc": _stat([m["best_acc"] for m in ms]),
            "steps_to_target": stt,
            "wall_s": _stat([m["wall_s"] for m in ms]),
            "sampler_us": _stat([m["sampler_us"] for m in ms]),
            "homophily": _stat([m["homophily"] for m in ms]),
            "steps": _stat([m["steps"] for m in ms]),
            "steps_per_s": _stat([m["steps_per_s"] for m in ms]),
        }

    comparisons: dict[str, Any] = {}
    base = metrics[first]
    for label in labels[1:]:
        cur = metrics[label]
        paired = sorted(set(base) & set(cur), key=_seed_key)
        fd = [cur[s]["final_acc"] - base[s]["final_acc"] for s in paired]
        bd = [cur[s]["best_acc"] - base[s]["best_acc"] for s in paired]
        ratio: list[float | None] = []
        for s in paired:
            a, b = cur[s]["steps_to_target"], base[s]["steps_to_target"]
            ratio.append(a / b if a is not None and b else None)
        comparisons[label] = {
            "baseline": first,
            "seeds": paired,
            "final_acc_diff": _stat(fd),
            "best_acc_diff": _stat(bd),
            "steps_to_target_ratio": _stat(ratio),
        }
    family = _judge_comparisons(comparisons)

    return {
        "baseline": first,
        "seeds": sorted(common, key=_seed_key),
        "unpaired": unpaired,
        "target": {"acc": target, "source": source},
        "rule": RULE,
        "family": family,
        "config": loaded[first][0]["config"],
        "config_differences": _config_differences(loaded),
        "groups": out_groups,
        "comparisons": comparisons,
    }


def recompute_verdicts(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the current verdict rule to a stored :func:`summarize` result, without its runs.

    The tests use only each comparison's per-seed ``final_acc_diff`` values, which a stored
    ``compare.json`` holds, so a comparison recorded under an older rule can be judged again:
    every comparison's ``ci95``, ``p``, ``p_holm``, ``comparisons`` and ``verdict`` are
    recomputed (one family, as in :func:`summarize`), ``rule`` is replaced and ``family`` set
    (placed after ``rule``); nothing else changes.

    Args:
        summary: A :func:`summarize` result or its JSON round trip (not modified).

    Returns:
        A new summary dict.
    """
    out = copy.deepcopy(dict(summary))
    family = _judge_comparisons(out.get("comparisons") or {})
    out.pop("family", None)
    result: dict[str, Any] = {}
    for key, value in out.items():
        result[key] = RULE if key == "rule" else value
        if key == "rule":
            result["family"] = family
    if "rule" not in result:
        result["rule"], result["family"] = RULE, family
    return result


# --------------------------------------------------------------------------- Markdown


_COUNTS = (("epochs", "epochs"), ("batch_size", "per batch"), ("label_noise", "label noise"))


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pm(stat: Mapping[str, Any], scale: float = 1.0, fmt: str = ".1f") -> str:
    if stat.get("mean") is None:
        return "–"
    mean = format(scale * stat["mean"], fmt)
    if stat.get("n", 0) < 2:
        return mean
    return f"{mean} ± {format(scale * stat['std'], fmt)}"


def _signed(x: float | None, scale: float = 100.0, digits: int = 2) -> str:
    if x is None:
        return "–"
    v = round(scale * x, digits)
    return f"{v + 0.0:+.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def _plain(stat: Mapping[str, Any], fmt: str) -> str:
    return "–" if stat.get("mean") is None else format(stat["mean"], fmt)


def _interval(ci: Sequence[float] | None) -> str:
    """A confidence interval of differences, in percentage points: ``[-1.20, +0.35]``."""
    return "–" if ci is None else f"[{_signed(ci[0])}, {_signed(ci[1])}]"


def _p_value(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _family_sentence(n: int) -> str:
    """How many comparisons a table makes, as the verdict rule's note says it."""
    return (
        f"This table makes {n} comparison{'s' if n != 1 else ''}; Holm's correction is over "
        f"{'these' if n != 1 else 'this one'}."
    )


def render_markdown(summary: Mapping[str, Any]) -> str:
    """GitHub Markdown for a :func:`summarize` result: a side-by-side table and paired differences.

    The main table has one row per sampler: final and best test accuracy (percent, mean ± std
    over seeds, one decimal), steps to the target (mean ± std over the seeds that reached it,
    with ``k/n`` reached), wall-clock seconds, sampler microseconds per step and mean batch
    homophily. The differences table has one row per sampler after the baseline: the final-accuracy
    difference per seed in percentage points (two decimals), their mean ± std, the 95% t
    confidence interval of the mean, the paired t-test's p value with the Holm-adjusted one in
    brackets, the verdict, the best-accuracy difference and the steps-to-target ratio; below
    it, the verdict rule and how many comparisons the table makes. The output depends only on
    ``summary`` (same input, same text); a summary stored before the interval and p values
    existed shows "–" for them (:func:`recompute_verdicts` fills them in).

    Args:
        summary: The dict :func:`summarize` returned (or its JSON round trip).

    Returns:
        The Markdown text, ending with a newline.
    """
    groups: Mapping[str, Any] = summary["groups"]
    cfg: Mapping[str, Any] = summary.get("config") or {}
    target = summary["target"]
    lines: list[str] = ["## Sampler comparison", ""]
    if cfg.get("meta"):  # episodes: the meta-learner and the episodes' shape, not batches
        facts = [str(cfg[k]) for k in ("dataset", "model", "meta") if cfg.get(k) is not None]
        facts += [
            f"{cfg.get('epochs')} epochs of {cfg.get('episodes')} episodes",
            f"{cfg.get('n_way')}-way {cfg.get('k_shot')}-shot {cfg.get('q_query')}-query",
            f"class split {cfg.get('class_split')}",
            f"tested on {cfg.get('test_episodes')} held-out episodes",
        ]
    else:
        facts = [str(cfg[k]) for k in ("dataset", "model", "loss") if cfg.get(k) is not None]
        facts += [f"{cfg[k]} {w}" for k, w in _COUNTS if cfg.get(k) is not None]
    n_seeds = max((g["n"] for g in groups.values()), default=0)
    facts.append(f"{n_seeds} seed{'s' if n_seeds != 1 else ''} per sampler")
    lines.append(_cell(" · ".join(facts)))
    lines.append("")
    lines.append(
        f"Target: {100 * target['acc']:.1f}% test accuracy ({_cell(target['source'])}). "
        "Accuracies in percent, mean ± std over seeds (ddof=1)."
    )
    lines.append("")
    lines.append(
        "| sampler | final acc (%) | best acc (%) | steps to target (reached) | wall s "
        "| sampler µs/step | homophily |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, g in groups.items():
        stt = g["steps_to_target"]
        lines.append(
            "| "
            + " | ".join(
                [
                    _cell(label),
                    _pm(g["final_acc"], 100.0),
                    _pm(g["best_acc"], 100.0),
                    f"{_pm(stt, 1.0, ',.0f')} ({stt['reached']})",
                    _plain(g["wall_s"], ".1f"),
                    _plain(g["sampler_us"], ".1f"),
                    _plain(g["homophily"], ".3f"),
                ]
            )
            + " |"
        )
    comps: Mapping[str, Any] = summary.get("comparisons") or {}
    if comps:
        seeds: list[Any] = []
        for c in comps.values():
            seeds.extend(s for s in c["seeds"] if s not in seeds)
        seeds.sort(key=_seed_key)
        lines += [
            "",
            f"Paired differences against `{_cell(summary['baseline'])}`: final test accuracy, "
            "percentage points (sampler − baseline), per seed.",
            "",
            "| sampler | "
            + " | ".join(f"seed {_cell(s)}" for s in seeds)
            + " | mean ± std | 95% CI | p (Holm) | verdict | best acc Δ | steps to target × |",
            "|---|" + "---:|" * len(seeds) + "---:|---:|---:|---|---:|---:|",
        ]
        for label, c in comps.items():
            by_seed = dict(zip(c["seeds"], c["final_acc_diff"]["values"], strict=True))
            fd = c["final_acc_diff"]
            mean_std = "–" if fd["mean"] is None else _signed(fd["mean"])
            if fd["n"] >= 2:
                mean_std += f" ± {100 * fd['std']:.2f}"
            p_txt = _p_value(c.get("p"))
            if c.get("p_holm") is not None:
                p_txt += f" ({_p_value(c['p_holm'])})"
            ratio = c["steps_to_target_ratio"]
            ratio_txt = (
                "–" if ratio["mean"] is None else f"{_pm(ratio, 1.0, '.2f')} (n={ratio['n']})"
            )
            lines.append(
                "| "
                + " | ".join(
                    [_cell(label)]
                    + [_signed(by_seed.get(s)) for s in seeds]
                    + [
                        mean_std,
                        _interval(c.get("ci95")),
                        p_txt,
                        c["verdict"],
                        _signed(c["best_acc_diff"]["mean"]),
                        ratio_txt,
                    ]
                )
                + " |"
            )
        rule = f"Verdict rule — {summary.get('rule', RULE)}."
        family = summary.get("family")
        if family is not None:
            rule += " " + _family_sentence(family["comparisons"])
        lines += ["", rule]
    unpaired: Mapping[str, Any] = summary.get("unpaired") or {}
    if unpaired:
        parts = [f"{_cell(k)}: {', '.join(str(s) for s in v)}" for k, v in unpaired.items()]
        lines += [
            "",
            "Seeds not in every group (group statistics use them; paired differences use only "
            "the seeds shared with the baseline): " + "; ".join(parts) + ".",
        ]
    diffs: Mapping[str, Any] = summary.get("config_differences") or {}
    if diffs:
        parts = []
        for key, per in diffs.items():
            vals = "; ".join(f"{_cell(lbl)}: {', '.join(v)}" for lbl, v in per.items())
            parts.append(f"`{_cell(key)}` ({_cell(vals)})")
        lines += ["", "Settings that differ between runs besides sampler and seed: "]
        lines[-1] += ", ".join(parts) + "."
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots


def _new_figure() -> tuple[Figure, Any]:
    require("matplotlib", "the comparison plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.8))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save_figure(fig: Figure, out_png: str | os.PathLike[str]) -> Path:
    return atomic_save(out_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def _mean_min_max(
    y: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Column-wise mean, min and max over rows, ignoring NaN (NaN where a column has none)."""
    ok = np.isfinite(y)
    cnt = ok.sum(axis=0)
    total = np.where(ok, y, 0.0).sum(axis=0)
    mean = np.divide(total, cnt, out=np.full(y.shape[1], np.nan), where=cnt > 0)
    return mean, np.fmin.reduce(y, axis=0), np.fmax.reduce(y, axis=0)


def _accuracy_curves(
    runs: Iterable[Mapping[str, Any]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Test accuracy of each run on the union of the runs' eval steps.

    Where the runs share their eval steps this is just their values; otherwise each run is
    linearly interpolated onto the union, inside its own step range only (NaN outside).
    """
    curves = [_eval_curve(r) for r in runs]
    xs = [s for s, _ in curves if s.size]
    x = np.unique(np.concatenate(xs)) if xs else np.zeros(0)
    y = np.full((len(curves), x.size), np.nan)
    for i, (s, a) in enumerate(curves):
        if s.size:
            inside = (x >= s[0]) & (x <= s[-1])
            y[i, inside] = np.interp(x[inside], s, a)
    return x, y


def _default_target(loaded: Mapping[str, list[dict[str, Any]]]) -> float | None:
    finals = [
        float(a[-1]) for r in next(iter(loaded.values())) for _, a in [_eval_curve(r)] if a.size
    ]
    return DEFAULT_TARGET_FACTOR * float(np.mean(finals)) if finals else None


def plot_accuracy(
    groups: Groups, out_png: str | os.PathLike[str], *, target_acc: float | None = None
) -> Path:
    """Plot test accuracy against training step, one line per sampler.

    Each line is the mean over the group's seeds at each eval step (runs with different eval
    steps are interpolated onto the union of steps, within each run's range), with a shaded
    band from the minimum to the maximum over seeds. The target accuracy is a dashed line;
    when ``target_acc`` is None it is the same default as :func:`summarize` (0.95 × the first
    group's mean final test accuracy).

    Args:
        groups: Sampler label -> run directories (or :func:`read_run` results).
        out_png: Where to write the PNG; parent directories are created, and the file is
            replaced atomically (written beside it, then renamed).
        target_acc: Target test accuracy as a fraction, or None for the default.

    Returns:
        The path written.
    """
    loaded = _load_groups(groups)
    target = _default_target(loaded) if target_acc is None else float(target_acc)
    fig, ax = _new_figure()
    drawn = False
    for label, runs in loaded.items():
        x, y = _accuracy_curves(runs)
        if not x.size:
            continue
        mean, lo, hi = _mean_min_max(y)
        (line,) = ax.plot(x, 100 * mean, label=f"{label} (n={len(runs)})", lw=1.6)
        ax.fill_between(x, 100 * lo, 100 * hi, color=line.get_color(), alpha=0.18, lw=0)
        drawn = True
    if target is not None:
        ax.axhline(100 * target, color="0.3", ls="--", lw=1.0, label=f"target {100 * target:.1f}%")
    if not drawn:
        ax.text(0.5, 0.5, "no evaluations recorded", ha="center", transform=ax.transAxes)
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy (mean over seeds; band: min–max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return _save_figure(fig, out_png)


def _homophily_bins(
    loaded: Mapping[str, list[dict[str, Any]]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Bin edges and centres shared by all groups: ``HOMOPHILY_BINS`` over steps 0..max step."""
    top = 0
    for runs in loaded.values():
        for r in runs:
            st = np.asarray(r["steps"]["step"])
            if st.size:
                top = max(top, int(st.max()))
    n_bins = max(1, min(HOMOPHILY_BINS, top))
    edges = np.linspace(0.0, float(max(top, 1)), n_bins + 1)
    return edges, (edges[:-1] + edges[1:]) / 2


def _binned_homophily(
    runs: Iterable[Mapping[str, Any]], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Per run (row) the mean batch homophily of the steps in each bin ``(e_k, e_k+1]``."""
    n_bins = edges.size - 1
    rows = []
    for r in runs:
        st = np.asarray(r["steps"]["step"], np.float64)
        h = np.asarray(r["steps"]["homophily"], np.float64)
        ok = np.isfinite(h) & np.isfinite(st)
        idx = np.clip(np.searchsorted(edges, st[ok], side="left") - 1, 0, n_bins - 1)
        sums = np.bincount(idx, weights=h[ok], minlength=n_bins)
        cnt = np.bincount(idx, minlength=n_bins)
        rows.append(np.divide(sums, cnt, out=np.full(n_bins, np.nan), where=cnt > 0))
    return np.vstack(rows) if rows else np.zeros((0, n_bins))


def plot_homophily(groups: Groups, out_png: str | os.PathLike[str]) -> Path:
    """Plot batch homophily against training step, one line per sampler.

    Binning: the step range ``0..max step`` (over all runs of all groups) is cut into
    ``HOMOPHILY_BINS`` (50) equal-width bins shared by every group — one bin per step when there
    are fewer steps. Each run's per-step homophily is averaged within a bin; the line is the mean
    over the group's seeds of those bin means, with a min–max band over seeds.

    Args:
        groups: Sampler label -> run directories (or :func:`read_run` results).
        out_png: Where to write the PNG; parent directories are created, and the file is
            replaced atomically.

    Returns:
        The path written.
    """
    loaded = _load_groups(groups)
    edges, centres = _homophily_bins(loaded)
    fig, ax = _new_figure()
    drawn = False
    for label, runs in loaded.items():
        y = _binned_homophily(runs, edges)
        mean, lo, hi = _mean_min_max(y)
        if not np.isfinite(mean).any():
            continue
        (line,) = ax.plot(centres, mean, label=f"{label} (n={len(runs)})", lw=1.6)
        ax.fill_between(centres, lo, hi, color=line.get_color(), alpha=0.18, lw=0)
        drawn = True
    if drawn:
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no batch homophily recorded", ha="center", transform=ax.transAxes)
    width = edges[1] - edges[0] if edges.size > 1 else 1.0
    ax.set_xlabel("training step")
    ax.set_ylabel("batch homophily")
    ax.set_title(
        f"Batch homophily (mean per bin of {width:.3g} step{'' if width == 1 else 's'}, "
        "mean over seeds; band: min–max)"
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save_figure(fig, out_png)


def has_schedule(loaded: Mapping[str, list[dict[str, Any]]]) -> bool:
    """Whether any run logged the task in force (a curriculum's ``pool`` per step)."""
    return any("pool" in r["steps"] for runs in loaded.values() for r in runs)


def plot_schedule(groups: Groups, out_png: str | os.PathLike[str]) -> Path:
    """Plot each curriculum's schedule against training step, mean over seeds with a min–max
    band: above, the share of the training items the task in force holds (``pool``; samplers
    without a schedule dashed at 1); below, the task in force (``task``: a curriculum's stage,
    or the band a bandit chose, 0 the easiest, averaged over 20-step windows)."""
    import matplotlib.pyplot as plt

    loaded = _load_groups(groups)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for label, runs in loaded.items():
        for ax, key in ((top, "pool"), (bottom, "task")):
            scheduled = any(key in r["steps"] for r in runs)
            curves = []
            for r in runs:
                st = np.asarray(r["steps"]["step"], np.float64)
                v = np.asarray(r["steps"].get(key, np.ones(st.size)), np.float64)
                curves.append((st, v))
            n = min((c[0].size for c in curves), default=0)
            if n == 0 or (key == "task" and not scheduled):
                continue
            x = curves[0][0][:n]
            y = np.vstack([c[1][:n] for c in curves])
            if key == "task" and "curriculum=agent" in label:
                w = min(20, n)
                kernel = np.ones(w) / w
                y = np.vstack([np.convolve(row, kernel, mode="same") for row in y])
            mean, lo, hi = _mean_min_max(y)
            (line,) = ax.plot(x, mean, label=label, lw=1.4, ls="-" if scheduled else "--")
            if scheduled:
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    top.set_ylim(0, 1.05)
    top.set_ylabel("share of the items in play")
    top.set_title("Schedule: the task in force (mean over seeds; band: min–max)")
    top.legend(loc="lower right", fontsize="x-small")
    bottom.set_ylabel("task (stage, or band chosen)")
    bottom.set_xlabel("training step")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save_figure(fig, out_png)


# --------------------------------------------------------------------------- all of it


def write_report(
    groups: Groups,
    out_dir: str | os.PathLike[str],
    *,
    target_acc: float | None = None,
    name: str = "compare",
) -> dict[str, Any]:
    """Summarise, tabulate and plot a comparison into one directory.

    Writes ``NAME.md`` (:func:`render_markdown`), ``NAME.json`` (the summary),
    ``NAME-accuracy.png`` and ``NAME-homophily.png`` (and ``NAME-schedule.png`` when a run
    followed a curriculum: :func:`plot_schedule`) into ``out_dir`` (created if needed), each
    atomically; existing files of those names are replaced.

    Args:
        groups: Sampler label -> run directories (or :func:`read_run` results); first is the
            baseline.
        out_dir: Directory for the four files.
        target_acc: Target test accuracy as a fraction, or None for the :func:`summarize` default.
        name: Base name of the files (a plain file name, no directory part).

    Returns:
        The :func:`summarize` result with ``"files"``: ``{"markdown", "json", "accuracy_png",
        "homophily_png"}`` (paths as strings), as also stored in ``NAME.json``.
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise InputError(f"report name must be a plain file name, got {name!r}")
    loaded = _load_groups(groups)
    summary = summarize(loaded, target_acc=target_acc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "markdown": out / f"{name}.md",
        "json": out / f"{name}.json",
        "accuracy_png": out / f"{name}-accuracy.png",
        "homophily_png": out / f"{name}-homophily.png",
    }
    try:
        plot_accuracy(loaded, files["accuracy_png"], target_acc=summary["target"]["acc"])
        plot_homophily(loaded, files["homophily_png"])
        if has_schedule(loaded):
            files["schedule_png"] = out / f"{name}-schedule.png"
            plot_schedule(loaded, files["schedule_png"])
    except ImportError as e:  # graphwalk without its plots extra: the tables still come
        warnings.warn(f"{e}; the report's plots are not drawn", RuntimeWarning, stacklevel=2)
        for key in ("accuracy_png", "homophily_png", "schedule_png"):
            files.pop(key, None)
    summary["files"] = {k: str(v) for k, v in files.items()}
    atomic_write(files["markdown"], render_markdown(summary))
    atomic_write(files["json"], json.dumps(summary, indent=2, allow_nan=False, default=str) + "\n")
    return summary
