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
    p.add_argument("--no-verify", action="store_true", help="skip the checksum check when loading")
    p.set_defaults(func=run)


def _fmt(s: dict[str, float]) -> str:
    return f"min {s['min']:g}  median {s['median']:g}  mean {s['mean']:.2f}  max {s['max']:g}"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graphwalk.errors import InputError
    from graphwalk.index import GraphIndex
    from graphwalk.stats import index_stats, plot_index

    if args.plot:
        plot = Path(args.plot)
        if plot.is_dir():
            raise InputError(
                f"--plot {args.plot} is a directory; give a file name, e.g. "
                f"--plot {plot / 'index.png'}"
            )
        if not plot.resolve().parent.is_dir():
            raise InputError(f"the directory for --plot {args.plot} does not exist")
    index = GraphIndex.load(args.index, verify=not args.no_verify)
    stats = index_stats(index)
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
        f"(graphwalk {stats['graphwalk_version']})"
    )
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
