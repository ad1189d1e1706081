"""Helpers shared by the run modules: name lists, samples, output paths, devices, progress, the errors
the CLI shows as one line (arch index lists come from :mod:`nasbeff.spaces`, CSV files from
:mod:`nasbeff.store`)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


from ..spaces import NUM_NB201_ARCHS, parse_indices, sample_from_pool  # noqa: F401 - re-exported for the runs
from ..store import read_csv, to_float, write_csv  # noqa: F401 - re-exported for the runs

Progress = Callable[[int, int, str], None]
"""``on_progress(done, total, label)``: units finished so far, units in all, what runs now."""


def no_progress(done: int, total: int, label: str) -> None:
    """The default progress callback: nothing."""


def parse_names(spec: str | Sequence[str], what: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    """A comma-separated list (or a sequence) of names, non-empty, without repeats and (when
    ``allowed`` is given) each one of ``allowed``."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise ValueError(f"{what} is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} lists a name twice: {','.join(names)}")
    bad = [n for n in names if allowed is not None and n not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {bad[0]!r}; choose from {', '.join(allowed)}")
    return tuple(names)


def check_sample(n: int | None, pool_size: int, option: str = "--sample", pool: str = "--archs") -> None:
    """One line when a sample of ``n`` archs (0 or None: all) asks for more than the ``pool_size`` archs
    it is drawn from: ``--sample 500 is larger than the 200 archs of --archs``. Call it in a config,
    before any work (:func:`sample_from_pool` itself quietly takes the whole pool)."""
    if n and n > pool_size:
        raise ValueError(f"{option} {n} is larger than the {pool_size:,} archs of {pool}")


#: Fewer runs (or archs) than this behind a 95% interval get a note (:func:`few_samples_note`).
MIN_CI_SAMPLES = 5


def few_samples_note(n: int, what: str = "runs", interval: str = "95% CI", min_n: int = MIN_CI_SAMPLES) -> str:
    """A warning for an interval computed from ``n`` < ``min_n`` runs or archs (a t-interval or a
    bootstrap from a handful of values is wide or, worse, degenerate such as [+1.00, +1.00]);
    empty when ``n`` is enough."""
    if n >= min_n:
        return ""
    if n < 2:
        return f"{n} {what}: no {interval} (it needs at least 2)"
    return f"the {interval} rests on {n} {what} only (fewer than {min_n}): read it as a rough guide"


def _probe_create(folder: Path, file: bool) -> None:
    """Create and at once remove a uniquely named file (or folder) in ``folder``: what writing there
    needs, asked of the file system itself (``os.access`` says yes to root on /proc or /sys)."""
    if file:
        fd, tmp = tempfile.mkstemp(prefix=".nasbeff-probe-", suffix=".tmp", dir=folder)
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    else:
        tmp = tempfile.mkdtemp(prefix=".nasbeff-probe-", suffix=".tmp", dir=folder)
        with contextlib.suppress(OSError):
            os.rmdir(tmp)


def check_writable(path: Path, what: str) -> None:
    """One clear line, before any work, when ``path`` could not be written: it is a folder or
    another non-regular file (a device, a pipe), its nearest existing ancestor folder is a file, or
    that folder refuses a new file (or, where the parent folder is missing, a new folder): tried by
    creating one with a unique name and removing it at once, so nothing is left behind."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise ValueError(f"{what} {path} is not a regular file")
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} {path}: cannot write to {path.parent} ({probe} is not a folder)")
    leaf = probe == path.parent
    try:
        _probe_create(probe, file=leaf)
    except OSError as exc:
        reason = ("the file system does not allow it" if exc.errno == errno.ENOENT
                  else exc.strerror or type(exc).__name__)
        where = f"{probe}" if leaf else f"{path.parent} (cannot create a folder in {probe})"
        raise ValueError(f"{what} {path}: cannot write to {where}: {reason}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what} {path}: cannot write to {path} (permission denied)")


@contextlib.contextmanager
def discard_unused_new_store(path: str | os.PathLike) -> Iterator[None]:
    """``with discard_unused_new_store(cfg.store), ResultStore(cfg.store) as st, ...:`` removes the
    store file (and its ``-wal``/``-shm``/``-journal``) again when the block fails and the file was
    created by this block and holds no result: a run that stops on bad input or before its first
    commit leaves no empty store behind. Never touches a file that existed before, one with any
    epoch row, or one whose lease another live run holds. Put it first in the ``with``, so the
    store is closed (and its lease released) before the check."""
    path = Path(path)
    existed = os.path.lexists(path)
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(Exception):
                _remove_if_unused(path)
        raise


def _remove_if_unused(path: Path) -> None:
    from ..store import ResultStore, open_in_this_process

    if not path.is_file() or path.is_symlink():
        return
    st_ = path.stat()
    if open_in_this_process(path):  # still open in this process: not ours to remove
        return
    if st_.st_size:
        with ResultStore(path, timeout=5.0) as st:
            st.check_lease()  # StoreBusyError while another live run holds it: keep the file
            if st.count():
                return
    for suffix in ("-wal", "-shm", "-journal", ""):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def check_execution(backend: str, workers: int, threads: int, ray_cpus: int, device: str, *,
                    min_threads: int = 1) -> None:
    """The executor options every run shares, checked before any work: a known backend (ray
    installed), ``workers >= 1`` (local only), ``threads >= min_threads`` (rank allows 0: torch's
    default), ``ray_cpus >= 0``, and a usable ``device`` where this process runs the units (on Ray the
    workers may have devices this driver lacks)."""
    from ..executors.backends import check_backend

    check_backend(backend)  # unknown name, or ray not installed
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if backend == "ray" and workers > 1:
        raise ValueError("--workers is for --backend local; with ray use --ray-cpus (and --threads per task)")
    if threads < min_threads:
        raise ValueError(f"--threads must be >= {min_threads}, got {threads}")
    if ray_cpus < 0:
        raise ValueError(f"--ray-cpus must be >= 0, got {ray_cpus}")
    if backend == "local":
        check_device(device)


def check_device(device: str) -> str:
    """A usable torch device string, or a clear ValueError."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device}: GPU {dev.index} is not available ({torch.cuda.device_count()} GPUs)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device}: MPS is not available on this machine")
    return device


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a run raises for bad input or a failed unit: shown as one line by the CLI."""
    from ..store import StoreError

    return (KeyError, ValueError, FileNotFoundError, FloatingPointError, ImportError, StoreError, NotADirectoryError,
            PermissionError, RuntimeError)  # RuntimeError: torch (device, memory) and Ray failures
