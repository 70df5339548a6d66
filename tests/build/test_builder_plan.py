"""The build plan (every argument checked, every level and graph named, before any work) and the
step functions that each make one level or one graph."""

import dataclasses
import warnings

import numpy as np
import pytest

import graphwalk as gw
import graphwalk.build.builder as builder
from graphwalk.build.builder import (
    build_cluster_graph,
    build_item_graph,
    build_level,
    with_walk_order,
)
from graphwalk.build.graphs import er_graph
from graphwalk.build.plan import GraphPlan, LevelPlan, plan_build
from graphwalk.errors import InputError
from graphwalk.index.types import Level
from tests.conftest import make_blobs


def _boom(*a, **k):
    raise AssertionError("a build step ran")


@pytest.fixture
def no_work(monkeypatch):
    """Every step of the build fails if it is called."""
    for name in (
        "kmeans_level",
        "label_level",
        "er_graph",
        "knn_clusters_graph",
        "knn_items_graph",
    ):
        monkeypatch.setattr(builder, name, _boom)


def test_plan_names_a_kmeans_level_a_cluster_graph_and_an_item_graph(no_work):
    x, _ = make_blobs(n=200)
    plan, inputs = plan_build(x, clusters=5, graphs=["knn", "er"], k=4)
    assert plan.levels == (LevelPlan("kmeans", "kmeans", "input", clusters=5),)
    assert plan.graph_plans == (
        GraphPlan("er", "er", level="kmeans"),
        GraphPlan("knn", "knn", space="input", walk_level="kmeans"),
    )
    assert plan.steps == ("k-means", "ER graph", "kNN knn", "walk order knn")
    assert plan.n_items == 200 and dict(plan.spaces) == {"input": 8} and plan.labels == ()
    assert plan.graphs == ("knn", "er") and plan.out is None and plan.ignored == ()
    assert inputs.spaces["input"].dtype == np.float32 and not inputs.labels
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.k = 5


def test_plan_names_label_levels_and_the_graph_level(no_work):
    x, y = make_blobs(n=200)
    labels = {"label": y, "coarse": y // 2}
    plan, _ = plan_build(
        x, labels=labels, groups="labels", graphs=["knn-clusters", "er"], graph_level="coarse"
    )
    assert [(lv.name, lv.source, lv.label_set) for lv in plan.levels] == [
        ("labels", "labels", "label"),
        ("coarse", "labels", "coarse"),
    ]
    assert plan.groups == ("label", "coarse") and plan.labels == ("label", "coarse")
    assert [(g.name, g.level) for g in plan.graph_plans] == [
        ("er", "coarse"),
        ("knn-clusters", "coarse"),
    ]
    assert plan.steps == ("groups labels", "groups coarse", "ER graph", "kNN over centroids")
    # without graph_level: k-means when built, else the first label level
    plan, _ = plan_build(x, labels=labels, groups="coarse", graphs="er")
    assert plan.graph_plans[0].level == "coarse"
    plan, _ = plan_build(x, labels=labels, clusters=3, groups="labels", graphs="er")
    assert plan.graph_plans[0].level == "kmeans"


def test_plan_names_one_item_graph_per_space_and_the_write(no_work, tmp_path):
    x, _ = make_blobs(n=200)
    spaces = {"a": x, "b": x[:, :3]}
    plan, inputs = plan_build(
        spaces, clusters=4, graphs="knn", k=3, cluster_space="b", out=tmp_path / "o.gw"
    )
    assert plan.levels[0].space == "b" and dict(plan.spaces) == {"a": 8, "b": 3}
    assert plan.graph_plans == (
        GraphPlan("knn@a", "knn", space="a", walk_level=None),  # no k-means of these vectors
        GraphPlan("knn@b", "knn", space="b", walk_level="kmeans"),
    )
    assert plan.steps[-1] == "write" and plan.out == tmp_path / "o.gw"
    assert inputs.spaces.keys() == {"a", "b"}
    assert not (tmp_path / "o.gw").exists()  # planning writes nothing


def test_plan_lists_what_it_ignores_and_build_index_warns():
    x, _ = make_blobs(n=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the plan says it; it does not warn
        plan, _ = plan_build(x, clusters=3, graphs="knn", k=3, p=0.5, graph_level="kmeans")
    assert plan.ignored == (
        "graph_level 'kmeans' is ignored: this build has no cluster graph ('er', 'knn-clusters')",
        "p=0.5 is ignored: this build has no 'er' graph",
    )
    with pytest.warns(UserWarning) as caught:
        gw.build_index(x, clusters=3, graphs="knn", k=3, p=0.5, graph_level="kmeans")
    assert [str(w.message) for w in caught] == list(plan.ignored)
    assert all(w.filename == __file__ for w in caught)  # pointing at the caller


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(graph_level="labels"), "graph_level 'labels' is not one of the levels"),
        (dict(cluster_space="layer1"), "cluster_space 'layer1' is not one of the spaces"),
        (dict(clusters=500), "cannot make 500 clusters from 200 items"),
        (dict(graphs=["er", "knn"], k=200), "k=200 neighbours asked for"),
        (dict(groups="labels"), "no labels were given"),
        (dict(metric="dot"), "metric should be 'l2' or 'cosine'"),
    ],
)
def test_a_bad_argument_is_refused_by_the_plan_before_any_step(no_work, kwargs, msg):
    x, _ = make_blobs(n=200)
    kwargs = {"clusters": 5, "graphs": "er", **kwargs}
    with pytest.raises(InputError, match=msg):
        plan_build(x, **kwargs)
    with pytest.raises(InputError, match=msg):
        gw.build_index(x, **kwargs)  # the steps would raise AssertionError


