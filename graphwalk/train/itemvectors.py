"""A run's gradient sketches or learned vectors (``graphwalk train --vectors grad|learned``):
kept up to date at every step, gathered over the ranks, indexed at every refresh, saved in the
checkpoint and in the run directory (``vectors.npy`` + ``vectors.json``, what
``graphwalk index --vectors-from RUN_DIR`` reads).

A step only keeps what the forward pass it already made gives: a forward hook on the model's last
layer holds on to its input and output, and the step appends them, with the batch's items and
labels, to a buffer. The buffer is turned into sketches (one product for all its batches) and
the learned vectors' outer steps (batched over disjoint batches, as exact as one after the other:
:meth:`graphwalk.learn.vectors.LearnedVectors.step_many`) when it holds 32 MB, and before anything
reads the tables (a refresh, a checkpoint, the end). Nothing the run does depends on when that
happens, so a step pays almost nothing (``bench/vectors_overhead.py``).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from graphwalk._files import atomic_write
from graphwalk.errors import InputError
from graphwalk.learn.vectors import GradientSketch, LearnedVectors, last_layer, merge_rows

__all__ = ["VECTORS_FILE", "VECTORS_INFO", "RunVectors", "read_run_vectors"]

VECTORS_FILE = "vectors.npy"
VECTORS_INFO = "vectors.json"


class RunVectors:
    """The item vectors of one run (see the module docstring).

    Args:
        kind: ``grad`` or ``learned``.
        net: the model (its ``head`` must be an ``nn.Linear``; cross-entropy).
        n_items, n_classes: the training items and the classes.
        dim, lr: the vectors' dimension and the learned vectors' outer learning rate.
        seed: the run's seed (the sketch's projection).
        device: where the tables live.
    """

    def __init__(
        self,
        kind: str,
        net: Any,
        n_items: int,
        n_classes: int,
        *,
        dim: int,
        lr: float,
        seed: int,
        device: Any,
    ) -> None:
        head = last_layer(net, "ce")
        self.kind = kind
        self.sketch = GradientSketch(
            n_items, n_classes, head.in_features, dim=dim, seed=seed, device=device
        )
        self.learned = (
            LearnedVectors(n_items, dim=dim, lr=lr, device=device) if kind == "learned" else None
        )
        self._captured: tuple[torch.Tensor, torch.Tensor] | None = None
        self._armed = False
        self._hook = head.register_forward_hook(self._capture)
        # (ids, labels, features, logits, step) of the steps not yet sketched
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]] = []
        self._pending_bytes = 0
        self.max_pending_bytes = 32 * 2**20
        self.seconds = 0.0  # spent on the vectors since the last refresh (steps and flushes)
        self.losses: list[float] = []  # the outer losses since the last refresh

    def _capture(self, _m: Any, inputs: Any, output: Any) -> None:
        if self._armed:
            self._captured = (inputs[0].detach(), output.detach())

    def arm(self) -> None:
        """Keep the last layer's input and output of the next forward pass (a training step's)."""
        self._armed, self._captured = True, None

    def observe(self, ids: torch.Tensor, labels: torch.Tensor, step: int) -> None:
        """After a step's forward pass: keep the batch's last-layer input and output (sketched
        at the next :meth:`flush`)."""
        t0 = time.perf_counter()
        self._armed = False
        if self._captured is None:
            raise RuntimeError("RunVectors.observe() without a forward pass after arm()")
        h, z = self._captured
        self._captured = None
        self._pending.append((ids, labels, h, z, int(step)))
        self._pending_bytes += (h.numel() + z.numel()) * 4
        if self._pending_bytes >= self.max_pending_bytes:
            self.flush()
        self.seconds += time.perf_counter() - t0

    def flush(self) -> None:
        """Sketch the kept batches (one product for all), write them in order, and make the
        learned vectors' outer steps (exactly as one step after the other)."""
        if not self._pending:
            return
        t0 = time.perf_counter()
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        z = torch.cat([p[3] for p in pending])
        h = torch.cat([p[2].reshape(p[2].shape[0], -1) for p in pending])
        y = torch.cat([p[1] for p in pending])
        sketches = self.sketch.sketch(z, h, y).split([int(p[0].numel()) for p in pending])
        ids_all = torch.cat([p[0] for p in pending])
        if int(torch.unique(ids_all).numel()) == int(ids_all.numel()):  # one write
            steps = torch.cat(
                [torch.full((int(p[0].numel()),), p[4], dtype=torch.int64) for p in pending]
            )
            self.sketch.update(ids_all, torch.cat(sketches), steps.to(self.sketch.seen.device))
        else:  # an item twice: the later write wins
            for p, sk in zip(pending, sketches, strict=True):
                self.sketch.update(p[0], sk, p[4])
        if self.learned is not None:
            batches = [(p[0], sk, p[4]) for p, sk in zip(pending, sketches, strict=True)]
            self.losses.extend(self.learned.step_many(batches))
        self.seconds += time.perf_counter() - t0

    def first_pass(self, net: Any, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        """Sketch every item with the model as it is (eval mode, no gradient): the vectors of
        the run's first index; learned vectors start there."""
        was = net.training
        net.eval()
        try:
            with torch.no_grad():
                for s in range(0, int(inputs.shape[0]), 1024):
                    self.arm()
                    net(inputs[s : s + 1024])
                    assert self._captured is not None
                    h, z = self._captured
                    ids = torch.arange(s, s + int(h.shape[0]), device=h.device)
                    self.sketch.update(ids, self.sketch.sketch(z, h, labels[ids]), -1)
        finally:
            self._armed, self._captured = False, None
            net.train(was)
        if self.learned is not None:
            self.learned.initialise(self.sketch.table)

    def _tables(self) -> list[Any]:
        return [self.sketch] if self.learned is None else [self.sketch, self.learned]

    def gather(self, world: int) -> None:
        """Flush, and make every rank's tables the same: each row from the rank that wrote it
        last (a collective: every rank calls it)."""
        self.flush()
        if world == 1:
            return
        import torch.distributed as dist

        for t in self._tables():
            tables = [torch.empty_like(t.table) for _ in range(world)]
            seens = [torch.empty_like(t.seen) for _ in range(world)]
            dist.all_gather(tables, t.table)
            dist.all_gather(seens, t.seen)
            table, seen = merge_rows(tables, seens)
            t.table.copy_(table)
            t.seen.copy_(seen)

    def vectors(self) -> npt.NDArray[np.float32]:
        """The vectors the graph is built over: the sketches, or the learned vectors."""
        self.flush()
        return (self.learned or self.sketch).vectors()

    def stats(self, step: int) -> dict[str, Any]:
        """For the refresh record: how many items were ever trained on, how stale rows are,
        the seconds spent on the vectors and the mean outer loss since the last refresh (both
        then start over)."""
        self.flush()
        seen = self.sketch.seen.cpu().numpy()
        trained = seen >= 0
        out: dict[str, Any] = {
            "vectors": self.kind,
            "trained_share": round(float(trained.mean()), 4),
            "median_age_steps": int(np.median(step - seen[trained])) if trained.any() else None,
            "vectors_s": round(self.seconds, 4),
        }
        if self.learned is not None:
            finite = [x for x in self.losses if np.isfinite(x)]
            out["outer_loss"] = round(float(np.mean(finite)), 6) if finite else None
            out["outer_loss_first"] = round(finite[0], 6) if finite else None
            out["outer_loss_last"] = round(finite[-1], 6) if finite else None
        self.seconds, self.losses = 0.0, []
        return out

    def save(self, out: Path, dataset: str, step: int, epoch: int) -> None:
        """``vectors.npy`` and ``vectors.json`` in the run directory (each written atomically;
        the description last, naming the array's checksum)."""
        import hashlib

        v = self.vectors()
        buf = io.BytesIO()
        np.save(buf, v)
        data = buf.getvalue()
        atomic_write(out / VECTORS_FILE, data)
        info = {
            "vectors": self.kind,
            "dataset": dataset,
            "split": "train",
            "n_items": int(v.shape[0]),
            "dim": int(v.shape[1]),
            "epoch": int(epoch),
            "step": int(step),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        atomic_write(out / VECTORS_INFO, json.dumps(info, indent=2) + "\n")

    def state_dict(self) -> dict[str, Any]:
        self.flush()
        state: dict[str, Any] = {t.__class__.__name__: t.state_dict() for t in self._tables()}
        state["losses"] = list(self.losses)  # the outer losses since the last refresh
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for t in self._tables():
            name = t.__class__.__name__
            if name not in state:
                raise InputError(
                    f"the checkpoint holds no {name} (it was written by a run with other "
                    "--vectors); resume with the run's own settings"
                )
            t.load_state_dict(state[name])
        self.losses = [float(x) for x in state.get("losses", [])]

    def close(self) -> None:
        self._hook.remove()


def read_run_vectors(run_dir: str | Path) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
    """The vectors a run saved (``vectors.npy``) and their description (``vectors.json``).

    Raises:
        InputError: the directory is not a run that saved vectors, or the files disagree.
    """
    import hashlib

    d = Path(run_dir)
    info_path, arr_path = d / VECTORS_INFO, d / VECTORS_FILE
    if not d.is_dir():
        raise InputError(f"--vectors-from {d}: no such run directory")
    if not info_path.is_file() or not arr_path.is_file():
        raise InputError(
            f"--vectors-from {d}: the run saved no vectors ({VECTORS_INFO} and {VECTORS_FILE}); "
            "train one with graphwalk train --vectors grad|learned --refresh-every N --out DIR"
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        data = arr_path.read_bytes()
    except (OSError, ValueError) as exc:
        raise InputError(f"--vectors-from {d}: cannot read the saved vectors: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise InputError(
            f"--vectors-from {d}: {VECTORS_FILE} does not match {VECTORS_INFO} (a run stopped "
            "while writing them, or the file was changed); resume the run to rewrite them"
        )
    try:
        v = np.load(io.BytesIO(data), allow_pickle=False)
        v = np.asarray(v, dtype=np.float32)
    except (ValueError, TypeError, OSError) as exc:
        raise InputError(
            f"--vectors-from {d}: {VECTORS_FILE} is not an array of numbers ({exc}); resume or "
            "rerun the run to rewrite it"
        ) from exc
    if v.ndim != 2:
        raise InputError(
            f"--vectors-from {d}: {VECTORS_FILE} has shape {v.shape}, not (items, dim)"
        )
    return np.ascontiguousarray(v, dtype=np.float32), info
