"""Issue 10: apply the committed rule of PLAN.md to the dev frontier, mechanically.

    python experiments/nb201_protocol/choose.py [experiments/nb201_protocol/frontier.csv]

Rule (PLAN.md, "What decides the cpu protocol", as amended on 2026-11-29 on dev data only): the
cheapest frontier point (setting, k epochs) whose best *same-run* baseline (TSE, TSE-E, TSE-EMA, LSV,
BSV) reaches Spearman rho >= 0.7 vs ``c10_test`` on the dev archs (cut-off archs excluded) at <= 240
wall seconds per arch: a margin of about one standard error at n = 60 over the test target 0.6; if
none does, the highest best-baseline rho at <= 240 s if it is >= 0.6; else the highest at <= 360 s.
At that point, the beta_eff predictor variant with the highest rho (cut-off archs excluded; ties:
the paper's default first). Prints the choice and the ``PROTOCOLS['cpu']`` values to write into
``nasbeff/protocols.py``; changes nothing itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nasbeff.store import read_csv, to_float

HERE = Path(__file__).resolve().parent
BASELINES = ("tse", "tse_e", "tse_ema", "lsv", "bsv")
#: The settings of the dev frontier, as run by the commands of PLAN.md (file stem -> StudyConfig values).
COMMON = {"train_size": 25_000, "valid_size": 2_000, "batch_size": 128, "lr": 0.1, "schedule_epochs": 200,
          "beta_samples": 512, "beta_points": 15, "beta_bn": "batch"}
SETTINGS = {"dev_F1_curves": {"resolution": 16, "init_channels": 8, "cells": 2},
            "dev_F2_curves": {"resolution": 16, "init_channels": 16, "cells": 5},
            "dev_F3_curves": {"resolution": 32, "init_channels": 8, "cells": 2},
            "dev_F4_curves": {"resolution": 32, "init_channels": 16, "cells": 5},
            "dev_F5_curves": {"resolution": 16, "init_channels": 8, "cells": 2, "train_size": 10_000}}
DEFAULT_VARIANT = "beff_points_identity_bayes_tbic"


def choose(rows: list[dict], cheap_s: float = 240.0, max_s: float = 360.0, margin: float = 0.7) -> dict:
    """The PLAN.md rule on frontier rows (``frontier.py``'s CSV, values as floats)."""
    rows = [r for r in rows if r["cut_off"] == "excluded" and r["setting"] != "free"]
    points: dict[tuple[str, int], dict] = {}
    for r in rows:
        p = points.setdefault((r["setting"], int(r["epochs"])), {"seconds": r["seconds_per_arch"], "scores": {}})
        p["scores"][r["score"]] = r
    ranked = []
    for (setting, k), p in points.items():
        base = max((p["scores"][b] for b in BASELINES if b in p["scores"]), key=lambda r: r["spearman"], default=None)
        if base is not None:
            ranked.append((setting, k, p, base))
    ok = sorted((x for x in ranked if x[2]["seconds"] <= cheap_s and x[3]["spearman"] >= margin),
                key=lambda x: x[2]["seconds"])
    rule = f"cheapest point with best same-run baseline rho >= {margin} at <= {cheap_s:g} s/arch"
    if not ok:
        ok = sorted((x for x in ranked if x[2]["seconds"] <= cheap_s and x[3]["spearman"] >= 0.6),
                    key=lambda x: -x[3]["spearman"])
        rule = f"no point reached rho >= {margin} at <= {cheap_s:g} s/arch: the best one there (rho >= 0.6)"
    if not ok:
        ok = sorted((x for x in ranked if x[2]["seconds"] <= max_s), key=lambda x: -x[3]["spearman"])
        rule = f"no point reached rho >= 0.6 at <= {cheap_s:g} s/arch: the best point at <= {max_s:g} s/arch"
    if not ok:
        raise SystemExit("no frontier point at <= 360 s/arch")
    setting, k, p, base = ok[0]
    variants = sorted((r for n, r in p["scores"].items() if n.startswith("beff_") and n != "beff_pred"),
                      key=lambda r: (-r["spearman"], r["score"] != DEFAULT_VARIANT))
    stem = setting.split(":")[0]
    return {"rule": rule, "setting": setting, "epochs": k, "seconds_per_arch": p["seconds"],
            "best_baseline": base["score"], "baseline_rho": base["spearman"],
            "baseline_ci": [base["lo"], base["hi"]], "n": int(base["n"]),
            "beff_variant": variants[0]["score"][5:] if variants else None,
            "beff_rho": variants[0]["spearman"] if variants else None,
            "protocol": {**COMMON, **SETTINGS.get(stem, {}), "epochs": k}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frontier", nargs="?", type=Path, default=HERE / "frontier.csv")
    args = ap.parse_args()
    _, raw = read_csv(args.frontier, "frontier CSV")
    rows = [{k: (to_float(v) if k in ("epochs", "seconds_per_arch", "n", "spearman", "lo", "hi", "kendall") else v)
             for k, v in r.items()} for r in raw]
    print(json.dumps(choose(rows), indent=1))


if __name__ == "__main__":
    main()
