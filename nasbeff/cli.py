"""Command-line tool: ``nasbeff --help`` (or ``python -m nasbeff --help``).

Commands: ``demo`` (the main job on the embedded digits), ``rank`` (the beta_eff study on
CIFAR-10), ``score`` (training-free proxies), ``search`` (REA / random / warm-up REA on the
benchmark tables), ``report`` (figures and rank agreement), ``version``. Errors are one line on
stderr-like output with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import ProgressColumn
from rich.table import Table
from rich.text import Text

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="nasbeff: predict which architecture trains best from a few epochs, with the neural "
                       "capacitance beta_eff (Jiang et al., Nat. Commun. 2024).")
console = Console()

_BACKEND_HELP = ("Where units run: local (this process) or ray (Ray tasks; needs pip install ray). "
                 "Results are identical for the same --threads.")
_RAY_ADDRESS_HELP = "Ray cluster to join (e.g. auto or ray://host:10001); empty: start a local Ray instance."
_RAY_CPUS_HELP = "CPUs of the local Ray instance (0 = all); each task asks for --threads of them."


def _fail(msg: str, debug: bool) -> None:
    if debug:
        raise
    console.print(f"[bold red]error:[/] {msg}", soft_wrap=True)
    raise typer.Exit(code=2)


@contextlib.contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Turn expected errors into one clear line and exit code 2 (the traceback with --debug)."""
    from .store import StoreError

    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except KeyError as e:
        _fail(str(e.args[0]) if e.args else "missing key", debug)
    except (ValueError, FileNotFoundError, FloatingPointError, ImportError, StoreError, NotADirectoryError,
            PermissionError, RuntimeError) as e:  # RuntimeError: torch (device, memory) and Ray failures
        _fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__, debug)


def _check_device(device: str) -> str:
    """A usable torch device string, or a clear ValueError."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: GPU {dev.index} is not available ({torch.cuda.device_count()} GPUs)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available on this machine")
    return device


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
    if not out:
        raise ValueError(f"--archs {spec!r} selects no arch")
    return sorted(out)


def _names(spec: str, what: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ValueError(f"{what} is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} lists a name twice: {spec!r}")
    return names


class _RateColumn(ProgressColumn):
    """Completed units per second (per minute when slower than one per 10 s)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.speed
        if not speed:
            return Text(f"-- {self.unit}/s", style="progress.data.speed")
        if speed < 0.1:
            return Text(f"{60 * speed:.2f} {self.unit}/min", style="progress.data.speed")
        return Text(f"{speed:.2f} {self.unit}/s", style="progress.data.speed")


def _progress(unit: str, quiet: bool = False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(unit),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()]
    return Progress(*cols, console=console, disable=quiet)


