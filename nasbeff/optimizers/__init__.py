"""Search algorithms (imports :mod:`nasbeff.tables`, :mod:`nasbeff.spaces`, :mod:`nasbeff.proxies` and
:mod:`nasbeff.predictors` only): architecture search by table lookup on any
:class:`~nasbeff.spaces.SearchSpace` (default NAS-Bench-201; also NATS-Bench size): random search,
regularized evolution (REA), a zero-cost warm-up REA and, on NB201, a predictor-guided search
(:mod:`.predictor_guided`), with pluggable scorers and a simulated time budget.

Scorers
-------
A :class:`Scorer` is a small protocol (NASLib style): ``score(index)`` (higher is better),
``cost(index)`` (simulated seconds charged for one evaluation), a ``name`` and a ``pool``: the
sorted benchmark indices it can score, or ``None`` for the whole space. Optimizers sample and
mutate only inside the (joint) pool.

:func:`as_scorer` is the one adapter from a per-arch score source to a scorer: an array over the
space (a table column), a mapping ``index -> score`` (a CSV of ``nasbeff score`` proxies or
``nasbeff rank`` predictions, :func:`scorer_from_csv`) or a live callable
``index -> (score, seconds)`` evaluated on demand (:class:`LazyScorer`). The named scorers below
are built through it.

* :func:`benchmark_scorer` (``'benchmark'``): the NATS-Bench simulated baseline. NATS scores an
  arch with its 12-epoch ``cifar10-valid`` validation accuracy; the offline table lacks that, so
  the stand-in is the 200-epoch x-valid seed mean (``c10_valid``), charged
  ``train_time_s_c10valid * 12 / 200`` seconds (the 12-epoch share of the 200-epoch training
  time). The stand-in is a much stronger signal than the 12-epoch accuracy, so searches with it
  do better than the published numbers.
* ``'zen'`` / ``'naswot_v1'``: published full-space proxy columns ``zen_c10`` / ``naswot_v1_c10``
  (:func:`table_scorer`); the 341 cut-off archs (NaN / ``-1e8``) score ``-inf``. Costs
  :data:`PROXY_COST_S`: zen 0.8 s (median per-arch time NASLib recorded with the published zen
  scores), naswot_v1 1.0 s (a conservative figure; NASLib's nwot takes 0.56 s, ours 0.44 s on
  one CPU thread).
* per-arch predictions for a subset of archs (e.g. beta_eff from
  ``benchmarks_data/nb201_cifar10_rank.csv``): ``scorer_from_csv(path, 'beff_pred', 'gpu_seconds')``
  (also :class:`PoolScorer`, kept for existing callers).

Scorers read the benchmark only through :meth:`~nasbeff.tables.ground_truth.NB201Table.without_test`, a
:class:`~nasbeff.tables.ground_truth.SearchView` that raises
:class:`~nasbeff.tables.ground_truth.HiddenTestAccuracyError` on test accuracies. Test accuracy is looked
up only after the search, by the reporting code (:func:`summarize` takes it as an argument).

Budget rule
-----------
Every evaluation is charged ``scorer.cost(index)`` (> 0). Before evaluating, the optimizer checks
``spent + cost > budget_s``; if so, that evaluation is not made and the run ends. Hence the sum of
charged costs never exceeds the budget, and a run with budget ``B`` is exactly the prefix of a run
with a larger budget and the same seed (:meth:`Trajectory.truncate`).

Repeats are charged, as in NATS-Bench: re-evaluating an arch already seen costs its full price
again (NATS re-trains it with another random seed). :attr:`Trajectory.unique_evaluations` counts
distinct archs.

Optimizers
----------
All take a ``space`` (default ``NB201Space()``) and have ``run(budget_s, seed) -> Trajectory``;
they use only the space's ``sample`` / ``mutate`` / ``encode`` / ``size``. Defaults follow
NATS-Bench's REA (``exps/NATS-algos/regularized_ea.py``): population 10, tournament of 3 members
drawn with replacement from the population, the child is the best member mutated in one choice
(``space.mutate``; on NB201 one edge, ``scheme='nats'``), the oldest member dies. Initial and
random-search archs are uniform over the pool (with replacement).

Inside a pool, a mutated child outside it is replaced by a pool arch at minimum Hamming distance
(number of differing choices of ``space.encode``) from the child, ties at random, the parent
excluded (when the pool has other archs). A child inside the pool is kept as is, so the full space
behaves exactly as NATS.

:class:`PredictorGuided` (``'predictor'``, NB201 only) fits a random forest on the GRAF features of
the archs evaluated so far and evaluates the top predicted of a candidate pool, never the same arch
twice; optional extra features are scorers charged once per arch (:mod:`.predictor_guided`).
"""


from .algorithms import METHODS, Optimizer, RandomSearch, RegularizedEvolution, WarmupREA, make_optimizer, run_seeds
from .scorers import (NATS_EPOCHS, PROXY_COST_S, SCORERS, ArrayScorer, LazyScorer, PoolScorer, PopulationScorer,
                      Scorer, ScoreSource, TableScorer, aggregate_scorer_from_csv, as_scorer, benchmark_scorer,
                      make_scorer, read_scores_csv, scorer_from_csv, table_scorer)
from .trajectory import DEFAULT_BUDGETS, Trajectory, summarize
from .predictor_guided import PredictorGuided

METHODS[PredictorGuided.method] = PredictorGuided  # registered here: predictor_guided imports algorithms

__all__ = [
    "Scorer", "ScoreSource", "as_scorer", "ArrayScorer", "LazyScorer", "table_scorer", "TableScorer", "PoolScorer",
    "PopulationScorer", "aggregate_scorer_from_csv",
    "read_scores_csv", "scorer_from_csv", "benchmark_scorer", "make_scorer", "SCORERS",
    "PROXY_COST_S", "NATS_EPOCHS", "Trajectory", "Optimizer", "RandomSearch", "RegularizedEvolution",
    "WarmupREA", "PredictorGuided", "make_optimizer", "METHODS", "run_seeds", "summarize", "DEFAULT_BUDGETS",
]
