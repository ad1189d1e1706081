"""Issue 22's doors: outputs the file system refuses (even to root: /proc, /sys) are one line before
any work; degenerate search and sample settings are refused or flagged; intervals from a handful of
runs say so; no leftovers (the user's cache, empty stores of failed runs, the quick demo's figure
over the full demo's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.runs._common import check_writable
from nasbeff.runs.demo import RankDemoConfig
from nasbeff.runs.search import ColumnTable, SearchConfig, run_search
from nasbeff.spaces import index_to_str
from nasbeff.store import ResultStore, RunKey

runner = CliRunner()
N = 15625
LINUX_PSEUDO = pytest.mark.skipif(not (Path("/proc/self").is_dir() and Path("/sys/kernel").is_dir()),
                                  reason="needs Linux /proc and /sys")


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------------------------------------
# 1. Outputs: tried on the file system before any work
# ---------------------------------------------------------------------------------------------

@LINUX_PSEUDO
def test_check_writable_asks_the_file_system_and_leaves_nothing_behind(tmp_path):
    for path, text in ((Path("/proc/nasbeff_test.csv"), "cannot write to /proc"),
                       (Path("/sys/x.png"), "cannot write to /sys"),
                       (Path("/proc/a/b/x.csv"), "cannot create a folder in /proc"),
                       (Path("/dev/null"), "is not a regular file")):
        with pytest.raises(ValueError, match="^--out ") as info:
            check_writable(path, "--out")
        msg = str(info.value)
        assert str(path) in msg and text in msg and "\n" not in msg, msg
    (tmp_path / "old.csv").write_text("x")
    before = _listing(tmp_path)
    for ok in (tmp_path / "x.csv", tmp_path / "a" / "b" / "c.csv", tmp_path / "old.csv"):
        check_writable(ok, "--out")
    assert _listing(tmp_path) == before  # no probe file, no folder left


@LINUX_PSEUDO
def test_configs_refuse_proc_and_sys_outputs_on_construction(tmp_path):
    from nasbeff.runs.rank import RankConfig
    from nasbeff.runs.report import ReportConfig
    from nasbeff.runs.score import ScoreConfig

    with pytest.raises(ValueError, match="--png /sys/x.png: cannot write"):
        RankDemoConfig.quick(png=Path("/sys/x.png"))
    with pytest.raises(ValueError, match="--png /proc/x.png: cannot write"):
        RankDemoConfig(png=Path("/proc/x.png"))
    with pytest.raises(ValueError, match="--out /proc/nasbeff_test.csv: cannot write"):
        SearchConfig(out=Path("/proc/nasbeff_test.csv"))
    store = tmp_path / "s.sqlite"
    with pytest.raises(ValueError, match="--out /proc/nasbeff_test.csv: cannot write"):
        ScoreConfig(data="digits", archs=(0,), store=store, out=Path("/proc/nasbeff_test.csv"))
    with pytest.raises(ValueError, match="--store /sys/s.sqlite: cannot write"):
        ScoreConfig(data="digits", archs=(0,), store=Path("/sys/s.sqlite"), out=tmp_path / "o.csv")
    with pytest.raises(ValueError, match="--out /proc/nasbeff_test.csv: cannot write"):
        RankConfig(data=tmp_path, archs=(0,), store=store, out=Path("/proc/nasbeff_test.csv"))
    assert _listing(tmp_path) == []
    (tmp_path / "search.csv").write_text("method\n")
    with pytest.raises(ValueError, match="--out /proc/rep/scorers.png: cannot write"):
        ReportConfig(search_csv=tmp_path / "search.csv", out=Path("/proc/rep"))


@LINUX_PSEUDO
def test_cli_refuses_an_unwritable_png_or_out_before_any_work(tmp_path, monkeypatch):
    import nasbeff.runs.demo as demo

    def no_work(*a, **k):
        raise AssertionError("the demo started its work")

    monkeypatch.setattr(demo, "load_digits", no_work)
    res = runner.invoke(app, ["demo", "--quick", "--png", "/proc/x.png"])
    assert res.exit_code == 2, res.output
    assert "error: --png /proc/x.png: cannot write to /proc" in " ".join(res.output.split())
    res = runner.invoke(app, ["search", "--seeds", "1", "--out", "/proc/nasbeff_test.csv"])
    assert res.exit_code == 2 and "--out /proc/nasbeff_test.csv" in res.output, res.output


@LINUX_PSEUDO
def test_demo_command_with_a_proc_png_fails_at_once_with_one_error_line(tmp_path):
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "nasbeff", "demo", "--quick", "--png", "/proc/x.png"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    elapsed = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--png /proc/x.png" in errors[0] and "Traceback" not in out, out
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# 2. Degenerate search and sample settings; intervals from few runs
# ---------------------------------------------------------------------------------------------

class _Table(ColumnTable):
    """A made-up NB201 table: what the benchmark and the naswot_v1 / zen scorers read."""

    def metric(self, dataset, split, index=None, hp="200"):
        return self.column("c10_valid" if split == "x-valid" else "c10_test", index)

    def train_time(self, dataset, index=None):
        return self.column("train_time_s_c10valid", index)


@pytest.fixture(scope="module")
def table() -> _Table:
    v = (np.arange(N) * 7919 % 1000) / 10.0
    return _Table([index_to_str(i) for i in range(N)],
                  {"c10_valid": v, "c10_test": v + 1.0, "train_time_s_c10valid": np.full(N, 1000.0),
                   "naswot_v1_c10": v[::-1].copy(), "zen_c10": v.copy()})


def test_a_warmup_pool_larger_than_the_space_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--warmup-pool 99999 is larger than the 15,625 archs of the nb201 space"):
        SearchConfig(methods=("warmup_rea",), warmup_pool=99999, out=tmp_path / "s.csv")
    res = runner.invoke(app, ["search", "--method", "warmup_rea", "--warmup-pool", "99999", "--out",
                              str(tmp_path / "s.csv")])
    assert res.exit_code == 2 and "--warmup-pool 99999 is larger" in res.output, res.output
    SearchConfig(methods=("rea",), warmup_pool=99999, out=tmp_path / "s.csv")  # no warm-up: not used
    assert not (tmp_path / "s.csv").exists()


def test_a_warmup_that_must_use_up_the_budget_is_refused_before_any_run(tmp_path, table):
    cfg = SearchConfig(methods=("rea", "warmup_rea"), warmup_pool=N, budget=12000.0, seeds=1, points=2,
                       out=tmp_path / "s.csv")
    progress = []
    with pytest.raises(ValueError, match=r"warm-up of 15,625 archs by naswot_v1 costs at least 15,625 s, all of "
                                         r"--budget 12,000 s"):
        run_search(cfg, lambda *a: progress.append(a), table=table)
    assert progress == [] and not (tmp_path / "s.csv").exists()


def test_a_warmup_that_used_up_the_budget_and_few_seeds_are_noted(tmp_path, table):
    # 1000 s of warm-up, then 60 s per benchmark evaluation: the population of 10 does not fit 1500 s
    cfg = SearchConfig(methods=("warmup_rea",), warmup_pool=1000, budget=1500.0, seeds=2, points=2,
                       out=tmp_path / "s.csv")
    res = run_search(cfg, table=table)
    text = "\n".join(res.notes)
    assert "used up the budget in 2 of 2 runs" in text and "rests on 2 runs" in text, text
    assert "rests on 2 runs" in res.summary[0]["note"] and "used up the budget" in res.summary[0]["note"]
    res = run_search(SearchConfig(methods=("rea",), budget=3000.0, seeds=5, points=2, out=tmp_path / "t.csv"),
                     table=table)
    assert not any("rests on" in n for n in res.notes) and res.summary[0]["note"] in ("",) + tuple(res.notes)


def test_a_sample_larger_than_its_pool_is_one_line():
    from nasbeff.runs._common import check_sample

    with pytest.raises(ValueError, match="^--sample 500 is larger than the 200 archs of --archs$"):
        check_sample(500, 200)
    check_sample(200, 200)
    check_sample(0, 200)  # 0: all
    check_sample(None, 200)
    with pytest.raises(ValueError, match="--archs 20000 is larger than the 15,625 archs of the NB201 space"):
        RankDemoConfig(archs=20000)


def test_score_and_rank_refuse_a_sample_larger_than_archs(tmp_path):
    from nasbeff.runs.rank import RankConfig
    from nasbeff.runs.score import ScoreConfig

    with pytest.raises(ValueError, match="--sample 500 is larger than the 200 archs of --archs"):
        ScoreConfig(data="digits", archs=tuple(range(200)), sample=500, store=tmp_path / "s.sqlite",
                    out=tmp_path / "o.csv")
    with pytest.raises(ValueError, match="--sample 500 is larger than the 200 archs of --archs"):
        RankConfig(data=tmp_path, archs=tuple(range(200)), sample=500, store=tmp_path / "s.sqlite",
                   out=tmp_path / "o.csv")


def test_few_samples_note():
    from nasbeff.runs._common import few_samples_note

    assert few_samples_note(5) == "" and few_samples_note(100) == ""
    assert "rests on 3 runs" in few_samples_note(3) and "no 95% CI" in few_samples_note(1)
    assert "rests on 6 archs" in few_samples_note(6, "archs", min_n=10)


# ---------------------------------------------------------------------------------------------
# 3. Leftovers
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env_seen_by_a_module_fixture() -> str | None:
    return os.environ.get("NASBEFF_CACHE")


def test_module_fixtures_already_use_the_session_cache(env_seen_by_a_module_fixture, _cache_root):
    """A module-scoped fixture that loads data (test_zoo_select's tiny_zoo) runs before any
    function-scoped fixture: the private cache must be set for the whole session by then."""
    assert env_seen_by_a_module_fixture == str(_cache_root) == os.environ["NASBEFF_CACHE"]


def _key() -> RunKey:
    return RunKey(space="nb201", arch="1", dataset="digits", scorer="naswot", config_hash="h" * 16, seed=0)


def test_a_failed_run_leaves_no_new_empty_store(tmp_path):
    from nasbeff.runs._common import discard_unused_new_store

    db = tmp_path / "s.sqlite"
    with pytest.raises(ValueError, match="bad input"):
        with discard_unused_new_store(db), ResultStore(db) as st, st.acquire_lease("test", interval_s=30):
            st.save_config({"a": 1})
            raise ValueError("bad input")
    assert _listing(tmp_path) == []  # neither the store nor its -wal / -shm
    with pytest.raises(KeyboardInterrupt):
        with discard_unused_new_store(db), ResultStore(db):
            raise KeyboardInterrupt
    assert _listing(tmp_path) == []


def test_stores_that_existed_or_hold_results_are_kept(tmp_path):
    from nasbeff.runs._common import discard_unused_new_store

    db = tmp_path / "s.sqlite"
    with pytest.raises(RuntimeError):  # a result committed before the failure: kept
        with discard_unused_new_store(db), ResultStore(db) as st:
            st.record_epoch(_key(), None, {"value": 1.0})
            raise RuntimeError
    with ResultStore(db) as st:
        assert st.count() == 1
    old = tmp_path / "old.sqlite"
    ResultStore(old).close()  # an empty store from before the run: kept
    with pytest.raises(RuntimeError):
        with discard_unused_new_store(old), ResultStore(old):
            raise RuntimeError
    assert old.is_file()
    new = tmp_path / "new.sqlite"
    with discard_unused_new_store(new), ResultStore(new):  # success: kept, empty or not
        pass
    assert new.is_file()


def test_score_failing_after_opening_its_store_leaves_no_store(tmp_path):
    db = tmp_path / "s.sqlite"
    res = runner.invoke(app, ["score", "--data", "digits", "--archs", "0-3", "--batches", "40", "--batch-size", "64",
                              "--store", str(db), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "exceeds the 1347 training images" in res.output, res.output
    assert not db.exists()


def test_the_quick_demo_has_its_own_figure():
    quick, full = RankDemoConfig.quick(), RankDemoConfig()
    assert full.png == Path("runs/demo_ranking.png")
    assert quick.png is not None and quick.png != full.png and quick.png.parts[0] == "runs"