def _fmt(v: float, spec: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------

@app.command()
def demo(
    mlp: bool = typer.Option(False, "--mlp", help="Run the single-MLP demo instead: beta_eff and accuracy per epoch, "
                                                  "then the prediction of that run's final accuracy, checked."),
    quick: bool = typer.Option(False, "--quick", help="Reduced ranking demo for CI: 6 small archs (C=8), 3 observed "
                                                      "and 4 ground-truth epochs (well under a minute)."),
    archs: int = typer.Option(24, help="Number of seeded NB201 archs to rank (ranking demo; --quick: 6)."),
    epochs: int | None = typer.Option(None, help="Epochs observed before predicting (default 5; --quick 3; --mlp 6)."),
    final_epochs: int | None = typer.Option(None, help="Ranking demo: epochs of each ground-truth run (default 12; "
                                                       "--quick 4). --mlp: the run whose final accuracy is predicted "
                                                       "(default 40)."),
    seed: int = typer.Option(0, help="Seed of the arch sample, the split, the initialisations and the batches."),
    beta_samples: int | None = typer.Option(None, help="Training samples on which beta_eff is measured each epoch "
                                                       "(default 512; --quick 256)."),
    png: str = typer.Option("runs/demo_ranking.png",
                            help="Ranking demo: figure of predicted vs true accuracy ('' = none)."),
    threads: int = typer.Option(1, help="torch threads (0 = torch's default, all cores; tiny 8x8 networks gain "
                                        "little from more than one)."),
    device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
    debug: bool = typer.Option(False, help="Show full tracebacks."),
) -> None:
    """The main job on the embedded digits: rank NB201 archs by beta_eff vs proxies (no download, no GPU).

    Samples 24 NB201 archs, trains each a few epochs under the frozen probe and predicts its final
    accuracy from beta_eff, scores it with training-free proxies, trains it longer with 2 seeds for
    the ground truth, and prints each scorer's Spearman rho (bootstrap CI) next to the seed-noise
    ceiling, in about 3 minutes on 2 CPU cores. --mlp runs the earlier single-MLP demo."""
    with _errors(debug):
        import torch

        if threads < 0:
            raise ValueError(f"--threads must be >= 0, got {threads}")
        _check_device(device)
        if threads:
            torch.set_num_threads(threads)
        if mlp:
            if quick:
                raise ValueError("--quick is for the ranking demo, not --mlp")
            from .demo import digits_demo

            digits_demo(epochs=epochs or 6, final_epochs=final_epochs or 40, seed=seed,
                        beta_samples=beta_samples or 512, device=device, console=console)
            return
        from dataclasses import replace

        from .demo import RankDemoConfig, rank_demo

        cfg = RankDemoConfig.quick(seed) if quick else RankDemoConfig(seed=seed)
        changes = {k: v for k, v in (("epochs", epochs), ("final_epochs", final_epochs),
                                     ("beta_samples", beta_samples)) if v is not None}
        if not quick or archs != 24:
            changes["archs"] = archs
        rank_demo(replace(cfg, **changes), png=png or None, console=console, device=device)


# ---------------------------------------------------------------------------------------------
# rank
# ---------------------------------------------------------------------------------------------

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
    device: str = typer.Option("cpu", help="torch device (with --backend ray and cuda, each task asks for one GPU)."),
    threads: int = typer.Option(0, help="torch threads per worker (0 = torch default locally, 1 on Ray)."),
    workers: int = typer.Option(1, help="Local worker processes sharing the store (each takes every workers-th arch)."),
    worker_index: int = typer.Option(-1, hidden=True),
    backend: str = typer.Option("local", help=_BACKEND_HELP + " On Ray every worker commits its epochs to the "
                                              "store itself (on a cluster: put the store on a shared filesystem)."),
    ray_address: str = typer.Option("", help=_RAY_ADDRESS_HELP),
    ray_cpus: int = typer.Option(0, help=_RAY_CPUS_HELP),
    time_limit: float = typer.Option(0.0, help="Stop starting new archs after this many minutes (resumable chunks)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the store and checkpoints (default); "
                                "--no-resume refuses to run on an existing store instead of mixing runs."),
    debug: bool = typer.Option(False, help="Show full tracebacks."),
) -> None:
    """Rank NB201 archs on CIFAR-10 by beta_eff after a few epochs (resumable).

    Trains each arch briefly under the frozen probe, predicts its final accuracy at beta_eff = 0
    (plus last/best seen value) and writes one CSV row per arch. Every epoch is checkpointed and
    committed; run the same command again after a crash."""
    with _errors(debug):
        import subprocess

        from .store import ResultStore
        from .study import StudyConfig, sample_archs, summarize, write_csv

        cfg = StudyConfig(epochs=epochs, train_size=train_size, valid_size=valid_size, batch_size=batch_size, lr=lr,
                          schedule_epochs=schedule_epochs, beta_samples=beta_samples, placement=placement, seed=seed,
                          extra_beta_samples=tuple(int(v) for v in extra_beta_samples.split(",") if v.strip()))
        if placement not in ("head", "side"):
            raise ValueError(f"--placement must be head or side, got {placement!r}")
        if not resume and worker_index < 0 and store.exists() and store.stat().st_size > 0:
            raise ValueError(f"--no-resume: the store {store} already exists; remove it or choose another --store")
        if backend not in ("local", "ray"):
            raise ValueError(f"--backend must be local or ray, got {backend!r}")
        if backend == "ray" and workers > 1:
            raise ValueError("--workers is for --backend local; with ray use --ray-cpus (and --threads per task)")
        if threads < 0:
            raise ValueError(f"--threads must be >= 0, got {threads}")
        if not data.exists():
            raise FileNotFoundError(f"--data {data} does not exist")
        _check_device(device)
        indices = sample_archs(parse_indices(archs), sample or None, sample_seed)
        store.parent.mkdir(parents=True, exist_ok=True)
        if backend == "ray":
            _train_many_ray(indices, data, cfg, store, device, time_limit, threads or 1, ray_address or None,
                            ray_cpus or None)
        elif workers > 1 and worker_index < 0:
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


