import math

import numpy as np
import pytest
import torch

from graphwalk.errors import InputError
from graphwalk.train.losses import LOSSES, ce_loss, knn_accuracy, supcon_loss


def supcon_reference(z, labels, temperature):
    """Khosla et al. 2020 L^sup_out written out as plain loops over anchors and pairs."""
    z = [[float(v) for v in row] for row in z]
    labels = [int(v) for v in labels]
    z = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in z]
    n = len(z)

    def dot(i, j):
        return sum(a * b for a, b in zip(z[i], z[j], strict=True))

    total, anchors = 0.0, 0
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(dot(i, a) / temperature) for a in range(n) if a != i)
        terms = [math.log(math.exp(dot(i, p) / temperature) / denom) for p in positives]
        total += -sum(terms) / len(positives)
        anchors += 1
    return total / anchors


def test_names_and_ce():
    assert LOSSES == ("ce", "supcon")
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(1 / (1 + math.e))) / 2
    assert float(ce_loss(logits, labels)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_supcon_matches_the_loop_reference(temperature, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(14, 6, generator=g, dtype=torch.float64)
    # repeated labels, plus one singleton (an anchor without a positive, left out of the mean)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3, 1, 1, 2, 0, 4, 4])
    expected = supcon_reference(z, labels, temperature)
    got = supcon_loss(z, labels, temperature)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(expected, abs=1e-5)
    got32 = supcon_loss(z.float(), labels, temperature)
    assert got32.dtype == torch.float32
    assert float(got32) == pytest.approx(expected, abs=1e-4)


def test_supcon_is_invariant_to_the_scale_of_z():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(20, 8, generator=g)
    labels = torch.randint(0, 4, (20,), generator=g)
    base = supcon_loss(z, labels)
    for scale in [1e-3, 0.5, 7.3, 1e3]:
        assert float(supcon_loss(z * scale, labels)) == pytest.approx(float(base), rel=1e-5)


def test_supcon_is_zero_with_a_graph_when_all_labels_are_distinct():
    z = torch.randn(6, 4, requires_grad=True)
    loss = supcon_loss(z, torch.arange(6))
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert z.grad is not None and torch.equal(z.grad, torch.zeros_like(z))
    # one sample: no pair at all
    z1 = torch.randn(1, 4, requires_grad=True)
    supcon_loss(z1, torch.tensor([3])).backward()
    assert z1.grad is not None


def test_supcon_gradient_is_finite_even_at_small_temperatures():
    g = torch.Generator().manual_seed(4)
    z = (torch.randn(32, 16, generator=g) * 50).requires_grad_()
    labels = torch.randint(0, 3, (32,), generator=g)
    for t in [0.01, 0.1]:
        loss = supcon_loss(z, labels, temperature=t)
        assert torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


def test_supcon_is_lower_for_embeddings_clustered_by_label():
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 4, (40,), generator=g)
    centers = torch.randn(4, 16, generator=g)
    clustered = centers[labels] + 0.1 * torch.randn(40, 16, generator=g)
    scattered = torch.randn(40, 16, generator=g)
    assert float(supcon_loss(clustered, labels)) < float(supcon_loss(scattered, labels)) - 0.5


def test_supcon_refuses_bad_inputs():
    with pytest.raises(InputError, match="z must be 2-D"):
        supcon_loss(torch.randn(4), torch.arange(4))
    with pytest.raises(InputError, match=r"one label per row of z \(4\)"):
        supcon_loss(torch.randn(4, 2), torch.arange(3))
    with pytest.raises(InputError, match="temperature must be > 0, got 0"):
        supcon_loss(torch.randn(4, 2), torch.arange(4), temperature=0)


def _clusters(n, centers, dim, seed, spread=0.05):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    y = rng.integers(0, centers, size=n)
    return (c[y] + spread * rng.normal(size=(n, dim))).astype(np.float32), y


def test_knn_is_perfect_on_well_separated_clusters():
    x, y = _clusters(300, 5, 16, seed=0)
    acc = knn_accuracy(torch.from_numpy(x[:200]), torch.from_numpy(y[:200]), x[200:], y[200:])
    assert acc == 1.0


def test_knn_is_near_chance_on_random_labels():
    accs = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        feats = rng.normal(size=(800, 8)).astype(np.float32)
        labels = rng.integers(0, 4, size=800)
        accs.append(knn_accuracy(feats[:500], labels[:500], feats[500:], labels[500:], k=20))
    assert all(abs(a - 0.25) < 0.1 for a in accs), accs
    assert abs(np.mean(accs) - 0.25) < 0.05, accs


def test_knn_chunking_does_not_change_the_result():
    x, y = _clusters(400, 6, 8, seed=1, spread=0.8)
    args = (x[:250], y[:250], x[250:], y[250:])
    whole = knn_accuracy(*args, k=15)
    assert 0.3 < whole < 1.0  # a case with mistakes to get right
    for chunk in [1, 7, 64, 150, 10_000]:
        assert knn_accuracy(*args, k=15, chunk_size=chunk) == whole


def test_knn_clamps_k_to_the_train_set():
    x, y = _clusters(60, 3, 8, seed=2, spread=0.8)
    args = (x[:10], y[:10], x[10:], y[10:])
    assert knn_accuracy(*args, k=1000) == knn_accuracy(*args, k=10)


def test_knn_with_k1_is_the_nearest_neighbour_by_cosine():
    rng = np.random.default_rng(3)
    tr, te = rng.normal(size=(50, 5)), rng.normal(size=(30, 5))
    tr_y, te_y = rng.integers(0, 3, size=50), rng.integers(0, 3, size=30)
    cos = (te / np.linalg.norm(te, axis=1, keepdims=True)) @ (
        tr / np.linalg.norm(tr, axis=1, keepdims=True)
    ).T
    expected = float(np.mean(tr_y[cos.argmax(axis=1)] == te_y))
    assert knn_accuracy(tr, tr_y, te, te_y, k=1) == pytest.approx(expected)


def test_knn_votes_are_weighted_by_similarity():
    # one class-0 neighbour close to the query, two class-1 neighbours further away
    train = torch.tensor([[1.0, 0.05], [1.0, 0.6], [1.0, -0.6]])
    train_y = torch.tensor([0, 1, 1])
    query, query_y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    assert knn_accuracy(train, train_y, query, query_y, k=3, temperature=0.01) == 1.0
    assert knn_accuracy(train, train_y, query, query_y, k=3, temperature=100.0) == 0.0


def test_knn_refuses_bad_inputs():
    x, y = torch.randn(10, 4), torch.arange(10) % 2
    with pytest.raises(InputError, match="k should be an integer >= 1, but got k=0"):
        knn_accuracy(x, y, x, y, k=0)
    with pytest.raises(InputError, match="same width"):
        knn_accuracy(x, y, torch.randn(3, 5), y[:3])
    with pytest.raises(InputError, match="one label per feature row"):
        knn_accuracy(x, y[:9], x, y)
    with pytest.raises(InputError, match="at least one train and one test row"):
        knn_accuracy(x, y, x[:0], y[:0])
    with pytest.raises(InputError, match="chunk_size should be an integer >= 1"):
        knn_accuracy(x, y, x, y, chunk_size=0)
    with pytest.raises(InputError, match="temperature must be > 0"):
        knn_accuracy(x, y, x, y, temperature=-1.0)
