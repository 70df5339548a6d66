"""Per-item vectors that follow what the model learns (issue 17): gradient sketches, and
learnable vectors moved by an outer gradient.

**Gradient sketches** (:class:`GradientSketch`). With the cross-entropy loss and a linear last
layer ``z = W h + b``, an item's gradient with respect to ``(W, b)`` is the outer product
``g [h, 1]^T`` of ``g = softmax(z) - onehot(y)`` and the penultimate features ``h`` with a 1
appended: known from the forward pass alone, with no extra backward pass. The sketch projects
that outer product with a Kronecker-structured Gaussian matrix, as LoGra does for whole-model
gradients (Choe et al. 2024, "What is Your Data Worth to GPT?"): ``s = vec((A^T g)(B^T h~)^T)``
with ``A`` ``(n_classes, d_g)`` and ``B`` ``(feat_dim + 1, d_h)`` seeded ``N(0, 1/d_g)`` and
``N(0, 1/d_h)``, ``dim = d_g * d_h``. Since
``<s, s'> = <A^T g, A^T g'> <B^T h~, B^T h~'>``, each factor a Johnson-Lindenstrauss estimate, the
sketches' inner products estimate the gradients' inner products without bias, at
``n_classes * d_g + (feat_dim + 1) * d_h`` multiply-adds per item instead of the
``n_classes * (feat_dim + 1) * dim`` of a dense projection (70x fewer for the mnist1d CNN):
cheap enough to run at every step. A table keeps each item's latest sketch,
written when the item is trained on, so the graph over it costs no extra passes. Items whose
gradients point the same way end up neighbours (CRAIG, Mirzasoleiman et al. 2020; GradMatch,
Killamsetty et al. 2021; LESS, Xia et al. 2024, select data by the same similarity).

**Learnable vectors** (:class:`LearnedVectors`). A table of unit vectors ``v_i`` trained beside
the model by an outer loss over each batch ``B``::

    L_i = 1/(|B|-1) sum_{j in B, j != i} (cos(v_i, v_j) - cos(s_i, s_j))^2,   L = mean_i L_i

The rows of the batch take one Riemannian gradient step on the unit sphere:
``v_i <- normalise(v_i - lr * (I - v_i v_i^T) d(sum_j L_j)/dv_i)``, where for unit rows
``d(sum_j L_j)/dv_i = 4/(|B|-1) sum_{j != i} (cos(v_i, v_j) - cos(s_i, s_j)) v_j`` (closed form,
tested against autograd). Summing the rows' losses keeps each row's step from shrinking with
the batch size. By default each row is compared with about 8 of its batch's rows
(``partners``): the same loss over fewer pairs, at about an eighth of the cost. The table is a smoothed, persistent memory of which items' gradients agree: rows of items
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


def sketch_factors(dim: int, n_classes: int) -> tuple[int, int]:
    """How a sketch of ``dim`` dimensions splits into ``d_g * d_h``: ``d_g`` is the largest
    divisor of ``dim`` that is at most ``sqrt(dim)`` and at most ``n_classes`` (64 -> 8 x 8 for
    10 classes; a prime ``dim`` gives ``1 x dim``: choose a power of two)."""
    best = 1
    for d in range(1, int(np.sqrt(dim)) + 1):
        if dim % d == 0 and d <= n_classes:
            best = d
    return best, dim // best


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
        self.d_g, self.d_h = sketch_factors(self.dim, self.n_classes)
        state = np.random.SeedSequence([self.seed, _TAG]).generate_state(1, np.uint64)[0]
        gen = torch.Generator().manual_seed(int(state) & (2**63 - 1))
        a = torch.randn(self.n_classes, self.d_g, generator=gen, dtype=torch.float32)
        b = torch.randn(self.feat_dim + 1, self.d_h, generator=gen, dtype=torch.float32)
        self.proj_g = (a / np.sqrt(self.d_g)).to(device)
        self.proj_h = (b[:-1] / np.sqrt(self.d_h)).to(device)  # the features' rows
        self.proj_1 = (b[-1] / np.sqrt(self.d_h)).to(device)  # the appended 1's row
        self.table = torch.zeros(self.n_items, self.dim, dtype=torch.float32, device=device)
        self.seen = torch.full((self.n_items,), -1, dtype=torch.int64, device=device)

    def sketch(self, logits: Any, features: Any, labels: Any) -> Any:
        """The sketches ``(b, dim)`` of a batch: ``logits`` ``(b, n_classes)`` (before the
        softmax), ``features`` ``(b, feat_dim)`` (the last layer's inputs), ``labels`` ``(b,)``.
        Exactly ``vec(grad_W, grad_b) @ kron(A, B)`` of the per-example gradient (tested against
        autograd; :meth:`projection` gives the dense matrix)."""
        import torch

        with torch.no_grad():
            z = logits.detach().float()
            g = torch.softmax(z, dim=1)
            g[torch.arange(z.shape[0], device=z.device), labels] -= 1.0
            h = features.detach().float().reshape(z.shape[0], -1)
            pg = g @ self.proj_g  # (b, d_g)
            ph = torch.addmm(self.proj_1, h, self.proj_h)  # (b, d_h): [h, 1] @ B
            return (pg.unsqueeze(2) * ph.unsqueeze(1)).reshape(z.shape[0], self.dim)

    def projection(self) -> Any:
        """The dense ``(n_classes * (feat_dim + 1), dim)`` matrix the sketch applies to the
        flattened per-example gradient ``[grad_W | grad_b]`` (row ``c``: ``[g_c h, g_c]``)."""
        import torch

        b = torch.cat([self.proj_h, self.proj_1.unsqueeze(0)])
        return torch.kron(self.proj_g, b)

    def update(self, ids: Any, sketches: Any, step: Any) -> None:
        """Write the sketches of items ``ids`` (distinct; trained on at ``step``, one step or
        one per item)."""
        self.table[ids] = sketches
        self.seen[ids] = step if not isinstance(step, (int, np.integer)) else int(step)

    def vectors(self) -> npt.NDArray[np.float32]:
        """The table as a ``(n_items, dim)`` float32 array (a copy)."""
        return np.ascontiguousarray(self.table.detach().cpu().numpy(), dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "grad",
            "shape": [self.n_items, self.n_classes, self.feat_dim, self.dim],
            "projection": "kron",
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
        partners: about how many of its batch's other rows each row is compared with (default
            8): a batch of ``b`` rows is dealt by position into ``G = b // (partners + 1)``
            groups (row ``i`` into group ``i mod G``, so a group spans the whole batch) and
            the loss is the module docstring's within each group; ``None`` (or ``b - 1`` and
            more): one group, all pairs. Groups of 9 of a batch of 64 cut the outer step's
            products 7-fold, which keeps it within a few percent of a training step
            (``bench/vectors_overhead.py``); the pairs compared change with the batches.
        device: where the table lives.

    The table starts at zero; :meth:`initialise` sets it (from the first sketches).
    """

    def __init__(
        self,
        n_items: int,
        *,
        dim: int = 64,
        lr: float = 0.5,
        partners: int | None = 8,
        device: Any = None,
    ):
        import torch

        self.n_items = check_int("n_items", n_items, minimum=1)
        self.dim = check_dim(dim)
        self.lr = check_real("vectors lr", lr, low=0.0, low_open=True)
        self.partners = None if partners is None else check_int("partners", partners, minimum=1)
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
        sketches; an item listed twice counts once); returns the batch's loss before the step
        (over the pairs the step compares)."""
        import torch

        ids_t = torch.as_tensor(ids, device=self.table.device)
        uniq, first = _first_occurrence(ids_t)
        if uniq.numel() < 2:
            return float("nan")
        loss = self._update(uniq[None], targets[first][None], [int(step)])[0]
        self.last_loss = loss
        return loss

    def _update(self, ids: Any, targets: Any, steps: list[int]) -> list[float]:
        """The outer step of ``nb`` batches of ``b`` distinct, disjoint rows at once: ``ids``
        ``(nb, b)``, ``targets`` ``(nb, b, ·)``; each batch's loss. The rows of a batch are
        dealt into groups by position (row ``i`` into group ``i mod G``), and each row is
        compared with the others of its group (:attr:`partners`)."""
        import torch

        nb, b = int(ids.shape[0]), int(ids.shape[1])
        g = 1 if self.partners is None else max(1, b // (self.partners + 1))
        r = -(-b // g)  # rows per group (the last ones may have one less)
        pad = r * g - b
        dev = self.table.device
        fn = torch.nn.functional
        with torch.no_grad():
            # row i of a batch goes to group i mod g, slot i // g: a reshape, no gather
            def grouped(x: Any) -> Any:
                x = fn.pad(x, (0, 0, 0, pad)) if pad else x
                return x.reshape(nb, r, g, -1).transpose(1, 2)  # (nb, g, r, ·)

            v = grouped(self.table[ids])  # unit rows (zero before initialise: they stay zero)
            sn = grouped(fn.normalize(targets.float(), dim=2))
            err = torch.baddbmm(  # cos(v_i, v_j) - cos(s_i, s_j) for every pair of a group
                (v @ v.transpose(-1, -2)).reshape(nb * g, r, r),
                sn.reshape(nb * g, r, -1),
                sn.reshape(nb * g, r, -1).transpose(-1, -2),
                alpha=-1.0,
            ).reshape(nb, g, r, r)
            err.diagonal(dim1=-2, dim2=-1).zero_()  # padded rows are zero: their err is 0
            slot = torch.arange(r * g, device=dev).reshape(r, g).T < b  # (g, r): real rows
            size = slot.sum(1).clamp(min=2).float()  # rows of each group
            losses = (err.square().sum((-1, -2)) / (size - 1)).sum(1) / b
            grad = (4.0 / (size - 1))[None, :, None, None] * (err @ v)
            grad -= (grad * v).sum(-1, keepdim=True) * v  # the sphere's tangent part
            new = fn.normalize(v - self.lr * grad, dim=-1)
            new = new.transpose(1, 2).reshape(nb, r * g, -1)[:, :b]  # back to batch order
            self.table[ids.reshape(-1)] = new.reshape(nb * b, -1)
            st = torch.as_tensor(steps, dtype=torch.int64, device=self.seen.device)
            self.seen[ids.reshape(-1)] = st.repeat_interleave(b)
        return [float(x) for x in losses.tolist()]

    def step_many(self, batches: list[tuple[Any, Any, int]]) -> list[float]:
        """The outer steps of several batches ``(ids, targets, step)`` in order, exactly as
        :meth:`step` one after the other would make them, but batches whose rows are disjoint
        (an epoch's batches, when the sampler draws without replacement) in one batched product
        per batch size; returns each batch's loss."""
        import torch

        losses = [float("nan")] * len(batches)
        group: list[int] = []
        rows: set[int] = set()

        def run(group: list[int]) -> None:
            by_size: dict[int, list[int]] = {}
            for i in group:
                by_size.setdefault(int(batches[i][0].numel()), []).append(i)
            for size, members in by_size.items():
                if size < 2:
                    continue
                ids = torch.stack([torch.as_tensor(batches[i][0]) for i in members])
                tg = torch.stack([batches[i][1] for i in members])
                got = self._update(ids.to(self.table.device), tg, [batches[i][2] for i in members])
                for i, loss in zip(members, got, strict=True):
                    losses[i] = loss

        for i, (ids, _t, _s) in enumerate(batches):
            mine = torch.as_tensor(ids).tolist()
            if len(set(mine)) != len(mine):  # a batch with a repeated item: on its own
                run(group)
                group, rows = [], set()
                losses[i] = self.step(*batches[i])
                continue
            if rows.intersection(mine):
                run(group)
                group, rows = [], set()
            group.append(i)
            rows.update(mine)
        run(group)
        finite = [x for x in losses if x == x]
        if finite:
            self.last_loss = finite[-1]
        return losses

    def gradient(self, ids: Any, targets: Any) -> Any:
        """The Riemannian gradient of the all-pairs loss at the rows ``ids`` (distinct): what
        :meth:`step` follows with ``partners=None``; for tests and diagnostics."""
        import torch

        v = torch.nn.functional.normalize(self.table[torch.as_tensor(ids)], dim=1)
        sn = torch.nn.functional.normalize(targets.float(), dim=1)
        err = v @ v.T - sn @ sn.T
        err.fill_diagonal_(0.0)
        grad = (4.0 / (v.shape[0] - 1)) * (err @ v)
        return grad - (grad * v).sum(1, keepdim=True) * v

    def vectors(self) -> npt.NDArray[np.float32]:
        """The table as a ``(n_items, dim)`` float32 array (a copy)."""
        return np.ascontiguousarray(self.table.detach().cpu().numpy(), dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "learned",
            "shape": [self.n_items, self.dim],
            "lr": self.lr,
            "partners": self.partners,
            "table": self.table.detach().cpu().clone(),
            "seen": self.seen.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(state, "learned", [self.n_items, self.dim], None)
        for key in ("lr", "partners"):
            if state.get(key) != getattr(self, key):
                raise InputError(
                    f"the learned vectors were saved with {key}={state.get(key)} but these have "
                    f"{key}={getattr(self, key)}; create them with the same settings to resume"
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
