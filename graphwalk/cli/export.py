"""``graphwalk export SRC DST --layout parquet|arrays``: the same index in the other layout."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write an index in another layout (Parquet for interchange, memory-mapped arrays "
        "for big indexes)",
    )
    p.add_argument("index", metavar="INDEX", help="the index directory to read (NAME.gw)")
    p.add_argument("out", metavar="OUT.gw", help="the index directory to write")
    p.add_argument(
        "--layout",
        required=True,
        choices=("parquet", "arrays"),
        help="parquet: compressed tables (format v1, read by every graphwalk); arrays: "
        "uncompressed memory-mapped .npy files (format v2, opened in O(1))",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing index at OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graphwalk.errors import InputError
    from graphwalk.index.artifact import GraphIndex
    from graphwalk.index.storage import check_output

    src, out = Path(args.index), Path(args.out)
    if src.resolve() == out.resolve():
        raise InputError(f"{args.out} is the index being read; write the export elsewhere")
    check_output(out, args.overwrite)  # refuse before reading a big index
    index = GraphIndex.load(src, verify=True)  # every byte checked before it is copied
    index.save(out, overwrite=args.overwrite, layout=args.layout)
    m = index.manifest
    size = sum(t["bytes"] for t in m["tables"].values())
    print(
        f"wrote {out} ({index.n_items:,} items, {args.layout} layout, format "
        f"v{m['format_version']}, {len(m['tables'])} files, {size:,} bytes)"
    )
    return 0
