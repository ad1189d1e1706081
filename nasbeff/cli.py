"""Command-line tool: ``nasbeff --help`` (or ``python -m nasbeff --help``)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="nasbeff: predict which architecture trains best from a few epochs, with the neural "
                       "capacitance beta_eff (Jiang et al., Nat. Commun. 2024).")
console = Console()


def _fail(msg: str, debug: bool) -> None:
    if debug:
        raise
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(code=2)


@app.command()
def demo(
    epochs: int = typer.Option(6, help="Epochs observed before predicting (the early-training budget)."),
    final_epochs: int = typer.Option(40, help="Epochs of the full run whose final accuracy is predicted."),
    seed: int = typer.Option(0, help="Seed for the split, the initialisations and the batches."),
    beta_samples: int = typer.Option(512, help="Training samples on which beta_eff is measured each epoch."),
    device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
    debug: bool = typer.Option(False, help="Show full tracebacks."),
) -> None:
    """Main job on the embedded default (scikit-learn's digits, no download): train a small MLP under
    the frozen probe, print beta_eff and validation accuracy per epoch, predict the final accuracy at
    beta_eff = 0 by Bayesian ridge regression, then train on to check the prediction."""
    try:
        from .demo import digits_demo

        digits_demo(epochs=epochs, final_epochs=final_epochs, seed=seed, beta_samples=beta_samples,
                    device=device, console=console)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        _fail(str(e), debug)


@app.command()
def version() -> None:
    """Print the nasbeff version."""
    from . import __version__

    console.print(__version__)


def main() -> None:  # pragma: no cover - entry point
    app(prog_name="nasbeff")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["app", "Table"]