def _train_many(indices, data, cfg, store_path, device, time_limit, quiet=False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .store import ResultStore
    from .study import load_study_data, run_key, train_arch

    start = time.monotonic()
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
            for n_done, i in enumerate(todo):
                if time_limit and (time.monotonic() - start) / 60 > time_limit:
                    console.print(f"time limit reached: {len(todo) - n_done} archs left for the next run (it resumes)")
                    return
                prog.reset(ep, total=cfg.epochs, description=f"arch {i}")
                train_arch(i, loaded, cfg, st, Path(store_path).parent / "checkpoints", device,
                           on_epoch=lambda e, m: prog.update(ep, completed=e))
                prog.advance(task)


def _train_many_ray(indices, data, cfg, store_path, device, time_limit, threads, address, num_cpus):
    """The archs not done yet as Ray tasks; each worker commits its epochs to the store."""
    from .backends import RankJob, make_backend
    from .store import ResultStore
    from .study import run_key

    with ResultStore(store_path) as st:
        st.save_config(cfg.to_dict())
        todo = [i for i in indices if not st.is_done(run_key(i, cfg))]
    if not todo:
        return
    deadline = time.time() + 60 * time_limit if time_limit else None
    job = RankJob(str(Path(data).resolve()), cfg, str(Path(store_path).resolve()), device, deadline)
    be = make_backend("ray", threads, address, num_cpus, device)
    try:
        with _progress("archs") as prog:
            task = prog.add_task("archs (ray)", total=len(indices), completed=len(indices) - len(todo))
            results = be.map_units(job, todo, on_result=lambda u, r: prog.advance(task))
    finally:
        be.close()
    left = sum(r is None for r in results)
    if left:
        console.print(f"time limit reached: {left} archs left for the next run (it resumes)")


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


# ---------------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------------

def _proxy_batches(data: str, n_batches: int, batch_size: int, seed: int, cache_dir: Path):
    """(batches, dataset name): ``n_batches`` seeded batches of training images, normalised."""
    import torch

    from .data import NORMALIZATION, load_dataset, load_digits, to_tensor

    if data == "digits":
        train, _ = load_digits(seed=0)
        name = "digits"
    else:
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"--data {data} does not exist (give a CIFAR-10 folder or tar, or 'digits')")
        train = load_dataset("cifar10-valid", path, "train", cache_dir=cache_dir)
        name = "cifar10-valid"
    need = n_batches * batch_size
    if need > len(train):
        raise ValueError(f"--batches x --batch-size = {need} exceeds the {len(train)} training images of {name}")
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:need].numpy()
    mean, std = NORMALIZATION[name]
    x, y = to_tensor(train.subset(idx), mean=mean, std=std)
    return tuple((x[k * batch_size:(k + 1) * batch_size], y[k * batch_size:(k + 1) * batch_size])
                 for k in range(n_batches)), name


def _score_key(index: int, proxy: str, dataset: str, chash: str, seed: int):
    from .store import RunKey

    return RunKey(space="nb201", arch=str(int(index)), dataset=dataset, scorer=proxy, config_hash=chash, seed=seed)


