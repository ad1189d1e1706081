"""Dump every deterministic metric of a store (timings dropped) as JSON: key -> epoch -> metrics."""
import json, sys
from nasbeff.store import ResultStore
out = {}
with ResultStore(sys.argv[1]) as st:
    for r in st.rows():
        k = f"{r.key.arch}|{r.key.scorer}|{r.key.dataset}|{r.key.seed}" if hasattr(r, "key") else str(r)
        out.setdefault(k, {})[str(r.epoch)] = {m: v for m, v in r.metrics.items() if "second" not in m and "overhead" not in m}
json.dump(out, open(sys.argv[2], "w"), indent=1, sort_keys=True)
print(len(out), "keys")
