"""The evidence of issue 17: walks over the spaces of what the model learns (gradient sketches,
learned vectors) against shuffling and against activation graphs, paired by seed.

Each (setting, arm, seed) is one ``graphwalk train`` run (:func:`graphwalk.train.loop.train`)
into ``bench/.cache/vectors-compare/SETTING/ARM/seed-S``. The arms, all with the same ``er``
walk (a ROOT cluster and its neighbour clusters on an Erdős–Rényi graph over k-means clusters of
the space): ``random`` (shuffling, the reference), ``inputs`` (the run's index over the raw
inputs, built once), ``activations`` (the penultimate layer's activations, rebuilt every
epoch), ``grad`` and ``learned`` (``--vectors``, rebuilt every epoch). Settings: mnist1d with the
MLP (30 epochs) and the CNN (20 epochs), digits with the MLP (20 epochs), clean and with 20% of the
training labels flipped: 6 settings x 5 arms x 5 seeds = 150 runs.

What it records (``bench/results/vectors-compare.md`` and ``.json``):

- final test accuracy, and steps to reach 95% of shuffling's mean final accuracy, per arm; the
  paired differences against shuffling and against the activation graphs (95% t interval,
  paired t p value, Holm-adjusted over the whole table);
- the label homophily of each space's graphs over training (kNN graph: share of an item's 10
  neighbours with its clean label; er: of a batch community), from every refresh, against the
  raw inputs' index, and the batches' homophily;
- with label noise, whether mislabelled items stand out in each space: the items whose
  neighbours mostly carry another (given) label, the share of flipped items among them against
  the base rate, their recall, and the AUC of that disagreement as a score for "flipped"
  (and, for the sketches, of their length);
- the cost: seconds spent on the vectors per training second (the steps' share, buffered
  sketches and outer steps) and per refresh (the index rebuilt).

    .venv/bin/python bench/vectors_compare.py                   # everything (~35 min on 2 cores)
    .venv/bin/python bench/vectors_compare.py --only digits     # settings whose name starts with it
    .venv/bin/python bench/vectors_compare.py --quick --out-dir /tmp/x   # a smoke test
    .venv/bin/python bench/vectors_compare.py --render-only     # the tables from the records
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from graphwalk.train.verdict import holm, paired_t  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
ARMS = ["random", "inputs", "activations", "grad", "learned"]
#: the penultimate layer of each model (what the last layer sees)
PENULTIMATE = {"mlp": "body.act2", "cnn1d": "body.flatten"}
NEIGHBOURS = 10


def settings(quick: bool) -> dict[str, dict[str, Any]]:
    if quick:
        return {
            "digits-quick": {"dataset": "digits", "model": "mlp", "epochs": 2, "label_noise": 0.2}
        }
    out: dict[str, dict[str, Any]] = {}
    for dataset, model, epochs in (
        ("mnist1d", "mlp", 30),
        ("mnist1d", "cnn1d", 20),
        ("digits", "mlp", 20),
    ):
        for noise in (0.0, 0.2):
            name = f"{dataset}-{model}-{'noise20' if noise else 'clean'}"
            out[name] = {
                "dataset": dataset,
                "model": model,
                "epochs": epochs,
                **({"label_noise": noise} if noise else {}),
            }
    return out


def arm_settings(arm: str, base: dict[str, Any]) -> dict[str, Any]:
    if arm == "random":
        return {"sampler": "random"}
    s: dict[str, Any] = {"sampler": "er"}
    if arm == "activations":
        s.update(layers=[PENULTIMATE[base["model"]]], refresh_every=1)
    elif arm in ("grad", "learned"):
        s.update(vectors=arm, refresh_every=1)
    return s


# ----------------------------------------------------------------------------- one run


def run_one(base: dict[str, Any], arm: str, seed: int, out: Path) -> dict[str, Any]:
    """Train (or reuse a finished run) and return what the tables need."""
    from graphwalk.train.config import TrainConfig
    from graphwalk.train.loop import train

    if not (out / "summary.json").is_file():
        cfg = TrainConfig(**{**base, **arm_settings(arm, base), "seed": seed, "device": "cpu"})
        train(cfg, out, progress=False, overwrite=True)
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    evals = [r for r in recs if r["event"] == "eval"]
    steps = [r for r in recs if r["event"] == "step"]
    refresh = [r for r in recs if r["event"] == "refresh"]
    hom = [r["homophily"] for r in steps if r.get("homophily") is not None]
    res: dict[str, Any] = {
        "final_acc": summary["final_test_acc"],
        "curve": [(e["step"], e["test_acc"]) for e in evals],
        "batch_homophily": float(np.mean(hom)) if hom else None,
        "train_s": summary["train_s"],
        "steps": summary["steps"],
        "graphs": [
            {
                "epoch": r["epoch"],
                "knn": r["graphs"].get("knn", {}).get("homophily"),
                "er": r["graphs"].get("er", {}).get("homophily"),
            }
            for r in refresh
        ],
        "vectors_s": sum(r.get("vectors_s", 0.0) for r in refresh),
        "refresh_s": [r["seconds"] for r in refresh[1:]],
    }
    if arm == "inputs":
        from graphwalk.index.artifact import GraphIndex
        from graphwalk.train.indexing import graph_homophily

        g = graph_homophily(GraphIndex.load(out / "index.gw"))
        res["graphs"] = [{"epoch": 0, "knn": g["knn"]["homophily"], "er": g["er"]["homophily"]}]
    if base.get("label_noise") and arm != "random":
        res["cleaning"] = cleaning(base, arm, seed, out)
    return res


def final_vectors(base: dict[str, Any], arm: str, seed: int, out: Path) -> np.ndarray:
    """The space's vectors at the end of the run."""
    from graphwalk.train.data import load_splits

    if arm in ("grad", "learned"):
        return np.load(out / "vectors.npy")
    train_ds, _, _ = load_splits(base["dataset"])
    if arm == "inputs":
        return np.asarray(train_ds.features, np.float32)
    from graphwalk.build.activations import capture_activations
    from graphwalk.train.model_files import load_model_file

    net = load_model_file(out / "checkpoint.pt", tuple(train_ds.inputs.shape[1:]))
    layer = PENULTIMATE[base["model"]]
    return capture_activations(net, train_ds.inputs, [layer])[layer]


