"""Where units of work run: in this process (:class:`LocalBackend`) or on Ray (:class:`RayBackend`).

A backend has one method, ``map_units(fn, units, on_result=None) -> results``: it calls
``fn(unit)`` for every unit and returns the results in the order of ``units``; ``on_result(unit,
result)`` is called in the driver as each result arrives (in completion order), so the driver can
commit results and advance a progress bar while the others still run. ``fn`` must be picklable for
Ray (a module-level function or a callable dataclass such as :class:`ProxyJob`) and deterministic:
it seeds everything it uses, so a unit gives the same result wherever and in whatever order it runs.

Threads: every unit runs with exactly ``threads`` torch threads (``torch.set_num_threads``), in
both backends. Ray workers default to one thread and a local process to all cores; fixing the count
makes local and Ray results identical (CPU reductions can depend on the thread count).

Where results are written (the choice made by the CLI):

* ``nasbeff score``: workers *return* results and the driver writes them, each arch's rows and
  their done markers in one store transaction as the result arrives. Workers need no access to the
  store, so this works on any Ray cluster; a killed run loses at most the units in flight.
* ``nasbeff rank``: every epoch is checkpointed and committed by the worker that trains it, to the
  same SQLite store (it supports concurrent writers) and checkpoint folder. On a multi-node cluster
  the store's folder must therefore be on a shared filesystem.

Ray is optional (``pip install 'nasbeff[ray]'``) and imported only when a :class:`RayBackend` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

__all__ = ["Backend", "LocalBackend", "RayBackend", "make_backend", "BACKENDS", "ProxyJob", "RankJob",
           "run_with_threads"]

U = TypeVar("U")
R = TypeVar("R")
BACKENDS = ("local", "ray")


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


def make_backend(name: str, threads: int = 1, address: str | None = None, num_cpus: int | None = None,
                 device: str = "cpu") -> LocalBackend | RayBackend:
    """``local`` or ``ray``; on Ray, tasks ask for one GPU exactly when ``device`` is CUDA."""
    if name == "local":
        return LocalBackend(threads)
    if name == "ray":
        _import_ray()
        return RayBackend(threads, address, num_cpus, num_gpus=1.0 if str(device).startswith("cuda") else 0.0)
    raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")


# ---------------------------------------------------------------------------------------------
# Units of work of the CLI (picklable, seeded)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProxyJob:
    """Score one NB201 arch with training-free proxies: ``job((index, names)) -> {name: metrics}``.

    The network is ``build_cell_network(channels, arch, num_classes, in_channels)`` initialised
    after ``torch.manual_seed(seed)``; the torch seed is set again before every proxy, so a value
    depends only on (arch, proxy, seed, batches). Metrics per proxy: ``value`` (None when it
    failed numerically), ``seconds`` and ``flag`` (why the value is a limit or an error, or None)."""

    batches: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    channels: tuple[int, ...]
    num_classes: int = 10
    seed: int = 0
    device: str = "cpu"

    def __call__(self, unit: tuple[int, tuple[str, ...]]) -> dict[str, dict[str, Any]]:
        from . import proxies
        from .spaces import build_cell_network, index_to_str

        index, names = unit
        dev = torch.device(self.device)
        batches = [(x.to(dev), y.to(dev)) for x, y in self.batches]
        torch.manual_seed(self.seed)
        net = build_cell_network(self.channels, index_to_str(int(index)), self.num_classes,
                                 batches[0][0].shape[1]).to(dev)
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            torch.manual_seed(self.seed)
            t0 = time.perf_counter()
            try:
                res = proxies.score(name, net, batches)
                out[name] = {"value": res.value, "seconds": res.seconds, "flag": res.flag}
            except ValueError as exc:  # numerical failure of this arch: recorded, the study goes on
                out[name] = {"value": None, "seconds": time.perf_counter() - t0, "flag": f"error: {exc}"}
        return out


_STUDY_DATA: dict[tuple, Any] = {}  # per worker process: decoded once, reused by later tasks


@dataclass(frozen=True)
class RankJob:
    """Train one NB201 arch of the ranking study (``nasbeff rank``) and commit every epoch to the
    store at ``store`` (see :func:`nasbeff.study.train_arch`). Returns the arch index, or None when
    ``deadline`` (UNIX time) had passed before it started (``--time-limit``)."""

    data: str
    config: Any  # nasbeff.study.StudyConfig
    store: str
    device: str = "cpu"
    deadline: float | None = None

    def __call__(self, index: int) -> int | None:
        from pathlib import Path

        from .store import ResultStore
        from .study import load_study_data, train_arch

        if self.deadline is not None and time.time() > self.deadline:
            return None
        folder = Path(self.store).parent
        key = (self.data, self.config.hash)
        if key not in _STUDY_DATA:
            _STUDY_DATA.clear()
            _STUDY_DATA[key] = load_study_data(self.data, self.config, cache_dir=folder / "cache")
        with ResultStore(self.store) as st:
            train_arch(index, _STUDY_DATA[key], self.config, st, folder / "checkpoints", self.device)
        return int(index)
