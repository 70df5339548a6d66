"""``graphwalk train``: train a model with a sampler (or compare samplers over seeds)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from graphwalk.cli.types import int_in, real_in
from graphwalk.errors import InputError, Preempted

# settings that map one-to-one onto TrainConfig fields (flag name -> field)
_FIELDS = (
    "dataset",
    "classes",
    "index",
    "sampler",
    "model",
    "loss",
    "epochs",
    "batch_size",
    "seed",
    "optimizer",
    "lr",
    "weight_decay",
    "momentum",
    "schedule",
    "label_noise",
    "noise_in_clusters",
    "eval_every",
    "checkpoint_every",
    "temperature",
    "knn_k",
    "layers",
    "refresh_every",
    "vectors",
    "vectors_dim",
    "vectors_lr",
    "index_clusters",
    "index_k",
    "data_dir",
    "download",
    "record_batches",
    "meta",
    "n_way",
    "k_shot",
    "q_query",
    "episodes",
    "inner_steps",
    "inner_lr",
    "class_split",
    "test_episodes",
    "drop_small_classes",
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model with a sampler, or compare samplers over seeds",
        description=(
            "Train a model on a dataset with shuffling or a graph walk; --compare runs several "
            "samplers with several seeds (paired) and writes a table and plots."
        ),
    )
    d = p.add_argument_group("data and index")
    d.add_argument(
        "--dataset", metavar="NAME", help="mnist1d (default), digits, cifar10, cifar100, mnist"
    )
    d.add_argument("--classes", metavar="SET", help="label (default) or superclass (cifar100's 20)")
    d.add_argument(
        "--data-dir", metavar="DIR", help="where torchvision datasets live (default: datasets)"
    )
    d.add_argument(
        "--download",
        action="store_true",
        default=None,
        help="download a missing torchvision dataset",
    )
    d.add_argument(
        "--index",
        metavar="INDEX.gw",
        help="an index of the dataset's train split (default: build one in the run directory)",
    )
    d.add_argument(
        "--index-clusters",
        type=int_in(2),
        metavar="K",
        help="k-means clusters of the run's own index (default: items / 100)",
    )
    d.add_argument(
        "--index-k",
        type=int_in(1),
        metavar="K",
        help="kNN neighbours of the run's own index (default 10)",
    )
    s = p.add_argument_group("sampler")
    s.add_argument(
        "--sampler",
        metavar="SPEC",
        help="random (default), rl (a learned walker on er: see --policy) or "
        "GRAPH[:k=INT][:mix=R][:restart=R][:weighted][:replacement][:policy=NAME][:reward=NAME]"
        "[:budget=INT][:floor=INT], e.g. er:k=4:mix=0.1, knn or er:policy=exp3s",
    )
    s.add_argument(
        "--curriculum",
        metavar="NAME|FILE",
        help="follow a curriculum: a pacing (exp, varexp, step, linear, root), hierarchy, agent "
        "(a bandit over difficulty bands), or a .json/.toml curriculum file, with options "
        "(linear:order=random, hierarchy:level=superclass, agent:policy=uniform); the same as "
        "--sampler curriculum=NAME (see docs/curricula.md)",
    )
    s.add_argument(
        "--policy",
        metavar="NAME",
        help="a learned walker choosing each ROOT: exp3s (default with --sampler rl), pg, odm, "
        "uniform (the no-learning control); adds policy=NAME to the --sampler spec",
    )
    s.add_argument(
        "--reward",
        metavar="NAME",
        help="what the policy learns from: grad-norm (default), loss-drop, gar",
    )
    s.add_argument(
        "--budget",
        type=int_in(1),
        metavar="BATCHES",
        help="budgeted mode: an epoch is BATCHES batches with replacement, placed by the policy",
    )
    s.add_argument(
        "--compare",
        metavar="SPEC,SPEC,...",
        help="run every spec with every seed; the first is the reference",
    )
    s.add_argument("--seeds", metavar="S,S,...", help="seeds for --compare (default 0,1,2)")
    s.add_argument(
        "--target-acc",
        type=real_in(high=1.0),
        metavar="ACC",
        help="--compare: accuracy for 'steps to target', in (0, 1] (default: 95%% of the first "
        "sampler's mean final accuracy)",
    )
    m = p.add_argument_group("model and optimisation")
    m.add_argument(
        "--model",
        metavar="NAME",
        help="mlp, cnn1d (mnist1d); cnn, resnet18 (images); default: the dataset's",
    )
    m.add_argument("--loss", metavar="NAME", help="ce (default) or supcon (evaluated by kNN)")
    m.add_argument("--epochs", type=int_in(1), metavar="E", help="default 20")
    m.add_argument("--batch-size", type=int_in(1), metavar="B", help="default 64")
    m.add_argument("--seed", type=int_in(0, 2**32 - 1), metavar="S", help="default 0")
    m.add_argument("--optimizer", metavar="NAME", help="adam or sgd (default: the model's)")
    m.add_argument(
        "--lr", type=real_in(), metavar="LR", help="learning rate (default: the model's)"
    )
    m.add_argument("--weight-decay", type=real_in(zero=True), metavar="WD")
    m.add_argument(
        "--momentum",
        type=real_in(high=1.0, zero=True),
        metavar="M",
        help="SGD momentum (default 0.9)",
    )
    m.add_argument("--schedule", metavar="NAME", help="cosine (default) or constant")
    m.add_argument(
        "--label-noise",
        type=real_in(high=1.0, zero=True),
        metavar="P",
        help="flip this share of training labels (seeded)",
    )
    m.add_argument(
        "--noise-in-clusters",
        action="store_true",
        default=None,
        help="put the label noise in a few k-means clusters instead of spreading it",
    )
    m.add_argument(
        "--temperature", type=real_in(), metavar="T", help="supcon temperature (default 0.1)"
    )
    m.add_argument(
        "--knn-k",
        type=int_in(1),
        metavar="K",
        help="kNN classifier neighbours for supcon (default 20)",
    )
    m.add_argument(
        "--eval-every", type=int_in(0), metavar="STEPS", help="also evaluate every STEPS steps"
    )
    m.add_argument(
        "--checkpoint-every",
        type=int_in(0),
        metavar="STEPS",
        help="also checkpoint every STEPS steps inside an epoch (a SIGTERM checkpoints at the "
        "next step and stops; default: at epoch ends only)",
    )
    e = p.add_argument_group("episodes (meta-learning)")
    e.add_argument(
        "--meta",
        metavar="NAME",
        help="meta-train on episodes: protonet, maml, fomaml (first-order MAML); the sampler "
        "becomes 'episodes' unless --sampler/--compare name episode specs",
    )
    e.add_argument("--n-way", type=int_in(2), metavar="N", help="classes per episode (default 5)")
    e.add_argument(
        "--k-shot", type=int_in(1), metavar="K", help="support items per class (default 1)"
    )
    e.add_argument(
        "--q-query", type=int_in(1), metavar="Q", help="query items per class (default 15)"
    )
    e.add_argument(
        "--episodes", type=int_in(1), metavar="E", help="episodes per epoch (default 100)"
    )
    e.add_argument(
        "--episode-classes",
        metavar="HOW",
        help="how an episode's classes are chosen: uniform (default), walk (neighbours on the "
        "class graph) or within:LEVEL (under one parent of LEVEL, e.g. within:parent)",
    )
    e.add_argument(
        "--episode-level",
        metavar="LEVEL",
        help="the level whose clusters are the classes: labels (default) or kmeans "
        "(unsupervised, as CACTUs)",
    )
    e.add_argument(
        "--class-split",
        metavar="SPLIT",
        help="none (default: train on the train split, test on the test split), A/B/C "
        "train/validation/test classes by count or fraction (seeded), or cifar-fs",
    )
    e.add_argument(
        "--inner-steps", type=int_in(1), metavar="S", help="MAML's adaptation steps (default 5)"
    )
    e.add_argument(
        "--inner-lr", type=real_in(), metavar="LR", help="MAML's adaptation rate (default 0.01)"
    )
    e.add_argument(
        "--test-episodes",
        type=int_in(1),
        metavar="E",
        help="held-out episodes every evaluation averages (default 600)",
    )
    e.add_argument(
        "--drop-small-classes",
        action="store_true",
        default=None,
        help="leave out classes with fewer than k_shot + q_query training items (with a warning) "
        "instead of refusing the run",
    )
    a = p.add_argument_group("graphs over the model's own vectors (activations, gradients)")
    a.add_argument(
        "--layers", metavar="NAME[,NAME...]", help="index the model's activations at these modules"
    )
    a.add_argument(
        "--vectors",
        metavar="grad|learned",
        help="index each item's last-layer gradient sketch (grad), or per-item vectors learned "
        "from the sketches (learned); needs --refresh-every",
    )
    a.add_argument(
        "--vectors-dim",
        type=int_in(2, 4096),
        metavar="D",
        help="dimensions of the gradient sketches and learned vectors (default 64)",
    )
    a.add_argument(
        "--vectors-lr",
        type=real_in(),
        metavar="LR",
        help="outer learning rate of --vectors learned (default 0.5)",
    )
    a.add_argument(
        "--refresh-every",
        type=int_in(0),
        metavar="EPOCHS",
        help="rebuild the graph over the activations or vectors every EPOCHS epochs",
    )
    r = p.add_argument_group("run")
    r.add_argument("--out", metavar="RUN_DIR", help="run (or comparison) directory")
    r.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run or comparison from its last checkpoint"
    )
    r.add_argument(
        "--config",
        metavar="CONFIG.json",
        help="start from a run's resolved config.json (flags override it)",
    )
    r.add_argument(
        "--overwrite", action="store_true", help="replace a run directory holding another run"
    )
    r.add_argument("--device", metavar="auto|cpu|cuda", help="default auto")
    r.add_argument(
        "--threads",
        type=int_in(1),
        metavar="N",
        help="torch CPU threads (default: 1 for models under a million parameters, else torch's)",
    )
    r.add_argument(
        "--record-batches",
        action="store_true",
        default=None,
        help="write every batch's items to batches-rank{R}.jsonl",
    )
    r.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _show_warning(
    message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None
) -> None:
    print(f"graphwalk train: warning: {message}", file=sys.stderr)


def _config(args: argparse.Namespace) -> Any:
    from graphwalk.train.config import TrainConfig, episode_spec, learner_spec, load_config

    base = load_config(args.config) if args.config else TrainConfig()
    given: dict[str, Any] = {}
    for f in _FIELDS:
        v = getattr(args, f)
        if v is not None:
            given[f] = [x for x in v.split(",") if x] if f == "layers" else v
    if args.device is not None:
        given["device"] = args.device
    if args.curriculum is not None:
        if args.compare:
            raise InputError(
                "--curriculum goes with one run; in --compare write curriculum=NAME into the list "
                "(e.g. --compare random,curriculum=linear) and drop --curriculum"
            )
        if args.sampler is not None:
            raise InputError("--curriculum NAME is the sampler curriculum=NAME: drop --sampler")
        given["sampler"] = "curriculum=" + args.curriculum
    spec = learner_spec(
        given.get("sampler"),
        base.sampler,
        policy=args.policy,
        reward=args.reward,
        budget=args.budget,
        compare=bool(args.compare),
    )
    if spec is not None:
        given["sampler"] = spec
    spec = episode_spec(
        given.get("sampler"),
        meta=given.get("meta"),
        classes=args.episode_classes,
        level=args.episode_level,
        compare=bool(args.compare),
    )
    if spec is not None:
        given["sampler"] = spec
    import dataclasses

    cfg = dataclasses.replace(base, **given)
    _warn_unused(cfg, given)
    return cfg, given


def _warn_unused(cfg: Any, given: dict[str, Any]) -> None:
    """Settings the run cannot use get a one-line warning (as ``graphwalk index`` gives)."""
    import warnings

    from graphwalk.train.config import unused_settings

    for k, reason in unused_settings(cfg, given).items():
        warnings.warn(
            f"--{k.replace('_', '-')} is not used by this run ({reason}); it is ignored",
            UserWarning,
            stacklevel=2,
        )


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return _run(args)
        except Preempted as e:
            import os

            n = int(os.environ.get("WORLD_SIZE", "1"))
            how = (
                f"torchrun --nproc-per-node {n} -m graphwalk train" if n > 1 else "graphwalk train"
            )
            print(
                f"graphwalk train: stopped by SIGTERM after step {e.step}, its checkpoint written "
                f"in {e.out}: continue with {how} --resume {e.out}",
                file=sys.stderr,
            )
            return 143  # 128 + SIGTERM, as a shell reports a job the signal ended
        except KeyboardInterrupt:
            out = args.resume or args.out
            from graphwalk.train.rundir import resumable

            if out and resumable(Path(out)):
                what = (
                    f"the finished runs and the last complete epoch's checkpoint are in {out}"
                    if (Path(out) / "plan.json").exists()
                    else f"the last complete epoch's checkpoint is in {out}"
                )
                import os

                n = int(os.environ.get("WORLD_SIZE", "1"))
                how = (
                    f"torchrun --nproc-per-node {n} -m graphwalk train"
                    if n > 1
                    else "graphwalk train"
                )
                print(
                    f"graphwalk train: interrupted; {what}: continue with {how} --resume {out}",
                    file=sys.stderr,
                )
            else:
                print(
                    "graphwalk train: interrupted before the first epoch ended; nothing was kept "
                    "and there is nothing to resume: run the command again",
                    file=sys.stderr,
                )
            return 130


def _run(args: argparse.Namespace) -> int:
    from graphwalk.errors import InputError
    from graphwalk.train.compare import load_compare, run_compare
    from graphwalk.train.loop import train
    from graphwalk.train.spec import parse_specs

    cfg, given = _config(args)
    if args.resume:
        if args.out and Path(args.out) != Path(args.resume):
            raise InputError("--resume RUN_DIR continues that directory; drop --out")
        extra = sorted(set(given) - {"device"})
        if extra or args.compare or args.config:
            flags = ", ".join("--" + e.replace("_", "-") for e in extra) or "--compare/--config"
            raise InputError(
                f"--resume continues the run as its config.json says; drop {flags} "
                "(or start a new run with --config RUN_DIR/config.json and the changes)"
            )
        out = Path(args.resume)
        if (out / "plan.json").is_file():
            base, specs, seeds = load_compare(out)
            if args.device:
                base.device = args.device
            summary = run_compare(
                base,
                specs,
                seeds,
                out,
                target_acc=args.target_acc,
                progress=args.progress,
                threads=args.threads,
            )
            return _print_compare(summary, args.json)
        if not out.is_dir():
            raise InputError(f"--resume {out}: no such run directory")
        s = train(cfg, out, resume=True, progress=args.progress, threads=args.threads)
        return _print_run(s, out, args.json)
    if not args.out:
        raise InputError("--out RUN_DIR is required: the directory the run writes")
    out = Path(args.out)
    if args.compare:
        if args.sampler:
            raise InputError("--compare lists the samplers; drop --sampler")
        specs = parse_specs(args.compare)
        seeds_text = args.seeds or "0,1,2"
        try:
            seeds = [int(x) for x in seeds_text.split(",") if x.strip()]
        except ValueError:
            raise InputError(
                f"--seeds should be integers separated by commas, but got {seeds_text!r}"
            ) from None
        if "seed" in given:
            raise InputError("--compare runs every --seeds value; drop --seed")
        summary = run_compare(
            cfg,
            specs,
            seeds,
            out,
            target_acc=args.target_acc,
            overwrite=args.overwrite,
            progress=args.progress,
            threads=args.threads,
        )
        return _print_compare(summary, args.json)
    if args.seeds or args.target_acc is not None:
        raise InputError("--seeds and --target-acc go with --compare")
    s = train(cfg, out, overwrite=args.overwrite, progress=args.progress, threads=args.threads)
    return _print_run(s, out, args.json)


def _print_run(s: dict[str, Any], out: Path, as_json: bool) -> int:
    if as_json:
        print(json.dumps(s, indent=2))
        return 0
    if not s:  # not rank 0
        return 0
    rate = f", {s['steps_per_s']:.0f} steps/s" if s.get("steps_per_s") else ""
    ci = f" ± {100 * s['final_test_ci95']:.1f}" if s.get("final_test_ci95") is not None else ""
    print(
        f"{s['sampler']} seed {s['seed']}: final test accuracy {100 * s['final_test_acc']:.1f}%{ci}, "
        f"best {100 * s['best_test_acc']:.1f}%; {s['steps']} steps ({s['wall_s']:.1f} s{rate})"
    )
    print(
        f"  run directory {out}: config.json, metrics.jsonl, metrics.csv, steps.csv, checkpoint.pt, summary.json"
        + (", curriculum.json" if (out / "curriculum.json").is_file() else "")
        + (", vectors.npy, vectors.json" if (out / "vectors.json").is_file() else "")
    )
    return 0


def _print_compare(summary: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0
    from graphwalk.train.report import render_markdown

    print(render_markdown(summary))
    files = summary.get("files", {})
    for what, path in files.items():
        print(f"  {what}: {path}")
    return 0
