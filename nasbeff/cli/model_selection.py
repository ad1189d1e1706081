"""CLI of pre-trained model selection: ``nasbeff zoo list``, ``nasbeff zoo pretrain`` and
``nasbeff select`` (registered on :data:`nasbeff.cli.app.app` when :mod:`nasbeff.cli` imports this module).

Every option left out takes its value from ``--config`` (a JSON file: ``{"pretrain": {...},
"select": {...}, "targets": {"<target>": {...}}}``, keys named as the config dataclasses' fields)
and then from the dataclass defaults; an option given on the command line wins."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from .app import app
from .common import DEBUG, HELP_OPTIONS, SEEDS_FORMS, _csv_ints, _errors, _fmt, _progress, _seeds, _table, console
from ..runs.pretrain import PretrainConfig

zoo_app = typer.Typer(no_args_is_help=True, context_settings=HELP_OPTIONS,
                      help="The backbone zoo: list it, pre-train it on CIFAR-10 classes 0-4.")
CONFIG = typer.Option(None, help="JSON file of fixed choices (experiments/model_selection/config.json); "
                                 "options given here override it.")
_PATHS = ("data", "out", "zoo", "store", "results")
_NOTES = ("comment", "why")  # free-text keys of a config file, for its readers


def _make(cls, values: dict, config: Path | None):
    """``cls(**values)``; a key the config file sets that ``cls`` does not know, or a field without a
    default that neither the options nor the config file give, is one clear line."""
    import dataclasses

    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"--config {config}: unknown key(s) {', '.join(unknown)} (known: "
                         f"{', '.join(f.name for f in dataclasses.fields(cls))}; notes: {', '.join(_NOTES)})")
    missing = [f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(cls) if f.name not in values and
               f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required: give "
                         f"{'it' if len(missing) == 1 else 'them'} on the command line or in the --config file"
                         + (f" ({config} has none)" if config is not None else ""))
    return cls(**values)


def _seed_tuple(seeds: int | tuple[int, ...]) -> tuple[int, ...]:
    """``select``'s seeds: a count N is seeds 0 .. N - 1, a tuple exactly those."""
    return tuple(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds


def _default(cls, name: str, fmt: str = "") -> str:
    """The dataclass default of field ``name`` (formatted), for the help texts."""
    import dataclasses

    return format(next(f.default for f in dataclasses.fields(cls) if f.name == name), fmt)


def _settings(config: Path | None, section: str, for_target: str | None = None, **given) -> dict:
    """Config-file values of ``section`` (and of ``targets[target]``), overridden by the options given."""
    values: dict = {}
    if config is not None:
        try:
            doc = json.loads(Path(config).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"--config {config}: not a readable JSON file ({type(exc).__name__})") from None
        values.update(doc.get(section, {}))
        values.update(doc.get("targets", {}).get(for_target, {}) if for_target else {})
    values.update({k: v for k, v in given.items() if v is not None})
    for note in _NOTES:
        values.pop(note, None)
    for k, v in list(values.items()):
        if k in _PATHS and v is not None:
            values[k] = Path(v)
        elif isinstance(v, list):
            values[k] = tuple(v)
    return values


@zoo_app.command("list")
def zoo_list(debug: bool = DEBUG) -> None:
    """The zoo's backbones: family, torchvision definition, parameters (5-class head), feature width."""
    from ..selection.zoo import zoo_table

    with _errors(debug):
        rows = zoo_table()
        console.print(_table(f"{len(rows)} backbones, {len({r['family'] for r in rows})} families (32 x 32 inputs)",
                             ["name", "family", "params", "features", "definition"],
                             [[r["name"], r["family"], f"{r['params']:,}", str(r["feature_dim"]), r["definition"]]
                              for r in rows], left=2))
        console.print("also: tv:<torchvision model> (ImageNet definition, for your own weights: --models name=path)")


@zoo_app.command("pretrain")
def zoo_pretrain(
    data: Path | None = typer.Option(None, help="Required (here or in --config): CIFAR-10, a cifar-10-batches-py "
                                                "folder, an image tree or a .tar(.gz)."),
    out: Path | None = typer.Option(None, help=f"Folder for <name>.pt and manifest.json "
                                               f"(default {_default(PretrainConfig, 'out')})."),
    models: str | None = typer.Option(None, help="Comma-separated zoo names (default: the whole zoo)."),
    epochs: int | None = typer.Option(None, help=f"Epochs per backbone "
                                                 f"(default {_default(PretrainConfig, 'epochs')})."),
    train_size: int | None = typer.Option(None, help=f"Source training images of the 25,000 "
                                                     f"(default {_default(PretrainConfig, 'train_size', ',')})."),
    test_size: int | None = typer.Option(None, help=f"Source test images, 0 = all 5,000 "
                                                    f"(default {_default(PretrainConfig, 'test_size')})."),
    batch_size: int | None = typer.Option(None, help=f"Batch size (default {_default(PretrainConfig, 'batch_size')})."),
    optimizer: str | None = typer.Option(None, help=f"sgd (Nesterov, cosine) or adam (cosine) "
                                                    f"(default {_default(PretrainConfig, 'optimizer')})."),
    lr: float | None = typer.Option(None, help=f"Initial learning rate (default {_default(PretrainConfig, 'lr')})."),
    seed: int | None = typer.Option(None, help=f"Seed of every initialisation and batch order "
                                               f"(default {_default(PretrainConfig, 'seed')})."),
    workers: int | None = typer.Option(None, help=f"Local worker processes, one torch thread each "
                                                  f"(default {_default(PretrainConfig, 'workers')})."),
    device: str | None = typer.Option(None, help=f"torch device (default {_default(PretrainConfig, 'device')})."),
    config: Path | None = typer.Option(None, help="JSON file of fixed choices "
                                                  "(experiments/model_selection/config.json); options given here "
                                                  "override it, and it overrides the defaults above."),
    debug: bool = DEBUG,
) -> None:
    """Pre-train the zoo on CIFAR-10 classes 0-4 (airplane, automobile, bird, cat, deer), resumable.

    Deterministic (seeded, one thread per backbone); writes each backbone's state_dict with its
    SHA-256 and source test accuracy to <out>/manifest.json. Rerun the same command to resume."""
    from ..runs.pretrain import PretrainConfig, run_pretrain

    with _errors(debug):
        values = _settings(config, "pretrain", data=data, out=out, epochs=epochs, train_size=train_size,
                           test_size=test_size, batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed,
                           workers=workers, device=device, models=tuple(models.split(",")) if models else None)
        cfg = _make(PretrainConfig, values, config)
        with _progress() as on_progress:
            res = run_pretrain(cfg, on_progress)
        console.print(_table(f"zoo pre-trained on CIFAR-10 classes 0-4 ({res.trained} trained now)",
                             ["name", "family", "params", "source test acc %", "seconds", "sha256"],
                             [[r["name"], r["family"], f"{r['params']:,}", f"{r['source_test_acc']:.2f}",
                               f"{r['seconds']:.0f}", r["sha256"][:16]] for r in res.rows], left=2))
        console.print(f"wrote {res.manifest}")


def select(
    target: str | None = typer.Option(None, help="cifar10-5to9 (needs --data), digits, digits-noisy, or an image "
                                                 "folder (<class>/ or train|test/<class>/)."),
    data: Path | None = typer.Option(None, help="CIFAR-10 (folder, image tree or .tar(.gz)) for cifar10-5to9."),
    zoo: Path | None = typer.Option(None, help="Folder of zoo pretrain (manifest.json; default runs/zoo)."),
    models: str | None = typer.Option(None, help="Comma-separated manifest names and/or name=path for your own "
                                                 "weights (e.g. tv:resnet50=~/resnet50.pth); default all."),
    epochs: int | None = typer.Option(None, help="T: epochs of each ground-truth run (default 30)."),
    predict_at: str | None = typer.Option(None, help="Epochs observed before predicting (default 5,10)."),
    seeds: str | None = typer.Option(None, help="Seeds of the runs: " + SEEDS_FORMS.format(first="0 .. N - 1") +
                                                " (default 0,1,2)."),
    train_size: int | None = typer.Option(None, help="Target training images (0 = the target's default)."),
    valid_size: int | None = typer.Option(None, help="Validation images (0 = the target's default)."),
    test_size: int | None = typer.Option(None, help="Test images (0 = all)."),
    batch_size: int | None = typer.Option(None, help="Batch size (default 64, as the paper)."),
    lr: float | None = typer.Option(None, help="Adam learning rate, constant (default 1e-3, as the paper)."),
    beta_samples: int | None = typer.Option(None, help="Training images on which beta_eff is measured (default 512)."),
    truth: bool | None = typer.Option(None, "--truth/--no-truth", help="--no-truth: rank your models from the first "
                                                                       "epochs only, without the ground-truth runs."),
    store: Path | None = typer.Option(None, help="Result store (default runs/select.sqlite); reruns resume."),
    out: Path | None = typer.Option(None, help="Per-model CSV (default runs/model_selection.csv)."),
    workers: int | None = typer.Option(None, help="Local worker processes, one torch thread each (default 1)."),
    device: str | None = typer.Option(None, help="torch device (default cpu)."),
    time_limit: float | None = typer.Option(None, help="Stop starting new runs after this many minutes."),
    results: Path | None = typer.Option(None, help="CSV of every finished run (epochs, exact) to commit: a fresh "
                                                   "checkout without --store resumes from it; *.gz: gzip."),
    config: Path | None = CONFIG,
    debug: bool = DEBUG,
) -> None:
    """Predict which pre-trained backbone fine-tunes best on a target, from its first epochs (resumable).

    Replaces each backbone's head with the frozen NCP, fine-tunes it (batch 64, Adam 1e-3), records
    validation accuracy, beta_eff and training losses per epoch, predicts the final accuracy at
    beta_eff = 0 from the first k epochs and compares it (Spearman, bootstrap CIs) with every
    baseline against the test accuracy after T epochs."""
    from ..runs.select import SelectConfig, run_select

    with _errors(debug):
        values = _settings(config, "select", target, target=target, data=data, zoo=zoo, epochs=epochs,
                           predict_at=_csv_ints(predict_at, "--predict-at", "5,10"),
                           seeds=None if seeds is None else _seed_tuple(_seeds(seeds)), train_size=train_size,
                           valid_size=valid_size, test_size=test_size, batch_size=batch_size, lr=lr,
                           beta_samples=beta_samples, truth=truth, store=store, out=out, workers=workers,
                           device=device, time_limit=time_limit, models=tuple(models.split(",")) if models else None,
                           results=results)
        if "seeds" in values:  # a config file's count, too
            values["seeds"] = _seed_tuple(values["seeds"])
        cfg = _make(SelectConfig, values, config)
        with _progress() as on_progress:
            res = run_select(cfg, on_progress)
        if res.left:
            console.print(f"time limit reached: {res.left} runs left for the next run (it resumes)")
            return
        ks = cfg.predict_at
        cols = ["model", "family", "params"] + (["true acc %"] if cfg.truth else []) + [f"beff@{k}" for k in ks] + \
            [f"lsv@{k}" for k in ks] + ["logme", "leep", "nce"]
        console.print(_table(f"{len(res.rows)} models on {cfg.target}", cols, [
            [r["model"], r["family"], f"{r['params']:,}"] + ([_fmt(r["true_acc"])] if cfg.truth else []) +
            [_fmt(r[f"beff_pred_{k}"]) for k in ks] + [_fmt(r[f"lsv_{k}"]) for k in ks] +
            [_fmt(r["logme"], ".3f"), _fmt(r["leep"], ".3f"), _fmt(r["nce"], ".3f")] for r in res.rows], left=2))
        if res.table:
            console.print(_table("Spearman rho vs test accuracy after T epochs (95% bootstrap CI over models)",
                                 ["method", "n", "Spearman", "Kendall"],
                                 [[t["method"], str(t["n"]), f"{t['spearman']:+.3f} [{t['spearman_lo']:+.2f}, "
                                   f"{t['spearman_hi']:+.2f}]", f"{t['kendall']:+.3f}"] for t in res.table]))
            for p in res.paired:
                console.print(f"beta_eff@{p['epochs']} - {p['best_baseline']}: {p['diff']:+.3f} "
                              f"[{p['diff_lo']:+.2f}, {p['diff_hi']:+.2f}] (P(not better) = {p['p_not_better']:.2f})")
            if not math.isnan(res.noise_ceiling):
                console.print(f"seed-noise ceiling (mean Spearman between seeds' truths): {res.noise_ceiling:+.3f}")
        console.print("wrote " + ", ".join(str(p) for p in [res.out, *res.figures]))


app.add_typer(zoo_app, name="zoo")
app.command()(select)
