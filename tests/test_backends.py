"""Backends: the local backend, and Ray (a local instance with 2 CPUs) giving exactly the local
results on real small models: proxies of tiny NB201 networks, the score command, and the rank
command (workers committing epochs to the shared store)."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasbeff.executors.backends import LocalBackend, ProcessBackend, RayBackend, make_backend
from nasbeff.cli import app
from nasbeff.runs.score import ProxyJob
from nasbeff.spaces import nb201_channels

runner = CliRunner()
ARCHS = (0, 9, 123, 6111)  # 9 has none edges; 6111 is conv-heavy
PROXIES = ("naswot", "synflow", "snip", "jacov")


@pytest.fixture(scope="module")
def ray_backend():
    pytest.importorskip("ray")
    be = RayBackend(threads=1, num_cpus=2)
    yield be
    be.close()


def _job() -> ProxyJob:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 8, 8, generator=gen)
    y = torch.randint(0, 10, (32,), generator=gen)
    return ProxyJob(((x, y),), nb201_channels(4, 1), num_classes=10, seed=3)


def _threads(_unit) -> int:
    return torch.get_num_threads()


def test_local_backend_keeps_order_calls_back_and_fixes_threads():
    seen = []
    before = torch.get_num_threads()
    out = LocalBackend(threads=1).map_units(_threads, [1, 2, 3], on_result=lambda u, r: seen.append(u))
    assert out == [1, 1, 1] and seen == [1, 2, 3]
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        LocalBackend(threads=0)
    with pytest.raises(ValueError, match="local, ray"):
        make_backend("dask")


def _pid(_unit: int) -> int:
    import os
    import time

    time.sleep(0.05)  # so that both workers take units
    return os.getpid()


def test_process_backend_gives_the_in_process_results_in_unit_order():
    seen = []
    backend = ProcessBackend(workers=2, threads=1)
    try:
        out = backend.map_units(_threads, [1, 2, 3], on_result=lambda u, r: seen.append(u))
        assert out == [1, 1, 1] and sorted(seen) == [1, 2, 3]
        job = _job()
        units = [(i, PROXIES) for i in ARCHS[:2]]
        local = LocalBackend(threads=1).map_units(job, units)
        pids = backend.map_units(_pid, [0, 1, 2, 3])
        procs = backend.map_units(job, units)  # the same worker processes serve every call
        # two workers serve every call: the pids of all calls together are at most two (which worker
        # takes which unit is the pool's choice, so one call may see only one of them)
        assert len(set(pids) | set(backend.map_units(_pid, [0, 1, 2, 3]))) <= 2
    finally:
        backend.close()
    assert [{n: r[n]["value"] for n in PROXIES} for r in local] == [{n: r[n]["value"] for n in PROXIES} for r in procs]
    with pytest.raises(ValueError, match="workers"):
        ProcessBackend(workers=0)
    failing = ProcessBackend(workers=2)
    with pytest.raises(KeyError, match="unknown proxy"):  # a worker's error reaches the driver
        failing.map_units(ProxyJob(job.batches, job.channels), [(0, ("no_such_proxy",))])
    assert failing._pool is None  # and the workers are gone
    failing.close()  # closing twice is harmless


def test_the_executor_knows_nothing_of_the_domain():
    import ast
    from pathlib import Path

    import nasbeff.executors.backends as be

    tree = ast.parse(Path(be.__file__).read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.startswith(".") or m.startswith("nasbeff") for m in imported if m), imported
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]


def test_cpu_model_reads_cpuinfo_and_falls_back(monkeypatch, tmp_path):
    import builtins
    import platform

    import nasbeff.executors.backends as be

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Test CPU 9000 @ 1 GHz \nflags\t: a b\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: real_open(info if f == "/proc/cpuinfo" else f, *a, **k))
    assert be.cpu_model() == "Test CPU 9000 @ 1 GHz"
    info.write_text("processor\t: 0\n")  # no model line (some ARM kernels): the platform's answer
    monkeypatch.setattr(platform, "processor", lambda: "aarch64")
    assert be.cpu_model() == "aarch64"
    info.unlink()  # no /proc (macOS, Windows), and no answer from the platform either
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert be.cpu_model() == "unknown CPU"


def test_proxy_job_is_deterministic_and_order_free():
    job = _job()
    units = [(i, PROXIES) for i in ARCHS]
    a = LocalBackend().map_units(job, units)
    b = LocalBackend().map_units(job, units[::-1])[::-1]
    assert [{n: r[n]["value"] for n in PROXIES} for r in a] == [{n: r[n]["value"] for n in PROXIES} for r in b]
    assert all(np.isfinite(r[n]["value"]) for r in a for n in PROXIES)


def test_missing_ray_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match="pip install"):
        make_backend("ray")
    res = runner.invoke(app, ["score", "--data", "digits", "--archs", "0", "--backend", "ray", "--init-channels", "4",
                              "--cells", "1"])
    assert res.exit_code == 2 and "pip install" in res.output and "Traceback" not in res.output


def test_ray_gives_the_local_results_on_real_proxies(ray_backend):
    job = _job()
    units = [(i, PROXIES) for i in ARCHS]
    local = LocalBackend(threads=1).map_units(job, units)
    arrived = []
    remote = ray_backend.map_units(job, units, on_result=lambda u, r: arrived.append(u[0]))
    assert sorted(arrived) == sorted(ARCHS)
    for lo, re in zip(local, remote):
        assert {n: lo[n]["value"] for n in PROXIES} == {n: re[n]["value"] for n in PROXIES}
    # every task runs with exactly --threads torch threads (a lambda: pickled by value for the workers)
    assert ray_backend.map_units(lambda u: torch.get_num_threads(), [0, 1]) == [1, 1]


def test_ray_task_errors_reach_the_driver(ray_backend):
    with pytest.raises(KeyError, match="unknown proxy"):
        ray_backend.map_units(ProxyJob(_job().batches, nb201_channels(4, 1)), [(0, ("no_such_proxy",))])


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_score_command_on_ray_matches_local(tmp_path, ray_backend):
    args = ["score", "--data", "digits", "--archs", "0-3", "--init-channels", "4", "--cells", "1", "--proxies",
            "naswot,synflow,params", "--batch-size", "32", "--truth", "", "--quiet"]
    loc = runner.invoke(app, args + ["--store", str(tmp_path / "l.sqlite"), "--out", str(tmp_path / "l.csv")])
    ray_ = runner.invoke(app, args + ["--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "r.csv"),
                                      "--backend", "ray"])
    assert loc.exit_code == 0, loc.output
    assert ray_.exit_code == 0, ray_.output
    keep = ("index", "arch_str", "naswot", "synflow", "params")
    assert [{k: r[k] for k in keep} for r in _rows(tmp_path / "l.csv")] == \
        [{k: r[k] for k in keep} for r in _rows(tmp_path / "r.csv")]


def test_rank_command_on_ray_matches_local(tmp_path, tiny_cifar, ray_backend):
    args = ["rank", "--data", str(tiny_cifar), "--archs", "3", "--epochs", "3", "--train-size", "30",
            "--valid-size", "20", "--batch-size", "10", "--beta-samples", "16", "--threads", "1"]
    loc = runner.invoke(app, args + ["--store", str(tmp_path / "l" / "s.sqlite"), "--out", str(tmp_path / "l.csv")])
    ray_ = runner.invoke(app, args + ["--store", str(tmp_path / "r" / "s.sqlite"), "--out", str(tmp_path / "r.csv"),
                                      "--backend", "ray"])
    assert loc.exit_code == 0, loc.output
    assert ray_.exit_code == 0, ray_.output
    keep = ("index", "arch_str", "beff_pred", "lsv", "bsv", "final_beta_eff")
    assert [{k: r[k] for k in keep} for r in _rows(tmp_path / "l.csv")] == \
        [{k: r[k] for k in keep} for r in _rows(tmp_path / "r.csv")]
    bad = runner.invoke(app, args + ["--backend", "ray", "--workers", "2"])
    assert bad.exit_code == 2 and "--ray-cpus" in bad.output
