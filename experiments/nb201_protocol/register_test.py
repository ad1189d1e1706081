"""Write the pre-registered test config (``nasbeff.training.prereg``): a seeded sample of archs from
200..15624, the chosen protocol's study values written out in full, the chosen beta_eff
predictor variant. Commit the file BEFORE running ``nasbeff rank --preregistered`` on it.

    python experiments/nb201_protocol/register_test.py --n 100 --seed 10 --protocol cpu \
        --variant points,signlog,huber,bic [--set epochs=6 --set train_size=20000] \
        --out experiments/nb201_protocol/test_config.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nasbeff.training import make_test_config
from nasbeff.training import study_config
from nasbeff.training.nb201_study import BetaVariant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="archs in the test sample (>= 100)")
    ap.add_argument("--seed", type=int, required=True, help="seed of the sample (a new one for every new test)")
    ap.add_argument("--protocol", default="cpu")
    ap.add_argument("--variant", default="epochs", help="source[,transform[,regression[,t0]]]")
    ap.add_argument("--set", action="append", default=[], help="study override key=value (JSON value)")
    ap.add_argument("--name", default="nb201_protocol_test")
    ap.add_argument("--out", default="experiments/nb201_protocol/test_config.json")
    args = ap.parse_args()
    given = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        given[k] = json.loads(v) if v[:1] in "0123456789-[{\"tfn" else v
    study = study_config(args.protocol, **given)
    test = make_test_config(args.name, args.n, args.seed, args.protocol, study, BetaVariant.parse(args.variant))
    Path(args.out).write_text(test.to_json())
    print(f"wrote {args.out}: {len(test.archs)} archs {test.archs[:5]}..., study hash {study.hash}, "
          f"variant {test.variant.name}; commit it before the run")


if __name__ == "__main__":
    main()
