"""The one :class:`typer.Typer` application that every command module registers on."""

from __future__ import annotations

import typer

from .common import HELP_OPTIONS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings=HELP_OPTIONS,
                  help="nasbeff: predict which architecture trains best from a few epochs, with the neural "
                       "capacitance beta_eff (Jiang et al., Nat. Commun. 2024).")