def _truth_column(column: str, indices: Sequence[int], shared: Path | None):
    """NB201 ground truth for ``indices`` (None when the table cannot be found)."""
    from .benchmarks import NB201Table

    try:
        return NB201Table(shared).column(column, list(indices))
    except (FileNotFoundError, KeyError) as e:
        console.print(f"(no Spearman column: {e.args[0] if isinstance(e, KeyError) else e})", soft_wrap=True)
        return None


@app.command()
def score(
    data: str = typer.Option(..., help="Images for the proxies: 'digits' (embedded 8x8, no download) or CIFAR-10 "
                                       "(a cifar-10-batches-py folder, an image tree, or a .tar/.tar.gz of one; "
                                       "seeded images of the 25k train half)."),
    archs: str = typer.Option("0-9", help="NB201 arch indices: ranges/lists like 0-199 or 0,5,9."),
    sample: int = typer.Option(0, help="Seeded sample of this many archs from --archs (0 = all)."),
    sample_seed: int = typer.Option(0, help="Seed of the arch sample."),
    proxies: str = typer.Option("naswot,synflow,snip,grad_norm,params",
                                help="Comma-separated training-free proxies (see nasbeff.proxies.available()): "
                                     "fisher, flops, grad_norm, grasp, jacov, meco, naswot, naswot_v1, params, plain, "
                                     "snip, synflow, synflow_bn, zen, zico."),
    batch_size: int = typer.Option(64, help="Images per batch."),
    batches: int = typer.Option(1, help="Number of batches (zico needs >= 2; others use the first)."),
    init_channels: int = typer.Option(16, help="Channels C of the first stage (NB201: 16)."),
    cells: int = typer.Option(5, help="Cells N per stage (NB201: 5)."),
    store: Path = typer.Option(Path("runs/scores.sqlite"), help="Result store (SQLite): one row per arch and proxy; "
                                                                 "re-runs resume from it."),
    out: Path = typer.Option(Path("runs/scores.csv"), help="Per-arch CSV (index, arch_str, cut_off, one column per "
                                                           "proxy, its seconds, flags), written at the end."),
    seed: int = typer.Option(0, help="Seed of the network initialisation and of the image batches."),
    device: str = typer.Option("cpu", help="torch device."),
    threads: int = typer.Option(1, help="torch threads per unit (local and Ray alike, so results match)."),
    backend: str = typer.Option("local", help=_BACKEND_HELP + " Workers return results; this process writes them."),
    ray_address: str = typer.Option("", help=_RAY_ADDRESS_HELP),
    ray_cpus: int = typer.Option(0, help=_RAY_CPUS_HELP),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip (arch, proxy) pairs already in the store; "
                                                                   "--no-resume scores everything again and "
                                                                   "replaces the stored values."),
    truth: str = typer.Option("c10_test", help="NB201 table column for the summary's Spearman rho ('' = none)."),
    shared: Path | None = typer.Option(None, help="Folder of the NB201 ground truth (default ../shared/data or "
                                                  "$NASBEFF_SHARED_DATA)."),
    quiet: bool = typer.Option(False, help="No progress bar."),
    debug: bool = typer.Option(False, help="Show full tracebacks."),
) -> None:
    """Score NB201 archs with training-free proxies at initialisation (resumable).

    Crash-safe: each arch's values are committed in one transaction as they arrive; run the same
    command again after a crash and nothing is scored twice."""
    with _errors(debug):
        from . import proxies as zc
        from .backends import BACKENDS, ProxyJob, make_backend
        from .spaces import index_to_str, is_cut_off, nb201_channels
        from .store import ResultStore, config_hash
        from .study import sample_archs, write_csv

        if backend not in BACKENDS:
            raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        names = _names(proxies, "--proxies")
        for n in names:
            zc.get(n)  # KeyError listing the available names
        if "zico" in names and batches < 2:
            raise ValueError("zico needs --batches >= 2")
        if batch_size < 2 or batches < 1:
            raise ValueError("need --batch-size >= 2 and --batches >= 1")
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        if backend == "local":  # on Ray the workers may have devices this driver lacks
            _check_device(device)
        channels = nb201_channels(init_channels, cells)
        indices = sample_archs(parse_indices(archs), sample or None, sample_seed)
        store.parent.mkdir(parents=True, exist_ok=True)
        batch_data, dataset = _proxy_batches(data, batches, batch_size, seed, store.parent / "cache")
        config = {"kind": "proxies", "protocol": 1, "dataset": dataset, "batch_size": batch_size, "batches": batches,
                  "channels": list(channels), "num_classes": 10, "seed": seed}
        chash = config_hash(config)
        with ResultStore(store) as st:
            st.save_config(config)
            units = []
            for i in indices:
                todo = tuple(n for n in names if not (resume and st.is_done(_score_key(i, n, dataset, chash, seed))))
                if todo:
                    units.append((i, todo))
            job = ProxyJob(batch_data, tuple(channels), 10, seed, device)
            be = make_backend(backend, threads, ray_address or None, ray_cpus or None, device)

            def commit(unit, result):
                index, todo = unit
                with st.transaction():
                    for n in todo:
                        key = _score_key(index, n, dataset, chash, seed)
                        if not resume:
                            st.unmark_done(key)
                        st.record_epoch(key, None, result[n], overwrite=bool(st.epochs_done(key)))
                        st.mark_done(key)
                prog.advance(task)

            try:
                with _progress("archs", quiet) as prog:
                    task = prog.add_task(f"scoring ({backend})", total=len(indices),
                                         completed=len(indices) - len(units))
                    be.map_units(job, units, on_result=commit)
            finally:
                be.close()
            rows = []
            for i in indices:
                got = {n: next(iter(list(st.rows(**_score_key(i, n, dataset, chash, seed).as_filter()))), None)
                       for n in names}
                if any(v is None for v in got.values()):
                    continue
                row = {"index": i, "arch_str": index_to_str(i), "cut_off": bool(is_cut_off(index_to_str(i)))}
                row.update({n: got[n].metrics["value"] for n in names})
                row.update({f"{n}_seconds": got[n].metrics["seconds"] for n in names})
                row["flags"] = "; ".join(f"{n}: {got[n].metrics['flag']}" for n in names if got[n].metrics["flag"])
                rows.append(row)
        if rows:
            write_csv(rows, out)
        _print_score_summary(rows, names, len(indices), out, truth, shared)


