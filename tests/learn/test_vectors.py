"""Gradient sketches and learned vectors (issue 17): the sketch is the per-example gradient's
projection, its inner products are unbiased, the outer step is the gradient of its loss, batched
steps equal sequential ones, the outer loss falls on a problem whose answer is known, and the
learned walker carries its weights to a rebuilt graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphwalk.errors import InputError
from graphwalk.learn.vectors import (
    GradientSketch,
    LearnedVectors,
    check_dim,
    last_layer,
    merge_rows,
    sketch_factors,
)


def _per_example_gradients(head, h, y):
    rows = []
    for b in range(h.shape[0]):
        head.zero_grad()
        torch.nn.functional.cross_entropy(head(h[b : b + 1]), y[b : b + 1]).backward()
        rows.append(torch.cat([head.weight.grad, head.bias.grad[:, None]], 1).reshape(-1))
    return torch.stack(rows)


@pytest.mark.parametrize(("classes", "feat", "dim"), [(4, 7, 16), (10, 100, 64), (3, 5, 7)])
def test_sketch_is_the_projected_per_example_gradient(classes, feat, dim):
    torch.manual_seed(0)
    head = torch.nn.Linear(feat, classes)
    h = torch.randn(9, feat)
    y = torch.randint(0, classes, (9,))
    gs = GradientSketch(20, classes, feat, dim=dim, seed=3)
    assert gs.d_g * gs.d_h == dim
    s = gs.sketch(head(h), h, y)
    assert s.shape == (9, dim)
    want = _per_example_gradients(head, h, y) @ gs.projection()
    torch.testing.assert_close(s, want, atol=1e-5, rtol=1e-4)


def test_sketch_inner_products_are_unbiased():
    # over 300 projections, the mean of <s_a, s_b> is the gradients' inner product
    torch.manual_seed(1)
    head = torch.nn.Linear(12, 5)
    h, y = torch.randn(2, 12), torch.tensor([1, 3])
    g = _per_example_gradients(head, h, y)
    z = head(h)
    true = float(g[0] @ g[1])
    ests = []
    for seed in range(300):
        s = GradientSketch(2, 5, 12, dim=16, seed=seed).sketch(z, h, y)
        ests.append(float(s[0] @ s[1]))
    mean, sem = np.mean(ests), np.std(ests) / np.sqrt(len(ests))
    assert abs(mean - true) < 4 * sem, (mean, true, sem)
    # and the sketches follow the gradients: same-direction pairs score higher than opposite
    assert np.std(ests) > 0


def test_sketch_factors():
    assert sketch_factors(64, 10) == (8, 8)
    assert sketch_factors(64, 3) == (2, 32)
    assert sketch_factors(7, 10) == (1, 7)
    assert sketch_factors(2, 10) == (1, 2)
    assert sketch_factors(4096, 100) == (64, 64)


def test_projection_depends_on_the_seed_only():
    a, b, c = (GradientSketch(3, 4, 5, dim=8, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.projection(), b.projection())
    assert not torch.equal(a.projection(), c.projection())


@pytest.mark.parametrize("dim", [1, 0, 4097, 2.5, "8"])
def test_dimension_out_of_range(dim):
    with pytest.raises((InputError, TypeError), match="dim"):
        check_dim(dim)
    with pytest.raises((InputError, TypeError), match="dim"):
        LearnedVectors(5, dim=dim)


def test_last_layer_needs_cross_entropy_and_a_linear_head():
    from graphwalk.train.models import build_model

    net = build_model("mlp", (64,), 10)
    assert last_layer(net) is net.head
    with pytest.raises(InputError, match="--loss ce"):
        last_layer(build_model("mlp", (64,), 10, loss="supcon"), "supcon")
    with pytest.raises(InputError, match="nn.Linear called 'head'.*--layers"):
        last_layer(build_model("mlp", (64,), 10, loss="supcon"))
    with pytest.raises(InputError, match="no head"):
        last_layer(torch.nn.Sequential(torch.nn.Linear(3, 2)))


def test_outer_gradient_is_the_losss_gradient_on_the_sphere():
    torch.manual_seed(0)
    lv = LearnedVectors(20, dim=8)
    lv.initialise(torch.randn(20, 8))
    ids, t = torch.arange(3, 9), torch.randn(6, 12)
    v = lv.table[ids].clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(LearnedVectors.outer_loss(v, t).sum(), v)
    torch.testing.assert_close(lv.gradient(ids, t), auto, atol=1e-5, rtol=1e-4)
    before = float(LearnedVectors.outer_loss(lv.table[ids], t).mean())
    reported = lv.step(ids, t, 0)
    assert reported == pytest.approx(before, rel=1e-5)
    after = float(LearnedVectors.outer_loss(lv.table[ids], t).mean())
    assert after < before
    assert torch.allclose(lv.table.norm(dim=1), torch.ones(20))
    assert (lv.seen[ids] == 0).all() and (lv.seen[:3] == -1).all()


@pytest.mark.parametrize("overlap", ["disjoint", "overlapping", "repeated item"])
def test_batched_outer_steps_equal_sequential_steps(overlap):
    g = torch.Generator().manual_seed(0)
    init = torch.randn(40, 8, generator=g)
    perm = torch.randperm(40, generator=g)
    batches = [perm[i * 8 : (i + 1) * 8] for i in range(5)]
    if overlap == "overlapping":
        batches[3] = torch.cat([batches[3][:4], batches[0][:4]])
    if overlap == "repeated item":
        batches[2] = torch.cat([batches[2][:7], batches[2][:1]])
    batches.append(perm[:5])  # another size, overlapping the first
    targets = [torch.randn(int(b.numel()), 16, generator=g) for b in batches]
    one, many = LearnedVectors(40, dim=8), LearnedVectors(40, dim=8)
    one.initialise(init)
    many.initialise(init)
    want = [one.step(b, t, s) for s, (b, t) in enumerate(zip(batches, targets, strict=True))]
    got = many.step_many([(b, t, s) for s, (b, t) in enumerate(zip(batches, targets, strict=True))])
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)
    torch.testing.assert_close(many.table, one.table, atol=1e-6, rtol=1e-5)
    assert torch.equal(many.seen, one.seen)


@pytest.mark.parametrize(("b", "partners"), [(64, 8), (20, 3), (10, 8), (7, 2)])
def test_partners_compare_each_row_with_its_group(b, partners):
    """With ``partners``, a batch's rows are dealt into ``b // (partners + 1)`` groups by
    position (row i into group i mod G) and each group takes the all-pairs step on its own."""
    g = torch.Generator().manual_seed(b)
    init = torch.randn(100, 8, generator=g)
    ids = torch.randperm(100, generator=g)[:b]
    t = torch.randn(b, 12, generator=g)
    grouped, oracle = LearnedVectors(100, dim=8, partners=partners), None
    grouped.initialise(init)
    loss = grouped.step(ids, t, 5)
    n_groups = max(1, b // (partners + 1))
    oracle = LearnedVectors(100, dim=8, partners=None)
    oracle.initialise(init)
    per_row = []
    for c in range(n_groups):
        pos = torch.arange(c, b, n_groups)
        before = LearnedVectors.outer_loss(oracle.table[ids[pos]], t[pos])
        per_row.append(before)
        oracle.step(ids[pos], t[pos], 5)
    torch.testing.assert_close(grouped.table, oracle.table, atol=1e-6, rtol=1e-5)
    assert loss == pytest.approx(float(torch.cat(per_row).mean()), rel=1e-5)
    assert (grouped.seen[ids] == 5).all()


def test_outer_loss_falls_and_the_vectors_find_the_known_groups():
    """Targets in 3 groups (orthogonal directions plus noise): from random vectors, the outer
    loss over all pairs falls 20-fold and every item's 5 nearest learned vectors are its group."""
    g = torch.Generator().manual_seed(0)
    n = 300
    groups = torch.arange(n) % 3
    targets = 3 * torch.eye(32)[groups] + 0.3 * torch.randn(n, 32, generator=g)
    lv = LearnedVectors(n, dim=16, lr=0.5)
    lv.initialise(torch.randn(n, 16, generator=g))

    def loss_and_purity():
        loss = float(LearnedVectors.outer_loss(lv.table, targets).mean())
        c = lv.table @ lv.table.T
        c.fill_diagonal_(-9)
        nb = c.topk(5, dim=1).indices
        return loss, float((groups[nb] == groups[:, None]).float().mean())

    loss0, purity0 = loss_and_purity()
    rng = np.random.default_rng(0)
    for step in range(300):
        ids = torch.as_tensor(rng.choice(n, 32, replace=False))
        lv.step(ids, targets[ids], step)
    loss1, purity1 = loss_and_purity()
    assert purity0 < 0.5 and purity1 == 1.0
    assert loss1 < loss0 / 20


