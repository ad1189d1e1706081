"""Rendering and option helpers shared by the CLI commands (UI only: typer, rich, the runs' errors):
the console, one-line errors with exit codes, the progress bar, number formats and tables."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()

DEBUG = typer.Option(False, help="Show full tracebacks.")
_BACKEND_HELP = ("Where units run: local (this process, or --workers processes) or ray (Ray tasks; needs "
                 "pip install ray). Results are identical for the same --threads.")
RAY_ADDRESS = typer.Option("", help="Ray cluster to join (e.g. auto or ray://host:10001); empty: a local Ray instance.")
RAY_CPUS = typer.Option(0, help="CPUs of the local Ray instance (0 = all); each task asks for --threads of them.")
SHARED = typer.Option(None, help="Folder of the NB201 ground truth (default ../shared/data or $NASBEFF_SHARED_DATA).")
WORKERS = typer.Option(1, help="Local worker processes (they die with this process).")
ARCH_SAMPLE = typer.Option(0, help="Seeded sample of this many archs from --archs (0 = all).")
SAMPLE_SEED = typer.Option(0, help="Seed of the arch sample.")


@contextlib.contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Expected errors -> one clear line, exit 2 (the traceback with --debug); Ctrl-C -> exit 130."""
    from .runs._common import user_errors

    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except KeyboardInterrupt:
        console.print("[bold yellow]interrupted[/] — rerun the same command to resume")
        raise typer.Exit(code=130) from None
    except user_errors() as e:
        if debug:
            raise
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e).strip()
        console.print(f"[bold red]error:[/] {msg.splitlines()[0] if msg else type(e).__name__}", soft_wrap=True)
        raise typer.Exit(code=2) from None


@contextlib.contextmanager
def _progress(quiet: bool = False):
    """A rich progress bar; yields the ``on_progress(done, total, label)`` callback runs take."""
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
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
