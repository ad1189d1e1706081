"""Golden demo rows BEFORE the redesign: runs against the pre-redesign API (commit b99cf45, where
``nasbeff.demo`` still existed); kept as the record of how demo_before.json was made. The
comparison with today's code is after.py (see results.md)."""
import json, torch
torch.set_num_threads(1)
from nasbeff.demo import RankDemoConfig, rank_demo
from rich.console import Console
res = rank_demo(RankDemoConfig.quick(0), png=None, console=Console(quiet=True))
rows = [{k: v for k, v in r.items() if "seconds" not in k} for r in res["rows"]]
json.dump({"rows": rows, "table": res["table"], "noise_ceiling": res["noise_ceiling"]}, open("/tmp/golden/demo_before.json", "w"), default=float, indent=1)
