"""What a training run needs from its process: the ranks under ``torchrun``, the device, every
RNG's state, and SIGTERM turned into a request to checkpoint and stop."""

from __future__ import annotations

import os
import random
import signal
import threading
from typing import Any

import numpy as np
import torch

from graphwalk.errors import InputError

__all__ = ["SigTerm", "barrier", "init_distributed", "pick_device", "rng_state", "set_rng_state"]


def init_distributed() -> tuple[int, int]:
    """``(rank, world_size)``; initialises the process group under ``torchrun`` (gloo on the
    CPU, NCCL when every rank has a GPU)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier(world: int) -> None:
    """Wait for every rank (nothing to wait for with one process)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def pick_device(name: str, rank: int) -> torch.device:
    """The device ``--device NAME`` means on this rank (``auto``: a GPU when one is visible)."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but no GPU is visible; use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    return torch.device("cpu")


def rng_state() -> dict[str, Any]:
    """The state of every RNG a run (or a user's code inside it) may draw from."""
    st: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the global generator a user may use)
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])  # noqa: NPY002
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


class SigTerm:
    """Turns a SIGTERM (what cluster schedulers send before they kill a job) into a request to
    checkpoint at the next step and stop. Installed for the run on the main thread only (signal
    handlers can be set nowhere else), the previous handler restored after it."""

    def __init__(self) -> None:
        self.flag = False
        self.previous: Any = None
        self.installed = False

    @classmethod
    def install(cls) -> SigTerm:
        st = cls()
        if threading.current_thread() is threading.main_thread():

            def handler(signum: int, frame: Any) -> None:
                del signum, frame
                st.flag = True

            st.previous = signal.signal(signal.SIGTERM, handler)
            st.installed = True
        return st

    def requested(self, world: int, *, at_boundary: bool) -> bool:
        """Whether to stop now. One process: as soon as the signal came. Under
        ``torch.distributed`` the ranks agree (the signal may reach them at different steps) at
        checkpoint boundaries and epoch ends only, with one ``all_reduce``."""
        if world == 1:
            return self.flag
        if not at_boundary:
            return False
        import torch.distributed as dist

        t = torch.tensor([1.0 if self.flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def restore(self) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous)
            self.installed = False
