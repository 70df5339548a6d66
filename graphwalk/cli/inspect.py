"""``graphwalk inspect INDEX``: sizes, degrees, components, homophily; ``--json``, ``--plot``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="describe an index (sizes, degrees, components, homophily)")
    p.add_argument("index", metavar="INDEX", help="an index directory (NAME.gw)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument(
        "--plot", metavar="FILE.png", help="save cluster sizes, degrees and a centroid map"
    )
    v = p.add_mutually_exclusive_group()
    v.add_argument(
        "--verify",
        action="store_true",
        help="check every byte (checksums, and an arrays index's structure) and record the "
        "result in the index's verified.json",
    )
    v.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the checksums when reading a Parquet index (an arrays index never reads "
        "them unless --verify)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        metavar="B",
        help="say how many clusters a batch of B spans on each cluster graph (default 256)",
    )
    p.add_argument(
        "--k",
        type=int,
        default=4,
        metavar="K",
        help="the sampler's neighbour clusters per community, for that estimate (default 4)",
    )
    p.set_defaults(func=run)


def _fmt(s: dict[str, float]) -> str:
    return f"min {s['min']:g}  median {s['median']:g}  mean {s['mean']:.2f}  max {s['max']:g}"


def _batch_span(index: Any, stats: dict[str, Any], batch_size: int, k: int) -> None:
    """Per cluster graph: how many clusters a batch of ``batch_size`` spans, and whether ROOT and
    ``k`` neighbours typically hold fewer items than a batch (then random clusters dilute it)."""
    import numpy as np

    for name, g in index.graphs.items():
        if g.kind != "cluster" or g.level not in index.levels:
            continue
        sizes = index.levels[g.level].sizes.astype(np.float64)
        live = sizes > 0
        if not live.any():
            continue
        mean = float(sizes[live].mean())
        community = sizes + np.minimum(k, np.diff(g.indptr)) * mean
        typical = float(np.median(community[live]))
        stats["graphs"][name]["batch_span"] = {
            "batch_size": batch_size,
            "k": k,
            "clusters": batch_size / mean,
            "community": typical,
            "diluted": typical < batch_size,
        }


def _verified(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return (
            "not for the current files (graphwalk inspect --verify checks every byte and "
            "records it)"
        )
    when = (
        f"at {rec.get('checked_utc', '?')} by graphwalk {rec.get('graphwalk_version', '?')} "
        f"({rec.get('files', '?')} files, {rec.get('bytes', 0):,} bytes in "
        f"{rec.get('seconds', '?')} s)"
    )
    if rec.get("ok"):
        return f"ok {when}"
    return f"FAILED {when}: {rec.get('error', '?')}"


def _say_verification(index: Any) -> None:
    """On stderr, so that ``--json`` keeps stdout for the statistics."""
    import sys

    rec = index.verification
    if rec is not None and rec.get("recorded") is False:
        print(
            f"graphwalk inspect: warning: cannot write {index.path}/verified.json; the result "
            "was not recorded",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graphwalk.errors import InputError
    from graphwalk.index.artifact import GraphIndex
    from graphwalk.index.stats import index_stats, plot_index

    if args.plot:
        plot = Path(args.plot)
        if plot.is_dir():
            raise InputError(
                f"--plot {args.plot} is a directory; give a file name, e.g. "
                f"--plot {plot / 'index.png'}"
            )
        if not plot.resolve().parent.is_dir():
            raise InputError(f"the directory for --plot {args.plot} does not exist")
    from graphwalk.validation import check_positive_int

    check_positive_int("batch_size", args.batch_size)
    if args.k < 0:
        raise InputError(f"--k should be a non-negative integer, but got --k {args.k}")
    index = GraphIndex.load(args.index, verify=False if args.no_verify else None)
    if args.verify:
        try:
            index.verify()
        finally:
            _say_verification(index)
    else:
        index.check_structure()  # an arrays index: every array is read below; ids must be in range
    stats = index_stats(index)
    stats["layout"] = index.layout
    stats["verification"] = index.verification
    _batch_span(index, stats, args.batch_size, args.k)
    if args.plot:
        try:
            plot_index(index, args.plot)
        except OSError as exc:
            raise InputError(f"cannot write --plot {args.plot}: {exc.strerror or exc}") from exc
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(
        f"{stats['path']}: {stats['n_items']:,} items, format v{stats['format_version']} "
        f"{stats['layout']} (graphwalk {stats['graphwalk_version']})"
    )
    print(f"  verified: {_verified(stats['verification'])}")
    print("  spaces: " + ", ".join(f"{k} ({v}-d)" for k, v in stats["spaces"].items()))
    if stats["labels"]:
        print("  labels: " + ", ".join(f"{k} ({v} values)" for k, v in stats["labels"].items()))
    for name, lv in stats["levels"].items():
        print(
            f"  level {name}: {lv['n_clusters']:,} clusters ({lv['source']}); size {_fmt(lv['size'])}"
        )
        for lab, h in lv.get("homophily", {}).items():
            print(
                f"    homophily[{lab}]: same-label pairs {h['community']:.3f} in a cluster vs "
                f"{h['random']:.3f} at random ({h['lift']:.2f}x)"
            )
    for name, g in stats["graphs"].items():
        over = f"clusters of {g['level']!r}" if g["kind"] == "cluster" else f"items ({g['space']})"
        print(
            f"  graph {name}: {g['n_nodes']:,} nodes over {over}, {g['n_edges']:,} edges"
            f"{' (directed)' if g['directed'] else ''}"
        )
        print(
            f"    degree {_fmt(g['degree'])}; {g['components']} component(s), largest "
            f"{g['largest_component']:,}; {g['isolated_nodes']} isolated"
        )
        span = g.get("batch_span")
        if span is not None:
            warn = "  <- smaller than a batch: random clusters fill it" if span["diluted"] else ""
            print(
                f"    a batch of {span['batch_size']} spans about {span['clusters']:.1f} clusters; "
                f"ROOT and k={span['k']} neighbours hold about {span['community']:.0f} items{warn}"
            )
        recall = g["params"].get("recall")  # build parameters: as stored, not checked
        if isinstance(recall, (int, float)) and not isinstance(recall, bool):
            print(f"    kNN {g['params'].get('method', '?')}, recall {recall:.3f}")
        for lab, h in g.get("homophily", {}).items():
            print(
                f"    homophily[{lab}]: same-label pairs {h['community']:.3f} in a community vs "
                f"{h['random']:.3f} at random ({h['lift']:.2f}x)"
            )
    if args.plot:
        print(f"  plot: {args.plot}")
    return 0
