"""The resolved configuration of a training run: every setting, defaults filled in, written as
``config.json`` in the run directory so that the run can be reproduced from that file alone."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphwalk.datasets import DATASETS
from graphwalk.errors import InputError
from graphwalk.train.spec import parse_spec
from graphwalk.validation import check_int, check_real

__all__ = ["DEVICES", "META", "OPTIMIZERS", "SCHEDULES", "TrainConfig", "load_config"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")
META = ("protonet", "maml", "fomaml")
_DATASET_CLASSES = ("label", "superclass")


@dataclass
class TrainConfig:
    """Everything that decides a training run.

    Fields left ``None`` are resolved by :meth:`resolved` (the model's defaults); ``config.json``
    always holds resolved values.

    Attributes:
        dataset: one of ``mnist1d``, ``digits``, ``cifar10``, ``cifar100``, ``mnist``.
        classes: the label set trained on (``label``; ``superclass`` for CIFAR-100's 20).
        index: an index built over the dataset's train split (``None``: build one in the run
            directory, see ``index_clusters``/``index_k``).
        sampler: a sampler spec (:mod:`graphwalk.train.spec`): ``random`` or a walk.
        model: ``mlp``, ``cnn1d``, ``cnn``, ``resnet18`` (default: the dataset's).
        loss: ``ce`` (cross-entropy) or ``supcon`` (supervised contrastive, evaluated by kNN).
        epochs, batch_size, seed: the run; ``seed`` sets the model's initialisation, the label
            noise, the index built for the run and the sampler.
        optimizer, lr, weight_decay, momentum: default from the model (Adam 1e-2 for the mnist1d
            models, as in mnist1d's paper; SGD 0.05 with momentum 0.9 and 5e-4 weight decay for
            the image CNNs).
        schedule: ``cosine`` (to 0 over the run, per step) or ``constant``.
        label_noise: share of training labels flipped to another class (seeded by ``seed``).
        noise_in_clusters: flip them in a few k-means clusters instead of uniformly (see
            :func:`graphwalk.train.data.flip_labels_in_clusters`).
        eval_every: also evaluate every this many steps (0: after each epoch only).
        checkpoint_every: also write the checkpoint every this many steps, inside an epoch (0:
            at epoch ends only); a SIGTERM writes one at the next step and stops the run.
        temperature, knn_k: supcon's temperature and the kNN classifier's neighbours.
        layers, refresh_every: activation graphs: the item vectors are the model's activations
            at these modules (one kNN graph each), recomputed every ``refresh_every`` epochs.
        vectors, vectors_dim, vectors_lr: graphs over what the model learns (issue 17):
            ``grad`` (each item's last-layer gradient sketch, written when it is trained on) or
            ``learned`` (per-item vectors moved by an outer loss towards the sketches' cosines),
            ``vectors_dim`` dimensions (2 to 4096), the learned vectors' outer learning rate;
            the graph is rebuilt over them every ``refresh_every`` epochs
            (:mod:`graphwalk.learn.vectors`).
        index_clusters, index_k: the index built when ``index`` is ``None``: k-means clusters
            (``None``: one per 100 training items, at least 2) and kNN neighbours.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        data_dir, download: where torchvision datasets live, and whether to download them.
        record_batches: write every batch's item ids to ``batches-rank{R}.jsonl`` (tests, audits).
        meta: the meta-learner of an ``episodes`` sampler: ``protonet``, ``maml``, ``fomaml``.
        n_way, k_shot, q_query, episodes: the episodes' shape and how many make an epoch.
        inner_steps, inner_lr: MAML's adaptation (SGD steps on the support set).
        class_split: which classes are trained on and which tested: ``none`` (train on the train
            split's classes, test on the test split's), ``A/B/C`` (a seeded split of the classes
            into A train, B validation, C test classes, by count or by fractions) or
            ``cifar-fs`` (CIFAR-100's standard 64/16/20).
        test_episodes: the held-out episodes every evaluation averages over (the field reports
            at least 600, with a 95% confidence interval).
        drop_small_classes: leave out (with a warning) the classes with fewer than
            ``k_shot + q_query`` training items instead of refusing the run (small k-means
            clusters, with unsupervised episodes).
    """

    dataset: str = "mnist1d"
    classes: str = "label"
    index: str | None = None
    sampler: str = "random"
    model: str | None = None
    loss: str = "ce"
    epochs: int = 20
    batch_size: int = 64
    seed: int = 0
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    schedule: str = "cosine"
    label_noise: float = 0.0
    noise_in_clusters: bool = False
    eval_every: int = 0
    checkpoint_every: int = 0
    temperature: float = 0.1
    knn_k: int = 20
    layers: list[str] = field(default_factory=list)
    refresh_every: int = 0
    vectors: str | None = None
    vectors_dim: int = 64
    vectors_lr: float = 0.5
    index_clusters: int | None = None
    index_k: int = 10
    device: str = "auto"
    data_dir: str = "datasets"
    download: bool = False
    record_batches: bool = False
    meta: str | None = None
    n_way: int = 5
    k_shot: int = 1
    q_query: int = 15
    episodes: int = 100
    inner_steps: int = 5
    inner_lr: float = 0.01
    class_split: str = "none"
    test_episodes: int = 600
    drop_small_classes: bool = False

    def resolved(self) -> TrainConfig:
        """A checked copy with the model's defaults filled in (raises ``InputError`` naming the
        setting and its valid values)."""
        from graphwalk.train.losses import LOSSES
        from graphwalk.train.models import DEFAULT_MODEL, MODELS, SUITS, default_optim

        c = dataclasses.replace(self, layers=list(self.layers))
        if c.dataset not in DATASETS:
            raise InputError(f"unknown dataset {c.dataset!r}; choose from {', '.join(DATASETS)}")
        if c.classes not in _DATASET_CLASSES:
            raise InputError(
                f"unknown classes {c.classes!r}; choose from {', '.join(_DATASET_CLASSES)}"
            )
        if c.classes == "superclass" and c.dataset != "cifar100":
            raise InputError("classes='superclass' exists for cifar100 only; use 'label'")
        if c.model is None:
            c.model = DEFAULT_MODEL[c.dataset]
        if c.model not in MODELS:
            raise InputError(f"unknown model {c.model!r}; choose from {', '.join(MODELS)}")
        if c.model not in SUITS[c.dataset]:
            raise InputError(
                f"model {c.model!r} does not suit {c.dataset}; choose from "
                f"{', '.join(SUITS[c.dataset])}"
            )
        if c.loss not in LOSSES:
            raise InputError(f"unknown loss {c.loss!r}; choose from {', '.join(LOSSES)}")
        opt, lr, wd = default_optim(c.model)
        c.optimizer = opt if c.optimizer is None else c.optimizer
        c.lr = lr if c.lr is None else c.lr
        c.weight_decay = wd if c.weight_decay is None else c.weight_decay
        if c.optimizer not in OPTIMIZERS:
            raise InputError(
                f"unknown optimizer {c.optimizer!r}; choose from {', '.join(OPTIMIZERS)}"
            )
        if c.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {c.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if c.device not in DEVICES:
            raise InputError(f"unknown device {c.device!r}; choose from {', '.join(DEVICES)}")
        c.sampler = str(parse_spec(c.sampler))
        if c.index is not None:  # absolute: config.json reproduces the run from any directory
            c.index = str(Path(c.index).absolute())
        c.epochs = check_int("epochs", c.epochs, minimum=1)
        c.batch_size = check_int("batch_size", c.batch_size, minimum=1)
        c.seed = check_int("seed", c.seed, minimum=0, maximum=2**32 - 1)
        c.eval_every = check_int("eval_every", c.eval_every, minimum=0)
        c.checkpoint_every = check_int("checkpoint_every", c.checkpoint_every, minimum=0)
        c.knn_k = check_int("knn_k", c.knn_k, minimum=1)
        c.index_k = check_int("index_k", c.index_k, minimum=1)
        c.refresh_every = check_int("refresh_every", c.refresh_every, minimum=0)
        if c.index_clusters is not None:
            c.index_clusters = check_int("index_clusters", c.index_clusters, minimum=2)
        c.lr = check_real("lr", c.lr, low=0.0, low_open=True)
        c.weight_decay = check_real("weight_decay", c.weight_decay, low=0.0)
        c.momentum = check_real("momentum", c.momentum, low=0.0, high=1.0, high_open=True)
        c.label_noise = check_real("label_noise", c.label_noise, low=0.0, high=1.0)
        c.temperature = check_real("temperature", c.temperature, low=0.0, low_open=True)
        _check_episodes(c)
        _check_curriculum(c)
        _check_item_vectors(c)
        return c

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(
                f"{source}: unknown settings {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return cls(**dict(d))


def _check_item_vectors(c: TrainConfig) -> None:
    """The settings of a run that walks its own item vectors: activations (``layers``), gradient
    sketches or learned vectors (``vectors``), rebuilt every ``refresh_every`` epochs."""
    from graphwalk.learn.vectors import VECTOR_SPACES, check_dim

    spec = parse_spec(c.sampler)
    flag = "--layers" if c.layers else "--vectors"
    if c.vectors is not None:
        if c.vectors not in VECTOR_SPACES:
            raise InputError(
                f"unknown vectors {c.vectors!r}; choose from {', '.join(VECTOR_SPACES)} (or "
                "--layers NAME for activations)"
            )
        if c.layers:
            raise InputError(f"--vectors {c.vectors} and --layers are two item spaces; choose one")
        if c.loss != "ce":
            raise InputError(
                f"--vectors {c.vectors} needs the cross-entropy loss's last-layer gradient, but "
                f"the loss is {c.loss!r}; train with --loss ce, or use --layers (activations)"
            )
        if not c.refresh_every:
            raise InputError(
                f"--vectors {c.vectors} follows what the model learns: give --refresh-every N "
                "(1: rebuild the graph over the vectors after every epoch)"
            )
    c.vectors_dim = check_dim(c.vectors_dim)
    c.vectors_lr = check_real("vectors_lr", c.vectors_lr, low=0.0, low_open=True)
    defaults = TrainConfig()
    if c.vectors is None and (
        c.vectors_dim != defaults.vectors_dim or c.vectors_lr != defaults.vectors_lr
    ):
        raise InputError(
            "--vectors-dim and --vectors-lr set the --vectors grad|learned space; add --vectors, "
            "or drop them"
        )
    if c.vectors == "grad" and c.vectors_lr != defaults.vectors_lr:
        raise InputError(
            "--vectors-lr is the learned vectors' outer learning rate; use --vectors learned, or "
            "drop --vectors-lr"
        )
    if c.refresh_every and not (c.layers or c.vectors):
        raise InputError(
            "refresh_every rebuilds the graph over the model's own vectors: name them "
            "(--layers NAME for activations, --vectors grad|learned)"
        )
    if not (c.layers or c.vectors):
        return
    if c.index is not None:
        raise InputError(
            f"{flag} builds the run's own index from the model's vectors; drop --index"
        )
    if spec.policy is not None and spec.policy not in ("exp3s", "uniform"):
        raise InputError(
            f"a learned walker policy={spec.policy} cannot follow a graph rebuilt between "
            f"epochs (exp3s and uniform carry what they learned to the new nodes); use "
            f"policy=exp3s, or drop {flag}"
        )
    if spec.is_random:
        raise InputError(
            f"{flag} makes graphs over the model's vectors for a walk, but the sampler is "
            "'random'; choose a walk, e.g. --sampler knn"
        )


def _check_curriculum(c: TrainConfig) -> None:
    """The settings of a ``curriculum=...`` run; a curriculum file is read now (a file that does
    not parse is refused before anything runs)."""
    spec = parse_spec(c.sampler)
    if not spec.is_curriculum:
        return
    if c.layers or c.vectors:
        flag = "--layers" if c.layers else "--vectors"
        raise InputError(
            f"sampler {c.sampler!r}: a curriculum ranks the run's own index of its inputs; "
            f"drop {flag} (graphs over the model's vectors go with walks)"
        )
    if c.loss != "ce":
        raise InputError(
            f"sampler {c.sampler!r}: curricula train a classifier with --loss ce (got "
            f"--loss {c.loss})"
        )
    name = spec.curriculum or ""
    if name.lower().endswith((".json", ".toml")):
        from graphwalk.tasks.curriculum import Curriculum

        Curriculum.load(name)


def _check_episodes(c: TrainConfig) -> None:
    """The settings of an ``episodes`` run (and no meta-learner without episodes)."""
    from graphwalk.tasks.splits import parse_split

    spec = parse_spec(c.sampler)
    if not spec.is_episodes:
        if c.meta is not None:
            raise InputError(
                f"--meta {c.meta} trains on episodes: use --sampler episodes (or "
                "episodes:walk, episodes:within=LEVEL)"
            )
        return
    if c.meta is None:
        raise InputError(
            f"sampler {c.sampler!r} draws episodes for a meta-learner: name it with --meta "
            f"({', '.join(META)})"
        )
    if c.meta not in META:
        raise InputError(f"unknown meta-learner {c.meta!r}; choose from {', '.join(META)}")
    if c.loss != "ce":
        raise InputError(
            f"episodes train with the meta-learner's own loss (--meta {c.meta}); drop --loss "
            f"{c.loss}"
        )
    if c.layers or c.vectors:
        flag = "--layers" if c.layers else "--vectors"
        raise InputError(f"episodes do not follow graphs over the model's vectors; drop {flag}")
    if c.label_noise:
        raise InputError("episodes are drawn from clean classes; drop --label-noise")
    c.n_way = check_int("n_way", c.n_way, minimum=2)
    c.k_shot = check_int("k_shot", c.k_shot, minimum=1)
    c.q_query = check_int("q_query", c.q_query, minimum=1)
    c.episodes = check_int("episodes", c.episodes, minimum=1)
    c.inner_steps = check_int("inner_steps", c.inner_steps, minimum=1)
    c.inner_lr = check_real("inner_lr", c.inner_lr, low=0.0, low_open=True)
    c.test_episodes = check_int("test_episodes", c.test_episodes, minimum=1)
    parse_split(c.class_split)


def load_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Read a ``config.json`` written by a run (or by hand)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p} does not exist; give a run directory or its config.json") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{p} is not a readable JSON config: {exc}") from exc
    if not isinstance(d, dict):
        raise InputError(f"{p} should hold a JSON object of settings")
    return TrainConfig.from_dict(d, source=str(p))


def learner_spec(
    sampler: str | None,
    base: str,
    *,
    policy: str | None,
    reward: str | None,
    budget: int | None,
    compare: bool,
) -> str | None:
    """The sampler spec that ``--sampler rl`` or ``--policy/--reward/--budget`` ask for: ``rl`` is
    the ``er`` walk steered by ``exp3s`` (or the given policy); the options are appended to the
    given (or configured, ``base``) walk. ``None``: nothing to change.

    Raises:
        InputError: the options with ``--compare`` (they go into each spec there) or with the
            ``random`` sampler (nothing to steer).
    """
    learn = [
        f"{k}={v}"
        for k, v in (("policy", policy), ("reward", reward), ("budget", budget))
        if v is not None
    ]
    if sampler == "rl":
        return ":".join(["er", *learn, *([] if policy else ["policy=exp3s"])])
    if not learn:
        return None
    if compare:
        raise InputError(
            "--policy/--reward/--budget go with --sampler; in --compare write "
            "them into each spec (er:policy=exp3s:reward=gar)"
        )
    spec = sampler if sampler is not None else base
    if spec == "random":
        raise InputError(
            "--policy/--reward/--budget steer a walk: use --sampler rl or a graph "
            "(--sampler er --policy exp3s)"
        )
    return ":".join([spec, *learn])


def episode_spec(
    sampler: str | None,
    *,
    meta: str | None,
    classes: str | None,
    level: str | None,
    compare: bool,
) -> str | None:
    """The ``episodes`` spec that ``--meta`` with ``--episode-classes/--episode-level`` asks for
    (``None``: nothing to change: no ``--meta``, or the sampler named already).

    Raises:
        InputError: the options without ``--meta``, with ``--compare`` (they go into each spec
            there), or with a ``--sampler`` that is not ``episodes``.
    """
    opts = []
    if classes is not None:
        if classes == "walk":
            opts.append("walk")
        elif classes.startswith("within:") and classes != "within:":
            opts.append(f"within={classes.split(':', 1)[1]}")
        elif classes != "uniform":
            raise InputError(f"--episode-classes {classes!r}: choose uniform, walk or within:LEVEL")
    if level is not None and level != "labels":
        opts.append(f"level={level}")
    if (classes is not None or level is not None) and meta is None:
        raise InputError("--episode-classes/--episode-level go with --meta (episodes)")
    if meta is None:
        return None
    if compare:
        if opts:
            raise InputError(
                "--episode-classes/--episode-level go with --sampler; in --compare write them "
                "into each spec (episodes:walk, episodes:within=parent, episodes:level=kmeans)"
            )
        return None
    if sampler is not None:
        if not sampler.startswith("episodes"):
            raise InputError(
                f"--meta trains on episodes, but --sampler is {sampler!r}: use --sampler "
                "episodes (or leave --sampler out)"
            )
        if opts:
            raise InputError(
                "--episode-classes/--episode-level and --sampler episodes... say the same: "
                "write the options into the spec"
            )
        return None
    return ":".join(["episodes", *opts])


def unused_settings(cfg: TrainConfig, given: Mapping[str, Any]) -> dict[str, str]:
    """The settings in ``given`` (set explicitly, with their values) that the run ``cfg`` cannot
    use, with why (``{}`` for a config that does not resolve: that is reported when the run
    starts)."""
    from graphwalk.errors import GraphwalkError

    try:
        c = cfg.resolved()
    except GraphwalkError:
        return {}
    why: dict[str, str] = {}
    if c.loss == "ce":
        why.update({k: "--loss ce" for k in ("temperature", "knn_k") if k in given})
    if c.optimizer == "adam" and "momentum" in given:
        why["momentum"] = "the optimizer is Adam"
    if not c.label_noise and given.get("noise_in_clusters"):
        why["noise_in_clusters"] = "no --label-noise"
    episodic = (
        "n_way",
        "k_shot",
        "q_query",
        "episodes",
        "class_split",
        "test_episodes",
        "drop_small_classes",
    )
    if c.meta is None:
        why.update({k: "no --meta" for k in (*episodic, "inner_steps", "inner_lr") if k in given})
    else:
        if "batch_size" in given:
            why["batch_size"] = "an episode is the batch"
        if c.meta == "protonet":
            why.update({k: "--meta protonet" for k in ("inner_steps", "inner_lr") if k in given})
    return why
