"""``graphwalk bench``: profile sampler throughput beside PyTorch's samplers in the same run, and
the batches' label homophily per tenth of the epoch beside the reference walk's."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="profile sampler throughput (batches/s, walk steps/s, memory)",
        description="Profile the walk samplers over an index or a synthetic graph, "
        "beside RandomSampler + BatchSampler measured in the same run. With labels in the index, "
        "also report the batches' label homophily per tenth of an epoch and, on item graphs, "
        "the reference breadth-first walk's (graphwalk.walk.reference) in the same run.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("index", nargs="?", metavar="INDEX", help="an index directory (NAME.gw)")
    src.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="a random index of N items (clusters of ~1,000, item graph of degree 10)",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--graph", action="append", metavar="NAME", help="graphs to profile (default: all)"
    )
    p.add_argument(
        "--epochs", type=int, default=3, help="passes timed per sampler; the best counts"
    )
    p.add_argument("--no-dataloader", action="store_true", help="skip the DataLoader measurements")
    p.add_argument(
        "--no-compile", action="store_true", help="skip the cold Numba compile measurement"
    )
    p.add_argument(
        "--no-homophily",
        action="store_true",
        help="skip the homophily per tenth of the epoch (and the reference walk)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graphwalk.errors import InputError
    from graphwalk.index.artifact import GraphIndex
    from graphwalk.validation import check_positive_int
    from graphwalk.walk.profiling import homophily_table, profile_sampler, synthetic_index

    check_positive_int("batch_size", args.batch_size)
    check_positive_int("epochs", args.epochs)
    if args.synthetic is not None:
        if args.synthetic < 2:
            raise InputError(f"--synthetic needs at least 2 items, but got {args.synthetic}")
        index = synthetic_index(args.synthetic)
    else:
        index = GraphIndex.load(args.index)
    for g in args.graph or []:
        index.graph(g)  # clear error for an unknown name
    res = profile_sampler(
        index,
        batch_size=args.batch_size,
        graphs=args.graph,
        epochs=args.epochs,
        dataloader=not args.no_dataloader,
        compile_time=not args.no_compile,
        homophily=not args.no_homophily,
    )
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['n_items']:,} items, batch {res['batch_size']}; best of {args.epochs} epochs")
    print(
        "| sampler | µs/batch | batches/s | items/s | vs torch | DataLoader µs/batch | first batch (s) | bytes/item |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in res["rows"]:
        us = r["us_per_batch"]
        print(
            f"| {r['sampler']} | {us:.2f} | {1e6 / us:,.0f} | {1e6 / us * res['batch_size']:,.0f} | "
            f"{r.get('speedup_vs_torch', 1.0):.2f}x | {r.get('dataloader_us_per_batch', float('nan')):.2f} | "
            f"{format(r['first_batch_s'], '.3f') if 'first_batch_s' in r else '-'} | "
            f"{'' if r.get('bytes_per_item') is None else format(r['bytes_per_item'], '.1f')} |"
        )
    if "walk_msteps_per_s_1_thread" in res:
        print(
            f"walk kernel on {res['walk_graph']!r}: {res['walk_msteps_per_s_1_thread']:.1f} M steps/s (1 thread)"
        )
    if res.get("numba_compile_s") is not None:
        print(f"Numba compile of the sampler kernels (cold cache): {res['numba_compile_s']:.1f} s")
    if res.get("homophily"):
        print()
        print(
            homophily_table(
                res["homophily"],
                f"batch homophily per tenth of the epoch ({res['homophily']['epochs']} epochs pooled)",
            ).markdown()
        )
    return 0
