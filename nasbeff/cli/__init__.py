"""The command-line tool (``nasbeff --help``): each command parses its options into a run's config
(:mod:`nasbeff.runs`, validated before any work), calls the run and renders its rows. Errors are
one line with exit code 2 (``--debug``: the traceback); Ctrl-C exits with 130, saying how to resume.

Modules: :mod:`.app` (the Typer app), :mod:`.commands` (demo, rank, score, search, report, version),
:mod:`.model_selection` (zoo, select), :mod:`.common` (console, one-line errors, shared options). The
CLI imports :mod:`nasbeff.runs` (and, for option defaults and names, the layers below); nothing
imports the CLI.
"""

from __future__ import annotations

from . import commands, model_selection  # noqa: F401 - register their commands on app
from .app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - entry point
    app(prog_name="nasbeff")
