"""``graphwalk index``: build and store a graph index from embeddings or a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from graphwalk.build import GRAPH_KINDS
from graphwalk.graphs import KNN_BACKENDS


def register(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        help="build an index (clusters + graphs) and store it as NAME.gw/",
        description="Cluster vectors, build graphs over clusters or items, store them.",
    )
    src = p.add_argument_group("input (one of --embeddings or --dataset)")
    x = src.add_mutually_exclusive_group(required=True)
    x.add_argument(
        "--embeddings", metavar="PATH", help=".npy, .npz or Parquet file of item vectors"
    )
    x.add_argument(
        "--dataset",
        metavar="NAME",
        help="mnist1d, digits (embedded) or cifar10, cifar100, mnist (torchvision)",
    )
    src.add_argument(
        "--labels", metavar="PATH", help="one integer label per item (.npy/.npz/Parquet)"
    )
    src.add_argument("--column", metavar="NAME", help="the Parquet column holding the vectors")
    src.add_argument(
        "--data-dir",
        default="datasets",
        metavar="DIR",
        help="where torchvision datasets live (default: datasets)",
    )
    src.add_argument(
        "--download", action="store_true", help="download a missing torchvision dataset"
    )
    src.add_argument("--split", default="train", choices=("train", "test"))
    src.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="use this model's activations (a torch.save(model) file) as the vectors",
    )
    src.add_argument(
        "--layers",
        metavar="NAME[,NAME...]",
        help="module names whose outputs become vectors (one kNN graph per layer)",
    )
    c = p.add_argument_group("clustering")
    c.add_argument("--clusters", type=int, metavar="K", help="faiss k-means with K clusters")
    c.add_argument(
        "--groups",
        action="append",
        default=[],
        metavar="labels|NAME",
        help="a level with one cluster per label value (repeatable)",
    )
    g = p.add_argument_group("graphs")
    g.add_argument(
        "--graph",
        action="append",
        choices=GRAPH_KINDS,
        default=None,
        help="er, knn-clusters or knn (repeatable; default: er over clusters, else knn)",
    )
    g.add_argument("--graph-level", metavar="LEVEL", help="level the cluster graphs are built over")
    g.add_argument("--degree", type=float, help="ER mean degree (default min(10, K-1))")
    g.add_argument("--p", type=float, help="ER edge probability (instead of --degree)")
    g.add_argument(
        "--allow-disconnected",
        action="store_true",
        help="keep the er and knn-clusters graphs as built (possibly several components); "
        "by default their components are joined and the edges added counted in the manifest",
    )
    g.add_argument(
        "--k", type=int, default=10, help="neighbours per node for kNN graphs (default 10)"
    )
    g.add_argument("--metric", choices=("l2", "cosine"), default="l2")
    g.add_argument(
        "--knn-backend",
        choices=KNN_BACKENDS,
        default="auto",
        help="auto: exact up to 20,000 items, NN-descent above",
    )
    g.add_argument(
        "--recall-sample",
        type=int,
        default=1000,
        help="items checked against exact search to measure kNN recall",
    )
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="NAME.gw", help="index directory to write")
    o.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--json", action="store_true", help="print the manifest as JSON")
    o.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graphwalk.build import build_index
    from graphwalk.embeddings import read_labels, read_vectors
    from graphwalk.errors import InputError
    from graphwalk.storage import check_output

    show = sys.stderr.isatty() if args.progress is None else args.progress
    check_output(Path(args.out), args.overwrite)  # refuse before any slow work
    labels: Any = None
    inputs: Any = None
    extra: dict[str, Any] = {}
    if args.dataset:
        from graphwalk.datasets import load_dataset

        ds = load_dataset(
            args.dataset, data_dir=args.data_dir, download=args.download, split=args.split
        )
        vectors: Any = ds.features
        labels = ds.labels
        inputs = ds.inputs
        extra.update(dataset=args.dataset, split=args.split)
        if args.labels:
            raise InputError("--labels is for --embeddings; a --dataset brings its own labels")
    else:
        vectors = read_vectors(args.embeddings, column=args.column)
        if args.labels:
            labels = read_labels(args.labels)
        extra.update(embeddings=str(args.embeddings))
    if args.model or args.layers:
        if not (args.model and args.layers):
            raise InputError("--model and --layers go together: name the checkpoint and its layers")
        import numpy as np
        import torch

        from graphwalk.activations import capture_activations, load_model
        from graphwalk.validation import as_vectors

        if inputs is None:
            inputs = torch.as_tensor(as_vectors(vectors))
        layers = [s.strip() for s in args.layers.split(",") if s.strip()]
        model = load_model(args.model)
        vectors = capture_activations(model, inputs, layers, show_progress=show)
        del np
        extra.update(model=str(args.model), layers=layers)
    graphs = args.graph or (["er"] if (args.clusters or args.groups) else ["knn"])
    index = build_index(
        vectors,
        labels=labels,
        clusters=args.clusters,
        groups=args.groups,
        graphs=graphs,
        graph_level=args.graph_level,
        degree=args.degree,
        p=args.p,
        connect=not args.allow_disconnected,
        k=args.k,
        metric=args.metric,
        knn_backend=args.knn_backend,
        recall_sample=args.recall_sample,
        seed=args.seed,
        out=args.out,
        overwrite=args.overwrite,
        progress=show,
        extra_params=extra,
    )
    if args.json:
        print(json.dumps(index.manifest, indent=2))
        return 0
    print(
        f"wrote {index.path} ({index.n_items:,} items, {index.build_params['timings_s'].get('total', 0):.1f} s)"
    )
    for name, lv in index.levels.items():
        print(f"  level {name:<14} {lv.n_clusters:>8,} clusters ({lv.source})")
    for name, gr in index.graphs.items():
        extra_s = f", recall {gr.params['recall']:.3f}" if "recall" in gr.params else ""
        print(
            f"  graph {name:<14} {gr.n_nodes:>8,} nodes {gr.n_edges:>11,} edges ({gr.kind}{extra_s})"
        )
    return 0
