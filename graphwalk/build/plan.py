"""The build plan: :func:`plan_build` checks every argument of :func:`~graphwalk.build_index` once,
before any work, and names every level and graph the build will make (:class:`BuildPlan`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.build.graphs import KNN_BACKENDS
from graphwalk.errors import InputError
from graphwalk.index.storage import check_output
from graphwalk.validation import as_labels, as_vectors, check_int, check_real

__all__ = [
    "GRAPH_KINDS",
    "SEED_MAX",
    "BuildInputs",
    "BuildPlan",
    "GraphPlan",
    "LevelPlan",
    "check_writable",
    "plan_build",
]

GRAPH_KINDS = ("er", "knn-clusters", "knn")
SEED_MAX = 2**32 - 1  # pynndescent and NumPy seeds are 32-bit unsigned


@dataclass(frozen=True)
class LevelPlan:
    """A level the build will make.

    Attributes:
        name: its name in the index: ``"kmeans"``, ``"labels"`` (the label set ``"label"``) or
            the label set's own name.
        source: ``"kmeans"`` or ``"labels"``.
        space: the vector space its centroids are computed in (the build's ``cluster_space``).
        clusters: k-means: the number of clusters (labels: ``None``).
        label_set: labels: the label set grouped by (k-means: ``None``).
    """

    name: str
    source: str
    space: str
    clusters: int | None = None
    label_set: str | None = None

    @property
    def step(self) -> str:
        """The step's name on the progress bar and in ``timings_s``."""
        return "k-means" if self.source == "kmeans" else f"groups {self.name}"


@dataclass(frozen=True)
class GraphPlan:
    """A graph the build will make.

    Attributes:
        name: its name in the index (``"er"``, ``"knn-clusters"``, ``"knn"`` or ``"knn@SPACE"``).
        kind: ``"er"``, ``"knn-clusters"`` or ``"knn"``.
        level: cluster graphs: the level whose clusters are the nodes.
        space: item graphs: the space the neighbours are found in.
        walk_level: item graphs: the level whose clusters the walk order goes through (k-means in
            the same space), or ``None`` (a breadth-first order over the whole graph).
    """

    name: str
    kind: str
    level: str | None = None
    space: str | None = None
    walk_level: str | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps' names: building it, and (item graphs) its walk order."""
        if self.kind == "er":
            return ("ER graph",)
        if self.kind == "knn-clusters":
            return ("kNN over centroids",)
        return (f"kNN {self.name}", f"walk order {self.name}")


@dataclass(frozen=True)
class BuildInputs:
    """The checked vectors (float32, one array per space) and labels (int64, one per label set)."""

    spaces: Mapping[str, npt.NDArray[np.float32]]
    labels: Mapping[str, npt.NDArray[np.int64]]


@dataclass(frozen=True)
class BuildPlan:
    """Every decision of a build, made before any work: the checked parameters, the levels and
    graphs in the order they are built, and the warnings about parameters the build ignores.

    ``graphs`` is the argument as given and ``groups`` the label sets it names (``"labels"``:
    all of them), as the build parameters record them; :attr:`levels` and :attr:`graph_plans`
    say what is made of them.
    """

    n_items: int
    spaces: Mapping[str, int]
    labels: tuple[str, ...]
    levels: tuple[LevelPlan, ...]
    graph_plans: tuple[GraphPlan, ...]
    clusters: int | None
    groups: tuple[str, ...]
    graphs: tuple[str, ...]
    graph_level: str | None
    cluster_space: str
    degree: float | None
    p: float | None
    connect: bool
    k: int
    metric: str
    knn_backend: str
    recall_sample: int
    seed: int
    out: Path | None
    overwrite: bool
    progress: bool
    ignored: tuple[str, ...] = ()

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps the progress bar counts, in order (the levels, the graphs, the write)."""
        return (
            tuple(lv.step for lv in self.levels)
            + tuple(s for g in self.graph_plans for s in g.steps)
            + (("write",) if self.out is not None else ())
        )

    def build_params(
        self, extra: Mapping[str, Any] | None, timings: dict[str, float]
    ) -> dict[str, Any]:
        """The parameters the index records (``GraphIndex.build_params``, the manifest's
        ``build``), ``extra`` among them and ``timings`` (filled as the steps run) last.

        Raises:
            TypeError: ``extra`` repeats one of the build's own parameters.
        """
        return dict(
            clusters=self.clusters,
            groups=list(self.groups),
            graphs=list(self.graphs),
            graph_level=self.graph_level,
            cluster_space=self.cluster_space,
            degree=self.degree,
            p=self.p,
            connect=self.connect,
            k=self.k,
            metric=self.metric,
            knn_backend=self.knn_backend,
            recall_sample=self.recall_sample,
            seed=self.seed,
            **(extra or {}),
            timings_s=timings,
        )


def _names(what: str, value: object) -> tuple[str, ...]:
    """``graphs``/``groups``: one name or a sequence of names (a lone string is one name)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    kind = "graph kind" if what == "graphs" else "label set name"
    raise TypeError(
        f"{what} should be a {kind} or a list of them, but got {what}={value!r} "
        f"({type(value).__name__})"
    )


def _ignored(what: str, why: str) -> str:
    return f"{what} is ignored: this build has {why}"


def check_writable(out: Path) -> None:
    """Refuse an output whose directory cannot be written, before any work.

    Creates and removes a probe directory in ``out``'s parent (or, when the parent does not exist
    yet, in its nearest existing ancestor, where the parents would be created).

    Raises:
        InputError: naming the directory and the reason (permission, read-only file system, ...).
    """
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {out}: {parent} is not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=parent)
        os.rmdir(probe)
    except OSError as exc:
        raise InputError(
            f"cannot write {out}: {parent} is not writable ({exc.strerror or exc}); "
            "choose another --out"
        ) from exc


