"""The evidence of issue 18: meta-learners on episodes drawn from the graph, against the baselines
that need no meta-training, over paired seeds.

Settings (each a ``graphwalk train --compare`` of episode specs over 5 paired seeds, the first spec
the reference of its verdicts):

- ``supervised``: meta-train on 5 classes of the train split, test 5-way on the other 5 classes of
  the test split (``--class-split 5/0/5``); episodes ``uniform`` (reference), ``walk`` (ROOT and
  its nearest classes) and ``within=parent`` (2-way: the 5 training classes under the 2 parents
  derived from the class means, so only 2-way episodes fit; its test is 2-way too).
- ``cactus-kK``: unsupervised meta-training as CACTUs (Hsu, Levine, Finn 2019): episodes over K
  k-means clusters of the train split's raw inputs (no labels), tested on the real classes of the
  test split (all 10); ``uniform`` (reference) and ``walk``.
- ``cactus-learned``: the same over k-means clusters of a learned encoder's activations (the
  ``supervised`` ProtoNet run of the same seed: trained without the test classes' labels),
  indexed through ``graphwalk index --model RUN/checkpoint.pt --layers body.act2``.

Baselines on the very same test episodes: nearest prototype over the raw inputs, and over the
randomly initialised encoder (the ProtoNet runs' evaluation before any training: the same initial
weights for every spec of a seed). A meta-learner that does not beat them has learned nothing.

    .venv/bin/python bench/meta_compare.py                 # everything (about an hour on one core; run --only digits and --only mnist1d side by side)
    .venv/bin/python bench/meta_compare.py --only digits   # one dataset
    .venv/bin/python bench/meta_compare.py --quick         # a smoke run (small, 2 seeds)

Writes ``bench/results/meta-compare/NAME.{md,json}`` per setting (the comparison's report, with
95% intervals and Holm's correction over its comparisons) and ``bench/results/meta-compare.md``
(the overview: accuracy ± 95% CI over seeds, and the baselines).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _t95(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def _mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval over seeds."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, float("nan")
    return m, _t95(len(values)) * statistics.stdev(values) / len(values) ** 0.5


def _settings(quick: bool) -> list[dict[str, Any]]:
    ep = 30 if quick else 200
    epochs = 2 if quick else 5
    test = 100 if quick else 600
    common = {"episodes": ep, "epochs": epochs, "test_episodes": test, "q_query": 15}
    out = []
    for dataset in ("digits", "mnist1d"):
        for meta, lr_inner in (("protonet", None), ("fomaml", 0.1)):
            extra = {"meta": meta, "lr": 1e-3, **({"inner_lr": lr_inner} if lr_inner else {})}
            out.append(
                {
                    "name": f"{dataset}-{meta}-supervised-1shot",
                    "dataset": dataset,
                    "specs": ["episodes", "episodes:walk"],
                    "cfg": {**common, **extra, "k_shot": 1, "class_split": "5/0/5"},
                }
            )
            for k in (20, 50) if meta == "protonet" else (20,):
                for shot in (1, 5) if meta == "protonet" else (1,):
                    out.append(
                        {
                            "name": f"{dataset}-{meta}-cactus-k{k}-{shot}shot",
                            "dataset": dataset,
                            "specs": ["episodes:level=kmeans", "episodes:walk:level=kmeans"],
                            "cfg": {
                                **common,
                                **extra,
                                "k_shot": shot,
                                "index_clusters": k,
                                "drop_small_classes": True,
                            },
                        }
                    )
        out.append(
            {
                "name": f"{dataset}-protonet-supervised-within-2way",
                "dataset": dataset,
                "specs": ["episodes", "episodes:within=parent"],
                "cfg": {
                    **common,
                    "meta": "protonet",
                    "lr": 1e-3,
                    "k_shot": 1,
                    "n_way": 2,
                    "class_split": "5/0/5",
                },
            }
        )
    return out


def _baselines(dataset: str, cfg: dict[str, Any], seed: int) -> float:
    """Nearest prototype over the raw inputs, on the run's own test episodes."""
    import warnings

    from graphwalk.tasks.meta import RawPrototypes, evaluate_episodes, split_episode
    from graphwalk.train.config import TrainConfig
    from graphwalk.train.data import load_splits
    from graphwalk.train.episodic import held_out_episodes, run_class_split

    c = TrainConfig(dataset=dataset, sampler="episodes", seed=seed, **cfg).resolved()
    train, test, classes = load_splits(dataset, classes="label")
    split = run_class_split(c, train.labels[classes], test.labels[classes])
    ids = held_out_episodes(c, split, test.labels[classes], test.features)
    x = test.inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_episodes(
            RawPrototypes(),
            None,
            (split_episode(x[i], c.n_way, c.k_shot, c.q_query) for i in ids),
        )
    return float(res["accuracy"])


