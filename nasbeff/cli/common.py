"""Rendering and option helpers shared by the CLI commands (UI only: typer, rich, the runs' errors):
the console, one-line errors with exit codes, the progress bar, number formats and tables."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

# markup off: messages, paths and table cells print literally (``nasbeff[ray]``, ``runs/[a]/x.csv``);
# styled text passes markup=True explicitly, with rich.markup.escape() around anything it interpolates
console = Console(markup=False)  # tables and results: stdout
err_console = Console(stderr=True, markup=False)  # errors and the interrupted line: stderr

DEBUG = typer.Option(False, help="Show full tracebacks.")
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}  # context_settings of every Typer app: -h is --help
_BACKEND_HELP = ("Where units run: local (this process, or --workers processes) or ray (Ray tasks; needs "
                 "pip install ray). Results are identical for the same --threads.")
RAY_ADDRESS = typer.Option("", help="Ray cluster to join (e.g. auto or ray://host:10001); empty: a local Ray instance.")
RAY_CPUS = typer.Option(0, help="CPUs of the local Ray instance (0 = all); each task asks for --threads of them.")
SHARED = typer.Option(None, help="Folder of the NB201 ground truth (default ../shared/data or $NASBEFF_SHARED_DATA).")
WORKERS = typer.Option(1, help="Local worker processes (they die with this process).")
THREADS_HELP = ("torch threads per unit of work; the numbers depend on it, so the same value gives the same "
                "results (local and Ray alike). 0 = torch's default in one process, 1 per worker process.")
THREADS = typer.Option(1, help=THREADS_HELP)
SEEDS_FORMS = ("one integer N: N seeds, {first}; a comma-separated list (e.g. 0,3,7; a trailing comma for one "
               "seed: 5,): exactly those seeds")
ARCH_SAMPLE = typer.Option(0, help="Seeded sample of this many archs from --archs (0 = all).")
SAMPLE_SEED = typer.Option(0, help="Seed of the arch sample.")


@contextlib.contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Expected errors -> one clear line, exit 2 (the traceback with --debug); Ctrl-C -> exit 130."""
    from ..runs._common import user_errors

    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except KeyboardInterrupt:
        _interrupted()
    except Exception as e:
        if _caused_by_ctrl_c(e):  # a C++ extension (torch's writers) turned the Ctrl-C into its own error
            _interrupted()
        if debug or not isinstance(e, user_errors()):
            raise
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e).strip()
        error(_as_options(msg.splitlines()[0]) if msg else type(e).__name__)
        raise typer.Exit(code=2) from None


def _interrupted() -> None:
    err_console.print(Text.assemble(("interrupted", "bold yellow"), " — rerun the same command to resume"))
    raise typer.Exit(code=130) from None


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a ``KeyboardInterrupt`` is in ``exc``'s chain of causes and contexts."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def error(message: str) -> None:
    """``error: <message>`` on stderr, the message literally (no rich markup)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def _current_context():
    """The running command's click context (typer may bring its own copy of click), or None."""
    import importlib

    for name in ("typer._click.globals", "click.globals"):
        try:
            ctx = importlib.import_module(name).get_current_context(silent=True)
        except (ImportError, AttributeError):
            continue
        if ctx is not None:
            return ctx
    return None


def _as_options(msg: str) -> str:
    """``msg`` with each snake_case option name of the running command (``train_size``) written as
    its command-line option (``--train-size``); words inside paths or quotes are left alone."""
    ctx = _current_context()
    if ctx is None:
        return msg
    opts = {p.name: next(o for o in p.opts if o.startswith("--")) for p in ctx.command.params
            if p.name and "_" in p.name and any(o.startswith("--") for o in p.opts)}
    if not opts:
        return msg
    pattern = r"(?<![\w./'\"-])(" + "|".join(map(re.escape, sorted(opts, key=len, reverse=True))) + \
        r")(?![\w/'\"-]|\.\w)"
    return re.sub(pattern, lambda m: opts[m.group(1)], msg)


@contextlib.contextmanager
def _progress(quiet: bool = False):
    """A rich progress bar; yields the ``on_progress(done, total, label)`` callback runs take."""
    cols = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("left"), TimeRemainingColumn()]
    with Progress(*cols, console=console, disable=quiet, transient=True) as prog:
        task = prog.add_task("starting", total=None)

        def update(done: int, total: int, label: str) -> None:
            prog.update(task, completed=done, total=total, description=label)

        yield update


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _threads(threads: int) -> None:
    """Fix torch's thread count in this process (0: leave torch's default)."""
    if threads < 0:
        raise ValueError(f"--threads must be >= 0, got {threads}")
    if threads:
        __import__("torch").set_num_threads(threads)


def _unit_threads(threads: int, workers: int, backend: str) -> int:
    """``--threads`` as a count per unit: as given; 0 = torch's default in one process, 1 per worker process."""
    if threads < 0:
        raise ValueError(f"--threads must be >= 0, got {threads}")
    if threads:
        return threads
    return 1 if workers > 1 or backend != "local" else __import__("torch").get_num_threads()


def _csv_ints(spec: str | None, what: str, example: str = "0,3,7") -> tuple[int, ...] | None:
    """``"5,10"`` -> ``(5, 10)`` (None stays None, "" is empty); anything else is one line naming ``what``."""
    if spec is None:
        return None
    try:
        return tuple(int(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what} expects comma-separated integers (e.g. {example}), got {spec!r}") from None


def _seeds(spec: str) -> int | tuple[int, ...]:
    """``--seeds``: one integer N (a count, >= 1) or a comma-separated list of distinct seeds (exactly those)."""
    text = spec.strip()
    if "," not in text:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"--seeds expects a count N or a comma-separated list of seeds (e.g. 0,3,7), "
                             f"got {spec!r}") from None
        if n < 1:
            raise ValueError(f"--seeds {n}: a count of seeds must be >= 1 (or give a list, e.g. 0,3,7)")
        return n
    seeds = _csv_ints(text, "--seeds")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds {spec}: a list of seeds must be non-empty, distinct and >= 0")
    return seeds


def _rho(r: dict, name: str) -> str:
    """``+0.123 [+0.01, +0.25]`` from a correlation_table row."""
    return f"{r[name]:+.3f} [{r[name + '_lo']:+.2f}, {r[name + '_hi']:+.2f}]"


def _table(title: str, columns: list[str], rows: list[list[str]], left: int = 1) -> Table:
    table = Table(title=title)
    for k, col in enumerate(columns):
        table.add_column(col, justify="left" if k < left else "right")
    for r in rows:
        table.add_row(*r)
    return table
