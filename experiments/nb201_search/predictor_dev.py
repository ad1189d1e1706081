"""Dev runs that chose the predictor-guided search's defaults (``nasbeff.optimizers.PredictorGuided``).

    OMP_NUM_THREADS=1 nice python experiments/nb201_search/predictor_dev.py cifar10 30 "" "n_estimators=10"

Criterion: the searched signal itself (``benchmark``: the dataset's 200-epoch validation accuracy) of
the best arch found, mean over dev seeds 1000.. (outside the reported seeds 0..99) at three budgets;
no test accuracy is read. Each argument after the seed count is one configuration, keyword
arguments of ``make_optimizer`` (``m='rea'`` runs REA instead; ``proxies=True`` adds the
whole-space cheap CIFAR-10 proxies flops, synflow and meco as charged features). One line per
configuration; the results are written down in ``predictor_dev.md``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nasbeff.optimizers import make_optimizer, make_scorer, scorer_from_csv
from nasbeff.tables import NB201Table

DEV_SEEDS_FROM = 1000
BUDGETS = {"cifar10": (4000, 12000, 20000), "cifar100": (8000, 24000, 40000),
           "imagenet16-120": (24000, 72000, 120000)}
CHEAP = "benchmarks_data/nb201_cifar10_proxies_cheap_15625.csv"


def configuration(text: str) -> dict:
    """``"n_estimators=10,proxies=True"`` -> keyword arguments (literals only)."""
    import ast

    call = ast.parse(f"f({text})", mode="eval").body
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", choices=list(BUDGETS))
    ap.add_argument("seeds", type=int)
    ap.add_argument("configs", nargs="+")
    args = ap.parse_args()
    view = NB201Table(None).without_test()
    scorer = make_scorer("benchmark", view, dataset=args.dataset)
    valid = np.array([scorer.score(i) for i in range(15625)])  # the searched signal
    budgets = BUDGETS[args.dataset]
    for text in args.configs:
        kw = configuration(text)
        if kw.pop("proxies", False):
            kw["features"] = [scorer_from_csv(CHEAP, c, f"{c}_seconds") for c in ("flops", "synflow", "meco")]
        opt = make_optimizer(kw.pop("m", "predictor"), scorer, **kw)
        t0 = time.process_time()
        runs = [opt.run(budgets[-1], s) for s in range(DEV_SEEDS_FROM, DEV_SEEDS_FROM + args.seeds)]
        cpu = time.process_time() - t0
        means = [float(np.mean([valid[t.best_at(b)] for t in runs])) for b in budgets]
        print(args.dataset, opt.method, text, " ".join(f"{m:.3f}" for m in means), f"cpu {cpu:.1f}s", flush=True)


if __name__ == "__main__":
    main()