def _first_eval(run: Path) -> float:
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["event"] == "eval":
            return float(rec["test_acc"])
    raise RuntimeError(f"{run}: no evaluation")


def _learned_index(run: Path, dataset: str, k: int, seed: int, out: Path) -> Path:
    """An index of the trained encoder's activations: k-means clusters and a graph over them."""
    if not (out / "manifest.json").is_file():
        cmd = [
            sys.executable, "-m", "graphwalk", "index", "--dataset", dataset,
            "--model", str(run / "checkpoint.pt"), "--layers", "body.act2",
            "--clusters", str(k), "--graph", "knn-clusters", "--k", "4", "--seed", str(seed),
            "--out", str(out), "--overwrite", "--no-progress",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT)
    return out


def run_setting(s: dict[str, Any], seeds: list[int], work: Path, results: Path) -> dict[str, Any]:
    from graphwalk.train.compare import run_compare
    from graphwalk.train.config import TrainConfig
    from graphwalk.train.spec import parse_specs

    base = TrainConfig(dataset=s["dataset"], device="cpu", **s["cfg"])
    out = work / s["name"]
    t0 = time.perf_counter()
    summary = run_compare(base, parse_specs(s["specs"]), seeds, out, progress=False, threads=1)
    results.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "compare.md", results / f"{s['name']}.md")
    shutil.copyfile(out / "compare.json", results / f"{s['name']}.json")
    finals = {}
    for spec in s["specs"]:
        slug = parse_specs([spec])[0].slug
        finals[spec] = [
            json.loads((out / "runs" / slug / f"seed-{sd}" / "summary.json").read_text())[
                "final_test_acc"
            ]
            for sd in seeds
        ]
    first = parse_specs([s["specs"][0]])[0].slug
    random_encoder = [_first_eval(out / "runs" / first / f"seed-{sd}") for sd in seeds]
    raw = [_baselines(s["dataset"], s["cfg"], sd) for sd in seeds]
    return {
        "name": s["name"],
        "finals": finals,
        "untrained": random_encoder,
        "raw_prototypes": raw,
        "seconds": round(time.perf_counter() - t0, 1),
        "verdicts": {k: v.get("verdict") for k, v in summary.get("comparisons", {}).items()},
        "p_holm": {k: v.get("p_holm") for k, v in summary.get("comparisons", {}).items()},
        "out": str(out),
    }