def _print_score_summary(rows, names, n_total, out, truth, shared):
    import numpy as np

    t = None
    if truth and len(rows) >= 3:
        t = _truth_column(truth, [r["index"] for r in rows], shared)
    table = Table(title=f"NB201 archs scored: {len(rows)} of {n_total}")
    for col in ("proxy", "archs", "flagged", "median s/arch") + ((f"Spearman vs {truth} [95% CI]",) if t is not None else ()):
        table.add_column(col, justify="right" if col != "proxy" else "left")
    for n in names:
        vals = np.array([np.nan if r[n] is None else r[n] for r in rows], dtype=float)
        secs = [r[f"{n}_seconds"] for r in rows]
        flagged = sum(f"{n}: " in r["flags"] for r in rows)
        cells = [n, str(int(np.isfinite(vals).sum())), str(flagged), _fmt(float(np.median(secs)) if secs else None, ".3f")]
        if t is not None:
            cells.append(_rho_cell(vals, t))
        table.add_row(*cells)
    console.print(table)
    if rows:
        console.print(f"wrote {out}")


def _rho_cell(score, truth, n_boot: int = 1000) -> str:
    import warnings

    from .evaluate import rank_correlation

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = rank_correlation(score, truth, n_boot=n_boot)
    except ValueError:
        return "n/a"
    return f"{c.spearman:+.3f} [{c.spearman_ci[0]:+.2f}, {c.spearman_ci[1]:+.2f}]"


# ---------------------------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------------------------

def _table(shared: Path | None):
    from .benchmarks import NB201Table

    table = NB201Table(shared)
    if not table.path.is_file():
        raise FileNotFoundError(f"NB201 ground truth {table.path} not found: pass --shared or set NASBEFF_SHARED_DATA")
    return table