def test_state_round_trip_and_refusals():
    a = GradientSketch(6, 3, 4, dim=4, seed=2)
    a.update(torch.tensor([1, 4]), torch.ones(2, 4), 7)
    b = GradientSketch(6, 3, 4, dim=4, seed=2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.table, a.table) and torch.equal(b.seen, a.seen)
    with pytest.raises(InputError, match="same data, model and settings"):
        GradientSketch(6, 3, 4, dim=4, seed=3).load_state_dict(a.state_dict())
    with pytest.raises(InputError, match="cannot resume 'learned'"):
        LearnedVectors(6, dim=4).load_state_dict(a.state_dict())
    lv = LearnedVectors(6, dim=4, lr=0.5)
    with pytest.raises(InputError, match="lr=0.5"):
        LearnedVectors(6, dim=4, lr=0.1).load_state_dict(lv.state_dict())


def test_merge_takes_each_rows_latest_write():
    t0, t1 = torch.zeros(4, 2), torch.ones(4, 2)
    s0 = torch.tensor([5, -1, 3, 2])
    s1 = torch.tensor([4, 6, 3, -1])
    table, seen = merge_rows([t0, t1], [s0, s1])
    assert table[:, 0].tolist() == [0.0, 1.0, 0.0, 0.0]  # row 2: a tie, the lowest rank
    assert seen.tolist() == [5, 6, 3, 2]