def _merge(name: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from per-seed settings (each seed its own learned index): the verdict of the
    paired t-test over the seeds (one comparison)."""
    from graphwalk.train.verdict import paired_t

    finals = {k: [v for r in parts for v in r["finals"][k]] for k in parts[0]["finals"]}
    ref, *others = list(finals)
    verdicts, p_holm = {}, {}
    for k in others:
        t = paired_t([b - a for a, b in zip(finals[ref], finals[k], strict=True)])
        p = t.get("p")
        p_holm[k] = p
        if p is None:
            verdicts[k] = "n<2"
        else:
            verdicts[k] = ("beats" if t["mean"] > 0 else "loses") if p < 0.05 else "n.s."
    return {
        "name": name,
        "finals": finals,
        "untrained": [v for r in parts for v in r["untrained"]],
        "raw_prototypes": [v for r in parts for v in r["raw_prototypes"]],
        "seconds": sum(r["seconds"] for r in parts),
        "verdicts": verdicts,
        "p_holm": p_holm,
    }


def _pct(values: list[float]) -> str:
    m, h = _mean_ci(values)
    return f"{100 * m:.1f} ± {100 * h:.1f}"


def render(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    lines = [
        "## Meta-learning on graphwalk episodes",
        "",
        f"Final test accuracy on 600 held-out episodes per run (percent), mean ± 95% t-interval "
        f"over {len(seeds)} paired seeds ({', '.join(map(str, seeds))}); 'untrained' is the same "
        "learner before meta-training (for ProtoNet: prototypes over the randomly initialised "
        "encoder), 'raw' nearest prototypes over the raw inputs, both on the same episodes. "
        "Verdicts: paired t-test against the first spec, Holm over the setting's comparisons "
        "(bench/results/meta-compare/NAME.md).",
        "",
        "| setting | specs (first = reference) | accuracy | untrained | raw prototypes | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        accs = "; ".join(f"`{k}` {_pct(v)}" for k, v in r["finals"].items())
        verdicts = "; ".join(
            f"{k}: {v} (p_Holm {r['p_holm'][k]:.3g})"
            if r["p_holm"].get(k) is not None
            else f"{k}: {v}"
            for k, v in r["verdicts"].items()
        )
        lines.append(
            f"| {r['name']} | {', '.join(r['finals'])} | {accs} | {_pct(r['untrained'])} | "
            f"{_pct(r['raw_prototypes'])} | {verdicts} |"
        )
    return "\n".join(lines) + "\n"


def summarize(out_dir: Path) -> str:
    """bench/results/meta-compare.md from the datasets' recorded overviews: the accuracies, every
    episode setting against its reference with Holm over all of them, and every meta-learner
    against the two baselines with Holm over all of those."""
    from graphwalk.train.verdict import holm, paired_t

    rows, seeds = [], []
    for f in sorted(out_dir.glob("meta-compare-*.json")):
        if "quick" in f.name:
            continue
        d = json.loads(f.read_text())
        rows += d["rows"]
        seeds = d["seeds"]
    text = [
        render(rows, seeds).replace(
            "Holm over the setting's comparisons",
            "Holm within the setting (below: over the whole table)",
        )
    ]

    def table(title: str, items: list[tuple[str, str, list[float]]]) -> list[str]:
        tests = [paired_t(d) for _, _, d in items]
        adj = holm([t["p"] for t in tests])
        out = [
            "",
            f"### {title}",
            "",
            f"Paired by seed, percentage points; Holm's correction over the {len(items)} "
            "comparisons of this table.",
            "",
            "| setting | comparison | mean difference | 95% CI | p | p (Holm) | verdict |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for (name, what, _), t, a in zip(items, tests, adj, strict=True):
            verdict = "n.s." if a is None or a >= 0.05 else ("higher" if t["mean"] > 0 else "lower")
            lo, hi = t["ci"] if t["ci"] else (float("nan"), float("nan"))
            out.append(
                f"| {name} | {what} | {100 * t['mean']:+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] | "
                f"{t['p']:.4f} | {a:.4f} | {verdict} |"
            )
        return out

    specs, bases = [], []
    for r in rows:
        ref, *others = list(r["finals"])
        for k in others:
            d = [b - a for a, b in zip(r["finals"][ref], r["finals"][k], strict=True)]
            specs.append((r["name"], f"`{k}` − `{ref}`", d))
        for base, label in (("raw_prototypes", "raw prototypes"), ("untrained", "untrained")):
            d = [a - b for a, b in zip(r["finals"][ref], r[base], strict=True)]
            bases.append((r["name"], f"`{ref}` − {label}", d))
    text += table("Does the graph help? Each episode setting against its reference", specs)
    text += table("Has the meta-learner learned anything? Against the baselines", bases)
    return "\n".join(text) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="a dataset or a setting name prefix")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / ".cache" / "meta-compare")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument(
        "--summarize",
        action="store_true",
        help="only write meta-compare.md from the recorded meta-compare-DATASET.json files",
    )
    args = ap.parse_args(argv)
    if args.summarize:
        text = summarize(args.out_dir)
        (args.out_dir / "meta-compare.md").write_text(text)
        print(text)
        return 0
    seeds = [int(s) for s in ("0,1" if args.quick else args.seeds).split(",")]
    settings = [
        s for s in _settings(args.quick) if not args.only or s["name"].startswith(args.only)
    ]
    results = args.out_dir / "meta-compare"
    rows: list[dict[str, Any]] = []
    name = "meta-compare-quick" if args.quick else "meta-compare"
    if args.only:
        name += f"-{args.only}"

    def record() -> None:  # after every setting: a stopped run keeps what it measured
        (args.out_dir / f"{name}.md").write_text(render(rows, seeds))
        (args.out_dir / f"{name}.json").write_text(
            json.dumps({"seeds": seeds, "rows": rows}, indent=2) + "\n"
        )

    for s in settings:
        print(f"== {s['name']}", flush=True)
        rows.append(run_setting(s, seeds, args.work, results))
        record()
        print(render(rows[-1:], seeds), flush=True)
        if s["name"].endswith("protonet-supervised-1shot") and not args.quick:
            learned = {
                "name": s["name"].replace("supervised-1shot", "cactus-learned-k20-1shot"),
                "dataset": s["dataset"],
                "specs": ["episodes:level=kmeans", "episodes:walk:level=kmeans"],
                "cfg": {**s["cfg"], "drop_small_classes": True},
            }
            # one learned index per seed: the supervised run of that seed, never the test labels
            rows_learned = []
            for sd in seeds:
                run = args.work / s["name"] / "runs" / "episodes" / f"seed-{sd}"
                idx = _learned_index(
                    run, s["dataset"], 20, sd, args.work / f"{learned['name']}-index-{sd}.gw"
                )
                one = {
                    **learned,
                    "name": f"{learned['name']}-seed{sd}",
                    "cfg": {**learned["cfg"], "index": str(idx)},
                }
                rows_learned.append(run_setting(one, [sd], args.work, args.work / "learned-parts"))
            merged = _merge(learned["name"], rows_learned)
            rows.append(merged)
            record()
            print(render([merged], seeds), flush=True)
    record()
    print(render(rows, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
