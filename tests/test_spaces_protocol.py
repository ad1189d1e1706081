"""The SearchSpace protocol: both spaces conform, get_space, and search over the size space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasbeff.optimizers import RandomSearch, RegularizedEvolution, WarmupREA, as_scorer
from nasbeff.spaces import (
    NATS_SIZE_NUM_ARCHS, NB201_NUM_ARCHS, NATSSizeSpace, NB201Space, SearchSpace, get_space, index_to_arch,
    mutate_arch, size_index_to_arch,
)

SPACES = [NB201Space(), NB201Space("uniform"), NATSSizeSpace()]
# (choices per arch d, values per choice k): neighbours = d * (k - 1)
SHAPE = {"nb201": (6, 5), "nats-size": (5, 8)}


@pytest.mark.parametrize("space", SPACES, ids=repr)
def test_conforms(space):
    assert isinstance(space, SearchSpace)
    d, k = SHAPE[space.name]
    assert space.size == len(space) == k ** d
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(2000)]
    assert all(isinstance(i, int) and 0 <= i < space.size for i in draws)
    assert len(set(draws)) > 1800  # uniform over 15,625 / 32,768: few repeats
    for parent in draws[:300]:
        child = space.mutate(parent, rng)
        a, b = np.array(space.encode(parent)), np.array(space.encode(child))
        assert len(a) == d and (a != b).sum() == 1 and 0 <= child < space.size
    for i in (0, draws[0], space.size - 1):
        nb = space.neighbours(i)
        assert len(nb) == len(set(nb)) == d * (k - 1) and i not in nb
        assert all((np.array(space.encode(j)) != np.array(space.encode(i))).sum() == 1 for j in nb)
        s = space.arch(i)
        assert isinstance(s, str) and space.index(s) == i and space.index(i) == i


def test_arch_objects_and_index_order():
    nb, sz = NB201Space(), NATSSizeSpace()
    assert nb.index(index_to_arch(6111)) == 6111 and nb.arch(6111) == str(index_to_arch(6111))
    assert sz.index(size_index_to_arch(123)) == 123 and sz.index((8, 8, 8, 8, 8)) == 0
    assert sz.arch(NATS_SIZE_NUM_ARCHS - 1) == "64:64:64:64:64"
    with pytest.raises(ValueError):
        nb.index("junk")
    with pytest.raises(ValueError):
        sz.index("64:64")


def test_nb201_mutation_matches_the_arch_helper():
    """``NB201Space.mutate`` draws exactly what ``mutate_arch`` draws (golden search trajectories)."""
    for scheme in ("nats", "uniform"):
        g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
        sp = NB201Space(scheme)
        for i in range(0, NB201_NUM_ARCHS, 997):
            assert sp.mutate(i, g1) == mutate_arch(i, g2, scheme=scheme).index
    with pytest.raises(ValueError, match="mutation must be"):
        NB201Space("flip")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["nb201", "nats-size"])
def test_build_model(name):
    space = get_space(name)
    kw = {"C": 4, "N": 1} if name == "nb201" else {}
    m = space.build_model(space.size - 1, num_classes=7, **kw)
    assert isinstance(m, torch.nn.Module) and m(torch.randn(2, 3, 16, 16)).shape == (2, 7)


def test_get_space():
    assert get_space("nb201") == get_space("tss") == NB201Space()
    assert get_space("nats-size") == get_space("sss") == NATSSizeSpace()
    with pytest.raises(ValueError, match=r"unknown search space 'nats'; choose one of nb201 \(alias tss\), nats-size"):
        get_space("nats")


def _size_scorer(space):
    """Validation = 60 + 5 * sum of width positions (optimum 64:64:64:64:64), 1 s per arch."""
    pos = np.array([space.encode(i) for i in range(space.size)])
    return as_scorer("toy", 60.0 + 5 * pos.sum(axis=1) + np.arange(space.size) * 1e-9, 1.0, space=space)


def test_search_on_the_size_space():
    sz = NATSSizeSpace()
    scorer = _size_scorer(sz)
    t = RegularizedEvolution(scorer, space=sz).run(400.0, 0)
    assert t.best_index == sz.size - 1 and t.indices.max() < sz.size
    assert RandomSearch(scorer, space=sz).run(50.0, 1).evaluations == 50
    assert WarmupREA(scorer, scorer, pool_size=50, space=sz).run(500.0, 2).best_index == sz.size - 1
    pool = np.random.default_rng(0).choice(sz.size, 200, replace=False)
    pooled = as_scorer("toy_pool", {int(i): scorer.score(int(i)) for i in pool}, 1.0, space=sz)
    t = RegularizedEvolution(pooled, space=sz).run(300.0, 0)
    assert set(t.indices.tolist()) <= set(pool.tolist())
    assert t.best_index == int(pool[np.argmax([scorer.score(int(i)) for i in pool])])


def test_space_and_scorer_must_agree():
    sz = NATSSizeSpace()
    with pytest.raises(ValueError, match="covers 32768 archs but the space nb201 has 15625"):
        RegularizedEvolution(_size_scorer(sz))
    with pytest.raises(ValueError, match="covers 15625 archs"):
        RandomSearch(as_scorer("x", np.zeros(NB201_NUM_ARCHS), 1.0), space=sz)
    with pytest.raises(ValueError, match="mutation configures the default NB201 space"):
        RegularizedEvolution(_size_scorer(sz), mutation="uniform", space=sz)
    with pytest.raises(ValueError, match="SearchSpace protocol"):
        RandomSearch(as_scorer("x", np.zeros(NB201_NUM_ARCHS), 1.0), space=object())  # type: ignore[arg-type]
