"""Executors for the sharded build: the stages are plain functions over files; an engine only
decides where each call runs.

- :class:`LocalEngine` runs the calls one after the other in this process (small data, tests,
  and the reference the Ray build is compared with).
- :class:`RayEngine` runs each call as a Ray task (``ray.init()`` locally, or ``address=`` of a
  running cluster). Arguments are small (paths, a few numbers, the centroids: an array over 1 MB
  is put in Ray's object store once and mapped by every task on a node, as an actor holding it
  would); the data moves through files, never through the object store. A task whose worker dies is retried (``retries``); a task that
  raises is not (the error is the data's, and would repeat).

Both return results in the order of the calls, so the build is the same whatever the engine and
the number of workers.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from graphwalk.errors import GraphwalkError, InputError
from graphwalk.progress import progress_bar

__all__ = ["ENGINES", "Engine", "LocalEngine", "RayEngine", "StageFailed", "make_engine"]

ENGINES = ("local", "ray")
SHARE_BYTES = 1 << 20  # arguments larger than this are put in Ray's object store once


class StageFailed(GraphwalkError):
    """A stage of the sharded build could not finish (a worker died after its retries, or the
    cluster went away)."""


class Engine(Protocol):
    name: str
    workers: int

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], *, desc: str, show: bool
    ) -> list[Any]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Every call in this process, in order."""

    name = "local"
    workers = 1

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], *, desc: str, show: bool
    ) -> list[Any]:
        bar = progress_bar(enabled=show, total=len(calls), desc=desc, unit="task", leave=False)
        out = []
        try:
            for args in calls:
                out.append(fn(*args))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return out

    def close(self) -> None:
        pass


def _answers(address: str, timeout: float = 5.0) -> bool:
    """Whether something accepts TCP connections at ``host:port`` (a Ray head's GCS port)."""
    host, _, port = address.rpartition(":")
    if address.startswith("ray://"):
        host, _, port = address[len("ray://") :].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class RayEngine:
    """Each call a Ray task.

    Args:
        address: a running cluster (``"HOST:6379"``, ``"ray://HOST:10001"`` or ``"auto"``);
            None starts a local Ray (or uses the one this process already started).
        num_cpus: CPUs of a local Ray (default: all).
        retries: how many times a task whose worker died is run again.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, *, num_cpus: int | None = None, retries: int = 2
    ) -> None:
        from graphwalk._extras import require

        ray = require("ray", "the Ray engine (--engine ray)")
        self._ray = ray
        self.retries = int(retries)
        self._started = False
        if address not in (None, "auto") and not _answers(address):
            raise InputError(
                f"no Ray cluster answers at --address {address}: start one there (ray start "
                "--head) or drop --address to run Ray on this machine"
            )
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = num_cpus
            else:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError) as exc:
                raise InputError(
                    f"cannot connect to Ray at --address {address}: {exc}; start a cluster "
                    "(ray start --head) or drop --address"
                ) from exc
            except BaseException:  # Ctrl-C while Ray starts: stop what it started
                ray.shutdown()
                raise
            self._started = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], *, desc: str, show: bool
    ) -> list[Any]:
        ray = self._ray
        task = ray.remote(fn).options(max_retries=self.retries, retry_exceptions=False)
        shared: dict[int, Any] = {}

        def put(arg: Any) -> Any:
            """A big array (the centroids) goes to the object store once, shared by every
            task: each node maps it instead of receiving a copy per call."""
            if getattr(arg, "nbytes", 0) > SHARE_BYTES:
                if id(arg) not in shared:
                    shared[id(arg)] = ray.put(arg)
                return shared[id(arg)]
            return arg

        refs = [task.remote(*(put(a) for a in args)) for args in calls]
        where = {ref: i for i, ref in enumerate(refs)}
        out: list[Any] = [None] * len(refs)
        bar = progress_bar(enabled=show, total=len(refs), desc=desc, unit="task", leave=False)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    out[where[ref]] = self._get(ref, desc, where[ref])
                    if bar is not None:
                        bar.update(1)
        except BaseException:
            for ref in pending:  # a failed stage stops the others: nothing half-done goes on
                ray.cancel(ref, force=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        return out

    def _get(self, ref: Any, desc: str, i: int) -> Any:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            if isinstance(cause, GraphwalkError):
                raise cause from None  # the data's error, as the local engine raises it
            raise
        except (
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.NodeDiedError,
            ray.exceptions.RayActorError,
            ray.exceptions.ObjectLostError,
            ray.exceptions.LocalRayletDiedError,
        ) as exc:
            raise StageFailed(
                f"{desc}: task {i} failed {self.retries + 1} time(s) because its Ray worker died "
                f"({type(exc).__name__}); nothing was written. Check the workers' memory (each "
                "holds one partition: lower --worker-memory for smaller ones) and rerun"
            ) from None

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_engine(
    engine: str, *, address: str | None = None, num_cpus: int | None = None, retries: int = 2
) -> Engine:
    """The engine called ``engine`` (``"local"`` or ``"ray"``)."""
    if engine == "local":
        if address is not None:
            raise InputError("--address names a Ray cluster: add --engine ray, or drop --address")
        if num_cpus is not None:
            raise InputError("--num-cpus sizes a Ray started here: add --engine ray, or drop it")
        return LocalEngine()
    if engine == "ray":
        return RayEngine(address, num_cpus=num_cpus, retries=retries)
    raise InputError(f"engine should be one of {ENGINES}, but got {engine!r}")