def _spaces(vectors: Any, metric: str) -> dict[str, npt.NDArray[np.float32]]:
    if isinstance(vectors, Mapping):
        if not vectors:
            raise InputError("no vectors given: the mapping of layer name to vectors is empty")
        out = {
            str(k): as_vectors(v, name=f"vectors of {k!r}", metric=metric)
            for k, v in vectors.items()
        }
        ns = {k: v.shape[0] for k, v in out.items()}
        if len(set(ns.values())) != 1:
            raise InputError(f"every layer needs one vector per item, but the counts differ: {ns}")
        return out
    return {"input": as_vectors(vectors, metric=metric)}


def _labels(labels: Any, n: int) -> dict[str, npt.NDArray[np.int64]]:
    if labels is None:
        return {}
    if isinstance(labels, Mapping):
        return {str(k): as_labels(v, n, name=f"labels {k!r}") for k, v in labels.items()}
    return {"label": as_labels(labels, n)}


def _group_sets(groups: tuple[str, ...], labs: Mapping[str, Any]) -> list[str]:
    """The label sets to group by, in order, once each (``"labels"``: all of them)."""
    group_sets: list[str] = []
    for gname in groups:
        names = list(labs) if gname == "labels" and "labels" not in labs and labs else [gname]
        for name in names:
            if name not in labs:
                raise InputError(
                    f"groups={name!r} needs labels of that name, but "
                    + (
                        f"the labels are {sorted(labs)}"
                        if labs
                        else "no labels were given (--labels)"
                    )
                )
            if name not in group_sets:
                group_sets.append(name)
    return group_sets