# ----------------------------------------------------------------------------- the walker


def _index(tmp_path, name, seed):
    from graphwalk.build.builder import build_index

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    return build_index(x, clusters=6, graphs=["er", "knn"], k=4, seed=seed, out=tmp_path / name)


def test_exp3s_carries_its_weights_to_a_rebuilt_graph(tmp_path):
    from graphwalk.learn import carry_over, make_policy, node_of_items

    old_idx, new_idx = _index(tmp_path, "a.gw", 0), _index(tmp_path, "b.gw", 1)
    for graph in ("er", "knn"):
        old = make_policy("exp3s", old_idx, graph, seed=0, floor="auto")
        inner = old.policy
        inner.weights = np.linspace(-3, 0, inner.n_nodes)
        inner.normalizer(1.0)
        new = make_policy("exp3s", new_idx, graph, seed=0, floor="auto")
        on, nn_ = node_of_items(old_idx, graph), node_of_items(new_idx, graph)
        carry_over(new, old, on, nn_)
        w = new.policy.weights
        if graph == "knn":  # nodes are items: the weights move as they are
            np.testing.assert_allclose(w, inner.weights - inner.weights.max())
        else:  # each new cluster: the mean old weight of its items
            c = 0
            items = nn_ == c
            want = inner.weights[on[items]].mean()
            others = np.array([inner.weights[on[nn_ == k]].mean() for k in range(6)])
            assert w[c] == pytest.approx(want - others.max())
        assert new.policy.normalizer.state_dict() == inner.normalizer.state_dict()
    pg_old = make_policy("pg", old_idx, "er", seed=0)
    pg_new = make_policy("pg", new_idx, "er", seed=0)
    with pytest.raises(InputError, match="policy=exp3s"):
        carry_over(pg_new, pg_old, node_of_items(old_idx, "er"), node_of_items(new_idx, "er"))
    with pytest.raises(InputError, match="same items"):
        carry_over(
            make_policy("exp3s", new_idx, "er"),
            make_policy("exp3s", old_idx, "er"),
            np.zeros(3, np.int64),
            node_of_items(new_idx, "er"),
        )
