"""``graphwalk index``: build and store a graph index from embeddings or a dataset."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from typing import Any

from graphwalk.build.builder import GRAPH_KINDS, SEED_MAX
from graphwalk.build.graphs import KNN_BACKENDS
from graphwalk.cli.types import int_in, real_in


def register(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        help="build an index (clusters + graphs) and store it as NAME.gw/",
        description="Cluster vectors, build graphs over clusters or items, store them.",
    )
    src = p.add_argument_group("input (one of --embeddings, --dataset or --vectors-from)")
    x = src.add_mutually_exclusive_group()
    x.add_argument(
        "--embeddings",
        metavar="PATH",
        help=".npy, .npz or Parquet file of item vectors, or Parquet shards: a directory or a "
        "quoted pattern ('shards/*.parquet'), built stage by stage (see --engine)",
    )
    x.add_argument(
        "--dataset",
        metavar="NAME",
        help="mnist1d, digits (embedded) or cifar10, cifar100, mnist (torchvision)",
    )
    src.add_argument(
        "--vectors-from",
        metavar="RUN_DIR",
        help="the gradient sketches or learned vectors a graphwalk train --vectors run saved "
        "(its dataset's train split gives the labels; with --dataset, it must be the same)",
    )
    src.add_argument(
        "--labels", metavar="PATH", help="one integer label per item (.npy/.npz/Parquet)"
    )
    src.add_argument(
        "--column", metavar="NAME", help="the Parquet (list) column holding the vectors"
    )
    src.add_argument(
        "--columns",
        metavar="A,B,...",
        help="the numeric Parquet columns that form the vector, in this order",
    )
    src.add_argument(
        "--id-column",
        metavar="NAME",
        help="a Parquet column of unique integer item ids: checked, then ignored",
    )
    src.add_argument(
        "--label-column",
        metavar="NAME",
        help="the column of the --labels Parquet file holding the labels "
        "(default: its only column; pandas index columns are always ignored); in a sharded "
        "build, the shards' integer label column",
    )
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
        metavar="FILE",
        help="use this model's activations as the vectors: a state dict of a graphwalk model "
        "(with --arch), a run's checkpoint.pt, or a whole pickled model (with --trust-model)",
    )
    src.add_argument(
        "--arch",
        metavar="NAME",
        help="the architecture of a --model state dict, as graphwalk train --model names it "
        "(mlp, cnn1d, cnn, resnet18); it is built for the items' shape",
    )
    src.add_argument(
        "--trust-model",
        action="store_true",
        help="--model is a whole pickled model (torch.save(model)) you trust: unpickle it, "
        "which runs code from the file",
    )
    src.add_argument(
        "--layers",
        metavar="NAME[,NAME...]",
        help="module names whose outputs become vectors (one kNN graph per layer)",
    )
    sh = p.add_argument_group(
        "sharded build (Parquet shards: a directory, a pattern, or any --embeddings with --engine)"
    )
    sh.add_argument(
        "--engine",
        choices=("local", "ray"),
        help="run the stages in this process (local, the default for shards) or as Ray tasks",
    )
    sh.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="a running Ray cluster (default: start Ray on this machine)",
    )
    sh.add_argument(
        "--num-cpus",
        type=int_in(1, 1 << 16),
        metavar="N",
        help="CPUs of a Ray started on this machine (default: all)",
    )
    sh.add_argument(
        "--worker-memory",
        metavar="SIZE",
        help="memory one partition's kNN may use (2G, 512M): the partitions grow in number "
        "until the largest fits (default 2G)",
    )
    sh.add_argument(
        "--partitions",
        type=int_in(1, 1 << 20),
        metavar="P",
        help="use exactly P coarse partitions instead of sizing them to --worker-memory",
    )
    sh.add_argument(
        "--refine",
        type=_refine,
        metavar="R|auto",
        help="rounds of neighbours-of-neighbours after merging the partitions, 0 to 10, or "
        "auto (default): until the sampled recall reaches 0.9 (at most 4 rounds)",
    )
    sh.add_argument(
        "--kmeans-sample",
        type=int_in(1),
        metavar="ROWS",
        help="rows the --clusters k-means trains on, on the driver (default max(100,000, 256 "
        "per cluster)); it costs rows x clusters, so fewer make a build of many clusters faster",
    )
    sh.add_argument(
        "--work-dir",
        metavar="DIR",
        help="where the stages' files go (default: beside --out); on a cluster, a directory "
        "every node reads and writes",
    )
    c = p.add_argument_group("clustering")
    c.add_argument(
        "--clusters",
        type=int_in(1),
        metavar="K",
        help="faiss k-means with K clusters (an integer >= 1)",
    )
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
    g.add_argument(
        "--degree",
        type=real_in(),
        metavar="D",
        help="ER mean degree, a number > 0 (default min(10, K-1); above K-1 the graph is "
        "complete, with a warning)",
    )
    g.add_argument(
        "--p",
        type=real_in(high=1.0),
        metavar="P",
        help="ER edge probability in (0, 1] (instead of --degree)",
    )
    g.add_argument(
        "--allow-disconnected",
        action="store_true",
        help="keep the er and knn-clusters graphs as built (possibly several components); "
        "by default their components are joined and the edges added counted in the manifest",
    )
    g.add_argument(
        "--k",
        type=int_in(1),
        default=10,
        metavar="K",
        help="neighbours per node for kNN graphs, an integer >= 1 and below the number of "
        "items (default 10)",
    )
    g.add_argument("--metric", choices=("l2", "cosine"), default="l2")
    g.add_argument(
        "--knn-backend",
        choices=KNN_BACKENDS,
        default="auto",
        help="auto: whichever is expected to finish first (exact search up to about "
        "80,000 x 64 items in a new process), NN-descent above",
    )
    g.add_argument(
        "--recall-sample",
        type=int_in(1),
        default=1000,
        metavar="N",
        help="items checked against exact search to measure kNN recall, an integer >= 1 "
        "(default 1000)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="NAME.gw", help="index directory to write")
    o.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    o.add_argument(
        "--layout",
        choices=("auto", "parquet", "arrays"),
        default="auto",
        help="parquet: compressed tables, read whole at every open; arrays: uncompressed .npy, "
        "memory-mapped, opened in the same time at 1M or 100M items; auto (default): arrays "
        "from 1,000,000 items",
    )
    o.add_argument(
        "--seed",
        type=int_in(0, SEED_MAX),
        default=0,
        metavar="SEED",
        help=f"seeds k-means, the ER graph and the recall sample: 0 to {SEED_MAX} (default 0)",
    )
    o.add_argument("--json", action="store_true", help="print the manifest as JSON")
    o.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run)


def _refine(text: str) -> int | str:
    """``--refine``: ``auto`` or a number of rounds from 0 to 10."""
    if text == "auto":
        return text
    return int_in(0, 10)(text)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Print a warning as one line on stderr (no source line, no file name)."""
    print(f"graphwalk index: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Build the index. Standard output carries the result only (the summary or ``--json``);
    warnings (one line each), progress and any library's log go to standard error."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.showwarning = _show_warning
        index = _build(args)
    if args.json:
        print(json.dumps(index.manifest, indent=2))
        return 0
    total = index.build_params["timings_s"].get("total", 0)
    print(f"wrote {index.path} ({index.n_items:,} items, {total:.1f} s)")
    for name, lv in index.levels.items():
        print(f"  level {name:<14} {lv.n_clusters:>8,} clusters ({lv.source})")
    for name, gr in index.graphs.items():
        extra_s = f", recall {gr.params['recall']:.3f}" if "recall" in gr.params else ""
        print(
            f"  graph {name:<14} {gr.n_nodes:>8,} nodes {gr.n_edges:>11,} edges ({gr.kind}{extra_s})"
        )
    return 0


def _sharded(args: argparse.Namespace) -> bool:
    """Whether ``--embeddings`` names shards (a directory or a pattern) or ``--engine`` asks for
    the sharded build; its options without it are refused."""
    import os

    from graphwalk.errors import InputError

    emb = args.embeddings
    shards = args.engine is not None or (
        emb is not None and (os.path.isdir(emb) or any(c in emb for c in "*?["))
    )
    if shards:
        if args.embeddings is None:
            raise InputError(
                "--engine builds from Parquet shards: give them with --embeddings "
                "'shards/*.parquet' (a --dataset or --vectors-from is built in one process)"
            )
        for flag, value in (
            ("--labels", args.labels),
            ("--columns", args.columns),
            ("--model", args.model),
            ("--layers", args.layers),
            ("--groups", args.groups),
            ("--graph-level", args.graph_level),
            ("--p", args.p),
        ):
            if value:
                raise InputError(
                    f"{flag} is not supported by the sharded build: labels come from a shard "
                    "column (--label-column), vectors from one list column (--column), and the "
                    "only level is --clusters"
                )
        return True
    for flag, value in (
        ("--address", args.address),
        ("--num-cpus", args.num_cpus),
        ("--partitions", args.partitions),
        ("--work-dir", args.work_dir),
        ("--worker-memory", args.worker_memory),
        ("--refine", args.refine),
        ("--kmeans-sample", args.kmeans_sample),
    ):
        if value is not None:
            raise InputError(
                f"{flag} is an option of the sharded build: add --engine local|ray (with "
                "--embeddings pointing at Parquet shards), or drop it"
            )
    return False


def _build_sharded(args: argparse.Namespace, show: bool) -> Any:
    from graphwalk.build.shards import build_sharded_index

    graphs = args.graph or (["er"] if args.clusters else ["knn"])
    return build_sharded_index(
        args.embeddings,
        out=args.out,
        column=args.column,
        label_column=args.label_column,
        id_column=args.id_column,
        clusters=args.clusters,
        graphs=graphs,
        k=args.k,
        metric=args.metric,
        knn_backend=args.knn_backend,
        degree=args.degree,
        connect=not args.allow_disconnected,
        engine=args.engine or "local",
        address=args.address,
        num_cpus=args.num_cpus,
        worker_memory=args.worker_memory or "2G",
        partitions=args.partitions,
        refine="auto" if args.refine is None else args.refine,
        recall_sample=args.recall_sample,
        sample=args.kmeans_sample,
        seed=args.seed,
        overwrite=args.overwrite,
        layout=args.layout,
        work_dir=args.work_dir,
        progress=show,
    )


def _build(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from graphwalk.build.builder import build_index, check_writable
    from graphwalk.build.embeddings import read_labels, read_vectors
    from graphwalk.errors import InputError
    from graphwalk.index.storage import check_output

    show = sys.stderr.isatty() if args.progress is None else args.progress
    if _sharded(args):
        return _build_sharded(args, show)
    if not (args.embeddings or args.dataset or args.vectors_from):
        raise InputError(
            "give the items' vectors: --embeddings FILE, --dataset NAME or --vectors-from RUN_DIR"
        )
    run_vectors: Any = None
    if args.vectors_from:
        from graphwalk.train.itemvectors import read_run_vectors

        if args.embeddings or args.model or args.layers or args.labels:
            raise InputError(
                "--vectors-from brings the vectors and its run's dataset the labels: drop "
                "--embeddings, --model, --layers and --labels"
            )
        run_vectors, vinfo = read_run_vectors(args.vectors_from)
        if args.dataset and args.dataset != vinfo.get("dataset"):
            raise InputError(
                f"--vectors-from {args.vectors_from}: its vectors are of {vinfo.get('dataset')!r} "
                f"items, not {args.dataset!r}; drop --dataset or give a run on {args.dataset}"
            )
        if args.split != "train":
            raise InputError("--vectors-from: a run's vectors are of its train split; drop --split")
        args.dataset = vinfo.get("dataset")
    check_output(Path(args.out), args.overwrite)  # refuse before any slow work
    check_writable(Path(args.out))
    columns = None
    if args.columns is not None:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not columns:
            raise InputError(f"--columns should name columns A,B,..., but got {args.columns!r}")
    if args.dataset and (columns or args.column or args.id_column or args.label_column):
        raise InputError(
            "--column, --columns, --id-column and --label-column are for Parquet --embeddings "
            "and --labels, not for a --dataset"
        )
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
        if run_vectors is not None:
            if run_vectors.shape[0] != len(ds):
                raise InputError(
                    f"--vectors-from {args.vectors_from}: {run_vectors.shape[0]:,} vectors but "
                    f"the train split of {args.dataset!r} has {len(ds):,} items; the run was "
                    "trained on other data"
                )
            vectors = run_vectors
            extra.update(vectors_from=str(args.vectors_from), vectors=vinfo.get("vectors"))
        if args.labels:
            raise InputError("--labels is for --embeddings; a --dataset brings its own labels")
    else:
        vectors = read_vectors(
            args.embeddings, column=args.column, columns=columns, id_column=args.id_column
        )
        if args.labels:
            labels = read_labels(args.labels, column=args.label_column)
        elif args.label_column:
            raise InputError("--label-column names a column of the --labels file: give --labels")
        extra.update(embeddings=str(args.embeddings))
    if (args.arch or args.trust_model) and not args.model:
        raise InputError("--arch and --trust-model describe a --model file: give --model")
    if args.model or args.layers:
        if not (args.model and args.layers):
            raise InputError("--model and --layers go together: name the model file and its layers")
        import torch

        from graphwalk.build.activations import capture_activations
        from graphwalk.train.model_files import load_model_file
        from graphwalk.train.models import Net
        from graphwalk.validation import as_vectors

        if inputs is None:
            inputs = torch.as_tensor(as_vectors(vectors))
        layers = [s.strip() for s in args.layers.split(",") if s.strip()]
        model = load_model_file(
            args.model, tuple(inputs.shape[1:]), arch=args.arch, trust_pickle=args.trust_model
        )
        vectors = capture_activations(model, inputs, layers, show_progress=show)
        extra.update(model=str(args.model), layers=layers)
        if isinstance(model, Net):
            extra.update(arch=model.name)
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
        layout=args.layout,
    )
    return index
