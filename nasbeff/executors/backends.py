"""Where units of work run: in this process (:class:`LocalBackend`), in local worker processes
(:class:`ProcessBackend`) or on Ray (:class:`RayBackend`). This module is the executor only: it
knows nothing of the domain (the units and the functions come from the run modules).

A backend has one method, ``map_units(fn, units, on_result=None) -> results``: it calls
``fn(unit)`` for every unit and returns the results in the order of ``units``; ``on_result(unit,
result)`` is called in the driver as each result arrives (in completion order), so the driver can
commit results and advance a progress bar while the others still run. ``fn`` must be picklable for
processes and Ray (a module-level function or a callable dataclass) and deterministic:
it seeds everything it uses, so a unit gives the same result wherever and in whatever order it runs.

Threads: every unit runs with exactly ``threads`` torch threads (``torch.set_num_threads``), in
both backends. Ray workers default to one thread and a local process to all cores; fixing the count
makes local and Ray results identical (CPU reductions can depend on the thread count).

Local worker processes are started with ``spawn`` (no forked torch state) and die with their
parent: each asks the kernel for SIGKILL when the parent dies (``PR_SET_PDEATHSIG`` on Linux) and
also watches its parent id, so a ``kill -9`` of the driver never leaves orphans training on. Workers
ignore SIGINT; on Ctrl-C the driver terminates them and re-raises ``KeyboardInterrupt``.

Ray is optional (``pip install 'nasbeff[ray]'``) and imported only when a :class:`RayBackend` runs.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

__all__ = ["Backend", "LocalBackend", "ProcessBackend", "RayBackend", "make_backend", "check_backend", "BACKENDS",
           "run_with_threads", "cpu_model"]

U = TypeVar("U")
R = TypeVar("R")
BACKENDS = ("local", "ray")
_PR_SET_PDEATHSIG = 1


@runtime_checkable
class Backend(Protocol):
    """Runs ``fn`` on every unit; see the module docstring."""

    name: str

    def map_units(self, fn: Callable[[U], R], units: Sequence[U],
                  on_result: Callable[[U, R], None] | None = None) -> list[R]:
        ...


def run_with_threads(fn: Callable[[U], R], unit: U, threads: int) -> R:
    """``fn(unit)`` with ``threads`` torch threads (the previous count is restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(unit)
    finally:
        torch.set_num_threads(before)


def _check_threads(threads: int) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    return threads


class LocalBackend:
    """Runs the units one after another in this process (the default)."""

    name = "local"

    def __init__(self, threads: int = 1) -> None:
        self.threads = _check_threads(threads)

    def map_units(self, fn: Callable[[U], R], units: Sequence[U],
                  on_result: Callable[[U, R], None] | None = None) -> list[R]:
        out = []
        for u in units:
            r = run_with_threads(fn, u, self.threads)
            if on_result is not None:
                on_result(u, r)
            out.append(r)
        return out

    def close(self) -> None:
        """Nothing to release."""


def cpu_model() -> str:
    """This machine's CPU model name, for records of time: Linux ``/proc/cpuinfo``, else
    :func:`platform.processor`, else ``"unknown CPU"``."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when ``parent_pid`` does (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and terminates us
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="nasbeff-parent-watch").start()


def _process_task(job: tuple[Callable[[U], R], U, int]) -> R:
    fn, unit, threads = job
    return run_with_threads(fn, unit, threads)


class ProcessBackend:
    """Runs the units in ``workers`` local processes (``spawn``), each unit with ``threads`` torch
    threads; results come back in completion order to ``on_result``. Workers die with the driver
    (module docstring). The processes start with the first :meth:`map_units` and serve every later
    call until :meth:`close` (what a worker loaded for one call stays loaded for the next)."""

    name = "local"

    def __init__(self, workers: int, threads: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.workers, self.threads = workers, _check_threads(threads)
        self._pool: Any = None

    def map_units(self, fn: Callable[[U], R], units: Sequence[U],
                  on_result: Callable[[U, R], None] | None = None) -> list[R]:
        units = list(units)
        results: list[Any] = [None] * len(units)
        if not units:
            return results
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(self.workers, initializer=_die_with_parent, initargs=(os.getpid(),))
        try:
            jobs = [(fn, u, self.threads) for u in units]
            for k, r in self._pool.imap_unordered(_indexed_task, list(enumerate(jobs))):
                results[k] = r
                if on_result is not None:
                    on_result(units[k], r)
        except BaseException:
            self._terminate()
            raise
        return results

    def _terminate(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.terminate()
            pool.join()

    def close(self) -> None:
        """End the worker processes (they finish no further unit)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()
            pool.join()


def _indexed_task(item: tuple[int, tuple[Callable[[U], R], U, int]]) -> tuple[int, R]:
    k, job = item
    return k, _process_task(job)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the ray backend needs Ray: pip install 'nasbeff[ray]' (or pip install ray)") from None
    return ray


def _ray_task(fn: Callable[[U], R], unit: U, threads: int) -> R:
    return run_with_threads(fn, unit, threads)


class RayBackend:
    """Runs every unit as a Ray task asking for ``threads`` CPUs (and ``num_gpus`` GPUs).

    ``address=None`` starts a private local Ray instance with ``num_cpus`` CPUs (default: all),
    no dashboard; ``address="auto"`` or ``"ray://host:10001"`` joins a running cluster. A Ray
    instance that this process already initialised is reused. ``num_gpus=None`` asks for one GPU
    per task when CUDA is available here, else none. :meth:`close` shuts down an instance started
    by this backend."""

    name = "ray"

    def __init__(self, threads: int = 1, address: str | None = None, num_cpus: int | None = None,
                 num_gpus: float | None = None) -> None:
        self.threads = _check_threads(threads)
        if num_cpus is not None and num_cpus < 1:
            raise ValueError(f"num_cpus must be >= 1, got {num_cpus}")
        self.address, self.num_cpus = address, num_cpus
        self.num_gpus = float(num_gpus) if num_gpus is not None else (1.0 if torch.cuda.is_available() else 0.0)
        self._started = False

    def _ray(self):
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.num_cpus, **kwargs)
            self._started = True
        return ray

    def map_units(self, fn: Callable[[U], R], units: Sequence[U],
                  on_result: Callable[[U, R], None] | None = None) -> list[R]:
        units = list(units)
        if not units:
            return []
        ray = self._ray()
        task = ray.remote(num_cpus=self.threads, num_gpus=self.num_gpus, max_retries=0)(_ray_task)
        fn_ref = ray.put(fn)  # shipped once, not once per unit
        refs = {task.remote(fn_ref, u, self.threads): k for k, u in enumerate(units)}
        results: list[Any] = [None] * len(units)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    k = refs[ref]
                    try:
                        results[k] = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.as_instanceof_cause()
                        raise cause if isinstance(cause, Exception) else exc
                    if on_result is not None:
                        on_result(units[k], results[k])
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
        return results

    def close(self) -> None:
        """Shut down the Ray instance if this backend started it."""
        if self._started:
            _import_ray().shutdown()
            self._started = False


def check_backend(name: str) -> None:
    """One clear error, before any work, for an unknown backend or a missing Ray."""
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "ray":
        _import_ray()


def make_backend(name: str, threads: int = 1, address: str | None = None, num_cpus: int | None = None,
                 device: str = "cpu", workers: int = 1) -> LocalBackend | ProcessBackend | RayBackend:
    """``local`` (in this process when ``workers`` is 1, else :class:`ProcessBackend`) or ``ray``;
    on Ray, tasks ask for one GPU exactly when ``device`` is CUDA."""
    if name == "local":
        return LocalBackend(threads) if workers == 1 else ProcessBackend(workers, threads)
    if name == "ray":
        _import_ray()
        return RayBackend(threads, address, num_cpus, num_gpus=1.0 if str(device).startswith("cuda") else 0.0)
    raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
