"""Command-line tool: ``nasbeff --help`` (or ``python -m nasbeff --help``)."""

from __future__ import annotations

import sys
from pathlib import Path

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


def parse_indices(spec: str) -> list[int]:
    """'0-199' / '0,5,9' / '0-9,20-29' -> sorted unique indices."""
    out: set[int] = set()
    try:
        for part in spec.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-")
                out.update(range(int(a), int(b) + 1))
            elif part:
                out.add(int(part))
    except ValueError:
        raise ValueError(f"bad --archs {spec!r}: use ranges and lists like 0-199 or 0,5,9") from None
    bad = [i for i in out if not 0 <= i < 15625]
    if bad:
        raise ValueError(f"arch indices must lie in 0..15624, got {sorted(bad)[:5]}")
    return sorted(out)


@app.command()
def rank(
    data: Path = typer.Option(..., help="CIFAR-10: a cifar-10-batches-py folder, an image tree, or a .tar/.tar.gz of one."),
    archs: str = typer.Option("0-199", help="Pool of NB201 arch indices: ranges/lists like 0-199 or 0,5,9."),
    sample: int = typer.Option(0, help="Seeded sample of this many archs from the pool (0 = all)."),
    sample_seed: int = typer.Option(0, help="Seed of the arch sample."),
    store: Path = typer.Option(Path("runs/nb201_rank.sqlite"), help="Result store (SQLite); re-runs resume from it."),
    out: Path = typer.Option(Path("benchmarks_data/nb201_cifar10_rank.csv"), help="Per-arch CSV written at the end."),
    epochs: int = typer.Option(5, help="Epochs observed per arch."),
    train_size: int = typer.Option(5000, help="Training images (seeded class-balanced subset of the 25k train half)."),
    valid_size: int = typer.Option(2000, help="Validation images (subset of the x-valid half)."),
    batch_size: int = typer.Option(128, help="Training batch size."),
    lr: float = typer.Option(0.1, help="Initial learning rate (cosine schedule over --schedule-epochs)."),
    schedule_epochs: int = typer.Option(200, help="Length of the cosine schedule (NB201: 200)."),
    beta_samples: int = typer.Option(512, help="Training images on which beta_eff is measured each epoch."),
    placement: str = typer.Option("head", help="head: the frozen NCP replaces the head (paper); side: it only observes."),
    extra_beta_samples: str = typer.Option("", help="Also record beta_eff on these sample sizes, e.g. 128,2048 (knob study)."),
    seed: int = typer.Option(0, help="Training seed (init, batches, probe)."),
    device: str = typer.Option("cpu", help="torch device."),
    threads: int = typer.Option(0, help="torch threads per worker (0 = torch default)."),
    workers: int = typer.Option(1, help="Worker processes sharing the store (each takes every workers-th arch)."),
    worker_index: int = typer.Option(-1, hidden=True),
    time_limit: float = typer.Option(0.0, help="Stop starting new archs after this many minutes (resumable chunks)."),
    debug: bool = typer.Option(False, help="Show full tracebacks."),
) -> None:
    """Train NB201 archs briefly on CIFAR-10 under the frozen probe, predict each final accuracy at
    beta_eff = 0 (plus last/best seen value) and write one CSV row per arch. Resumable."""
    try:
        import subprocess

        from .store import ResultStore
        from .study import StudyConfig, load_study_data, sample_archs, summarize, train_arch, write_csv

        cfg = StudyConfig(epochs=epochs, train_size=train_size, valid_size=valid_size, batch_size=batch_size, lr=lr,
                          schedule_epochs=schedule_epochs, beta_samples=beta_samples, placement=placement, seed=seed,
                          extra_beta_samples=tuple(int(v) for v in extra_beta_samples.split(",") if v.strip()))
        if placement not in ("head", "side"):
            raise ValueError(f"--placement must be head or side, got {placement!r}")
        if not data.exists():
            raise FileNotFoundError(f"--data {data} does not exist")
        indices = sample_archs(parse_indices(archs), sample or None, sample_seed)
        store.parent.mkdir(parents=True, exist_ok=True)
        if workers > 1 and worker_index < 0:
            argv = [a for a in sys.argv[1:]]
            procs = [subprocess.Popen([sys.executable, "-m", "nasbeff", *argv, "--worker-index", str(k)])
                     for k in range(workers)]
            codes = [p.wait() for p in procs]
            if any(codes):
                raise ValueError(f"worker exit codes {codes}")
        else:
            if threads:
                import torch

                torch.set_num_threads(threads)
            mine = indices if worker_index < 0 else indices[worker_index::workers]
            _train_many(mine, data, cfg, store, device, time_limit, quiet=worker_index >= 0)
        with ResultStore(store) as st:
            rows = summarize(st, indices, cfg)
        if rows:
            write_csv(rows, out)
        _print_rank_summary(rows, len(indices), out)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        _fail(str(e), debug)


def _train_many(indices, data, cfg, store_path, device, time_limit, quiet=False):
    import time as _time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .store import ResultStore
    from .study import load_study_data, run_key, train_arch

    start = _time.monotonic()
    with ResultStore(store_path) as st:
        todo = [i for i in indices if not st.is_done(run_key(i, cfg))]
        if not todo:
            return
        loaded = load_study_data(data, cfg, cache_dir=Path(store_path).parent / "cache")
        cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn()]
        with Progress(*cols, console=console, disable=quiet) as prog:
            task = prog.add_task("archs", total=len(indices), completed=len(indices) - len(todo))
            ep = prog.add_task("epochs", total=cfg.epochs)
            for i in todo:
                if time_limit and (_time.monotonic() - start) / 60 > time_limit:
                    console.print(f"time limit reached: {len(todo)} archs left for the next run (it resumes)")
                    return
                prog.reset(ep, total=cfg.epochs, description=f"arch {i}")
                train_arch(i, loaded, cfg, st, Path(store_path).parent / "checkpoints", device,
                           on_epoch=lambda e, m: prog.update(ep, completed=e))
                prog.advance(task)


def _print_rank_summary(rows, n_total, out):
    table = Table(title=f"NB201 archs scored: {len(rows)} of {n_total}")
    for col in ("index", "beff_pred", "lsv", "bsv", "final beta_eff", "seconds"):
        table.add_column(col, justify="right")
    for r in rows[:15]:
        table.add_row(str(r["index"]), f"{r['beff_pred']:.2f}", f"{r['lsv']:.2f}", f"{r['bsv']:.2f}",
                      f"{r['final_beta_eff']:.4g}", f"{r['gpu_seconds']:.0f}")
    console.print(table)
    if rows:
        console.print(f"wrote {out}")


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
