"""``nasbeff score``: training-free proxies of NB201 archs at initialisation, resumable.

Each arch is one unit (:class:`ProxyJob`: build the network once, score it with every proxy not
stored yet). Workers return their values and this process writes them, each arch's rows and done
markers in one store transaction, while holding the store's lease; a killed run loses at most the
units in flight and nothing is scored twice.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..backends import check_backend, make_backend
from ..store import ResultStore, RunKey, config_hash
from ._common import Progress, check_device, check_writable, no_progress, sample_archs, write_csv

LEASE_INTERVAL_S = 10.0


@dataclass(frozen=True)
class ScoreConfig:
    """What to score and where (validated on construction, before any data is loaded). ``data``:
    ``'digits'`` or a CIFAR-10 folder/tar (seeded images of the 25k train half)."""

    data: str
    archs: tuple[int, ...]
    proxies: tuple[str, ...] = ("naswot", "synflow", "snip", "grad_norm", "params")
    sample: int = 0
    sample_seed: int = 0
    batch_size: int = 64
    batches: int = 1
    init_channels: int = 16
    cells: int = 5
    store: Path = Path("runs/scores.sqlite")
    out: Path = Path("runs/scores.csv")
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    workers: int = 1
    backend: Literal["local", "ray"] = "local"
    ray_address: str = ""
    ray_cpus: int = 0
    resume: bool = True
    truth: str = "c10_test"
    shared: Path | None = None

    def __post_init__(self) -> None:
        from .. import proxies as zc

        check_backend(self.backend)  # unknown name, or ray not installed
        for name in self.proxies:
            zc.get(name)  # KeyError listing the available names
        if not self.proxies:
            raise ValueError("--proxies is empty")
        if "zico" in self.proxies and self.batches < 2:
            raise ValueError("zico needs --batches >= 2")
        if self.batch_size < 2 or self.batches < 1:
            raise ValueError("need --batch-size >= 2 and --batches >= 1")
        if self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.backend == "ray" and self.workers > 1:
            raise ValueError("--workers is for --backend local; with ray use --ray-cpus")
        if self.init_channels < 1 or self.cells < 1 or self.sample < 0 or self.ray_cpus < 0:
            raise ValueError("--init-channels and --cells must be >= 1; --sample and --ray-cpus >= 0")
        if not self.archs:
            raise ValueError("no arch to score")
        if self.data != "digits" and not Path(self.data).exists():
            raise FileNotFoundError(f"--data {self.data} does not exist (give a CIFAR-10 folder or tar, or 'digits')")
        check_writable(self.store, "--store")
        check_writable(self.out, "--out")
        if self.backend == "local":  # on Ray the workers may have devices this driver lacks
            check_device(self.device)


@dataclass(frozen=True)
class ProxyJob:
    """Score one NB201 arch with training-free proxies: ``job((index, names)) -> {name: metrics}``.

    The network is ``build_cell_network(channels, arch, num_classes, in_channels)`` initialised
    after ``torch.manual_seed(seed)``; the torch seed is set again before every proxy, so a value
    depends only on (arch, proxy, seed, batches). Metrics per proxy: ``value`` (None when it
    failed numerically), ``seconds`` and ``flag`` (why the value is a limit or an error, or None)."""

    batches: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    channels: tuple[int, ...]
    num_classes: int = 10
    seed: int = 0
    device: str = "cpu"

    def __call__(self, unit: tuple[int, tuple[str, ...]]) -> dict[str, dict[str, Any]]:
        from .. import proxies
        from ..spaces import build_cell_network, index_to_str

        index, names = unit
        dev = torch.device(self.device)
        batches = [(x.to(dev), y.to(dev)) for x, y in self.batches]
        torch.manual_seed(self.seed)
        net = build_cell_network(self.channels, index_to_str(int(index)), self.num_classes,
                                 batches[0][0].shape[1]).to(dev)
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            torch.manual_seed(self.seed)
            t0 = time.perf_counter()
            try:
                res = proxies.score(name, net, batches)
                out[name] = {"value": res.value, "seconds": res.seconds, "flag": res.flag}
            except ValueError as exc:  # numerical failure of this arch: recorded, the study goes on
                out[name] = {"value": None, "seconds": time.perf_counter() - t0, "flag": f"error: {exc}"}
        return out


@dataclass
class ScoreResult:
    rows: list[dict]
    names: tuple[str, ...]
    n_total: int
    summary: list[dict]  # per proxy: name, archs, flagged, median_seconds, spearman (+ CI) or None
    truth_note: str
    out: Path | None


def proxy_batches(data: str, n_batches: int, batch_size: int, seed: int):
    """(batches, dataset name): ``n_batches`` seeded batches of training images, normalised."""
    from ..data import NORMALIZATION, load_dataset, load_digits, to_tensor

    if data == "digits":
        train, _ = load_digits(seed=0)
        name = "digits"
    else:
        train = load_dataset("cifar10-valid", Path(data), "train")
        name = "cifar10-valid"
    need = n_batches * batch_size
    if need > len(train):
        raise ValueError(f"--batches x --batch-size = {need} exceeds the {len(train)} training images of {name}")
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:need].numpy()
    mean, std = NORMALIZATION[name]
    x, y = to_tensor(train.subset(idx), mean=mean, std=std)
    return tuple((x[k * batch_size:(k + 1) * batch_size], y[k * batch_size:(k + 1) * batch_size])
                 for k in range(n_batches)), name


def score_key(index: int, proxy: str, dataset: str, chash: str, seed: int) -> RunKey:
    return RunKey(space="nb201", arch=str(int(index)), dataset=dataset, scorer=proxy, config_hash=chash, seed=seed)


def run_score(cfg: ScoreConfig, on_progress: Progress = no_progress) -> ScoreResult:
    """Score every (arch, proxy) pair not stored yet, then one row per arch with all values."""
    from ..spaces import index_to_str, is_cut_off, nb201_channels

    indices = sample_archs(cfg.archs, cfg.sample or None, cfg.sample_seed)
    channels = nb201_channels(cfg.init_channels, cfg.cells)
    names = cfg.proxies
    with ResultStore(cfg.store) as st, st.acquire_lease(f"nasbeff score ({len(indices)} archs)",
                                                         interval_s=LEASE_INTERVAL_S):
        batch_data, dataset = proxy_batches(cfg.data, cfg.batches, cfg.batch_size, cfg.seed)
        config = {"kind": "proxies", "protocol": 1, "dataset": dataset, "batch_size": cfg.batch_size,
                  "batches": cfg.batches, "channels": list(channels), "num_classes": 10, "seed": cfg.seed}
        chash = config_hash(config)
        st.save_config(config)
        units = []
        for i in indices:
            todo = tuple(n for n in names if not (cfg.resume and st.is_done(score_key(i, n, dataset, chash, cfg.seed))))
            if todo:
                units.append((i, todo))
        job = ProxyJob(batch_data, tuple(channels), 10, cfg.seed, cfg.device)
        backend = make_backend(cfg.backend, cfg.threads, cfg.ray_address or None, cfg.ray_cpus or None, cfg.device,
                               workers=cfg.workers)
        done = len(indices) - len(units)
        on_progress(done, len(indices), f"scoring ({cfg.backend})")

        def commit(unit, result):
            nonlocal done
            index, todo = unit
            with st.transaction():
                for n in todo:
                    key = score_key(index, n, dataset, chash, cfg.seed)
                    if not cfg.resume:
                        st.unmark_done(key)
                    st.record_epoch(key, None, result[n], overwrite=bool(st.epochs_done(key)))
                    st.mark_done(key)
            done += 1
            on_progress(done, len(indices), f"arch {index}")

        try:
            backend.map_units(job, units, on_result=commit)
        finally:
            backend.close()
        rows = []
        for i in indices:
            got = {n: next(iter(list(st.rows(**score_key(i, n, dataset, chash, cfg.seed).as_filter()))), None)
                   for n in names}
            if any(v is None for v in got.values()):
                continue
            row = {"index": i, "arch_str": index_to_str(i), "cut_off": bool(is_cut_off(index_to_str(i)))}
            row.update({n: got[n].metrics["value"] for n in names})
            row.update({f"{n}_seconds": got[n].metrics["seconds"] for n in names})
            row["flags"] = "; ".join(f"{n}: {got[n].metrics['flag']}" for n in names if got[n].metrics["flag"])
            rows.append(row)
    if rows:
        write_csv(rows, cfg.out)
    summary, note = _summary(rows, names, cfg.truth, cfg.shared)
    return ScoreResult(rows, names, len(indices), summary, note, cfg.out if rows else None)


def _summary(rows: list[dict], names: tuple[str, ...], truth: str, shared: Path | None) -> tuple[list[dict], str]:
    """Per proxy: archs with a value, flagged archs, median seconds and Spearman vs ``truth``."""
    from ..evaluate import rank_correlation

    t, note = None, ""
    if truth and len(rows) >= 3:
        from ..benchmarks import NB201Table

        try:
            t = NB201Table(shared).column(truth, [r["index"] for r in rows])
        except (FileNotFoundError, KeyError) as e:
            note = f"no Spearman column: {e.args[0] if isinstance(e, KeyError) else e}"
    out = []
    for n in names:
        vals = np.array([np.nan if r[n] is None else r[n] for r in rows], dtype=float)
        secs = [r[f"{n}_seconds"] for r in rows]
        item = {"proxy": n, "archs": int(np.isfinite(vals).sum()), "flagged": sum(f"{n}: " in r["flags"] for r in rows),
                "median_seconds": float(np.median(secs)) if secs else float("nan"), "spearman": None}
        if t is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    item["spearman"] = rank_correlation(vals, t, n_boot=1000)
            except ValueError:
                pass
        out.append(item)
    return out, note