@app.command()
def search(
    method: str = typer.Option("rea", help="rea (regularized evolution), random, or warmup_rea (zero-cost warm-up "
                                           "then REA); comma-separated to compare several."),
    scorer: str = typer.Option("benchmark", help="What the search maximises: benchmark (NATS-Bench's simulated "
                                                 "training), zen, naswot_v1 (published proxy columns), or beff (the "
                                                 "--pool-column of --pool-csv); comma-separated for several."),
    warmup_scorer: str = typer.Option("naswot_v1", help="Warm-up scorer of warmup_rea (zen, naswot_v1, beff, ...)."),
    warmup_pool: int = typer.Option(1000, help="Archs scored by the warm-up scorer in warmup_rea."),
    pool_csv: Path = typer.Option(Path("benchmarks_data/nb201_cifar10_rank.csv"),
                                  help="Per-arch predictions for the beff scorer (a rank CSV: index and the columns below)."),
    pool_column: str = typer.Option("beff_pred", help="Score column of --pool-csv (higher = better)."),
    cost_column: str = typer.Option("gpu_seconds", help="Seconds charged per evaluation by beff (column of --pool-csv)."),
    in_pool: bool = typer.Option(False, "--in-pool", help="Restrict every scorer to the archs of --pool-csv (to "
                                                          "compare with beff on the same archs)."),
    budget: float = typer.Option(12000.0, help="Simulated search budget in seconds."),
    seeds: int = typer.Option(10, help="Number of runs per method and scorer (seeds --seed .. --seed + seeds - 1)."),
    seed: int = typer.Option(0, help="First seed."),
    points: int = typer.Option(20, help="Evenly spaced budgets written per run to --out (plus NB201's report budgets)."),
    shared: Path | None = typer.Option(None, help="Folder of the NB201 ground truth (default ../shared/data or "
                                                  "$NASBEFF_SHARED_DATA)."),
    out: Path = typer.Option(Path("runs/search.csv"), help="CSV: one row per run and budget with the best arch so far "
                                                          "and its true CIFAR-10 test accuracy."),
    debug: bool = typer.Option(False, help="Show full tracebacks."),
) -> None:
    """Search NAS-Bench-201 by table lookup (REA, random, warm-up REA) under a simulated budget.

    The search sees no test accuracy; the CIFAR-10 test accuracy (c10_test) of each run's best arch
    is looked up afterwards and summarised (mean, std, 95% CI over seeds)."""
    with _errors(debug):
        import csv
        import os

        import numpy as np

        from .search import DEFAULT_BUDGETS, METHODS, SCORERS, PoolScorer, make_optimizer, make_scorer, summarize

        methods, scorers = _names(method, "--method"), _names(scorer, "--scorer")
        for m in methods:
            if m not in METHODS:
                raise ValueError(f"unknown --method {m!r}; choose from {', '.join(METHODS)}")
        for s in scorers + ([warmup_scorer] if "warmup_rea" in methods else []):
            if s not in SCORERS and s != "beff":
                raise ValueError(f"unknown scorer {s!r}; choose from {', '.join([*SCORERS, 'beff'])}")
        if not (math.isfinite(budget) and budget > 0):
            raise ValueError(f"--budget must be > 0, got {budget}")
        if seeds < 1 or seed < 0 or points < 1:
            raise ValueError("need --seeds >= 1, --seed >= 0 and --points >= 1")
        table = _table(shared)
        view = table.without_test()
        pool = None
        if in_pool or "beff" in scorers or (warmup_scorer == "beff" and "warmup_rea" in methods):
            if not pool_csv.is_file():
                raise FileNotFoundError(f"--pool-csv {pool_csv} not found (made by nasbeff rank)")
            beff = PoolScorer.from_csv(pool_csv, pool_column, cost_column, name="beff")
            pool = beff.pool if in_pool else None

        def get(name: str):
            return beff if name == "beff" else make_scorer(name, view, pool=pool)

        runs = []
        t0 = time.perf_counter()
        for m in methods:
            for s in scorers:
                kw = {}
                if m == "warmup_rea":
                    warm = get(warmup_scorer)
                    size = len(warm.pool) if warm.pool is not None else warmup_pool
                    kw = {"warmup_scorer": warm, "pool_size": max(10, min(warmup_pool, size))}
                opt = make_optimizer(m, get(s), **kw)
                runs.append((m, s, [opt.run(budget, k) for k in range(seed, seed + seeds)]))
        elapsed = time.perf_counter() - t0
        truth = np.asarray(table.column("c10_test"))  # after the search: reporting only
        report_budgets = sorted({b for b in DEFAULT_BUDGETS if b <= budget} | {budget})
        grid = sorted(set(report_budgets) | {float(b) for b in np.linspace(budget / points, budget, points)})
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["method", "scorer", "warmup_scorer", "seed", "budget_s", "evaluations", "best_index",
                        "best_arch_str", "best_test_acc"])
            for m, s, trajs in runs:
                for t in trajs:
                    for b in grid:
                        bi = t.best_at(b)
                        w.writerow([m, s, t.warmup_scorer or "", t.seed, f"{b:g}", t.evaluations_at(b), bi,
                                    table.arch(bi) if bi >= 0 else "", f"{truth[bi]:.4f}" if bi >= 0 else ""])
        os.replace(tmp, out)
        res = Table(title=f"NB201 search, budget {budget:,.0f} s, {seeds} seeds: CIFAR-10 test accuracy (c10_test) "
                          f"of the best arch found")
        for col in ("method", "scorer", "test acc % (mean ± std)", "95% CI ±", "evaluations", "unique archs"):
            res.add_column(col, justify="left" if col in ("method", "scorer") else "right")
        for m, s, trajs in runs:
            r = [x for x in summarize(trajs, truth, [budget])][0]
            uniq = np.mean([t.unique_evaluations for t in trajs])
            label = s + (f" (warm-up {trajs[0].warmup_scorer})" if trajs[0].warmup_scorer else "")
            res.add_row(m, label, f"{_fmt(r['mean'])} ± {_fmt(r['std'])}" + ("" if r["n"] == r["runs"] else
                                                                             f" (n={r['n']})"),
                        _fmt(r["ci95"]), f"{r['evaluations_mean']:.0f}", f"{uniq:.0f}")
        console.print(res)
        console.print(f"wrote {out} ({len(runs) * seeds} runs, searched in {elapsed:.1f} s)")


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

