"""Warm-up REA with a rank aggregate as the warm-up scorer: ranks within each warm-up pool, cost =
the parts' measured seconds (a group member: its group's whole pass), from a made-up score CSV."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.proxies import aggregate_scores
from nasbeff.runs.search import ColumnTable, SearchConfig, run_search
from nasbeff.optimizers import (PopulationScorer, WarmupREA, aggregate_scorer_from_csv, as_scorer,
                            scorer_from_csv)
from nasbeff.spaces import index_to_str

N = 15625
AGG = "rank:meco+aznas_trainability+flops"


def _write_scores(path, indices, seed: int = 0) -> dict[str, np.ndarray]:
    """A ``nasbeff score``-style CSV over ``indices``: meco, the AZ-NAS group (trainability and
    expressivity share a pass), flops; -inf for the first arch (cut off); per-part seconds."""
    rng = np.random.default_rng(seed)
    n = len(indices)
    cols = {"meco": rng.normal(size=n), "aznas_trainability": rng.normal(size=n),
            "aznas_expressivity": rng.normal(size=n), "flops": rng.integers(1, 50, n).astype(float),
            "meco_seconds": rng.uniform(0.2, 0.4, n), "aznas_trainability_seconds": np.full(n, 0.25),
            "aznas_expressivity_seconds": np.full(n, 0.25), "flops_seconds": np.full(n, 0.01)}
    cols["meco"][0] = -math.inf
    names = list(cols)
    with open(path, "w") as f:
        f.write("index,arch_str,cut_off," + ",".join(names) + ",flags\n")
        for k, i in enumerate(indices):
            f.write(f"{i},{index_to_str(int(i))},False," + ",".join(repr(float(cols[c][k])) for c in names) + ",\n")
    return cols


def test_population_scorer_ranks_within_the_population_given():
    vals = {"meco": {10: 1.0, 11: 2.0, 12: 3.0, 13: 4.0, 14: 5.0, 15: math.nan},
            "flops": {10: 5.0, 11: 4.0, 12: 3.0, 13: 2.0, 14: 1.0, 15: 1.0}}
    s = PopulationScorer("rank:meco+flops", vals, dict.fromkeys(range(10, 16), 0.5))
    assert s.pool.tolist() == [10, 11, 12, 13, 14]  # 15 lacks meco
    np.testing.assert_allclose(s.population_scores([10, 11, 12]),
                               [math.log(1 / 3) + 0.0, 2 * math.log(2 / 3), 0.0 + math.log(1 / 3)])
    assert s.score(12) == pytest.approx(2 * math.log(3 / 5)) and s.cost(11) == 0.5  # whole pool: 5 archs
    assert PopulationScorer("meanrank:meco+flops", vals, dict.fromkeys(range(10, 16), 1.0)).population_scores(
        [13, 14]).tolist() == [1.5, 1.5]
    with pytest.raises(ValueError, match="outside its pool"):
        s.population_scores([10, 15])
    with pytest.raises(ValueError, match="no values for"):
        PopulationScorer("rank:meco+zico", vals, {})
    with pytest.raises(ValueError, match="no arch has a value of every part"):
        PopulationScorer("rank:meco+flops", {"meco": {1: 1.0}, "flops": {2: 1.0}}, {})
    with pytest.raises(ValueError, match="costs must be finite and > 0"):
        PopulationScorer("rank:meco+flops", vals, dict.fromkeys(range(10, 16), 0.0))
    with pytest.raises(ValueError, match="not an aggregate name"):
        PopulationScorer("meco", vals, {})


def test_aggregate_scorer_from_csv_charges_whole_passes(tmp_path):
    idx = np.arange(200, 500)
    cols = _write_scores(tmp_path / "p.csv", idx)
    s = aggregate_scorer_from_csv(tmp_path / "p.csv", AGG)
    assert s.pool.tolist() == idx.tolist() and s.name == AGG
    # meco + the AZ-NAS pass (trainability's and expressivity's shares) + flops
    want = cols["meco_seconds"] + 0.25 + 0.25 + 0.01
    np.testing.assert_allclose([s.cost(int(i)) for i in idx], want)
    assert aggregate_scorer_from_csv(tmp_path / "p.csv", AGG, cost=2.0).cost(300) == 2.0
    with pytest.raises(ValueError, match=r"missing columns \['zico'"):
        aggregate_scorer_from_csv(tmp_path / "p.csv", "rank:meco+zico")
    (tmp_path / "noseconds.csv").write_text("index,meco,flops\n1,1.0,2.0\n2,2.0,1.0\n")
    with pytest.raises(ValueError, match="meco_seconds"):
        aggregate_scorer_from_csv(tmp_path / "noseconds.csv", "rank:meco+flops")


def test_warmup_ranks_within_each_pool_and_evolves_in_the_whole_space(tmp_path):
    idx = np.sort(np.random.default_rng(3).choice(np.arange(200, N), 400, replace=False))
    _write_scores(tmp_path / "p.csv", idx)
    warm = aggregate_scorer_from_csv(tmp_path / "p.csv", AGG)
    main = as_scorer("valid", np.arange(N, dtype=float) % 997, 100.0)  # whole space
    opt = WarmupREA(main, warm, pool_size=50)
    t = opt.run(20_000.0, 1)
    w = t.stage == 0
    draws = t.indices[w]
    assert w.sum() == 50 and set(draws.tolist()) <= set(idx.tolist())
    pooled = warm.population_scores(draws)  # ranked within this warm-up pool only
    np.testing.assert_allclose(t.scores[w], pooled)
    assert not np.allclose(pooled, [warm.score(int(i)) for i in draws])  # differs from ranking in all 400
    for k in (0, 9, 30, 49):  # best so far = best of the first k+1, ranked among themselves
        assert t.best[k] == draws[int(np.argmax(warm.population_scores(draws[: k + 1])))]
    np.testing.assert_allclose(t.costs[49], sum(warm.cost(int(i)) for i in draws))
    top = draws[np.argsort(-pooled, kind="stable")[:10]]
    assert t.indices[50:60].tolist() == top.tolist() and (t.stage[50:] == 1).all()
    assert not set(t.indices[60:].tolist()) <= set(idx.tolist())  # mutation leaves the CSV's archs
    assert t.warmup_scorer == AGG
    # the budget ends inside the warm-up: only warm-up records, best by the prefix
    short = opt.run(float(t.costs[19]) + 1e-9, 1)
    assert short.evaluations == 20 and (short.stage == 0).all()
    assert short.best_index == draws[int(np.argmax(warm.population_scores(draws[:20])))]
    assert opt.run(0.001, 1).evaluations == 0


class _Table(ColumnTable):
    """A made-up NB201 table with what the benchmark scorer reads (validation accuracy, train time)."""

    def metric(self, dataset, split, index=None, hp="200"):
        return self.column("c10_valid" if split == "x-valid" else "c10_test", index)

    def train_time(self, dataset, index=None):
        return self.column("train_time_s_c10valid", index)


def _table() -> ColumnTable:
    v = (np.arange(N) * 7919 % 1000) / 10.0
    return _Table([index_to_str(i) for i in range(N)],
                  {"c10_valid": v, "c10_test": v + 1.0, "train_time_s_c10valid": np.full(N, 1000.0)})


def test_run_search_with_an_aggregate_warmup(tmp_path):
    _write_scores(tmp_path / "p.csv", np.arange(200, 700))
    cfg = SearchConfig(methods=("warmup_rea",), warmup_scorer=AGG, warmup_pool=100, pool_csv=tmp_path / "p.csv",
                       seeds=2, budget=3000.0, points=3, out=tmp_path / "s.csv")
    assert cfg.needs_pool_csv and cfg.warmup_is_aggregate
    res = run_search(cfg, table=_table())
    assert [(r["method"], r["scorer"], r["warmup_scorer"]) for r in res.summary] == [("warmup_rea", "benchmark", AGG)]
    assert all((t.stage == 0).sum() == 100 for t in res.trajectories)
    assert all(r["warmup_scorer"] == AGG for r in res.rows)
    with pytest.raises(ValueError, match="empty scorer name"):
        SearchConfig(methods=("warmup_rea",), warmup_scorer="rank:meco+", pool_csv=tmp_path / "p.csv",
                     out=tmp_path / "s.csv")
    with pytest.raises(ValueError, match="needs --space nb201"):
        SearchConfig(methods=("warmup_rea",), warmup_scorer=AGG, space="sss", pool_csv=tmp_path / "p.csv",
                     out=tmp_path / "s.csv")
    with pytest.raises(FileNotFoundError, match="--pool-csv"):
        SearchConfig(methods=("warmup_rea",), warmup_scorer=AGG, pool_csv=tmp_path / "none.csv",
                     out=tmp_path / "s.csv")


def test_cli_search_with_an_aggregate_warmup(tmp_path, shared_data):
    _write_scores(tmp_path / "p.csv", np.arange(200, 700))
    res = CliRunner().invoke(app, ["search", "--method", "warmup_rea", "--warmup-scorer", AGG, "--warmup-pool", "100",
                                   "--pool-csv", str(tmp_path / "p.csv"), "--budget", "4000", "--seeds", "2",
                                   "--shared", str(shared_data), "--out", str(tmp_path / "s.csv")],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "warm-up" in res.output and "test acc" in res.output
    with open(tmp_path / "s.csv") as f:
        rows = list(__import__("csv").DictReader(f))
    assert rows and {r["warmup_scorer"] for r in rows} == {AGG} and all(80 < float(r["best_test_acc"]) < 95
                                                                         for r in rows if r["best_test_acc"])
    bad = CliRunner().invoke(app, ["search", "--method", "warmup_rea", "--warmup-scorer", "rank:meco+nope",
                                   "--pool-csv", str(tmp_path / "p.csv"), "--shared", str(shared_data),
                                   "--out", str(tmp_path / "s.csv")])
    assert bad.exit_code == 2 and "missing columns ['nope'" in bad.output


def test_scorer_from_csv_reads_a_proxy_column(tmp_path):
    """A single proxy column of the same CSV is an ordinary scorer (charged its seconds)."""
    cols = _write_scores(tmp_path / "p.csv", np.arange(200, 260))
    s = scorer_from_csv(tmp_path / "p.csv", "meco", "meco_seconds")
    assert s.score(200) == -math.inf and s.score(201) == pytest.approx(cols["meco"][1])
    assert s.cost(201) == pytest.approx(cols["meco_seconds"][1])
    assert aggregate_scores({"m": np.array([1.0, 2.0])}).tolist() == [math.log(0.5), 0.0]
