"""Training losses and the kNN evaluation of learned features.

* :func:`ce_loss` — cross-entropy on class logits.
* :func:`supcon_loss` — the supervised contrastive loss of Khosla et al. 2020 (``L^sup_out``).
* :func:`knn_accuracy` — the test accuracy of a cosine-similarity weighted kNN vote over the
  training features (Wu et al. 2018), how supcon runs are evaluated.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from graphwalk.errors import InputError
from graphwalk.validation import check_int

__all__ = ["LOSSES", "ce_loss", "knn_accuracy", "supcon_loss"]

#: Loss names ``graphwalk train`` knows.
LOSSES: tuple[str, ...] = ("ce", "supcon")


def ce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of ``logits`` ``(n, n_classes)`` against integer ``labels`` ``(n,)``."""
    return F.cross_entropy(logits, labels)


def supcon_loss(z: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    """Supervised contrastive loss ``L^sup_out`` (Khosla et al. 2020, eq. 2), mean over anchors.

    Each row of ``z`` is L2-normalised; for an anchor ``i`` with positives ``P(i)`` (the other rows
    with its label) and ``A(i)`` all rows but ``i``::

        l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / T) / sum_{a in A(i)} exp(z_i.z_a / T) )

    The loss is the mean of ``l_i`` over the anchors that have at least one positive in the batch;
    anchors without one are left out. The paper's equation is used as is (no ``T / base_T``
    rescaling as in the authors' code). The log-sum-exp subtracts each row's maximum, so small
    temperatures do not overflow.

    A batch whose labels are all distinct has no positive pair and so gives no signal: the loss is
    then ``0 * z.sum()``, a zero that keeps the graph (``backward()`` works and gives zero
    gradients).

    Args:
        z: ``(n, d)`` unnormalised embeddings (the projection head's output).
        labels: ``(n,)`` integer class labels.
        temperature: ``T > 0``.

    Returns:
        A scalar tensor (float32, or float64 for float64 ``z``).

    Raises:
        InputError: ``z`` is not 2-D, ``labels`` does not have one entry per row, or
            ``temperature`` is not positive.
    """
    if z.ndim != 2:
        raise InputError(f"z must be 2-D (n, d), got shape {tuple(z.shape)}")
    if labels.ndim != 1 or labels.shape[0] != z.shape[0]:
        raise InputError(
            f"labels must be 1-D with one label per row of z ({z.shape[0]}), "
            f"got shape {tuple(labels.shape)}"
        )
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature!r}")
    n = z.shape[0]
    labels = labels.to(z.device)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    pos_mask = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos_mask.sum(dim=1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return 0 * z.sum()
    zf = z if z.dtype in (torch.float32, torch.float64) else z.float()
    zn = F.normalize(zf, dim=1)
    sim = zn @ zn.T / temperature
    # log of the denominator over A(i) (self excluded); logsumexp subtracts the row max
    log_denom = torch.logsumexp(sim.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    log_prob = sim - log_denom
    pos_sum = torch.where(pos_mask, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -pos_sum[has_pos] / n_pos[has_pos].to(log_prob.dtype)
    return per_anchor.mean()


@torch.no_grad()
def knn_accuracy(
    train_feats: Any,
    train_labels: Any,
    test_feats: Any,
    test_labels: Any,
    k: int = 20,
    temperature: float = 0.1,
    *,
    chunk_size: int = 1024,
) -> float:
    """Accuracy of a cosine-similarity weighted kNN classifier on the test features.

    Wu et al. 2018: each test row finds its ``k`` most cosine-similar training rows, each
    neighbour votes for its label with weight ``exp(sim / T)``, and the class with the largest
    total wins (ties: the smallest class id). Test rows are processed ``chunk_size`` at a time, so
    memory stays at ``chunk_size x n_train`` similarities.

    ``k`` larger than the training set is clamped to its size (every training row votes), so that
    small runs evaluate without an error.

    Args:
        train_feats: ``(n_train, d)`` features (tensor or array); rows are L2-normalised here.
        train_labels: ``(n_train,)`` integer labels.
        test_feats: ``(n_test, d)`` features.
        test_labels: ``(n_test,)`` integer labels.
        k: the number of neighbours, ``>= 1``.
        temperature: ``T > 0`` of the vote weights.
        chunk_size: test rows per similarity block, ``>= 1``.

    Returns:
        The fraction of test rows whose predicted class is their label, in ``[0, 1]``.

    Raises:
        InputError: mismatched or empty inputs, negative labels, ``k < 1``, ``temperature <= 0``
            or ``chunk_size < 1``.
    """
    tr = torch.as_tensor(train_feats)
    device = tr.device
    tr_y = torch.as_tensor(train_labels, device=device)
    te = torch.as_tensor(test_feats, device=device)
    te_y = torch.as_tensor(test_labels, device=device)
    if tr.ndim != 2 or te.ndim != 2 or tr.shape[1] != te.shape[1]:
        raise InputError(
            f"train and test features must be 2-D with the same width, got shapes "
            f"{tuple(tr.shape)} and {tuple(te.shape)}"
        )
    if tr_y.shape != (tr.shape[0],) or te_y.shape != (te.shape[0],):
        raise InputError(
            f"labels must be 1-D with one label per feature row, got {tuple(tr_y.shape)} for "
            f"{tr.shape[0]} train rows and {tuple(te_y.shape)} for {te.shape[0]} test rows"
        )
    if tr.shape[0] == 0 or te.shape[0] == 0:
        raise InputError(
            f"knn_accuracy needs at least one train and one test row, got {tr.shape[0]} and "
            f"{te.shape[0]}"
        )
    check_int("k", k, minimum=1)
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature!r}")
    check_int("chunk_size", chunk_size, minimum=1)
    tr_y = tr_y.long()
    te_y = te_y.long()
    if int(tr_y.min()) < 0 or int(te_y.min()) < 0:
        raise InputError("labels must be non-negative class ids")
    n_classes = int(max(int(tr_y.max()), int(te_y.max()))) + 1
    k = min(int(k), tr.shape[0])
    chunk_size = int(chunk_size)
    dtype = tr.dtype if tr.dtype in (torch.float32, torch.float64) else torch.float32
    tr_n = F.normalize(tr.to(dtype), dim=1)
    correct = 0
    for s in range(0, te.shape[0], chunk_size):
        q = F.normalize(te[s : s + chunk_size].to(dtype), dim=1)
        sim, idx = (q @ tr_n.T).topk(k, dim=1)
        # subtracting each row's best similarity rescales its weights alike: same vote, no overflow
        weights = torch.exp((sim - sim[:, :1]) / temperature)
        votes = torch.zeros(q.shape[0], n_classes, dtype=dtype, device=device)
        votes.scatter_add_(1, tr_y[idx], weights)
        correct += int((votes.argmax(dim=1) == te_y[s : s + chunk_size]).sum())
    return correct / te.shape[0]