_NOT_SCORES = {"index", "epochs_observed", "beff_std", "t0", "gpu_seconds", "beta_seconds", "beta_overhead",
               "final_beta_eff", "cut_off"}


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    import csv

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _num(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "", "None") else math.nan
    except ValueError:
        return math.nan


def _score_columns(fields: list[str], spec: str) -> list[str]:
    from . import proxies as zc

    if spec:
        cols = _names(spec, "--columns")
        missing = [c for c in cols if c not in fields]
        if missing:
            raise ValueError(f"columns {missing} are not in the CSV (it has {', '.join(fields)})")
        return cols
    known = ["beff_pred", "lsv", "bsv", *zc.available()]
    cols = [c for c in known if c in fields]
    if not cols:
        raise ValueError(f"no score column found (expected beff_pred/lsv/bsv or proxy names); pass --columns")
    return cols


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
    shared: Path | None = typer.Option(None, help="Folder of the NB201 ground truth (default ../shared/data or "
                                                  "$NASBEFF_SHARED_DATA)."),
    out: Path = typer.Option(Path("runs/report"), help="Folder for the PNGs."),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples of the confidence intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    debug: bool = typer.Option(False, help="Show full tracebacks."),
) -> None:
    """Write figures and the rank-agreement table from rank/score and search CSVs.

    From a rank/score CSV and the ground truth: pred_vs_true.png, scorers.png (Spearman rho with
    bootstrap CIs) and a table; from a search CSV: search_curves.png (mean ± std over seeds of the
    best arch's test accuracy vs the simulated budget)."""
    with _errors(debug):
        if scores is None and search_csv is None:
            raise ValueError("give --scores (a rank or score CSV) and/or --search (a search CSV)")
        out.mkdir(parents=True, exist_ok=True)
        written = []
        if scores is not None:
            written += _report_scores(scores, columns, main, truth, truth_csv, shared, out, n_boot, seed)
        if search_csv is not None:
            path = out / "search_curves.png"
            _plot_search_curves(search_csv, path)
            written.append(path)
        console.print("wrote " + ", ".join(str(p) for p in written))


