"""Per-item vectors that follow what the model learns (issue 17): gradient sketches, and
learnable vectors moved by an outer gradient.

**Gradient sketches** (:class:`GradientSketch`). With the cross-entropy loss and a linear last
layer ``z = W h + b``, an item's gradient with respect to ``(W, b)`` is the outer product
``g [h, 1]^T`` of ``g = softmax(z) - onehot(y)`` and the penultimate features ``h`` with a 1
appended: known from the forward pass alone, with no extra backward pass. The sketch is that
outer product projected to ``dim`` dimensions by a fixed Gaussian matrix ``R`` (seeded,
``N(0, 1/dim)``, Johnson-Lindenstrauss: inner products kept in expectation), computed without
forming the outer product: ``s = sum_c g_c (h~^T R_c)``. A table keeps each item's latest sketch,
written when the item is trained on, so the graph over it costs no extra passes. Items whose
gradients point the same way end up neighbours (CRAIG, Mirzasoleiman et al. 2020; GradMatch,
Killamsetty et al. 2021; LESS, Xia et al. 2024, select data by the same similarity).

**Learnable vectors** (:class:`LearnedVectors`). A table of unit vectors ``v_i`` trained beside
the model by an outer loss over each batch ``B``::

    L_i = 1/(|B|-1) sum_{j in B, j != i} (cos(v_i, v_j) - cos(s_i, s_j))^2,   L = mean_i L_i

The rows of the batch take one projected gradient step on ``sum_i L_i``:
``v_i <- normalise(v_i - lr * dL_i/dv_i ...)``, so each row's step does not shrink with the batch
size. The table is a smoothed, persistent memory of which items' gradients agree: rows of items
not trained on recently keep what they learned, and agreement carries over from batch to batch
(``i`` near ``j`` and ``j`` near ``k`` in one batch each puts ``i`` near ``k``). The vectors start
as the first sketches.

Both tables record the step each row was last written (``seen``; ``-1``: never), which merges
the tables of several processes (the latest write of each row wins) and says how stale a row is.
Neither imports torch at import time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.validation import check_int, check_real

__all__ = ["VECTOR_SPACES", "GradientSketch", "LearnedVectors", "last_layer", "merge_rows"]

VECTOR_SPACES = ("grad", "learned")
_TAG = 0x5E7C  # separates the projection's stream from every other seeded stream
MAX_DIM = 4096


def last_layer(net: Any, loss: str = "ce") -> Any:
    """The ``nn.Linear`` whose gradient the sketches take: ``net.head`` of a graphwalk model
    trained with cross-entropy (or any module with a ``head`` that is a ``Linear``).

    Raises:
        InputError: the loss is not cross-entropy, or the model has no linear ``head``.
    """
    import torch

    if loss != "ce":
        raise InputError(
            f"gradient vectors need the cross-entropy loss's last-layer gradient, but the loss is "
            f"{loss!r}; train with --loss ce, or use --layers (activation graphs)"
        )
    head = getattr(net, "head", None)
    if not isinstance(head, torch.nn.Linear):
        what = type(head).__name__ if head is not None else "no head"
        raise InputError(
            f"gradient vectors need a model whose last layer is one nn.Linear called 'head' "
            f"(graphwalk's models with --loss ce), but this model has {what}; use --layers "
            "(activation graphs) for other models"
        )
    return head


def check_dim(dim: Any) -> int:
    """A vector dimension: an integer in ``[2, 4096]``."""
    return check_int("vectors dim", dim, minimum=2, maximum=MAX_DIM)


class GradientSketch:
    """Per-item sketches of the last layer's per-example gradient (see the module docstring).

    Args:
        n_items: rows of the table.
        n_classes: the last layer's outputs.
        feat_dim: the last layer's inputs (the penultimate features).
        dim: the sketch's dimension, in ``[2, 4096]`` (default 64).
        seed: seeds the projection (the same seed, the same projection on every rank).
        device: where the projection and the table live.
    """

    def __init__(
        self,
        n_items: int,
        n_classes: int,
        feat_dim: int,
        *,
        dim: int = 64,
        seed: int = 0,
        device: Any = None,
    ) -> None:
        import torch

        self.n_items = check_int("n_items", n_items, minimum=1)
        self.n_classes = check_int("n_classes", n_classes, minimum=1)
        self.feat_dim = check_int("feat_dim", feat_dim, minimum=1)
        self.dim = check_dim(dim)
        self.seed = check_int("seed", seed, minimum=0)
        state = np.random.SeedSequence([self.seed, _TAG]).generate_state(1, np.uint64)[0]
        gen = torch.Generator().manual_seed(int(state) & (2**63 - 1))
        proj = torch.randn(
            self.n_classes, self.feat_dim + 1, self.dim, generator=gen, dtype=torch.float32
        )
        self.projection = (proj / np.sqrt(self.dim)).to(device)
        self.table = torch.zeros(self.n_items, self.dim, dtype=torch.float32, device=device)
        self.seen = torch.full((self.n_items,), -1, dtype=torch.int64, device=device)

    def sketch(self, logits: Any, features: Any, labels: Any) -> Any:
        """The sketches ``(b, dim)`` of a batch: ``logits`` ``(b, n_classes)`` (before the
        softmax), ``features`` ``(b, feat_dim)`` (the last layer's inputs), ``labels`` ``(b,)``.
        Exactly ``vec(g [h, 1]^T) @ R.reshape(-1, dim)`` (tested against autograd)."""
        import torch

        with torch.no_grad():
            z = logits.detach().float()
            g = torch.softmax(z, dim=1)
            g[torch.arange(z.shape[0], device=z.device), labels] -= 1.0
            h = features.detach().float().reshape(z.shape[0], -1)
            h1 = torch.cat([h, torch.ones(h.shape[0], 1, device=h.device, dtype=h.dtype)], 1)
            # (b, c) x (c, f+1, d) -> (b, f+1, d), then the features: (b, 1, f+1) @ ... -> (b, d)
            t = (g @ self.projection.reshape(self.n_classes, -1)).reshape(
                -1, self.feat_dim + 1, self.dim
            )
            return torch.bmm(h1.unsqueeze(1), t).squeeze(1)

    def update(self, ids: Any, sketches: Any, step: int) -> None:
        """Write the sketches of items ``ids`` (trained on at ``step``)."""
        self.table[ids] = sketches
        self.seen[ids] = int(step)

    def vectors(self) -> npt.NDArray[np.float32]:
        """The table as a ``(n_items, dim)`` float32 array (a copy)."""
        return np.ascontiguousarray(self.table.detach().cpu().numpy(), dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "grad",
            "shape": [self.n_items, self.n_classes, self.feat_dim, self.dim],
            "seed": self.seed,
            "table": self.table.detach().cpu().clone(),
            "seen": self.seen.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(
            state, "grad", [self.n_items, self.n_classes, self.feat_dim, self.dim], self.seed
        )
        self.table.copy_(state["table"])
        self.seen.copy_(state["seen"])


class LearnedVectors:
    """Per-item unit vectors moved by the outer loss of the module docstring.

    Args:
        n_items: rows of the table.
        dim: their dimension, in ``[2, 4096]`` (default 64).
        lr: the outer learning rate, ``> 0`` (default 0.5: a row moves by at most ~0.5 per step
            while the cosines it is matched to are off by ~1).
        device: where the table lives.

    The table starts at zero; :meth:`initialise` sets it (from the first sketches).
    """

    def __init__(self, n_items: int, *, dim: int = 64, lr: float = 0.5, device: Any = None):
        import torch

        self.n_items = check_int("n_items", n_items, minimum=1)
        self.dim = check_dim(dim)
        self.lr = check_real("vectors lr", lr, low=0.0, low_open=True)
        self.table = torch.zeros(self.n_items, self.dim, dtype=torch.float32, device=device)
        self.seen = torch.full((self.n_items,), -1, dtype=torch.int64, device=device)
        self.last_loss = float("nan")

    def initialise(self, vectors: Any) -> None:
        """Start from ``vectors`` ``(n_items, dim)``, each row normalised (a zero row stays
        zero until it is trained on)."""
        import torch

        v = torch.as_tensor(vectors, dtype=torch.float32, device=self.table.device)
        if tuple(v.shape) != (self.n_items, self.dim):
            raise InputError(
                f"initial vectors of shape {tuple(v.shape)} for a table of "
                f"({self.n_items}, {self.dim})"
            )
        self.table.copy_(torch.nn.functional.normalize(v, dim=1))

    @staticmethod
    def outer_loss(v: Any, s: Any) -> Any:
        """The per-row losses ``L_i`` ``(b,)`` of vectors ``v`` against targets ``s`` (both
        ``(b, ·)``): the mean squared difference of their cosines with the batch's other rows."""
        import torch

        b = v.shape[0]
        vn = torch.nn.functional.normalize(v, dim=1)
        sn = torch.nn.functional.normalize(s, dim=1)
        diff = vn @ vn.T - sn @ sn.T
        off = ~torch.eye(b, dtype=torch.bool, device=v.device)
        return (diff.square() * off).sum(1) / max(b - 1, 1)

    def step(self, ids: Any, targets: Any, step: int) -> float:
        """One outer step for the items ``ids`` against their ``targets`` (their gradient
        sketches); returns the batch's loss ``L`` before the step."""
        import torch

        ids_t = torch.as_tensor(ids, device=self.table.device)
        if ids_t.numel() < 2:
            return float("nan")
        uniq, first = _first_occurrence(ids_t)
        with torch.enable_grad():
            v = self.table[uniq].clone().requires_grad_(True)
            per_row = self.outer_loss(v, targets[first].detach().float())
            loss = per_row.mean()
            (grad,) = torch.autograd.grad(per_row.sum(), v)
        with torch.no_grad():
            self.table[uniq] = torch.nn.functional.normalize(v.detach() - self.lr * grad, dim=1)
            self.seen[uniq] = int(step)
        self.last_loss = float(loss.detach())
        return self.last_loss

    def vectors(self) -> npt.NDArray[np.float32]:
        """The table as a ``(n_items, dim)`` float32 array (a copy)."""
        return np.ascontiguousarray(self.table.detach().cpu().numpy(), dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "learned",
            "shape": [self.n_items, self.dim],
            "lr": self.lr,
            "table": self.table.detach().cpu().clone(),
            "seen": self.seen.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(state, "learned", [self.n_items, self.dim], None)
        if float(state["lr"]) != self.lr:
            raise InputError(
                f"the learned vectors were saved with lr={state['lr']} but these have "
                f"lr={self.lr}; create them with the same settings to resume"
            )
        self.table.copy_(state["table"])
        self.seen.copy_(state["seen"])


def _first_occurrence(ids: Any) -> tuple[Any, Any]:
    """The distinct ids in order of first appearance, and where each first appears."""
    import torch

    n = int(ids.numel())
    if n == int(torch.unique(ids).numel()):
        return ids, torch.arange(n, device=ids.device)
    seen: dict[int, int] = {}
    for pos, i in enumerate(ids.tolist()):
        seen.setdefault(int(i), pos)
    pos_t = torch.as_tensor(list(seen.values()), device=ids.device)
    return ids[pos_t], pos_t


def _check_state(state: dict[str, Any], kind: str, shape: list[int], seed: int | None) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        got = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise InputError(f"a state of {got!r} vectors cannot resume {kind!r} vectors")
    if list(state["shape"]) != shape or (seed is not None and int(state["seed"]) != seed):
        raise InputError(
            f"the {kind} vectors were saved with shape {list(state['shape'])} and seed "
            f"{state.get('seed')}, these have {shape} and seed {seed}: resume with the same "
            "data, model and settings"
        )


def merge_rows(tables: list[Any], seens: list[Any]) -> tuple[Any, Any]:
    """Merge the tables of several processes: each row from the process that wrote it last
    (the lowest rank on a tie). ``tables``: ``(n, d)`` tensors, ``seens``: ``(n,)``."""
    import torch

    seen = torch.stack(seens)  # (world, n)
    # argmax returns the first maximum: the lowest rank on a tie
    best = torch.argmax(seen, dim=0)
    table = torch.stack(tables)[best, torch.arange(seen.shape[1], device=seen.device)]
    return table, seen.max(dim=0).values
