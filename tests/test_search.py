"""Search by table lookup: REA / random / warm-up REA, scorers, pools, budget rule, no test access."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nasbeff.tables.ground_truth import HiddenTestAccuracyError, NB201Table, SearchView, check_split, shared_data_dir
from nasbeff.runs.search import ColumnTable, SearchConfig, SearchTable, load_table, run_search
from nasbeff.optimizers import (
    PROXY_COST_S, ArrayScorer, LazyScorer, PoolScorer, RandomSearch, RegularizedEvolution, Scorer, TableScorer,
    Trajectory, WarmupREA, as_scorer, benchmark_scorer, make_optimizer, make_scorer, run_seeds, scorer_from_csv,
    summarize,
)
from nasbeff.spaces import NATSSizeSpace
from nasbeff.spaces.nb201 import NB201_NUM_ARCHS, NB201Arch, cut_off_indices, index_to_arch

N = NB201_NUM_ARCHS
TARGET = NB201Arch(("nor_conv_3x3",) * 6).index


@pytest.fixture(scope="module")
def op_ids() -> np.ndarray:
    return np.array([index_to_arch(i).op_ids for i in range(N)], dtype=np.int64)


class FakeSource:
    """A synthetic 15,625-row table: validation = 90 - 2 * Hamming distance to TARGET (so the
    optimum is TARGET), 2000 s of 200-epoch training per arch, proxies with failure sentinels."""

    def __init__(self, op_ids: np.ndarray) -> None:
        ham = (op_ids != np.array(index_to_arch(TARGET).op_ids)).sum(axis=1)
        tiny = np.arange(N) * 1e-7  # strict order, optimum stays TARGET
        cut = cut_off_indices()
        zen = 50.0 - ham + tiny
        zen[cut] = -1e8
        nw = 1000.0 - 10 * ham + tiny
        nw[cut] = np.nan
        self.cols = {"c10_valid": 90.0 - 2 * ham - tiny, "c10_test": 91.0 - 2 * ham,
                     "train_time_s_c10valid": np.full(N, 2000.0), "zen_c10": zen, "naswot_v1_c10": nw}

    def __len__(self) -> int:
        return N

    def arch(self, index: int) -> str:
        return str(index_to_arch(index))

    def index_of(self, arch: str) -> int:
        return NB201Arch.from_str(arch).index

    def column(self, name, index=None):
        v = self.cols[name]
        return np.array(v) if index is None else (float(v[index]) if np.ndim(index) == 0 else v[index])

    def metric(self, dataset, split, index=None, hp="200"):
        ds, sp = check_split(dataset, split)
        col = {("cifar10-valid", "x-valid"): "c10_valid", ("cifar10", "ori-test"): "c10_test"}[(ds, sp)]
        return self.column(col, index)

    def params(self, dataset, index=None):
        return self.column("train_time_s_c10valid", index) * 0

    def train_time(self, dataset, index=None):
        return self.column("train_time_s_c10valid", index)

    def without_test(self) -> SearchView:
        return SearchView(self)


@pytest.fixture(scope="module")
def fake(op_ids) -> FakeSource:
    return FakeSource(op_ids)


@pytest.fixture(scope="module")
def view(fake) -> SearchView:
    return fake.without_test()


class FixedScorer:
    """Score = -index, fixed cost; optional pool."""

    def __init__(self, cost: float = 3.0, pool=None) -> None:
        self.name, self.pool, self._c = "fixed", pool, cost

    def score(self, index: int) -> float:
        return -float(index)

    def cost(self, index: int) -> float:
        return self._c


def _same(a: Trajectory, b: Trajectory) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("indices", "scores", "costs", "best", "stage"))


# ---------------------------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------------------------

def test_scorers_on_synthetic_view(view):
    b = make_scorer("benchmark", view)
    assert isinstance(b, Scorer) and b.name == "benchmark" and b.pool is None
    assert b.score(TARGET) == pytest.approx(90.0 - TARGET * 1e-7)
    assert b.cost(0) == pytest.approx(2000.0 * 12 / 200)
    assert benchmark_scorer(view, eval_overhead_s=5.0).cost(0) == pytest.approx(125.0)
    cut = int(cut_off_indices()[0])
    for name in ("zen", "naswot_v1"):
        s = make_scorer(name, view)
        assert s.score(cut) == -math.inf and math.isfinite(s.score(TARGET))
        assert s.cost(123) == PROXY_COST_S[name]
    t = TableScorer(view, "train_time_s_c10valid", "train_time_s_c10valid", cost_scale=0.5)
    assert t.name == "train_time_s_c10valid" and t.cost(7) == 1000.0


def test_pool_scorer_from_csv(tmp_path):
    p = tmp_path / "rank.csv"
    p.write_text("index,arch_str,beff_pred,gpu_seconds\n5,x,91.5,10.0\n3,y,nan,12.5\n9,z,92.0,8\n")
    s = PoolScorer.from_csv(p, "beff_pred", "gpu_seconds")
    assert s.name == "beff_pred" and s.pool.tolist() == [3, 5, 9]
    assert s.score(9) == 92.0 and s.score(3) == -math.inf and s.cost(3) == 12.5
    with pytest.raises(ValueError, match="not scorable"):
        s.score(4)
    assert PoolScorer.from_csv(p, "beff_pred", cost=2.0, name="beff").cost(5) == 2.0
    with pytest.raises(ValueError, match="missing columns"):
        PoolScorer.from_csv(p, "nope", "gpu_seconds")
    with pytest.raises(ValueError, match="exactly one"):
        PoolScorer.from_csv(p, "beff_pred")


def test_as_scorer_is_the_one_adapter(tmp_path):
    """An array (table column), a mapping (a CSV of proxies or predictions) and a live callable
    give scorers that behave alike; the callable runs once per arch and only when asked."""
    vals = np.linspace(0.0, 1.0, N)
    arr = as_scorer("a", vals, 2.0)
    some = {5: vals[5], 9: vals[9], 700: math.nan}
    mp = as_scorer("m", some, {5: 1.0, 9: 2.0, 700: 3.0})
    assert arr.pool is None and arr.score(9) == vals[9] and arr.cost(0) == 2.0
    assert mp.pool.tolist() == [5, 9, 700] and mp.score(700) == -math.inf and mp.cost(9) == 2.0
    assert as_scorer("m", some, 1.0, pool=[5, 9]).pool.tolist() == [5, 9]
    with pytest.raises(ValueError, match="pool archs without a score, e.g. 10"):
        as_scorer("m", some, 1.0, pool=[5, 10])
    with pytest.raises(ValueError, match="costs .* are required"):
        as_scorer("m", some)
    assert as_scorer("s", vals, 1.0, invalid_at_or_below=0.5).score(0) == -math.inf
    calls: list[int] = []

    def live(i: int) -> tuple[float, float]:
        calls.append(i)
        return vals[i], 0.25 + i % 2

    lazy = as_scorer("live", live)
    assert isinstance(lazy, LazyScorer) and isinstance(lazy, Scorer) and calls == []
    assert lazy.cost(3) == 1.25 and lazy.score(3) == vals[3] and lazy.cost(4) == 0.25 and calls == [3, 4]
    assert as_scorer("live", live, 7.0).cost(11) == 7.0
    with pytest.raises(ValueError, match="one fixed cost"):
        as_scorer("live", live, np.ones(N))
    with pytest.raises(ValueError, match="not scorable"):
        as_scorer("live", live, pool=[1, 2]).score(3)
    # the same search through each adapter: identical trajectories
    table_like = RegularizedEvolution(as_scorer("x", vals, 1.0)).run(200.0, 0)
    lazy_like = RegularizedEvolution(as_scorer("x", lambda i: (vals[i], 1.0))).run(200.0, 0)
    mapping_like = RegularizedEvolution(as_scorer("x", dict(enumerate(vals.tolist())), 1.0)).run(200.0, 0)
    assert _same(table_like, lazy_like) and _same(table_like, mapping_like)
    # a per-arch CSV (nasbeff score / nasbeff rank output)
    p = tmp_path / "scores.csv"
    p.write_text("index,arch_str,naswot,naswot_seconds\n3,a,10.5,0.4\n8,b,12.0,0.5\n")
    sc = scorer_from_csv(p, "naswot", "naswot_seconds")
    assert sc.pool.tolist() == [3, 8] and sc.score(8) == 12.0 and sc.cost(3) == 0.4
    binary = tmp_path / "scores.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(ValueError, match="scores.bin"):
        scorer_from_csv(binary, "naswot", cost=1.0)
    dup = tmp_path / "dup.csv"
    dup.write_text("index,v\n1,2\n1,3\n")
    with pytest.raises(ValueError, match="twice"):
        scorer_from_csv(dup, "v", cost=1.0)


# ---------------------------------------------------------------------------------------------
# Finding the optimum, determinism, budget rule
# ---------------------------------------------------------------------------------------------

def test_rea_finds_known_optimum(view):
    opt = RegularizedEvolution(make_scorer("benchmark", view))
    for seed in range(3):
        t = opt.run(120.0 * 400, seed)
        assert t.best_index == TARGET and t.method == "rea" and t.scorer == "benchmark"
    ws = WarmupREA(make_scorer("benchmark", view), make_scorer("zen", view), pool_size=200)
    assert ws.run(200 * 0.8 + 120.0 * 400, 0).best_index == TARGET


def test_tiny_pool_space(view, op_ids):
    """Pool = the 64 archs using only none / nor_conv_3x3: search stays inside and finds TARGET."""
    pool = np.flatnonzero(np.isin(op_ids, [0, 3]).all(axis=1))
    assert len(pool) == 64 and TARGET in pool
    n_conv = (op_ids[pool] == 3).sum(axis=1) + pool * 1e-6
    scorer = PoolScorer("tiny", pool, n_conv, 1.0)
    for opt in (RegularizedEvolution(scorer), RandomSearch(scorer),
                WarmupREA(scorer, PoolScorer("w", pool, -n_conv, 0.1), pool_size=20)):
        t = opt.run(300.0, 1)
        assert set(t.indices.tolist()) <= set(pool.tolist())
        assert t.best_index == TARGET
    # a random pool of 40 archs (mutations almost always leave it): projection keeps search inside
    rnd = np.random.default_rng(0).choice(N, 40, replace=False)
    s2 = PoolScorer("rnd", rnd, view.column("c10_valid", rnd), 1.0)
    t = RegularizedEvolution(s2).run(500.0, 0)
    assert set(t.indices.tolist()) <= set(rnd.tolist())
    assert t.best_index == int(rnd[np.argmax(view.column("c10_valid", rnd))])
    # a pool that is the whole space behaves exactly like no pool
    full = RegularizedEvolution(FixedScorer(pool=np.arange(N))).run(300.0, 4)
    assert _same(full, RegularizedEvolution(FixedScorer()).run(300.0, 4))
    # warm-up draws from the joint pool of warm-up and main scorer; evolution from the main scorer's pool
    w = WarmupREA(scorer, PoolScorer("w2", pool[:32], np.zeros(32), 0.1), pool_size=10, population_size=4)
    t = w.run(300.0, 0)
    assert set(t.indices[t.stage == 0].tolist()) <= set(pool[:32].tolist()) and (t.stage == 0).sum() == 10
    assert set(t.indices.tolist()) <= set(pool.tolist()) and not set(t.indices.tolist()) <= set(pool[:32].tolist())


def test_same_seed_same_trajectory(view):
    for opt in (RegularizedEvolution(make_scorer("benchmark", view)), RandomSearch(make_scorer("zen", view)),
                WarmupREA(make_scorer("benchmark", view), make_scorer("naswot_v1", view), pool_size=50)):
        a, b, c = opt.run(3000.0, 7), opt.run(3000.0, 7), opt.run(3000.0, 8)
        assert _same(a, b) and not _same(a, c)


def test_rea_children_are_one_edge_mutants(view, op_ids):
    t = RegularizedEvolution(make_scorer("benchmark", view), population_size=5, sample_size=2).run(6000.0, 3)
    assert t.evaluations > 20
    for k in range(5, t.evaluations):  # each child is one edge away from a member of the population
        dist = (op_ids[t.indices[k - 5:k]] != op_ids[t.indices[k]]).sum(axis=1)
        assert 1 in dist  # (0 as well when the child repeats a member)


def test_budget_rule_exact():
    opt = RandomSearch(FixedScorer(cost=3.0))
    assert opt.run(10.0, 0).evaluations == 3 and opt.run(9.0, 0).evaluations == 3
    assert opt.run(8.99, 0).evaluations == 2 and opt.run(2.0, 0).evaluations == 0
    empty = opt.run(2.0, 0)
    assert empty.best_index == -1 and empty.total_cost == 0.0 and empty.best_at(2.0) == -1


def test_budget_accounting_and_prefix(view):
    bench, nw = make_scorer("benchmark", view), make_scorer("naswot_v1", view)
    # per-arch costs that differ, so the stopping evaluation is not the same price as the others
    varied = ArrayScorer("varied", view.column("c10_valid"), 1.0 + np.arange(N) % 7 * 10.0)
    for opt in (RegularizedEvolution(varied), RandomSearch(varied), WarmupREA(bench, nw, pool_size=30)):
        small, big = opt.run(2500.0, 3), opt.run(9000.0, 3)
        sc = opt.scorer
        charged = [(nw if st == 0 else sc).cost(int(i)) for i, st in zip(small.indices, small.stage)]
        assert np.allclose(np.diff(small.costs, prepend=0.0), charged)
        assert small.total_cost <= 2500.0
        k = small.evaluations
        assert big.evaluations > k and big.costs[k] > 2500.0  # the next one would have exceeded
        assert _same(small, big.truncate(2500.0)) and big.best_at(2500.0) == small.best_index
        assert np.all(np.diff(small.costs) > 0)


def test_warmup_population_is_top_of_warmup(view):
    zen = make_scorer("zen", view)
    t = WarmupREA(make_scorer("benchmark", view), zen, pool_size=40, population_size=5).run(5000.0, 2)
    assert (t.stage[:40] == 0).all() and (t.stage[40:] == 1).all() and t.warmup_scorer == "zen"
    warm = t.indices[:40]
    top = warm[np.argsort(-np.array([zen.score(int(i)) for i in warm]), kind="stable")[:5]]
    assert t.indices[40:45].tolist() == top.tolist()
    assert t.best[39] == top[0]  # before main evaluations: the best warm-up arch


# ---------------------------------------------------------------------------------------------
# No test accuracy during search
# ---------------------------------------------------------------------------------------------

class CheatingScorer:
    name, pool = "cheat", None

    def __init__(self, view) -> None:
        self.view = view

    def score(self, index: int) -> float:
        return self.view.column("c10_test", index)

    def cost(self, index: int) -> float:
        return 1.0


def _all_optimizers(v):
    b, z = make_scorer("benchmark", v), make_scorer("zen", v)
    return [RegularizedEvolution(b), RandomSearch(b), RegularizedEvolution(z), RandomSearch(z),
            WarmupREA(b, make_scorer("naswot_v1", v), pool_size=20)]


def test_search_never_reads_test(fake, view, shared_data_or_none):
    for opt in _all_optimizers(view):
        assert opt.run(1500.0, 0).evaluations > 0
    for opt in (RegularizedEvolution(CheatingScorer(view)), RandomSearch(CheatingScorer(view))):
        with pytest.raises(HiddenTestAccuracyError):
            opt.run(100.0, 0)
    with pytest.raises(HiddenTestAccuracyError):
        TableScorer(fake, "c10_test", 1.0)  # a raw source is wrapped in its search view first
    with pytest.raises(ValueError, match="SearchView"):
        TableScorer(object(), "c10_valid", 1.0)
    if shared_data_or_none is not None:  # the real table, through its search view
        real = NB201Table(shared_data_or_none).without_test()
        for opt in _all_optimizers(real):
            assert opt.run(1500.0, 0).evaluations > 0
        with pytest.raises(HiddenTestAccuracyError):
            RandomSearch(CheatingScorer(real)).run(10.0, 0)
        b = make_scorer("benchmark", real)
        assert b.score(6111) == pytest.approx(91.6067)
        assert b.cost(6111) == pytest.approx(real.train_time("cifar10-valid", 6111) * 12 / 200)
        assert make_scorer("zen", real).score(int(cut_off_indices()[0])) == -math.inf


@pytest.fixture(scope="module")
def shared_data_or_none():
    d = shared_data_dir()
    return d if d is not None and (d / "nb201" / "nb201_ground_truth.csv").is_file() else None


# ---------------------------------------------------------------------------------------------
# Summaries and errors
# ---------------------------------------------------------------------------------------------

def test_summarize(view, fake):
    runs = run_seeds(RegularizedEvolution(make_scorer("benchmark", view)), 4000.0, range(5))
    truth = fake.column("c10_test")  # looked up after the search
    rows = summarize(runs, truth, budgets=(100.0, 2000.0, 4000.0))
    assert [r["budget_s"] for r in rows] == [100.0, 2000.0, 4000.0]
    assert rows[0]["n"] == 0 and math.isnan(rows[0]["mean"]) and rows[0]["runs"] == 5
    acc = truth[[t.best_at(2000.0) for t in runs]]
    assert rows[1]["mean"] == pytest.approx(acc.mean()) and rows[1]["std"] == pytest.approx(acc.std(ddof=1))
    assert rows[1]["ci95"] == pytest.approx(2.776445 * acc.std(ddof=1) / math.sqrt(5), rel=1e-5)
    assert summarize(runs, lambda i: truth[i], budgets=(4000.0,))[0]["mean"] == rows[2]["mean"]
    with pytest.raises(ValueError, match="exceeds"):
        summarize(runs, truth, budgets=(5000.0,))
    with pytest.raises(ValueError):
        summarize([], truth)


def test_errors(view):
    b = make_scorer("benchmark", view)
    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="budget_s"):
            RegularizedEvolution(b).run(bad, 0)
    with pytest.raises(ValueError, match="seed"):
        RandomSearch(b).run(10.0, -1)
    with pytest.raises(ValueError, match="population_size"):
        RegularizedEvolution(b, population_size=2, sample_size=3)
    with pytest.raises(ValueError, match="pool_size"):
        WarmupREA(b, b, pool_size=5, population_size=10)
    with pytest.raises(ValueError, match="unknown scorer 'synflow'"):
        make_scorer("synflow", view)
    with pytest.raises(ValueError, match="unknown method"):
        make_optimizer("bananas", b)
    with pytest.raises(ValueError, match="warmup_scorer"):
        make_optimizer("warmup_rea", b)
    assert isinstance(make_optimizer("warmup_rea", b, warmup_scorer=b, pool_size=10), WarmupREA)
    with pytest.raises(ValueError, match="Scorer protocol"):
        RandomSearch(object())
    with pytest.raises(ValueError, match="mutation"):
        RegularizedEvolution(b, mutation="flip")
    with pytest.raises(ValueError, match="cost"):
        RandomSearch(FixedScorer(cost=0.0)).run(10.0, 0)
    with pytest.raises(ValueError, match="costs must be finite"):
        ArrayScorer("x", np.zeros(N), 0.0)
    with pytest.raises(ValueError, match="unique"):
        PoolScorer("p", [1, 1], [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="0..15624"):
        PoolScorer("p", [N], [0.0], 1.0)
    with pytest.raises(ValueError, match="entries"):
        PoolScorer("p", [1, 2], [0.0], 1.0)
    with pytest.raises(ValueError, match="do not overlap"):
        WarmupREA(PoolScorer("a", [1], [0.0], 1.0), PoolScorer("b", [2], [0.0], 1.0), pool_size=1,
                  population_size=1, sample_size=1)
    with pytest.raises(ValueError, match="extend"):
        RandomSearch(b).run(100.0, 0).truncate(200.0)


# ---------------------------------------------------------------------------------------------
# Golden trajectories (recorded on main fdbfdd1, before search consumed the space protocol)
# ---------------------------------------------------------------------------------------------

def _digest(t: Trajectory) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in ("indices", "best", "costs", "stage"):
        h.update(np.ascontiguousarray(getattr(t, f)).tobytes())
    return h.hexdigest()[:16]


def _golden_runs(view) -> dict[str, tuple[int, int, str]]:
    """(evaluations, best_index, digest of indices/best/costs/stage) per run: REA, random and
    warm-up REA (naswot_v1) with the benchmark scorer, budget 12000 s, seeds 0-2; REA with uniform
    mutation; REA and warm-up REA inside a random pool of 300 archs."""
    b, nw = make_scorer("benchmark", view), make_scorer("naswot_v1", view)
    pool = np.sort(np.random.default_rng(0).choice(N, 300, replace=False))
    bp, zp = make_scorer("benchmark", view, pool=pool), make_scorer("zen", view, pool=pool)
    opts = {"rea": RegularizedEvolution(b), "random": RandomSearch(b), "warmup_rea": WarmupREA(b, nw, pool_size=1000),
            "rea_uniform": RegularizedEvolution(b, mutation="uniform"), "pool_rea": RegularizedEvolution(bp),
            "pool_warmup_rea": WarmupREA(bp, zp, pool_size=100)}
    out = {}
    for name, opt in opts.items():
        for seed in range(3):
            t = opt.run(12000.0, seed)
            out[f"{name}/{seed}"] = (t.evaluations, t.best_index, _digest(t))
    return out


GOLDEN_FAKE: dict[str, tuple[int, int, str]] = {
    'pool_rea/0': (100, 82, 'ab690216760f5f1a'),
    'pool_rea/1': (100, 82, 'bfffbc49d5e1115a'),
    'pool_rea/2': (100, 629, '75c901d4f65aedab'),
    'pool_warmup_rea/0': (199, 82, '4f298ebaa4c01bf6'),
    'pool_warmup_rea/1': (199, 82, '5a6a3a0b8f84c38d'),
    'pool_warmup_rea/2': (199, 82, 'cd7c327ebb7d78e1'),
    'random/0': (100, 5590, 'c53e926ac713ad32'),
    'random/1': (100, 2510, '34414dd06cf544d2'),
    'random/2': (100, 11705, '97bcc44ffb98c6ef'),
    'rea/0': (100, 1462, 'ab997e6bc22f71ee'),
    'rea/1': (100, 1462, '25099d282d5a5d09'),
    'rea/2': (100, 3456, 'c733f46b73b74112'),
    'rea_uniform/0': (100, 1869, 'e00b34257a876714'),
    'rea_uniform/1': (100, 7209, '84c0ab16b81c1fc3'),
    'rea_uniform/2': (100, 5836, 'ab31b97f1cb21e37'),
    'warmup_rea/0': (1091, 1654, '03d733d0f7aab941'),
    'warmup_rea/1': (1091, 1462, '6ec1ae07d81259f7'),
    'warmup_rea/2': (1091, 1462, 'f981564c5dfac0ab'),
}
GOLDEN_REAL: dict[str, tuple[int, int, str]] = {
    'pool_rea/0': (99, 5645, '7dc1bb723d524987'),
    'pool_rea/1': (97, 10545, '45869794c0dcc4e0'),
    'pool_rea/2': (103, 12761, '999bf458b9226e4b'),
    'pool_warmup_rea/0': (202, 12761, 'beb48200e013dc2e'),
    'pool_warmup_rea/1': (203, 10360, 'eb01e898b2f01978'),
    'pool_warmup_rea/2': (197, 12761, '11925b04c7fcf1fb'),
    'random/0': (109, 11400, 'cdbcc56cf065ee61'),
    'random/1': (108, 10676, 'c92344e34fa00e0b'),
    'random/2': (107, 13925, 'a73b982776a9225a'),
    'rea/0': (94, 9930, '480a0e95c897c189'),
    'rea/1': (98, 1317, '433eb1845c8cd713'),
    'rea/2': (102, 3731, '6d3718f34453e95c'),
    'rea_uniform/0': (90, 6111, 'fd65cf5275001fd8'),
    'rea_uniform/1': (102, 655, 'e4121093332ef5af'),
    'rea_uniform/2': (91, 81, '36ffee8c947fefa5'),
    'warmup_rea/0': (1081, 8135, 'fb1c27f3ab802f01'),
    'warmup_rea/1': (1079, 13539, '00f70584eec03059'),
    'warmup_rea/2': (1098, 11146, '395cae1a7a288169'),
}


def test_golden_trajectories_synthetic(view):
    assert _golden_runs(view) == GOLDEN_FAKE


def test_golden_trajectories_real(shared_data_or_none):
    if shared_data_or_none is None:
        pytest.skip("../shared/data is absent")
    assert _golden_runs(NB201Table(shared_data_or_none).without_test()) == GOLDEN_REAL


# ---------------------------------------------------------------------------------------------
# The search workflow (nasbeff.runs.search)
# ---------------------------------------------------------------------------------------------

GOLDEN_CSV = Path(__file__).resolve().parents[1] / "experiments" / "refactor_golden" / "search_before.csv"


@pytest.mark.parametrize("kw, msg", [
    ({"methods": ("bananas",)}, "unknown --method 'bananas'"),
    ({"methods": ()}, "--method is empty"),
    ({"methods": "rea,rea"}, "lists a name twice"),
    ({"scorers": ("synflow",)}, "unknown --scorer 'synflow'"),
    ({"scorers": ("zen",), "space": "nats-size"}, "unknown --scorer 'zen'; choose from benchmark, beff"),
    ({"warmup_scorer": "nope"}, "unknown --warmup-scorer 'nope'"),
    ({"methods": ("warmup_rea",), "space": "sss"}, "unknown --warmup-scorer 'naswot_v1'"),
    ({"warmup_pool": 0}, "--warmup-pool >= 1"),
    ({"budget": 0.0}, "--budget must be a number > 0"),
    ({"budget": math.nan}, "--budget"),
    ({"budget": math.inf}, "--budget"),
    ({"budget": "12000"}, "--budget"),
    ({"seeds": 0}, "--seeds >= 1"),
    ({"seeds": 2.5}, "--seeds must be an integer"),
    ({"seed": -1}, "--seed >= 0"),
    ({"points": 0}, "--points >= 1"),
    ({"space": "nats"}, "unknown --space 'nats'"),
    ({"pool_column": ""}, "--pool-column"),
])
def test_search_config_rejects(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg) as err:
        SearchConfig(**{"out": tmp_path / "s.csv", **kw})
    assert "\n" not in str(err.value)


def test_search_config_paths(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot write to"):
        SearchConfig(out=blocker / "sub" / "s.csv")
    with pytest.raises(ValueError, match="is a folder"):
        SearchConfig(out=tmp_path)
    with pytest.raises(FileNotFoundError, match="--pool-csv"):
        SearchConfig(scorers=("beff",), pool_csv=tmp_path / "none.csv", out=tmp_path / "s.csv")
    with pytest.raises(FileNotFoundError, match="--shared"):
        SearchConfig(shared=tmp_path / "nowhere", out=tmp_path / "s.csv")
    cfg = SearchConfig(methods="rea,random", space="tss", budget=100, out=str(tmp_path / "s.csv"))  # type: ignore
    assert cfg.methods == ("rea", "random") and cfg.space == "nb201" and cfg.budget == 100.0
    assert isinstance(cfg.out, Path) and SearchConfig(space="sss", out=tmp_path / "s.csv").space == "nats-size"
    with pytest.raises(ValueError, match="needs --shared"):
        run_search(SearchConfig(space="nats-size", out=tmp_path / "s.csv"))


def test_run_search_nb201_matches_golden_rows(shared_data_or_none, tmp_path):
    """The 3-seed search recorded before the redesign (main fdbfdd1), byte for byte."""
    if shared_data_or_none is None:
        pytest.skip("../shared/data is absent")
    cfg = SearchConfig(methods=("rea", "random", "warmup_rea"), seeds=3, shared=shared_data_or_none,
                       out=tmp_path / "search.csv")
    seen = []
    res = run_search(cfg, lambda done, total, label: seen.append((done, total)))
    assert res.out.read_bytes() == GOLDEN_CSV.read_bytes()
    assert seen[0] == (0, 9) and seen[-1] == (9, 9) and len(res.trajectories) == 9
    assert [(r["method"], r["runs"], r["n"]) for r in res.summary] == [("rea", 3, 3), ("random", 3, 3),
                                                                        ("warmup_rea", 3, 3)]
    assert len(res.rows) == 9 * 23 and not list(tmp_path.glob("*.tmp"))


def test_run_search_nb201_pool(shared_data_or_none, tmp_path):
    if shared_data_or_none is None:
        pytest.skip("../shared/data is absent")
    table = NB201Table(shared_data_or_none)
    pool = np.sort(np.random.default_rng(1).choice(N, 60, replace=False))
    csv_path = tmp_path / "rank.csv"
    csv_path.write_text("index,beff_pred,gpu_seconds\n" + "".join(
        f"{i},{table.column('c10_valid', int(i)) - 1.0},{30.0}\n" for i in pool))
    cfg = SearchConfig(methods=("rea", "warmup_rea"), scorers=("benchmark", "beff"), warmup_scorer="beff",
                       warmup_pool=40, in_pool=True, pool_csv=csv_path, seeds=3, budget=1500.0, points=3,
                       shared=shared_data_or_none, out=tmp_path / "s.csv")  # 40 x 30 s of warm-up fit the budget
    res = run_search(cfg, table=table)
    assert {r["best_index"] for r in res.rows} <= set(pool.tolist()) | {-1}
    assert [(r["method"], r["scorer"], r["warmup_scorer"]) for r in res.summary] == [
        ("rea", "benchmark", None), ("rea", "beff", None), ("warmup_rea", "benchmark", "beff"),
        ("warmup_rea", "beff", "beff")]


class _RecordingTable(ColumnTable):
    """Records which columns are read, in order (the view and the table alike)."""

    reads: list[str]

    def column(self, name, index=None):
        self.reads.append(name)
        return super().column(name, index)


def _size_truth(seed: int = 0) -> tuple[list[str], dict[str, np.ndarray]]:
    """A made-up NATS-size ground truth: validation rises with total width (optimum
    64:64:64:64:64), test = validation + noise, 90-epoch training time grows with width."""
    sz = NATSSizeSpace()
    rng = np.random.default_rng(seed)
    pos = np.array([sz.encode(i) for i in range(sz.size)], dtype=np.float64)
    valid = 70.0 + 0.5 * pos.sum(axis=1) + rng.normal(0.0, 0.3, sz.size)
    valid[-1] = valid.max() + 1.0
    return [sz.arch(i) for i in range(sz.size)], {
        "c10_valid": valid, "c10_test": valid + rng.normal(0.0, 0.2, sz.size),
        "train_time_s_c10valid": 50.0 + 2.0 * pos.sum(axis=1)}


def test_run_search_size_space_with_a_table_made_here(tmp_path):
    archs, cols = _size_truth()
    table = _RecordingTable(archs, cols, "made-here")
    table.reads = []
    assert isinstance(table, SearchTable)
    cfg = SearchConfig(methods=("rea", "random"), seeds=3, budget=20000.0, points=4, space="nats-size",
                       out=tmp_path / "size.csv")
    res = run_search(cfg, table=table)
    assert table.reads[-1] == "c10_test" and table.reads.count("c10_test") == 1  # read after the search
    rea = [t for t in res.trajectories if t.method == "rea"]
    top = np.argsort(-cols["c10_valid"])[:33]  # the best 0.1% of the space by validation
    assert all(t.best_index in top for t in rea) and 32767 in {t.best_index for t in rea}  # REA climbs the gradient
    assert all(t.indices.max() < 32768 for t in res.trajectories)
    cost = cols["train_time_s_c10valid"][res.trajectories[0].indices[0]] * 12 / 90
    assert res.trajectories[0].costs[0] == pytest.approx(cost)
    last = [r for r in res.rows if r["method"] == "rea" and r["budget_s"] == 20000.0]
    assert "64:64:64:64:64" in [r["best_arch_str"] for r in last]
    assert res.summary[0]["mean"] == pytest.approx(np.mean(cols["c10_test"][[t.best_index for t in rea]]))
    assert res.summary[0]["mean"] > res.summary[1]["mean"]  # REA beats random search here
    text = res.out.read_text().splitlines()
    assert text[0].startswith("method,scorer,warmup_scorer,seed,budget_s") and len(text) == 1 + len(res.rows)

    # the same ground truth as a CSV given by --shared, and a beff pool of size archs
    truth_csv = tmp_path / "nats_size_truth.csv"
    with open(truth_csv, "w") as f:
        f.write("index,arch_str,c10_valid,c10_test,train_time_s_c10valid\n")
        for i, a in enumerate(archs):
            vals = ",".join(repr(float(cols[c][i])) for c in ("c10_valid", "c10_test", "train_time_s_c10valid"))
            f.write(f"{i},{a},{vals}\n")
    pool = np.random.default_rng(3).choice(32768, 100, replace=False)
    pool_csv = tmp_path / "size_rank.csv"
    pool_csv.write_text("index,beff_pred,gpu_seconds\n" + "".join(
        f"{i},{cols['c10_valid'][i]},{10.0}\n" for i in pool))
    cfg2 = SearchConfig(methods=("rea",), scorers=("benchmark", "beff"), in_pool=True, pool_csv=pool_csv, seeds=3,
                        budget=3000.0, points=2, space="sss", shared=truth_csv, out=tmp_path / "size2.csv")
    res2 = run_search(cfg2)
    best = int(pool[np.argmax(cols["c10_valid"][pool])])
    assert {t.best_index for t in res2.trajectories if t.scorer == "beff"} == {best}
    assert {r["best_index"] for r in res2.rows} <= set(pool.tolist()) | {-1}


def test_size_table_sources(tmp_path):
    archs, cols = _size_truth(1)

    class FakeSSS:  # the slice of the nats_bench sss API that from_nats_api reads
        def __len__(self) -> int:
            return len(archs)

        def arch(self, i: int) -> str:
            return archs[i]

        def get_more_info(self, i, dataset, hp, is_random):
            assert hp == "90" and is_random is False
            if dataset == "cifar10-valid":
                return {"valid-accuracy": cols["c10_valid"][i], "train-all-time": cols["train_time_s_c10valid"][i]}
            return {"test-accuracy": cols["c10_test"][i]}

    t = ColumnTable.from_nats_api(FakeSSS())
    assert t.arch(5) == archs[5] and t.column("c10_test", 7) == cols["c10_test"][7]
    with pytest.raises(HiddenTestAccuracyError):
        t.without_test().column("c10_test")
    bad = tmp_path / "short.csv"
    bad.write_text("index,arch_str,c10_valid\n0,8:8:8:8:8,50\n")
    with pytest.raises(ValueError, match="0..32767"):
        load_table("nats-size", bad)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(ValueError, match="bin.csv is not a text CSV"):
        load_table("nats-size", binary)
