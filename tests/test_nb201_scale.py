"""experiments/nb201_scale: the report on a made-up score CSV, the run's config and commands."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nasbeff.spaces import index_to_str, is_cut_off

HERE = Path(__file__).resolve().parents[1] / "experiments" / "nb201_scale"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"nb201_scale_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_report_on_a_made_up_csv(tmp_path):
    report = _load("report")
    idx = np.arange(0, 120)
    cut = np.array([is_cut_off(index_to_str(int(i))) for i in idx])
    assert cut.sum() >= 3
    truth_c10 = np.full(15625, np.nan)
    truth_c10[idx] = np.where(cut, 10.0, 50 + idx * 0.3)
    truth_val = truth_c10.copy()
    truth_val[idx[:10]] = truth_val[idx[:10]][::-1]  # the second label disagrees on the first 10
    good = np.where(cut, -math.inf, idx.astype(float))  # perfect order, cut-off archs last
    half = np.where(idx < 60, np.nan, good)  # computed on a subset only
    with open(tmp_path / "s.csv", "w") as f:
        f.write("index,arch_str,cut_off,good,half,good_seconds,flags\n")
        for k, i in enumerate(idx):
            h = "" if np.isnan(half[k]) else repr(float(half[k]))
            f.write(f"{i},{index_to_str(int(i))},{bool(cut[k])},{float(good[k])!r},{h},0.5,\n")
    text = report.report(tmp_path / "s.csv", {"c10_test": truth_c10, "naslib_val_c10": truth_val}, n_boot=50)
    with_cut = text.split("## without")[0]
    line = next(ln for ln in with_cut.splitlines() if ln.startswith("| `good`"))
    # -inf counted (ranked last, like their 10 % accuracy): a perfect ranking over all 120
    assert f"| `good` | {len(idx)} | 1.000 [1.00, 1.00] | 1.000 [1.00, 1.00] |" in line
    half_line = next(ln for ln in with_cut.splitlines() if ln.startswith("| `half`"))
    assert half_line.startswith("| `half` | 60 | 1.000")
    without = text.split("## without")[1]
    assert f"(n = {int((~cut).sum())})" in without and "good_seconds" not in text
    # a noisy column against scipy directly
    rng = np.random.default_rng(0)
    noisy = idx + rng.normal(0, 40, len(idx))
    cols = {"noisy": noisy}
    keep = ~cut
    rows = report.table(cols, {"c10_test": truth_c10[idx]}, keep, n_boot=50)
    assert rows[0]["c10_test"][0] == pytest.approx(stats.spearmanr(noisy[keep], truth_c10[idx][keep]).statistic)
    assert rows[0]["c10_test"][2] == pytest.approx(stats.kendalltau(noisy[keep], truth_c10[idx][keep]).statistic)
    assert report.PUBLISHED["meco"].startswith("0.894")
    assert line.rstrip().endswith("| 0.50 |  |")  # its measured seconds; no published figure
    assert half_line.rstrip().endswith("|  |  |")  # no seconds column: no cost
    with pytest.raises(ValueError, match="needs an index column"):
        (tmp_path / "bad.csv").write_text("a,b\n")
        report.read_scores(tmp_path / "bad.csv")


def test_report_charges_group_passes_once_and_sums_chunks(tmp_path):
    report = _load("report")
    sec = {"meco": np.array([0.3, 0.5]), "flops": np.array([0.1, 0.1]),
           "aznas_expressivity": np.array([0.2, 0.2]), "aznas_trainability": np.array([0.2, 0.2]),
           "aznas_progressivity": np.array([0.2, 0.2]), "aznas_complexity": np.array([0.05, 0.05])}
    # an aggregate costs each part; an AZ-NAS member is charged the whole pass of its group (the 3
    # shares of expressivity, progressivity, trainability; complexity is the separate flops proxy)
    np.testing.assert_allclose(report.seconds_per_arch("rank:meco+aznas_trainability+flops", sec), [1.0, 1.2])
    np.testing.assert_allclose(report.seconds_per_arch("meco", sec), [0.3, 0.5])
    assert report.seconds_per_arch("zico", sec) is None
    log = tmp_path / "chunks.jsonl"
    recs = [{"tier": "sample", "wall_s": 3600, "cpu_s": 7000, "peak_pss_mib": 1200.4, "cpu": "EPYC", "cores": 2,
             "load_before": 0.1, "load_after": 2.0},
            {"tier": "sample", "wall_s": 1800, "cpu_s": 3500, "peak_pss_mib": 1300.6, "cpu": "EPYC", "cores": 2,
             "load_before": 0.2, "load_after": 2.1},
            {"tier": "cheap", "wall_s": 360, "cpu_s": 700, "peak_pss_mib": 900, "cpu": "EPYC", "cores": 2}]
    log.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    lines = report.cost_lines(log)
    assert "3 chunks; machine: EPYC (2 cores)" in lines[2]
    assert "| sample | 2 | 1.50 | 2.92 | 1301 | 0.1/2.0, 0.2/2.1 |" in lines
    assert "| cheap | 1 | 0.10 | 0.19 | 900 | ?/? |" in lines
    assert report.cost_lines(tmp_path / "none.jsonl") == []


def test_config_sample_and_commands():
    run = _load("run")
    cfg = json.loads((HERE / "config.json").read_text())
    sample = run.tier_archs(cfg, cfg["tiers"][0])
    subset = run.tier_archs(cfg, cfg["tiers"][1])
    assert len(sample) == 3000 and min(sample) >= 200 and len(set(sample)) == 3000
    assert len(subset) == 1000 and set(subset) <= set(sample)
    assert len(run.tier_archs(cfg, cfg["tiers"][2])) == 15625
    from nasbeff import proxies

    listed = {p for t in cfg["tiers"] for n in t["proxies"] for p in (n.split(":")[1].split("+") if ":" in n else [n])}
    assert set(proxies.available()) - listed == set(cfg["excluded"])  # each with its reason in the config
    assert not set(cfg["excluded"]) & listed
    cmd = run.score_command(cfg, cfg["tiers"][0], Path("c.tar.gz"), 80.0)
    assert cmd[3:] [:8] == ["score", "--data", "c.tar.gz", "--archs", "200-15624", "--sample", "3000", "--sample-seed"]
    assert "--time-limit" in cmd and cmd[cmd.index("--time-limit") + 1] == "80.00"
    assert cmd[cmd.index("--workers") + 1] == str(cfg["workers"]) and cmd[cmd.index("--threads") + 1] == "2"
    cmd = run.score_command(cfg, {**cfg["tiers"][2], "workers": 2, "threads": 1}, Path("c.tar.gz"), 5.0)
    assert cmd[cmd.index("--workers") + 1] == "2" and cmd[cmd.index("--threads") + 1] == "1"  # a tier's own


def test_a_tiers_alone_scorers_run_first_in_a_process_of_their_own(tmp_path):
    run = _load("run")
    cfg = json.loads((HERE / "config.json").read_text())
    subset = cfg["tiers"][1]
    passes = run.tier_passes(cfg, subset, tmp_path)
    assert [(label, names) for label, names, _out in passes] == [("subset/grasp", ["grasp"]),
                                                                 ("subset", subset["proxies"])]
    assert passes[0][2] == tmp_path / "subset_grasp.csv" and passes[1][2] == run.REPO / subset["out"]
    cmd = run.score_command(cfg, subset, Path("c.tar.gz"), 9.0, *passes[0][1:])
    assert cmd[cmd.index("--proxies") + 1] == "grasp"
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "subset_grasp.csv")
    assert cmd[cmd.index("--results") + 1] == cfg["results"]  # every pass adds to the one pairs file
    assert [names for _l, names, _o in run.tier_passes(cfg, cfg["tiers"][0], tmp_path)] == [cfg["tiers"][0]["proxies"]]
    with pytest.raises(ValueError, match=r"tier subset: 'alone' names \['zen'\], which are not among its proxies"):
        run.tier_passes(cfg, {**subset, "alone": [["zen"]]}, tmp_path)


def test_tier_done_and_merge_of_the_sample_tiers(tmp_path):
    run = _load("run")
    cfg = {"merged_out": "merged.csv", "tiers": [
        {"name": "sample", "archs": "sample", "proxies": ["a", "rank:a+b", "b"], "out": "s.csv"},
        {"name": "subset", "archs": "subset", "proxies": ["c", "a"], "out": "u.csv"},
        {"name": "cheap", "archs": "0-9", "proxies": ["a"], "out": "x.csv"}]}
    assert [t["name"] for t in run.sample_tiers(cfg)] == ["sample", "subset"]
    (tmp_path / "s.csv").write_text("index,arch_str,a,b,rank:a+b,a_seconds,flags\n"
                                    "7,s7,1.0,2.0,-0.5,0.1,\n3,s3,0.5,,-1.0,0.2,b: error\n")
    (tmp_path / "u.csv").write_text("index,arch_str,c,a,c_seconds,flags\n3,s3,9.0,0.5,1.5,c: slow\n"
                                    "99,s99,1.0,1.0,1.0,\n")
    assert run.tier_done(tmp_path / "s.csv", 2, cfg["tiers"][0]["proxies"])  # b's empty cell has its error
    assert not run.tier_done(tmp_path / "s.csv", 3, cfg["tiers"][0]["proxies"])  # an arch missing
    assert not run.tier_done(tmp_path / "u.csv", 2, ["c", "d"])  # a proxy column missing
    assert not run.tier_done(tmp_path / "none.csv", 2, ["c"])
    out = run.merge(cfg, root=tmp_path)
    lines = out.read_text().splitlines()
    assert lines[0] == "index,arch_str,a,b,rank:a+b,a_seconds,c,c_seconds,flags"
    assert lines[1:] == ["3,s3,0.5,,-1.0,0.2,9.0,1.5,b: error; c: slow", "7,s7,1.0,2.0,-0.5,0.1,,,"]  # not 99
    (tmp_path / "u.csv").unlink()  # a later tier not started yet adds no column
    assert run.merge(cfg, root=tmp_path).read_text().splitlines()[0] == "index,arch_str,a,b,rank:a+b,a_seconds,flags"


def test_report_compares_ours_and_published_values_on_the_same_archs(tmp_path):
    report = _load("report")
    zc = tmp_path / "zc_proxies"
    zc.mkdir()
    idx = np.arange(200, 260)
    rng = np.random.default_rng(1)
    truth = np.full(15625, np.nan)
    truth[idx] = rng.normal(80, 5, len(idx))
    theirs = truth[idx] + rng.normal(0, 5, len(idx))  # published: noisy
    with open(zc / "naslib_zc_nb201_subset.csv", "w") as f:
        f.write("dataset,index,nwot,snip\n")
        for i, v in zip(idx[:40], theirs[:40]):  # published for 40 of our 60 archs
            f.write(f"cifar10,{i},{float(v)!r},\n")
            f.write(f"cifar100,{i},0.0,\n")  # other datasets are ignored
    report.NASLIB_NAMES = {"naswot": "nwot", "snip": "snip"}
    pub = report.published_columns(tmp_path)
    assert set(pub) == {"naswot", "snip"} and np.isfinite(pub["naswot"][0]).sum() == 40
    assert report.published_columns(None) == {}
    ours = truth[idx].copy()  # ours: perfect
    cut = np.zeros(len(idx), bool)
    cut[0] = True  # a cut-off arch is left out
    lines = report.same_arch_lines(idx, {"naswot": ours, "snip": ours}, cut, pub, truth[idx], n_boot=50)
    row = next(ln for ln in lines if ln.startswith("| `naswot`"))
    expect = stats.spearmanr(theirs[1:40], truth[idx][1:40]).statistic
    assert f"| 39 | 1.000 [1.00, 1.00] | {expect:.3f}" in row
    assert f"| {1 - expect:+.3f} [" in row
    assert not any(ln.startswith("| `snip`") for ln in lines)  # nothing published for it
    assert report.same_arch_lines(idx, {"zico": ours}, cut, pub, truth[idx], n_boot=50) == []


def test_search_rows_merge_and_paired_report(tmp_path):
    search = _load("run_search")
    (tmp_path / "old.csv").write_text(
        "method,scorer,seed,budget_s,evaluations,best_index,best_arch_str,best_test_acc\n"
        "rea,benchmark,0,2000,17,5,a,93.0000\nrea,benchmark,1,2000,17,5,a,94.0000\n"
        "warmup_rea,benchmark,0,2000,1007,6,b,93.5000\nwarmup_rea,benchmark,1,2000,1007,6,b,93.5000\n")
    old = search.read_rows(tmp_path / "old.csv")  # written before the column existed
    assert [r["warmup_scorer"] for r in old] == ["", "", "naswot_v1", "naswot_v1"]
    agg = ("warmup_rea", "benchmark", "rank:a+b")
    new = [{"method": "warmup_rea", "scorer": "benchmark", "warmup_scorer": "rank:a+b", "seed": str(k),
            "budget_s": "2000", "evaluations": "900", "best_index": "7", "best_arch_str": "c",
            "best_test_acc": acc} for k, acc in ((0, "94.0000"), (1, "94.5000"), (2, ""))]
    rows = search.merge_rows(old, new)
    assert len(rows) == 7 and search.merge_rows(rows, new[:2]) == old + new[:2]  # a rerun replaces its rows
    assert search.accuracies(rows, agg, 2000.0) == {0: 94.0, 1: 94.5}  # seed 2 found nothing
    assert search.paired_by_seed({0: 94.0, 1: 94.5, 3: 1.0}, {1: 94.0, 0: 93.0}) == ([94.0, 94.5], [93.0, 94.0])
    text = search.report(rows, [agg], [2000.0], "pool.csv", 1000, {"rank:a+b": 1.1})
    assert "| warm-up REA (rank:a+b, sample pool) → benchmark | 2 | 94.25 ± 0.35 |" in text
    assert "| REA + benchmark | 2 | 93.50 ± 0.71 |" in text and "rank:a+b 1.10 s" in text
    assert "| warm-up REA (naswot_v1, whole space) → benchmark | +0.750 [" in text


@pytest.mark.parametrize("config", ["config.json", "config_cifar100.json"])
def test_the_committed_3000_arch_csv_is_the_configs_sample_with_every_scorer(config):
    """The deliverable itself: the seeded sample's 3,000 archs, one column per scorer of the sample
    tier on all of them; the subset-tier columns filled on exactly the seeded 1,000 (or their error
    flagged) once that tier is complete, on part of them while it runs."""
    import csv

    run = _load("run")
    cfg = json.loads((HERE / config).read_text())
    if not (run.REPO / cfg["merged_out"]).is_file():
        pytest.skip(f"{cfg['merged_out']}: its sample tier is not through yet")
    with open(run.REPO / cfg["merged_out"], newline="") as f:
        rows = list(csv.DictReader(f))
    sample = run.tier_archs(cfg, run.sample_tiers(cfg)[0])
    assert [int(r["index"]) for r in rows] == sorted(sample)
    assert all(r["arch_str"] == index_to_str(int(r["index"])) for r in rows)
    assert sum(r["cut_off"] == "True" for r in rows) == sum(map(is_cut_off, sample)) == 60
    sample_tier, *later = run.sample_tiers(cfg)
    seen = set(sample_tier["proxies"])
    groups = [(sample_tier["proxies"], set(sample), True)]
    for t in later:
        own = [p for p in t["proxies"] if p not in seen]
        seen |= set(own)
        archs = run.tier_archs(cfg, t)
        groups.append((own, set(archs), run.tier_done(run.REPO / t["out"], len(archs), t["proxies"])))
    assert {"grasp", "vkdnw", "knas", "gradsign", "ntk"} <= seen - set(sample_tier["proxies"])
    for proxies, archs, complete in groups:
        for p in proxies:
            if p not in rows[0]:  # a tier not started yet
                assert not complete, p
                continue
            filled = {int(r["index"]) for r in rows if r[p] != "" or f"{p}: error" in r["flags"]}
            assert filled == archs if complete else filled <= archs, p
    if config != "config.json":
        return
    meco = np.array([float(r["meco"]) for r in rows if r["cut_off"] == "False"])
    assert meco.size == 2940 and np.isfinite(meco).all() and meco.std() > 0
    assert all(float(r["meco"]) == -math.inf for r in rows if r["cut_off"] == "True")  # ranked last
