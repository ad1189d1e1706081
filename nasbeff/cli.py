"""Command-line tool (``nasbeff --help``): each command parses its options into a run's config
(:mod:`nasbeff.runs`, validated before any work), calls the run and renders its rows. Errors are
one line with exit code 2 (``--debug``: the traceback); Ctrl-C exits with 130, saying how to resume.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="nasbeff: predict which architecture trains best from a few epochs, with the neural "
                       "capacitance beta_eff (Jiang et al., Nat. Commun. 2024).")
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


@app.command()
def demo(
    mlp: bool = typer.Option(False, "--mlp", help="Run the single-MLP demo instead: beta_eff and accuracy per epoch, "
                                                  "then the prediction of that run's final accuracy, checked."),
    quick: bool = typer.Option(False, "--quick", help="Reduced ranking demo for CI: 6 small archs (C=8), 3 observed "
                                                      "and 4 ground-truth epochs (well under a minute)."),
    archs: int | None = typer.Option(None, help="Number of seeded NB201 archs to rank (default 24; --quick 6)."),
    epochs: int | None = typer.Option(None, help="Epochs observed before predicting (default 5; --quick 3; --mlp 6)."),
    final_epochs: int | None = typer.Option(None, help="Ranking demo: epochs of each ground-truth run (default 12; "
                                                       "--quick 4). --mlp: the run whose final accuracy is predicted "
                                                       "(default 40)."),
    seed: int = typer.Option(0, help="Seed of the arch sample, the split, the initialisations and the batches."),
    beta_samples: int | None = typer.Option(None, help="Training samples on which beta_eff is measured each epoch "
                                                       "(default 512; --quick 256)."),
    png: str = typer.Option("runs/demo_ranking.png", help="Ranking demo: predicted-vs-true figure ('' = none)."),
    threads: int = typer.Option(1, help="torch threads (0 = torch's default, all cores)."),
    device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
    debug: bool = DEBUG,
) -> None:
    """The main job on the embedded digits: rank NB201 archs by beta_eff vs proxies (no download, no GPU).

    Samples 24 NB201 archs, trains each a few epochs under the frozen probe and predicts its final
    accuracy from beta_eff, scores it with training-free proxies, trains it longer with 2 seeds for
    the ground truth, and prints each scorer's Spearman rho (bootstrap CI) next to the seed-noise
    ceiling, in about 3 minutes on 2 CPU cores. --mlp runs the single-MLP walk-through."""
    from .runs import demo as run

    with _errors(debug):
        given = {k: v for k, v in (("epochs", epochs), ("final_epochs", final_epochs), ("beta_samples", beta_samples),
                                   ("archs", archs)) if v is not None}
        if mlp:
            if quick or archs is not None:
                raise ValueError("--quick and --archs are for the ranking demo, not --mlp")
            cfg = run.MLPDemoConfig(seed=seed, device=device, **given)
            _threads(threads)
            _render_mlp_demo(cfg, run)
            return
        make = run.RankDemoConfig.quick if quick else run.RankDemoConfig
        cfg = make(seed=seed, device=device, png=Path(png) if png else None, **given)
        _threads(threads)
        with _progress() as on_progress:
            res = run.run_rank_demo(cfg, on_progress)
        for line in res.header:
            console.print(line)
        rows = [[r["method"], _rho(r, "spearman"), f"{r['kendall']:+.3f}", f"{r['n']}", f"{r['seconds']:.2f}"]
                for r in res.table] + [["noise ceiling", f"{res.noise_ceiling:+.3f}", "", "", ""]]
        console.print(_table(f"Spearman rho vs ground truth, {len(res.rows)} NB201 archs on digits "
                             f"({res.train_size} train / {res.valid_size} valid images)",
                             ["scorer", "rho [95% CI]", "Kendall tau", "n", "s/arch"], rows))
        for note in res.notes:
            console.print(f"note: {note}")
        if res.png is not None:
            console.print(f"wrote {res.png}")
        console.print(f"total {res.seconds:.1f} s")


def _render_mlp_demo(cfg, run) -> None:
    shown = []

    def on_epoch(rec) -> None:
        if rec.epoch <= cfg.epochs:
            shown.append([str(rec.epoch), f"{rec.train_loss:.4f}", f"{rec.valid_acc:.2f}", f"{rec.beta_eff:.5g}",
                          f"{rec.seconds_train:.3f}", f"{rec.seconds_beta:.3f}"])

    res = run.run_mlp_demo(cfg, on_epoch)
    console.print(f"[bold]digits[/]: {res.train_size} train / {res.valid_size} valid images, MLP backbone + frozen "
                  f"NCP (Linear 256-BN-ReLU-Dropout, Linear 128-BN-ReLU-Dropout, Linear 10)")
    console.print(_table(f"first {cfg.epochs} epochs (of a {cfg.final_epochs}-epoch schedule)",
                         ["epoch", "train loss", "valid acc %", "beta_eff", "train s", "beta_eff s"], shown, left=0))
    final = res.final_acc
    console.print(_table(f"predicting the epoch-{cfg.final_epochs} validation accuracy from {cfg.epochs} epochs",
                         ["predictor", "prediction %", "error vs final %"],
                         [[f"beta_eff -> 0 (Bayesian ridge, t0={res.fit.t0})",
                           f"{res.fit.prediction:.2f} +- {res.fit.std:.2f}", f"{res.fit.prediction - final:+.2f}"],
                          ["last seen value", f"{res.lsv:.2f}", f"{res.lsv - final:+.2f}"],
                          ["best seen value", f"{res.bsv:.2f}", f"{res.bsv - final:+.2f}"]]))
    console.print(f"final validation accuracy after {cfg.final_epochs} epochs: [bold]{final:.2f}%[/]  "
                  f"(beta_eff at the end: {res.records[-1].beta_eff:.4g}; total {res.seconds:.1f} s)")


@app.command()
def rank(
    data: Path = typer.Option(..., help="CIFAR-10: a cifar-10-batches-py folder, an image tree or a .tar(.gz) of one."),
    archs: str = typer.Option("0-199", help="Pool of NB201 arch indices: ranges/lists like 0-199 or 0,5,9."),
    sample: int = ARCH_SAMPLE,
    sample_seed: int = SAMPLE_SEED,
    store: Path = typer.Option(Path("runs/nb201_rank.sqlite"), help="Result store (SQLite); re-runs resume from it."),
    out: Path = typer.Option(Path("runs/nb201_cifar10_rank.csv"), help="Per-arch CSV written at the end."),
    epochs: int = typer.Option(5, help="Epochs observed per arch."),
    train_size: int = typer.Option(5000, help="Training images (seeded class-balanced subset of the 25k train half)."),
    valid_size: int = typer.Option(2000, help="Validation images (subset of the x-valid half)."),
    batch_size: int = typer.Option(128, help="Training batch size."),
    lr: float = typer.Option(0.1, help="Initial learning rate (cosine schedule over --schedule-epochs)."),
    schedule_epochs: int = typer.Option(200, help="Length of the cosine schedule (NB201: 200; >= --epochs)."),
    beta_samples: int = typer.Option(512, help="Training images on which beta_eff is measured each epoch."),
    placement: str = typer.Option("head", help="head: the frozen NCP replaces the head (paper); side: it observes."),
    mode: str = typer.Option("local", help="beta_eff mode: local (default) or hessian."),
    extra_beta_samples: str = typer.Option("", help="Also record beta_eff on these sample sizes, e.g. 128,2048."),
    seed: int = typer.Option(0, help="Training seed (init, batches, probe)."),
    device: str = typer.Option("cpu", help="torch device (with --backend ray and cuda, each task asks for one GPU)."),
    threads: int = typer.Option(0, help="torch threads per worker (0 = torch default in one process, 1 per worker)."),
    workers: int = WORKERS,
    backend: str = typer.Option("local", help=_BACKEND_HELP + " Workers commit their epochs to the store themselves "
                                              "(on a cluster: put the store on a shared filesystem)."),
    ray_address: str = RAY_ADDRESS,
    ray_cpus: int = RAY_CPUS,
    time_limit: float = typer.Option(0.0, help="Stop starting new archs after this many minutes (resumable chunks)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the store and checkpoints (default); "
                                "--no-resume refuses to run on an existing store instead of mixing runs."),
    debug: bool = DEBUG,
) -> None:
    """Rank NB201 archs on CIFAR-10 by beta_eff after a few epochs (resumable).

    Trains each arch briefly under the frozen probe, predicts its final accuracy at beta_eff = 0
    (plus last/best seen value) and writes one CSV row per arch. Every epoch is checkpointed and
    committed; run the same command again after a crash or Ctrl-C."""
    from .runs._common import parse_indices
    from .runs.rank import RankConfig, StudyConfig, run_rank

    with _errors(debug):
        study = StudyConfig(epochs=epochs, train_size=train_size, valid_size=valid_size, batch_size=batch_size, lr=lr,
                            schedule_epochs=schedule_epochs, beta_samples=beta_samples, placement=placement,
                            mode=mode, seed=seed,
                            extra_beta_samples=tuple(int(v) for v in extra_beta_samples.split(",") if v.strip()))
        cfg = RankConfig(data=data, archs=tuple(parse_indices(archs)), study=study, sample=sample,
                         sample_seed=sample_seed, store=store, out=out, device=device, threads=threads, workers=workers,
                         backend=backend, ray_address=ray_address, ray_cpus=ray_cpus, time_limit=time_limit,
                         resume=resume)
        _threads(threads if workers == 1 and backend == "local" else 0)
        with _progress() as on_progress:
            res = run_rank(cfg, on_progress)
        if res.left:
            console.print(f"time limit reached: {res.left} archs left for the next run (it resumes)")
        console.print(_table(f"NB201 archs scored: {len(res.rows)} of {res.n_total}",
                             ["index", "beff_pred", "lsv", "bsv", "final beta_eff", "seconds", "note"],
                             [[str(r["index"]), _fmt(r["beff_pred"]), f"{r['lsv']:.2f}", f"{r['bsv']:.2f}",
                               f"{r['final_beta_eff']:.4g}", f"{r['gpu_seconds']:.0f}",
                               ("no prediction: " + r["beff_fallback"]) if r["beff_fallback"] else
                               ("outside [0, 100] %" if r["beff_out_of_range"] else "")]
                              for r in res.rows[:15]], left=0))
        if res.out is not None:
            console.print(f"wrote {res.out}")


@app.command()
def score(
    data: str = typer.Option(..., help="Images for the proxies: 'digits' (embedded 8x8, no download) or CIFAR-10 "
                                       "(a cifar-10-batches-py folder, an image tree, or a .tar/.tar.gz of one; "
                                       "seeded images of the 25k train half)."),
    archs: str = typer.Option("0-9", help="NB201 arch indices: ranges/lists like 0-199 or 0,5,9."),
    sample: int = ARCH_SAMPLE,
    sample_seed: int = SAMPLE_SEED,
    proxies: str = typer.Option("naswot,synflow,snip,grad_norm,params", help="Comma-separated training-free proxies "
                                "(nasbeff.proxies.available()) and rank aggregates (rank:a+b, meanrank:a+b: ranked "
                                "within the archs of --out that have every part)."),
    batch_size: int = typer.Option(64, help="Images per batch."),
    batches: int = typer.Option(1, help="Number of batches (zico needs >= 2; others use the first)."),
    init_channels: int = typer.Option(16, help="Channels C of the first stage (NB201: 16)."),
    cells: int = typer.Option(5, help="Cells N per stage (NB201: 5)."),
    store: Path = typer.Option(Path("runs/scores.sqlite"), help="Result store (SQLite); re-runs resume from it."),
    out: Path = typer.Option(Path("runs/scores.csv"), help="Per-arch CSV (index, arch_str, cut_off, one column per "
                                                           "proxy and aggregate, seconds, flags), rewritten from "
                                                           "--store at the end of every run."),
    seed: int = typer.Option(0, help="Seed of the network initialisation and of the image batches."),
    device: str = typer.Option("cpu", help="torch device."),
    threads: int = typer.Option(1, help="torch threads per unit (local and Ray alike, so results match)."),
    workers: int = WORKERS,
    backend: str = typer.Option("local", help=_BACKEND_HELP + " Workers return results; this process writes them."),
    ray_address: str = RAY_ADDRESS,
    ray_cpus: int = RAY_CPUS,
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip (arch, proxy) pairs already in the store; "
                                "--no-resume scores everything again and replaces the stored values."),
    time_limit: float = typer.Option(0.0, help="Stop starting new archs after this many minutes (resumable chunks)."),
    truth: str = typer.Option("c10_test", help="NB201 table column for the summary's Spearman rho ('' = none)."),
    shared: Path | None = SHARED,
    quiet: bool = typer.Option(False, help="No progress bar."),
    debug: bool = DEBUG,
) -> None:
    """Score NB201 archs with training-free proxies at initialisation (resumable).

    Crash-safe: each arch's values are committed in one transaction as they arrive; run the same
    command again after a crash (or a --time-limit) and nothing is scored twice."""
    from .runs._common import parse_indices, parse_names
    from .runs.score import ScoreConfig, run_score

    with _errors(debug):
        cfg = ScoreConfig(data=data, archs=tuple(parse_indices(archs)), proxies=parse_names(proxies, "--proxies"),
                          sample=sample, sample_seed=sample_seed, batch_size=batch_size, batches=batches,
                          init_channels=init_channels, cells=cells, store=store, out=out, seed=seed, device=device,
                          threads=threads, workers=workers, backend=backend, ray_address=ray_address,
                          ray_cpus=ray_cpus, resume=resume, truth=truth, shared=shared, time_limit=time_limit)
        with _progress(quiet) as on_progress:
            res = run_score(cfg, on_progress)
        for line in [f"({res.truth_note})"] * bool(res.truth_note) + [
                f"time limit reached: {res.left} archs left for the next run (it resumes)"] * bool(res.left):
            console.print(line, soft_wrap=True)
        console.print(_table(*res.table(truth)))
        if res.out is not None:
            console.print(f"wrote {res.out}")


@app.command()
def search(
    method: str = typer.Option("rea", help="rea (regularized evolution), random, or warmup_rea (zero-cost warm-up "
                                           "then REA); comma-separated to compare several."),
    scorer: str = typer.Option("benchmark", help="What the search maximises: benchmark (NATS-Bench's simulated "
                                                 "training), zen, naswot_v1 (published proxy columns), or beff (the "
                                                 "--pool-column of --pool-csv); comma-separated for several."),
    warmup_scorer: str = typer.Option("naswot_v1", help="Warm-up scorer of warmup_rea (zen, naswot_v1, beff) or a rank "
                                      "aggregate of --pool-csv columns (rank:meco+aznas_trainability+flops: ranked "
                                      "within each warm-up pool, charged its parts' seconds)."),
    warmup_pool: int = typer.Option(1000, help="Archs scored by the warm-up scorer in warmup_rea."),
    pool_csv: Path = typer.Option(Path("benchmarks_data/nb201_cifar10_rank.csv"),
                                  help="Per-arch predictions for the beff scorer (index and the columns below)."),
    pool_column: str = typer.Option("beff_pred", help="Score column of --pool-csv (higher = better)."),
    cost_column: str = typer.Option("gpu_seconds", help="Seconds charged per beff evaluation (column of --pool-csv)."),
    in_pool: bool = typer.Option(False, "--in-pool", help="Restrict every scorer to the archs of --pool-csv."),
    space: str = typer.Option("nb201", help="Search space: nb201 (alias tss) or nats-size (alias sss; --shared then "
                                            "names a size-space CSV or the NATS-Bench sss files)."),
    budget: float = typer.Option(12000.0, help="Simulated search budget in seconds."),
    seeds: int = typer.Option(10, help="Number of runs per method and scorer (seeds --seed .. --seed + seeds - 1)."),
    seed: int = typer.Option(0, help="First seed."),
    points: int = typer.Option(20, help="Evenly spaced budgets per run in --out (plus NB201's report budgets)."),
    shared: Path | None = SHARED,
    out: Path = typer.Option(Path("runs/search.csv"), help="CSV: one row per run and budget with the best arch so far "
                                                          "and its true CIFAR-10 test accuracy."),
    debug: bool = DEBUG,
) -> None:
    """Search NAS-Bench-201 (or the NATS size space) by table lookup under a simulated budget.

    The search sees no test accuracy; the test accuracy (c10_test) of each run's best arch is
    looked up afterwards and summarised (mean, std, 95% CI over seeds)."""
    from .runs.search import SearchConfig, run_search

    with _errors(debug):
        cfg = SearchConfig(methods=method, scorers=scorer, warmup_scorer=warmup_scorer, warmup_pool=warmup_pool,
                           pool_csv=pool_csv, pool_column=pool_column, cost_column=cost_column, in_pool=in_pool,
                           budget=budget, seeds=seeds, seed=seed, points=points, space=space, shared=shared, out=out)
        with _progress() as on_progress:
            res = run_search(cfg, on_progress)
        console.print(_table(f"{res.config.space} search, budget {budget:,.0f} s, {seeds} seeds: test accuracy "
                             f"(c10_test) of the best arch found",
                             ["method", "scorer", "test acc % (mean ± std)", "95% CI ±", "evaluations", "unique archs"],
                             [[r["method"], r["scorer"] + (f" (warm-up {r['warmup_scorer']})" if r["warmup_scorer"]
                                                          else ""),
                               f"{_fmt(r['mean'])} ± {_fmt(r['std'])}" + ("" if r["n"] == r["runs"] else
                                                                         f" (n={r['n']})"),
                               _fmt(r["ci95"]), f"{r['evaluations_mean']:.0f}", f"{r['unique_mean']:.0f}"]
                              for r in res.summary], left=2))
        console.print(f"wrote {res.out} ({len(res.trajectories)} runs, searched in {res.elapsed_s:.1f} s)")


@app.command()
def report(
    scores: Path | None = typer.Option(None, "--scores", "--rank", help="Per-arch CSV of nasbeff rank or score "
                                                                        "(an index column and score columns)."),
    columns: str = typer.Option("", help="Score columns to compare (default: beff_pred, lsv, bsv and every proxy "
                                         "column present)."),
    main: str = typer.Option("", help="Column for the predicted-vs-true figure (default: the first score column)."),
    truth: str = typer.Option("c10_test", help="Ground truth: a column of the NB201 table (c10_test, c10_valid, "
                                               "c100_test, ...) or of --truth-csv."),
    truth_csv: Path | None = typer.Option(None, help="Take the ground truth from this CSV (columns index and --truth) "
                                                     "instead of the NB201 table."),
    search_csv: Path | None = typer.Option(None, "--search", help="CSV of nasbeff search: adds search_curves.png."),
    shared: Path | None = SHARED,
    out: Path = typer.Option(Path("runs/report"), help="Folder for the PNGs."),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples of the confidence intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    debug: bool = DEBUG,
) -> None:
    """Write figures and the rank-agreement table from rank/score and search CSVs.

    From a rank/score CSV and the ground truth: pred_vs_true.png, scorers.png (Spearman rho with
    bootstrap CIs) and a table; from a search CSV: search_curves.png (mean ± std over seeds of the
    best arch's test accuracy vs the simulated budget)."""
    from .runs.report import ReportConfig, run_report

    with _errors(debug):
        cfg = ReportConfig(scores=scores, columns=tuple(c for c in columns.split(",") if c.strip()), main=main,
                           truth=truth, truth_csv=truth_csv, search_csv=search_csv, shared=shared, out=out,
                           n_boot=n_boot, seed=seed)
        res = run_report(cfg)
        if res.table:
            console.print(_table(f"rank agreement with {res.truth_name}: {res.scores_name}",
                                 ["scorer", "n", "Spearman rho [95% CI]", "Kendall tau [95% CI]"],
                                 [[r["method"], str(r["n"]), _rho(r, "spearman"), _rho(r, "kendall")]
                                  for r in res.table]))
        console.print("wrote " + ", ".join(str(p) for p in res.written))


@app.command()
def version() -> None:
    """Print the nasbeff version."""
    from . import __version__

    console.print(__version__)


def main() -> None:  # pragma: no cover - entry point
    app(prog_name="nasbeff")

