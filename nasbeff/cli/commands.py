"""The NB201 commands: ``demo``, ``rank``, ``score``, ``search``, ``report`` and ``version``, each
parsing its options into a run's config, calling the run and rendering its rows."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import (ARCH_SAMPLE, DEBUG, RAY_ADDRESS, RAY_CPUS, SAMPLE_SEED, SEEDS_FORMS, SHARED,
                         THREADS, WORKERS, _BACKEND_HELP, _csv_ints, _errors, _fmt, _progress, _rho, _seeds, _table,
                         _threads, _unit_threads, console)



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
    png: str | None = typer.Option(None, help="Ranking demo: predicted-vs-true figure (default "
                                              "runs/demo_ranking.png; --quick: runs/demo_quick_ranking.png; '' = none)."),
    threads: int = THREADS,
    device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
    debug: bool = DEBUG,
) -> None:
    """The main job on the embedded digits: rank NB201 archs by beta_eff vs proxies (no download, no GPU).

    Samples 24 NB201 archs, trains each a few epochs under the frozen probe and predicts its final
    accuracy from beta_eff, scores it with training-free proxies, trains it longer with 2 seeds for
    the ground truth, and prints each scorer's Spearman rho (bootstrap CI) next to the seed-noise
    ceiling, in about 3 minutes on 2 CPU cores. --mlp runs the single-MLP walk-through."""
    from ..runs import demo as run

    with _errors(debug):
        given = {k: v for k, v in (("epochs", epochs), ("final_epochs", final_epochs), ("beta_samples", beta_samples),
                                   ("archs", archs)) if v is not None}
        if mlp:
            if quick:
                raise ValueError("--quick and --mlp cannot be combined: --quick is the reduced ranking demo, "
                                 "--mlp the single-MLP demo")
            if archs is not None:
                raise ValueError("--archs is for the ranking demo, not --mlp (the single-MLP demo has no archs)")
            cfg = run.MLPDemoConfig(seed=seed, device=device, **given)
            _threads(threads)
            _render_mlp_demo(cfg, run)
            return
        make = run.RankDemoConfig.quick if quick else run.RankDemoConfig
        if png is not None:  # '' = no figure; not given: the config's own default (quick or full)
            given["png"] = Path(png) if png else None
        cfg = make(seed=seed, device=device, **given)
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
                  f"NCP (Linear 256-BN-ReLU-Dropout, Linear 128-BN-ReLU-Dropout, Linear 10)", markup=True)
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
                  f"(beta_eff at the end: {res.records[-1].beta_eff:.4g}; total {res.seconds:.1f} s)", markup=True)


def _opt(help: str) -> typer.models.OptionInfo:
    """An option whose default comes from --protocol (or the StudyConfig default): None = not given."""
    return typer.Option(None, help=help, show_default=False)


@app.command()
def rank(
    data: Path | None = typer.Option(None, help="Images of --dataset: CIFAR-10 as a cifar-10-batches-py folder, a "
                                                "train|test/<class>/ image tree or a .tar(.gz) of one (e.g. "
                                                "../shared/data/cifar10/cifar10_jpeg.tar.gz); CIFAR-100 as a "
                                                "cifar-100-python folder; any dataset as an .npz of images + labels "
                                                "(e.g. ../shared/data/cifar100/cifar100_5000_uint8.npz), whose "
                                                "train and validation images are a seeded split of its images."),
    dataset: str = typer.Option("cifar10", help="Whose images, classes (the network's head and the probe) and "
                                                "statistics: cifar10, cifar100 or imagenet16-120 (aliases of "
                                                "nasbeff.data); in the store key and the rows' dataset column "
                                                "(nasbeff report reads its truth from it: c10_test, c100_test, "
                                                "in16_test). From its own files: train and x-valid splits; from an "
                                                ".npz (the shared 5,000 CIFAR-100 images): a seeded split of those "
                                                "images, not CIFAR-100's own train/test split, so the validation "
                                                "accuracy is on held-out images of the same set."),
    archs: str = typer.Option("0-199", help="Pool of NB201 arch indices: ranges/lists like 0-199 or 0,5,9."),
    sample: int = ARCH_SAMPLE,
    sample_seed: int = SAMPLE_SEED,
    store: Path = typer.Option(Path("runs/nb201_rank.sqlite"), help="Result store (SQLite); re-runs resume from it."),
    out: Path | None = typer.Option(None, help="Per-arch CSV written at the end (default "
                                               "runs/nb201_<dataset>_rank.csv)."),
    protocol: str = typer.Option("", help="Named protocol (nasbeff.training.protocols): cpu or gpu; options below override it."),
    preregistered: Path | None = typer.Option(None, help="Run a committed test config (archs, study, predictor); "
                                              "refused when the file differs from its commit."),
    results: Path | None = typer.Option(None, help="Per-epoch curves CSV to commit: archs in it are skipped, "
                                        "finished ones merged in (resume in a fresh checkout)."),
    scores: Path | None = typer.Option(None, help="Join the proxy columns of this nasbeff score CSV (as zc_<name>)."),
    epochs: int | None = _opt("Epochs observed per arch (default 5)."),
    train_size: int | None = _opt("Training images, seeded class-balanced subset of the 25k train half (5000; "
                                  "an .npz: of the images left after --valid-size)."),
    valid_size: int | None = _opt("Validation images, subset of the x-valid half (2000; an .npz: a seeded "
                                  "class-balanced subset of its images)."),
    batch_size: int | None = _opt("Training batch size (128)."),
    lr: float | None = _opt("Initial learning rate, cosine over --schedule-epochs (0.1)."),
    schedule_epochs: int | None = _opt("Length of the cosine schedule (NB201: 200; >= --epochs)."),
    resolution: int | None = _opt("Input side in pixels, 4..32 (images box-filtered down; 32)."),
    init_channels: int | None = _opt("Width C of the NB201 network (16)."),
    cells: int | None = _opt("Cells N per stage (5)."),
    beta_samples: int | None = _opt("Training images on which beta_eff is measured (512)."),
    beta_points: int | None = _opt("Also measure beta_eff and valid acc at this many evenly spaced steps (0)."),
    beta_bn: str | None = _opt("Features for the probe: eval (running stats) or batch (batch stats) (eval)."),
    placement: str | None = _opt("head: the frozen NCP replaces the head (paper); side: it observes (head)."),
    mode: str | None = _opt("beta_eff mode: local or hessian (local)."),
    extra_beta_samples: str = typer.Option("", help="Also record beta_eff on these sample sizes, e.g. 128,2048."),
    beff_variant: str = typer.Option("", help="beta_eff predictor: source[,transform[,regression[,t0]]], e.g. "
                                     "points,signlog,huber,bic (default: the --protocol's own, "
                                     "points,identity,bayes,bic for cpu and gpu; epochs without a protocol)."),
    all_variants: bool = typer.Option(False, help="Add a beff_<variant> column for every predictor variant."),
    seed: int | None = _opt("Training seed: init, batches, probe (0)."),
    device: str = typer.Option("cpu", help="torch device (with --backend ray and cuda, each task asks for one GPU)."),
    threads: int = THREADS,
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
    """Rank NB201 archs on CIFAR-10 (or --dataset) by beta_eff after a few epochs (resumable).

    Trains each arch briefly under the frozen probe, predicts its final accuracy at beta_eff = 0
    (plus last/best seen value and TSE) and writes one CSV row per arch. Every epoch is
    checkpointed and committed; run the same command again after a crash or Ctrl-C."""
    from ..runs._common import parse_indices
    from ..runs.rank import build_rank_config, run_rank

    with _errors(debug):
        given = dict(epochs=epochs, train_size=train_size, valid_size=valid_size, batch_size=batch_size, lr=lr,
                     schedule_epochs=schedule_epochs, resolution=resolution, init_channels=init_channels, cells=cells,
                     beta_samples=beta_samples, beta_points=beta_points, beta_bn=beta_bn, placement=placement,
                     mode=mode, seed=seed,
                     extra_beta_samples=_csv_ints(extra_beta_samples, "--extra-beta-samples", "128,2048") or None)
        cfg = build_rank_config(protocol, preregistered, given, beff_variant, dataset, data=data,
                                archs=tuple(parse_indices(archs)), sample=sample, sample_seed=sample_seed, store=store,
                                out=out, device=device, threads=threads, workers=workers, backend=backend,
                                ray_address=ray_address, ray_cpus=ray_cpus, time_limit=time_limit, resume=resume,
                                all_variants=all_variants, results=results, scores=scores)
        _threads(threads if workers == 1 and backend == "local" else 0)
        with _progress() as on_progress:
            res = run_rank(cfg, on_progress)
        if res.left:
            console.print(f"time limit reached: {res.left} archs left for the next run (it resumes)")
        console.print(_table(f"NB201 archs scored: {len(res.rows)} of {res.n_total}",
                             ["index", "beff_pred", "lsv", "tse", "final beta_eff", "seconds", "note"],
                             [[str(r["index"]), _fmt(r["beff_pred"]), f"{r['lsv']:.2f}", _fmt(r["tse"], ".1f"),
                               f"{r['final_beta_eff']:.4g}", _fmt(r["wall_seconds"], ".0f"),
                               ("no prediction: " + r["beff_fallback"]) if r["beff_fallback"] else
                               ("outside [0, 100] %" if r["beff_out_of_range"] else "")]
                              for r in res.rows[:15]], left=0))
        if res.out is not None:
            console.print(f"wrote {res.out}" + (f" and {cfg.results}" if cfg.results is not None else ""))


@app.command()
def score(
    data: str = typer.Option(..., help="Images of --dataset for the proxies: CIFAR-10 as a cifar-10-batches-py "
                                       "folder, an image tree or a .tar/.tar.gz of one (seeded images of the 25k "
                                       "train half), or 'digits' (embedded 8x8, no download); CIFAR-100 as a "
                                       "cifar-100-python folder or an .npz of images + labels (e.g. "
                                       "../shared/data/cifar100/cifar100_5000_uint8.npz)."),
    dataset: str = typer.Option("cifar10", help="Whose images, classes (the network's head) and statistics: "
                                                "cifar10, cifar100 or imagenet16-120 (aliases of nasbeff.data); the "
                                                "default --truth follows (c10_test, c100_test, in16_test)."),
    archs: str = typer.Option("0-9", help="NB201 arch indices: ranges/lists like 0-199 or 0,5,9."),
    sample: int = ARCH_SAMPLE,
    sample_seed: int = SAMPLE_SEED,
    proxies: str = typer.Option("naswot,synflow,snip,grad_norm,params", help="Comma-separated training-free proxies "
                                "(nasbeff.proxies.available(); any case, e.g. MeCo) and rank aggregates (rank:a+b, "
                                "meanrank:a+b: ranked within the archs of --out that have every part)."),
    batch_size: int = typer.Option(64, help="Images per batch."),
    batches: int = typer.Option(0, help="Number of batches (0 = what the proxies need: 2 with zico, else 1; "
                                        "others use the first)."),
    init_channels: int = typer.Option(16, help="Channels C of the first stage (NB201: 16)."),
    cells: int = typer.Option(5, help="Cells N per stage (NB201: 5)."),
    store: Path = typer.Option(Path("runs/scores.sqlite"), help="Result store (SQLite); re-runs resume from it."),
    out: Path = typer.Option(Path("runs/scores.csv"), help="Per-arch CSV (index, arch_str, cut_off, one column per "
                                                           "proxy and aggregate, seconds, flags), rewritten from "
                                                           "--store at the end of every run."),
    seed: int = typer.Option(0, help="Seed of the network initialisation and of the image batches."),
    device: str = typer.Option("cpu", help="torch device."),
    threads: int = THREADS,
    workers: int = WORKERS,
    backend: str = typer.Option("local", help=_BACKEND_HELP + " Workers return results; this process writes them."),
    ray_address: str = RAY_ADDRESS,
    ray_cpus: int = RAY_CPUS,
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip (arch, proxy) pairs already in the store; "
                                "--no-resume scores everything again and replaces the stored values."),
    time_limit: float = typer.Option(0.0, help="Stop starting new archs after this many minutes (resumable chunks)."),
    results: Path | None = typer.Option(None, help="(arch, proxy) values CSV to commit: pairs in it are not scored "
                                        "again, finished ones merged in (resume in a fresh checkout); *.gz: gzip."),
    truth: str | None = typer.Option(None, help="NB201 table column for the summary's Spearman rho (default c10_test "
                                               "where the table is found; '' = none; a column given is checked "
                                               "before any work)."),
    shared: Path | None = SHARED,
    quiet: bool = typer.Option(False, help="No progress bar."),
    debug: bool = DEBUG,
) -> None:
    """Score NB201 archs with training-free proxies at initialisation (resumable).

    Crash-safe: each arch's values are committed in one transaction as they arrive; run the same
    command again after a crash (or a --time-limit) and nothing is scored twice."""
    from ..proxies import canonical_name
    from ..runs._common import parse_indices, parse_names
    from ..runs.score import ScoreConfig, run_score

    with _errors(debug):
        names = parse_names(",".join(canonical_name(n) for n in proxies.split(",")), "--proxies")  # MeCo -> meco
        cfg = ScoreConfig(data=data, dataset=dataset, archs=tuple(parse_indices(archs)), proxies=names,
                          sample=sample, sample_seed=sample_seed, batch_size=batch_size, batches=batches,
                          init_channels=init_channels, cells=cells, store=store, out=out, seed=seed, device=device,
                          threads=_unit_threads(threads, workers, backend), workers=workers, backend=backend,
                          ray_address=ray_address, ray_cpus=ray_cpus, resume=resume, truth=truth, shared=shared,
                          time_limit=time_limit, results=results)
        with _progress(quiet) as on_progress:
            res = run_score(cfg, on_progress)
        console.print(_table(*res.table(cfg.truth)))
        for line in [f"note: {res.truth_note}"] * bool(res.truth_note) + [
                f"time limit reached: {res.left} archs left for the next run (it resumes)"] * bool(res.left):
            console.print(line, soft_wrap=True, markup=False)
        if res.out is not None:
            console.print(f"wrote {res.out}")


@app.command()
def search(
    method: str = typer.Option("rea", help="rea (regularized evolution), random, warmup_rea (zero-cost warm-up "
                                           "then REA) or predictor (a GRAF random forest refitted on what was "
                                           "evaluated picks what to evaluate next; nb201 only); comma-separated "
                                           "to compare several."),
    scorer: str = typer.Option("benchmark", help="What the search maximises: benchmark (NATS-Bench's simulated "
                                                 "training), zen, naswot_v1 (published proxy columns), beff (the "
                                                 "--pool-column of --pool-csv), or live:<name>, computed when the "
                                                 "search first visits an arch, on the images of --data: any "
                                                 "registered proxy (live:meco) or an early-training scorer of one "
                                                 "--protocol run (live:beff_pred, live:tse_e, live:lsv, ...), charged "
                                                 "its measured seconds; comma-separated for several."),
    warmup_scorer: str = typer.Option("naswot_v1", help="Warm-up scorer of warmup_rea (zen, naswot_v1, beff, live:<proxy>) or a rank "
                                      "aggregate of --pool-csv columns (rank:meco+aznas_trainability+flops: ranked "
                                      "within each warm-up pool, charged its parts' seconds)."),
    warmup_pool: int = typer.Option(1000, help="Archs scored by the warm-up scorer in warmup_rea."),
    pool_csv: Path = typer.Option(Path("benchmarks_data/nb201_cifar10_rank.csv"),
                                  help="Per-arch predictions for the beff scorer (index and the columns below)."),
    pool_column: str = typer.Option("beff_pred", help="Score column of --pool-csv (higher = better)."),
    cost_column: str = typer.Option("gpu_seconds", help="Seconds charged per beff evaluation (column of --pool-csv)."),
    in_pool: bool = typer.Option(False, "--in-pool", help="Restrict every scorer to the archs of --pool-csv."),
    predictor_features: str = typer.Option("", help="Columns of --pool-csv the predictor method also fits on "
                                           "(comma-separated, e.g. flops,synflow,meco of a nasbeff score CSV), each "
                                           "charged its <column>_seconds once per arch."),
    space: str = typer.Option("nb201", help="Search space: nb201 (alias tss) or nats-size (alias sss; --shared then "
                                            "names a size-space CSV or the NATS-Bench sss files)."),
    budget: float = typer.Option(12000.0, help="Simulated search budget in seconds."),
    seeds: str = typer.Option("10", help="Seeds of the runs per method and scorer: " +
                              SEEDS_FORMS.format(first="--seed .. --seed + N - 1") + "."),
    seed: int = typer.Option(0, help="First seed when --seeds is a count."),
    points: int = typer.Option(20, help="Evenly spaced budgets per run in --out (plus NB201's report budgets)."),
    shared: Path | None = SHARED,
    out: Path = typer.Option(Path("runs/search.csv"), help="CSV: one row per run and budget with the best arch so far "
                                                          "and its true test accuracy on --dataset."),
    dataset: str = typer.Option("cifar10", help="Search on this dataset's table: its validation accuracy and "
                                                "training time (cifar10, cifar100, imagenet16-120; no images needed); "
                                                "the best arch's test accuracy (c10_test, c100_test, in16_test) is "
                                                "reported."),
    report_datasets: str = typer.Option("", help="Also report the chosen arch's test accuracy on these datasets "
                                                 "(comma-separated, or 'all': NB201's and NASWOT's convention of "
                                                 "searching on CIFAR-10 and reading all three)."),
    evaluations: int = typer.Option(0, help="Also stop every run after this many evaluations (0: the budget only)."),
    data: str = typer.Option("", help="Live scorers: the images of --dataset (the forms of nasbeff score / rank, "
                                      "e.g. ../shared/data/cifar10/cifar10_jpeg.tar.gz)."),
    store: Path = typer.Option(Path("runs/live_scores.sqlite"), help="Live scorers: result store, with the keys of "
                                                                    "rank and score (give theirs to reuse their "
                                                                    "units); a rerun resumes from it."),
    protocol: str = typer.Option("cpu", help="Live early-training scorers: the rank protocol (cpu or gpu) and its "
                                             "predictor."),
    results: Path | None = typer.Option(None, help="Live scorers: a CSV(.gz) of finished units to commit: "
                                                   "imported into --store first, every finished unit merged in at "
                                                   "the end (also on Ctrl-C), so a fresh checkout resumes."),
    study: str = typer.Option("", help="Live early-training scorers: study values on top of --protocol, as "
                                       "name=value pairs (epochs=3,train_size=5000; the names of rank's options)."),
    batch_size: int = typer.Option(64, help="Live proxies: images per batch (as nasbeff score)."),
    batches: int = typer.Option(0, help="Live proxies: batches (0: what the proxies need, as nasbeff score)."),
    workers: int = WORKERS,
    threads: int = THREADS,
    device: str = typer.Option("cpu", help="Live scorers: torch device (cpu, cuda, cuda:1)."),
    time_limit: float = typer.Option(0.0, help="Live scorers: no unit starts after this many minutes; the same "
                                               "command run again continues from the store (resumable chunks)."),
    backend: str = typer.Option("local", help="Live scorers: local or ray (pip install nasbeff[ray])."),
    ray_address: str = RAY_ADDRESS,
    ray_cpus: int = RAY_CPUS,
    debug: bool = DEBUG,
) -> None:
    """Search NAS-Bench-201 (or the NATS size space) by table lookup under a simulated budget.

    The search sees no test accuracy; the test accuracy (c10_test) of each run's best arch is
    looked up afterwards and summarised (mean, std, 95% CI over seeds)."""
    from ..runs.search import SearchConfig, run_search

    with _errors(debug):
        n_or_list = _seeds(seeds)
        if isinstance(n_or_list, tuple) and seed != 0:
            raise ValueError(f"--seed {seed} is the first seed of a count; --seeds {seeds} lists the seeds: "
                             "drop --seed")
        count, listed = (n_or_list, ()) if isinstance(n_or_list, int) else (len(n_or_list), n_or_list)
        cfg = SearchConfig(methods=method, scorers=scorer, warmup_scorer=warmup_scorer, warmup_pool=warmup_pool,
                           pool_csv=pool_csv, pool_column=pool_column, cost_column=cost_column, in_pool=in_pool,
                           budget=budget, seeds=count, seed=seed, points=points, space=space, shared=shared, out=out,
                           seed_list=listed, dataset=dataset, report_datasets=report_datasets,
                           predictor_features=predictor_features, max_evaluations=evaluations, data=data,
                           store=store, results=results, protocol=protocol, study=study, batch_size=batch_size, batches=batches, workers=workers,
                           threads=threads, device=device, backend=backend, ray_address=ray_address,
                           ray_cpus=ray_cpus, time_limit=time_limit)
        from ..runs.live import LiveTimeLimit

        try:
            with _progress() as on_progress:
                res = run_search(cfg, on_progress)
        except LiveTimeLimit as exc:  # a chunk, not a failure: every finished unit is stored
            console.print(f"time limit: {exc} (the same command)", markup=False, soft_wrap=True)
            return
        from ..runs.search import TEST_COLUMNS

        others = [TEST_COLUMNS[d] for d in cfg.report_datasets]
        console.print(_table(f"{res.config.space} search on {cfg.dataset}, budget {budget:,.0f} s, {count} seeds: "
                             f"test accuracy ({TEST_COLUMNS[cfg.dataset]}) of the best arch found",
                             ["method", "scorer", "test acc % (mean ± std)", "95% CI ±", "evaluations", "unique archs",
                              *others],
                             [[r["method"], r["scorer"] + (f" ({'fits' if r['method'] == 'predictor' else 'warm-up'} "
                                                          f"{r['warmup_scorer']})" if r["warmup_scorer"]
                                                          else ""),
                               f"{_fmt(r['mean'])} ± {_fmt(r['std'])}" + ("" if r["n"] == r["runs"] else
                                                                         f" (n={r['n']})"),
                               _fmt(r["ci95"]), f"{r['evaluations_mean']:.0f}", f"{r['unique_mean']:.0f}",
                               *(f"{_fmt(r[c + '_mean'])} ± {_fmt(r[c + '_std'])}" for c in others)]
                              for r in res.summary], left=2))
        for note in res.notes:
            console.print(f"note: {note}", markup=False, soft_wrap=True)
        console.print(f"wrote {res.out} ({len(res.trajectories)} runs, searched in {res.elapsed_s:.1f} s)")


@app.command()
def report(
    scores: Path | None = typer.Option(None, "--scores", "--rank", help="Per-arch CSV of nasbeff rank or score "
                                                                        "(an index column and score columns)."),
    columns: str = typer.Option("", help="Score columns to compare (default: beff_pred, lsv, bsv and every proxy "
                                         "column present)."),
    main: str = typer.Option("", help="Column for the predicted-vs-true figure (default: the first score column)."),
    truth: str | None = typer.Option(None, help="Ground truth: a column of the NB201 table (c10_test, c10_valid, "
                                                "c100_test, ...) or of --truth-csv (default: --dataset's test "
                                                "accuracy)."),
    dataset: str | None = typer.Option(None, help="Dataset whose test accuracy is the default --truth (cifar10: "
                                                       "c10_test, cifar100: c100_test, imagenet16-120: in16_test; "
                                                       "default: the rank CSV's dataset column, else cifar10); no "
                                                       "images needed.", show_default=False),
    truth_csv: Path | None = typer.Option(None, help="Take the ground truth from this CSV (columns index and --truth) "
                                                     "instead of the NB201 table."),
    search_csv: Path | None = typer.Option(None, "--search", help="CSV of nasbeff search: adds search_curves.png."),
    shared: Path | None = SHARED,
    out: Path = typer.Option(Path("runs/report"), help="Folder for the PNGs."),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples of the confidence intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    archs: str = typer.Option("common", help="Archs each row counts: common (every row the same archs, those with a "
                                             "value in every compared column) or each (each row its own; notes say "
                                             "where n differs)."),
    cut_off: str = typer.Option("drop", help="Cut-off archs (input disconnected from output): drop (left out of "
                                             "every row) or last (kept, ranked below every scored arch). -inf "
                                             "elsewhere always ranks last; empty cells never count."),
    debug: bool = DEBUG,
) -> None:
    """Write figures and the rank-agreement table from rank/score and search CSVs.

    From a rank/score CSV and the ground truth: pred_vs_true.png, scorers.png (Spearman rho with
    bootstrap CIs) and a table; from a search CSV: search_curves.png (mean ± std over seeds of the
    best arch's test accuracy vs the simulated budget)."""
    from ..runs.report import ReportConfig, run_report

    with _errors(debug):
        from ..data import canonical_dataset
        from ..runs.report import scores_dataset
        from ..runs.search import SEARCH_DATASETS, TEST_COLUMNS

        ds = canonical_dataset(dataset or scores_dataset(scores) or "cifar10", SEARCH_DATASETS)
        truth = truth or TEST_COLUMNS["cifar10" if ds == "cifar10-valid" else ds]
        cfg = ReportConfig(scores=scores, columns=tuple(c for c in columns.split(",") if c.strip()), main=main,
                           truth=truth, truth_csv=truth_csv, search_csv=search_csv, shared=shared, out=out,
                           n_boot=n_boot, seed=seed, archs=archs, cut_off=cut_off)
        res = run_report(cfg)
        if res.table:
            console.print(_table(f"rank agreement with {res.truth_name}: {res.scores_name}",
                                 ["scorer", "n", "Spearman rho [95% CI]", "Kendall tau [95% CI]"],
                                 [[r["method"], str(r["n"]), _rho(r, "spearman"), _rho(r, "kendall")]
                                  for r in res.table]))
        for note in res.notes:
            console.print(f"note: {note}", markup=False, soft_wrap=True)
        console.print("wrote " + ", ".join(str(p) for p in res.written))


@app.command()
def predict(
    train_archs: str = typer.Option(..., help="NB201 archs to fit on (ranges/lists like 0-199), labelled by --truth."),
    archs: str = typer.Option(..., help="NB201 archs to predict (ranges/lists)."),
    truth: str = typer.Option("c10_test", help="Label column of the NB201 table (c10_test, c100_test, in16_test, ...)."),
    train_size: int = typer.Option(0, help="Fit on a seeded sample of this many of --train-archs (0 = all)."),
    seed: int = typer.Option(0, help="Seed of the training sample and of the model."),
    features: str = typer.Option("graf", help="Architecture features: graf (graph features) or onehot."),
    model: str = typer.Option("rf", help="rf (random forest) or gbt (gradient-boosted trees)."),
    scores: Path | None = typer.Option(None, help="A nasbeff score CSV whose --score-columns are extra features."),
    score_columns: str = typer.Option("", help="Comma-separated columns of --scores to add as features."),
    shared: Path | None = SHARED,
    out: Path = typer.Option(Path("runs/predictions.csv"), help="CSV: index, arch_str, prediction, the truth, "
                                                               "in_training."),
    debug: bool = DEBUG,
) -> None:
    """Fit a performance predictor over architectures on labelled archs; predict any list of archs."""
    from ..runs._common import parse_indices
    from ..runs.predict import PredictConfig, run_predict

    with _errors(debug):
        cfg = PredictConfig(train=tuple(parse_indices(train_archs, what="--train-archs")),
                            archs=tuple(parse_indices(archs)), truth=truth, train_size=train_size, seed=seed,
                            features=features, model=model, scores=scores,
                            score_columns=tuple(c.strip() for c in score_columns.split(",") if c.strip()),
                            shared=shared, out=out)
        res = run_predict(cfg)
        if (c := res.held_out) is not None:
            console.print(f"held-out archs: {c.n}, Spearman {c.spearman:+.3f} [{c.spearman_ci[0]:+.2f}, "
                          f"{c.spearman_ci[1]:+.2f}], Kendall {c.kendall:+.3f} vs {truth}")
        console.print(f"fitted on {len(res.train)} archs ({features}, {model}); wrote {res.out}")


@app.command()
def version() -> None:
    """Print the nasbeff version."""
    from .. import __version__

    console.print(__version__)