def _report_scores(path, columns, main, truth, truth_csv, shared, out, n_boot, seed) -> list[Path]:
    import warnings

    import numpy as np

    from .evaluate import correlation_table
    from .plots import predicted_vs_true, scorer_bars
    from .spaces import index_to_str, is_cut_off

    fields, rows = _read_csv(path)
    if "index" not in fields:
        raise ValueError(f"{path} has no 'index' column")
    if not rows:
        raise ValueError(f"{path} has no rows")
    cols = _score_columns(fields, columns)
    main = main or cols[0]
    if main not in fields:
        raise ValueError(f"--main {main!r} is not a column of {path}")
    try:
        idx = [int(r["index"]) for r in rows]
    except ValueError:
        raise ValueError(f"{path}: non-integer index") from None
    if truth_csv is not None:
        tf, trows = _read_csv(truth_csv)
        if "index" not in tf or truth not in tf:
            raise ValueError(f"{truth_csv} needs the columns index and {truth}")
        lookup = {int(r["index"]): _num(r[truth]) for r in trows}
        t = np.array([lookup.get(i, math.nan) for i in idx])
        truth_name = f"{truth} ({truth_csv.name})"
    else:
        t = np.asarray(_table(shared).column(truth, idx), dtype=float)
        truth_name = f"NB201 {truth}"
    s = {c: np.array([_num(r[c]) for r in rows]) for c in cols}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table_rows = correlation_table(s, t, n_boot=n_boot, seed=seed)
    res = Table(title=f"rank agreement with {truth_name}: {path.name}")
    for col in ("scorer", "n", "Spearman rho [95% CI]", "Kendall tau [95% CI]"):
        res.add_column(col, justify="left" if col == "scorer" else "right")
    for r in table_rows:
        res.add_row(r["method"], str(r["n"]), f"{r['spearman']:+.3f} [{r['spearman_lo']:+.2f}, {r['spearman_hi']:+.2f}]",
                    f"{r['kendall']:+.3f} [{r['kendall_lo']:+.2f}, {r['kendall_hi']:+.2f}]")
    console.print(res)
    cut = np.array([bool(is_cut_off(index_to_str(i))) for i in idx])
    p1, p2 = out / "pred_vs_true.png", out / "scorers.png"
    predicted_vs_true(s[main], t, p1, label=main, truth_label=truth_name, highlight=cut, title=path.name)
    scorer_bars(table_rows, p2, title=f"vs {truth_name}")
    return [p1, p2]


def _plot_search_curves(path: Path, png: Path) -> None:
    """Group a search CSV's ``best_test_acc`` by (method, scorer, warm-up) and budget; plot it."""
    from .plots import search_curves

    fields, rows = _read_csv(path)
    need = {"method", "scorer", "seed", "budget_s", "best_test_acc"}
    if not need <= set(fields):
        raise ValueError(f"{path} is not a search CSV: it needs the columns {', '.join(sorted(need))}")
    groups: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        warm = r.get("warmup_scorer") or ""
        label = f"{r['method']}+{r['scorer']}" + (f" (warm-up {warm})" if warm else "")
        groups.setdefault(label, {}).setdefault(float(r["budget_s"]), []).append(_num(r["best_test_acc"]))
    if not groups:
        raise ValueError(f"{path} has no rows")
    search_curves(groups, png, title=f"{path.name}: mean ± 1 std over seeds")


@app.command()
def version() -> None:
    """Print the nasbeff version."""
    from . import __version__

    console.print(__version__)


def main() -> None:  # pragma: no cover - entry point
    app(prog_name="nasbeff")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["app", "Table", "parse_indices"]