def plan_build(
    vectors: npt.ArrayLike | Mapping[str, npt.ArrayLike],
    *,
    labels: npt.ArrayLike | Mapping[str, npt.ArrayLike] | None = None,
    clusters: int | None = None,
    groups: str | Sequence[str] = (),
    graphs: str | Sequence[str] = ("er",),
    graph_level: str | None = None,
    cluster_space: str | None = None,
    degree: float | None = None,
    p: float | None = None,
    connect: bool = True,
    k: int = 10,
    metric: str = "l2",
    knn_backend: str = "auto",
    recall_sample: int = 1000,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> tuple[BuildPlan, BuildInputs]:
    """Check the arguments of :func:`~graphwalk.build_index` (the same, less ``extra_params``)
    and plan the build: no clustering and no graph is made here.

    The checks run in a fixed order and the first failure is raised: the names of ``graphs`` and
    ``groups``, the output (exists? writable? a probe directory is created and removed), the
    parameters, the vectors and labels (converted to float32 and int64 on the way), then what
    depends on them (label sets, ``cluster_space``, ``clusters`` and ``k`` against the number of
    items, a level for cluster graphs, ``graph_level``).

    Returns:
        The plan, and the checked vectors and labels the steps read.

    Raises:
        TypeError, InputError, OutputExistsError: as :func:`~graphwalk.build_index`.
    """
    graph_kinds = _names("graphs", graphs)
    group_names = _names("groups", groups)
    if out is not None:
        check_output(Path(out), overwrite)
        check_writable(Path(out))
    if metric not in ("l2", "cosine"):
        raise InputError(f"metric should be 'l2' or 'cosine', but got {metric!r}")
    if knn_backend not in KNN_BACKENDS:
        raise InputError(f"knn_backend should be one of {KNN_BACKENDS}, but got {knn_backend!r}")
    bad = [g for g in graph_kinds if g not in GRAPH_KINDS]
    if bad:
        raise InputError(f"unknown graph kind {bad[0]!r}; choose from {GRAPH_KINDS}")
    k = check_int("k", k, minimum=1)
    recall_sample = check_int("recall_sample", recall_sample, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=SEED_MAX)
    if clusters is not None:
        clusters = check_int("clusters", clusters, minimum=1)
    if degree is not None:
        degree = check_real("degree", degree, low=0.0, low_open=True)
    if p is not None:
        p = check_real("p", p, low=0.0, high=1.0, low_open=True)
    if degree is not None and p is not None:
        raise InputError("give the ER graph's mean degree or its edge probability p, not both")
    spaces = _spaces(vectors, metric)
    first = next(iter(spaces))
    n = spaces[first].shape[0]
    labs = _labels(labels, n)
    group_sets = _group_sets(group_names, labs)
    cspace = cluster_space or first
    if cspace not in spaces:
        raise InputError(f"cluster_space {cspace!r} is not one of the spaces {sorted(spaces)}")
    if clusters is not None and clusters > n:
        raise InputError(f"cannot make {clusters} clusters from {n} items; use at most {n}")
    needs_level = [g for g in graph_kinds if g in ("er", "knn-clusters")]
    if needs_level and clusters is None and not group_sets:
        raise InputError(
            f"graph {needs_level[0]!r} is built over clusters: give clusters=K "
            "(--clusters K) or groups=('labels',) (--groups labels)"
        )
    if "knn" in graph_kinds and k >= n:
        raise InputError(
            f"k={k} neighbours asked for, but there are only {n} items; "
            f"k must be between 1 and {n - 1}"
        )
    levels = (
        [LevelPlan("kmeans", "kmeans", cspace, clusters=clusters)] if clusters is not None else []
    )
    levels += [
        LevelPlan("labels" if g == "label" else g, "labels", cspace, label_set=g)
        for g in group_sets
    ]
    planned = [lv.name for lv in levels]
    ignored: list[str] = []
    if graph_level is not None:
        if graph_level not in planned:
            raise InputError(
                f"graph_level {graph_level!r} is not one of the levels this build makes "
                f"{planned} (--clusters makes 'kmeans', --groups NAME makes NAME)"
            )
        if not needs_level:
            ignored.append(
                _ignored(f"graph_level {graph_level!r}", "no cluster graph ('er', 'knn-clusters')")
            )
    for pname, pval in (("degree", degree), ("p", p)):
        if pval is not None and "er" not in graph_kinds:
            ignored.append(_ignored(f"{pname}={pval:g}", "no 'er' graph"))

    # cluster graphs go over graph_level, else k-means when built, else the first label level;
    # an item graph's walk order goes through the k-means clusters of the same vectors, if any
    plans: list[GraphPlan] = []
    if needs_level:
        base = graph_level or ("kmeans" if "kmeans" in planned else planned[0])
        plans += [GraphPlan(g, g, level=base) for g in ("er", "knn-clusters") if g in graph_kinds]
    if "knn" in graph_kinds:
        walk_level = "kmeans" if "kmeans" in planned else None
        plans += [
            GraphPlan(
                "knn" if len(spaces) == 1 else f"knn@{s}",
                "knn",
                space=s,
                walk_level=walk_level if s == cspace else None,
            )
            for s in spaces
        ]
    plan = BuildPlan(
        n_items=n,
        spaces={s: int(v.shape[1]) for s, v in spaces.items()},
        labels=tuple(labs),
        levels=tuple(levels),
        graph_plans=tuple(plans),
        clusters=clusters,
        groups=tuple(group_sets),
        graphs=graph_kinds,
        graph_level=graph_level,
        cluster_space=cspace,
        degree=degree,
        p=p,
        connect=connect,
        k=k,
        metric=metric,
        knn_backend=knn_backend,
        recall_sample=recall_sample,
        seed=seed,
        out=None if out is None else Path(out),
        overwrite=overwrite,
        progress=progress,
        ignored=tuple(ignored),
    )
    return plan, BuildInputs(spaces=spaces, labels=labs)