def cleaning(base: dict[str, Any], arm: str, seed: int, out: Path) -> dict[str, Any]:
    """Do mislabelled items stand out? Each item's share of its 10 nearest neighbours (exact,
    L2) whose given label differs from its own; flagged when above one half."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    from graphwalk.train.data import flip_labels, load_splits

    train_ds, test_ds, classes = load_splits(base["dataset"])
    y_clean = train_ds.labels[classes]
    n_classes = int(max(y_clean.max(), test_ds.labels[classes].max())) + 1
    y = flip_labels(y_clean, base["label_noise"], n_classes, seed)
    flipped = y != y_clean
    v = final_vectors(base, arm, seed, out)
    nn = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(v)
    idx = nn.kneighbors(v, return_distance=False)[:, 1:]
    disagree = (y[idx] != y[:, None]).mean(1)
    flagged = disagree > 0.5
    norm_auc = None
    if arm == "grad":  # the sketch's length: the per-example gradient's, up to the projection
        norm_auc = float(roc_auc_score(flipped, np.linalg.norm(v, axis=1)))
    return {
        "norm_auc": norm_auc,
        "base_rate": float(flipped.mean()),
        "flagged_share": float(flagged.mean()),
        "precision": float(flipped[flagged].mean()) if flagged.any() else None,
        "recall": float(flagged[flipped].mean()),
        "auc": float(roc_auc_score(flipped, disagree)),
    }


# ----------------------------------------------------------------------------- tables


def steps_to(curve: list[list[float]], target: float) -> int | None:
    for step, acc in curve:
        if acc >= target:
            return int(step)
    return None


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def render(results: dict[str, Any], seeds: list[int]) -> tuple[str, dict[str, Any]]:
    stem = "vectors-quick" if any("quick" in n for n in results) else "vectors-compare"
    rows: list[dict[str, Any]] = []
    lines_acc = [
        "| setting | arm | final acc (%) | steps to 95% of shuffling (median, reached) | "
        "batch homophily | kNN homophily first → last | er homophily first → last | "
        "vectors s per train s | refresh s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines_clean = [
        "| setting | space | base rate | flagged | flipped among flagged | recall | AUC | "
        "sketch-norm AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, by_arm in results.items():
        if "random" not in by_arm:
            continue
        ref = float(
            np.mean(
                [by_arm["random"][str(s)]["final_acc"] for s in seeds if str(s) in by_arm["random"]]
            )
        )
        target = 0.95 * ref
        for arm in ARMS:
            runs = by_arm.get(arm)
            if not runs:
                continue
            rs = [runs[str(s)] for s in seeds if str(s) in runs]
            acc = [r["final_acc"] for r in rs]
            st = [steps_to(r["curve"], target) for r in rs]
            reached = [x for x in st if x is not None]
            bh = [r["batch_homophily"] for r in rs if r["batch_homophily"] is not None]
            g0 = [r["graphs"][0] for r in rs if r["graphs"]]
            g1 = [r["graphs"][-1] for r in rs if r["graphs"]]

            def mean_of(gs: list[dict[str, Any]], key: str) -> float | None:
                vals = [g[key] for g in gs if g.get(key) is not None]
                return float(np.mean(vals)) if vals else None

            vs = [r["vectors_s"] / r["train_s"] for r in rs if r["train_s"]]
            refresh = [x for r in rs for x in r["refresh_s"]]
            lines_acc.append(
                f"| {name} | {arm} | {_pct(np.mean(acc))} ± {_pct(np.std(acc, ddof=1) if len(acc) > 1 else 0)} | "
                f"{int(np.median(reached)) if reached else '–'} ({len(reached)}/{len(rs)}) | "
                f"{_pct(np.mean(bh)) if bh else '–'} | "
                f"{_pct(mean_of(g0, 'knn'))} → {_pct(mean_of(g1, 'knn'))} | "
                f"{_pct(mean_of(g0, 'er'))} → {_pct(mean_of(g1, 'er'))} | "
                f"{f'{np.mean(vs):.3f}' if arm in ('grad', 'learned') and vs else '–'} | "
                f"{f'{np.mean(refresh):.2f}' if refresh else '–'} |"
            )
            cl = [r["cleaning"] for r in rs if r.get("cleaning")]
            if cl:

                def cm(key: str, cl: list[dict[str, Any]] = cl) -> str:
                    vals = [c[key] for c in cl if c.get(key) is not None]
                    return _pct(float(np.mean(vals))) if vals else "–"

                def auc_of(key: str, cl: list[dict[str, Any]] = cl) -> str:
                    vals = [c[key] for c in cl if c.get(key) is not None]
                    sd = np.std(vals, ddof=1) if len(vals) > 1 else 0.0
                    return f"{np.mean(vals):.3f} ± {sd:.3f}" if vals else "–"

                lines_clean.append(
                    f"| {name} | {arm} | {cm('base_rate')} | {cm('flagged_share')} | "
                    f"{cm('precision')} | {cm('recall')} | {auc_of('auc')} | "
                    f"{auc_of('norm_auc')} |"
                )
        for arm in ARMS[1:]:
            for control in ("random", "activations"):
                if arm == control or control not in by_arm or arm not in by_arm:
                    continue
                common = [
                    str(s) for s in seeds if str(s) in by_arm[arm] and str(s) in by_arm[control]
                ]
                diffs = [
                    by_arm[arm][s]["final_acc"] - by_arm[control][s]["final_acc"] for s in common
                ]
                t = paired_t(diffs)
                rows.append(
                    {
                        "setting": name,
                        "arm": arm,
                        "control": control,
                        "diff": t["mean"],
                        "diff_std": t["std"],
                        "ci95": t["ci"],
                        "p": t["p"],
                        "diffs": diffs,
                    }
                )
    adj = holm([r["p"] for r in rows])
    lines_diff = [
        "| setting | arm | control | diff (points) | 95% CI | p | p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, p in zip(rows, adj, strict=True):
        r["p_holm"] = p
        r["verdict"] = (
            "tie" if p is None or p >= 0.05 else ("beats" if r["diff"] > 0 else "loses to")
        )
        ci = r["ci95"]
        diff = (
            "–"
            if r["diff"] is None
            else f"{100 * r['diff']:+.2f} ± {100 * (r['diff_std'] or 0):.2f}"
        )
        ci_s = "–" if ci is None else f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
        p_s = "–" if r["p"] is None else f"{r['p']:.3g}"
        ph = "–" if p is None else f"{p:.3g}"
        lines_diff.append(
            f"| {r['setting']} | {r['arm']} | {r['control']} | {diff} | {ci_s} | {p_s} | {ph} | "
            f"{r['verdict']} |"
        )
    text = "\n".join(
        [
            f"# Walks over what the model learns (issue 17), seeds {','.join(map(str, seeds))}",
            "",
            "Every arm walks `er` (a ROOT cluster and its Erdős–Rényi neighbours among k-means "
            "clusters of its space) except `random` (shuffling). `inputs`: the run's index of "
            "the raw inputs; `activations`: the penultimate layer, rebuilt every epoch; `grad`: "
            "last-layer gradient sketches (64 dims); `learned`: per-item vectors learned from "
            "them (64 dims, outer lr 0.5); both rebuilt every epoch. Rerun: "
            "`.venv/bin/python bench/vectors_compare.py`.",
            "",
            "## Accuracy, speed to target, homophily, cost",
            "",
            "Final test accuracy mean ± std over seeds; steps to reach 95% of shuffling's mean "
            "final accuracy (evaluated every epoch; median over the seeds that reached it); the "
            "batches' label homophily (share of same-label pairs, clean labels) over the run; "
            "the graphs' label homophily at the first and the last refresh (kNN: share of an "
            "item's 10 neighbours with its label; er: of a community); seconds spent on the "
            "vectors per second of training steps; seconds per refresh (index rebuilt).",
            "",
            *lines_acc,
            "",
            f"![graph homophily over training]({stem}-homophily.png)",
            "",
            "## Paired differences in final accuracy",
            "",
            f"Per-seed differences in points (mean ± std), 95% t interval, paired t p value "
            f"Holm-adjusted over all {len(rows)} comparisons; *beats* / *loses to* only when the "
            "adjusted p value is below 0.05.",
            "",
            *lines_diff,
            "",
            "## Do mislabelled items stand out? (20% of the labels flipped)",
            "",
            f"For each space's vectors at the end of the run: an item is flagged when most of its "
            f"{NEIGHBOURS} nearest neighbours carry another given label. *flipped among flagged* "
            "against the *base rate* says whether the flag finds mislabelled items; AUC scores "
            "the share of disagreeing neighbours as a detector of flipped items (0.5: chance); "
            "*sketch-norm AUC* scores the length of an item's gradient sketch instead (the "
            "per-example gradient's norm, which the loss drives).",
            "",
            *lines_clean,
            "",
        ]
    )
    return text, {"seeds": seeds, "rows": rows}


def plot(results: dict[str, Any], seeds: list[int], path: Path) -> None:
    """Each setting's graph homophily over training (kNN graph, top; er communities, bottom),
    mean over seeds, one line per space; shuffling's batch homophily as the chance level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 5.6), squeeze=False)
    for col, name in enumerate(names):
        by_arm = results[name]
        for row, key in enumerate(("knn", "er")):
            ax = axes[row][col]
            for arm in ARMS[1:]:
                runs = [by_arm.get(arm, {}).get(str(s)) for s in seeds]
                series = [r["graphs"] for r in runs if r and r["graphs"]]
                if not series:
                    continue
                n = min(len(g) for g in series)
                ys = [np.mean([g[i][key] for g in series]) for i in range(n)]
                xs = [series[0][i]["epoch"] for i in range(n)]
                if n == 1:  # built once: flat over the run
                    last = max(len(r["curve"]) for r in runs if r) - 1
                    xs, ys = [0, last], ys * 2
                ax.plot(xs, ys, marker="." if n > 1 else None, label=arm)
            chance = [
                by_arm["random"][str(s)]["batch_homophily"]
                for s in seeds
                if str(s) in by_arm.get("random", {})
            ]
            if chance:
                ax.axhline(float(np.mean(chance)), color="grey", ls=":", label="chance")
            ax.set_title(f"{name}\n{'kNN graph' if key == 'knn' else 'er communities'}", fontsize=8)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("epoch", fontsize=8)
            if col == 0:
                ax.set_ylabel("label homophily", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="settings whose name starts with this")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--quick", action="store_true", help="one short digits setting, 2 seeds")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "results")
    ap.add_argument("--work-dir", type=Path, default=ROOT / ".cache" / "vectors-compare")
    ap.add_argument("--render-only", action="store_true", help="the tables from the records")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    todo = settings(args.quick)
    if args.quick:
        seeds = seeds[:2]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    record = args.out_dir / (
        "vectors-compare-runs.json" if not args.quick else "vectors-quick-runs.json"
    )
    results: dict[str, Any] = json.loads(record.read_text()) if record.is_file() else {}
    if not args.render_only:
        if args.only:
            todo = {k: v for k, v in todo.items() if any(k.startswith(o) for o in args.only)}
            if not todo:
                ap.error(f"no setting starts with {args.only}; settings: {sorted(settings(False))}")
        for name, base in todo.items():
            t0 = time.perf_counter()
            for seed in seeds:
                for arm in ARMS:
                    out = args.work_dir / name / arm / f"seed-{seed}"
                    res = run_one(base, arm, seed, out)
                    # re-read before writing: a second process may run other settings
                    results = json.loads(record.read_text()) if record.is_file() else {}
                    results.setdefault(name, {}).setdefault(arm, {})[str(seed)] = res
                    record.write_text(json.dumps(results) + "\n")
                    print(
                        f"{name} {arm} seed {seed}: {100 * res['final_acc']:.1f}%",
                        file=sys.stderr,
                    )
            print(f"== {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    order = [n for n in settings(args.quick) if n in results]
    text, summary = render({n: results[n] for n in order}, seeds)
    stem = "vectors-compare" if not args.quick else "vectors-quick"
    (args.out_dir / f"{stem}.md").write_text(text)
    (args.out_dir / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot({n: results[n] for n in order}, seeds, args.out_dir / f"{stem}-homophily.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