def test_a_level_step_alone():
    x, y = make_blobs(n=300)
    plan, inputs = plan_build(x, labels=y, clusters=6, groups="labels", graphs=(), seed=3)
    kmeans = build_level(plan, plan.levels[0], inputs)
    assert kmeans.name == "kmeans" and kmeans.n_clusters == 6 and kmeans.space == "input"
    np.testing.assert_array_equal(
        kmeans.assignment,
        gw.build_index(x, clusters=6, graphs=(), seed=3).levels["kmeans"].assignment,
    )
    labels = build_level(plan, plan.levels[1], inputs)
    assert labels.name == "labels" and labels.source == "labels"
    np.testing.assert_array_equal(labels.values, np.unique(y))
    np.testing.assert_array_equal(labels.values[labels.assignment], y)


def _level(n_clusters: int) -> Level:
    """A literal level: 2 items per cluster, centroids on a line."""
    return Level(
        name="tiny",
        assignment=np.repeat(np.arange(n_clusters, dtype=np.int32), 2),
        centroids=np.arange(n_clusters, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32),
        values=np.arange(n_clusters, dtype=np.int64),
        source="labels",
        space="input",
    )


def test_cluster_graph_steps_alone():
    x, _ = make_blobs(n=200)
    plan, _ = plan_build(x, clusters=5, graphs=["er", "knn-clusters"], k=10, seed=2)
    er_plan, knn_plan = plan.graph_plans
    er = build_cluster_graph(plan, er_plan, _level(6))
    assert er.name == "er" and er.kind == "cluster" and er.level == "tiny" and er.n_nodes == 6
    # the same graph as a direct call with the plan's parameters
    direct = er_graph(6, seed=2, level="tiny")
    np.testing.assert_array_equal(er.indices, direct.indices)
    knn = build_cluster_graph(plan, knn_plan, _level(3))  # k=10 capped at 3 - 1
    assert knn.name == "knn-clusters" and knn.n_nodes == 3 and knn.params["k"] == 2
    assert knn.degrees.max() <= 2


def test_item_graph_and_walk_order_steps_alone():
    x, _ = make_blobs(n=200)
    plan, inputs = plan_build(x, graphs="knn", k=4, knn_backend="exact")
    (g,) = plan.graph_plans
    assert g.walk_level is None
    graph = build_item_graph(plan, g, inputs.spaces["input"])
    assert graph.name == "knn" and graph.kind == "item" and graph.walk is None
    assert graph.n_nodes == 200 and np.all(graph.degrees == 4)
    walked = with_walk_order(graph, None)
    assert graph.walk is None  # a new graph: the step's input is left as it was
    assert walked.walk is not None and walked.walk.method == "bfs"
    assert walked.indices is graph.indices and walked.params is graph.params
    by_clusters = with_walk_order(graph, np.arange(200, dtype=np.int32) % 5)
    assert by_clusters.walk is not None and by_clusters.walk.method == "cluster-bfs"


def test_build_index_runs_the_planned_steps_in_order():
    x, y = make_blobs(n=200)
    kwargs = dict(labels=y, clusters=4, groups="labels", graphs=["knn", "er"], k=3)
    plan, _ = plan_build(x, **kwargs)
    idx = gw.build_index(x, **kwargs)
    assert list(idx.build_params["timings_s"]) == [*plan.steps, "total"]
    assert list(idx.levels) == [lv.name for lv in plan.levels]
    assert list(idx.graphs) == [g.name for g in plan.graph_plans]
