"""Rows of one comparison count the same archs, or say they do not (issue 22, part 2): rank
aggregates give cut-off archs ``-inf`` like their parts, ``report`` and ``score`` summaries compare
on common archs by default and state n, the README's figures come out of ``report`` on the
committed CSVs, and ``score`` refuses a ground truth it cannot use before any work."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from nasbeff.cli import app
from nasbeff.proxies import aggregate_scores
from nasbeff.runs.report import ReportConfig, comparable_columns, run_report
from nasbeff.runs.score import ScoreConfig, score_rows

REPO = Path(__file__).resolve().parents[1]
CUT = [10, 12]  # cut-off cells of NB201 (input disconnected from output)
INF = float("-inf")


def test_aggregate_of_an_arch_every_part_cannot_score_is_minus_inf():
    a = np.array([INF, 1.0, 2.0, 3.0, INF])
    b = np.array([INF, 3.0, 1.0, 2.0, 0.5])  # arch 4: only one part at its limit
    out = aggregate_scores({"a": a, "b": b})
    assert out[0] == INF
    assert np.isfinite(out[1:]).all()  # a limit value in one part ranks last there, the aggregate stays finite
    # the other archs' values are those of the ranks in the whole population (arch 0 at the bottom)
    n = 5
    ra, rb = np.array([1.5, 3, 4, 5, 1.5]), np.array([1, 5, 3, 4, 2])
    assert out[1:] == pytest.approx((np.log(ra / n) + np.log(rb / n))[1:])
    assert aggregate_scores({"a": a, "b": b}, rule="mean_rank")[0] == INF


def test_score_rows_give_cut_off_archs_minus_inf_in_aggregates():
    stored = {(i, p): {"value": INF if i in CUT else float(i * (k + 1) % 7), "seconds": 0.1, "flag": None}
              for i in [*CUT, 0, 1, 2, 3] for k, p in enumerate(("meco", "zico"))}
    rows = score_rows([*CUT, 0, 1, 2, 3], ("meco", "zico"), {"rank:meco+zico": ["meco", "zico"]}, stored,
                      ("meco", "zico", "rank:meco+zico"))
    by = {r["index"]: r for r in rows}
    assert all(by[i]["rank:meco+zico"] == INF for i in CUT)
    assert all(np.isfinite(by[i]["rank:meco+zico"]) for i in (0, 1, 2, 3))


def _write_scores(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _synthetic(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """20 archs (2 cut off), two parts, an aggregate with the old finite value on the cut-off archs,
    one column with gaps; and a truth CSV."""
    rng = np.random.default_rng(3)
    idx = [*CUT, *range(20, 38)]
    truth = rng.normal(size=len(idx))
    rows, trows = [], []
    for k, i in enumerate(idx):
        cut = i in CUT
        a = INF if cut else truth[k] + rng.normal()
        b = INF if cut else truth[k] + rng.normal()
        rows.append({"index": i, "meco": a, "zico": b, "rank:meco+zico": -5.18 if cut else a + b,
                     "naswot": "" if k % 4 == 0 else truth[k] + 2 * rng.normal()})
        trows.append({"index": i, "t": truth[k]})
    _write_scores(tmp_path / "s.csv", rows)
    _write_scores(tmp_path / "t.csv", trows)
    return tmp_path / "s.csv", tmp_path / "t.csv", truth


def test_report_rows_share_their_archs_and_say_so(tmp_path):
    scores, truth_csv, _ = _synthetic(tmp_path)
    cfg = dict(scores=scores, truth="t", truth_csv=truth_csv, n_boot=50, out=tmp_path / "rep")
    res = run_report(ReportConfig(columns=("meco", "zico", "rank:meco+zico", "naswot"), **cfg))
    ns = {r["method"]: r["n"] for r in res.table}
    assert set(ns.values()) == {14}  # 18 non-cut archs, naswot lacks 4 of them: every row the same 14
    assert any("same 14 archs" in n and "naswot has 14 of 18" in n for n in res.notes)
    assert any("2 cut-off archs left out" in n for n in res.notes)
    each = run_report(ReportConfig(columns=("meco", "zico", "rank:meco+zico", "naswot"), archs="each", **cfg))
    ns = {r["method"]: r["n"] for r in each.table}
    assert ns == {"meco": 18, "zico": 18, "rank:meco+zico": 18, "naswot": 14}  # the aggregate: the parts' archs
    assert any("rows count different archs" in n for n in each.notes)
    last = run_report(ReportConfig(columns=("meco", "rank:meco+zico"), archs="each", cut_off="last", **cfg))
    assert {r["n"] for r in last.table} == {20}


def test_report_validates_everything_before_creating_out(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="no 'index' column"):
        run_report(ReportConfig(scores=bad, truth_csv=bad, out=out))
    assert not out.exists()
    search = tmp_path / "search.csv"
    search.write_text("method,scorer\nrea,benchmark\n")
    scores, truth_csv, _ = _synthetic(tmp_path)
    with pytest.raises(ValueError, match="not a search CSV"):
        run_report(ReportConfig(scores=scores, truth="t", truth_csv=truth_csv, search_csv=search, out=out, n_boot=10))
    assert not out.exists()


def test_report_warns_when_a_row_rests_on_few_archs(tmp_path):
    _write_scores(tmp_path / "s.csv", [{"index": i, "meco": float(i % 5)} for i in range(20, 26)])
    _write_scores(tmp_path / "t.csv", [{"index": i, "t": float(i)} for i in range(20, 26)])
    res = run_report(ReportConfig(scores=tmp_path / "s.csv", truth="t", truth_csv=tmp_path / "t.csv", n_boot=50,
                                  out=tmp_path / "o"))
    assert any("few archs (6)" in n for n in res.notes)


def test_report_cli_prints_n_and_the_notes(tmp_path):
    scores, truth_csv, _ = _synthetic(tmp_path)
    res = CliRunner().invoke(app, ["report", "--scores", str(scores), "--truth", "t", "--truth-csv", str(truth_csv),
                                   "--columns", "meco,rank:meco+zico,naswot", "--n-boot", "50", "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "note: every row counts the same 14 archs" in res.output
    bad = CliRunner().invoke(app, ["report", "--scores", str(scores), "--archs", "some", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "--archs must be common or each" in bad.output


def test_comparable_columns_rank_minus_inf_last_and_keep_spearman():
    v = np.array([INF, 1.0, 5.0, 2.0, np.nan, 3.0])
    t = np.array([0.0, 1.0, 4.0, 3.0, 2.0, 2.5])
    cut = np.zeros(6, bool)
    ranked, tc, _ = comparable_columns({"x": v}, t, cut)
    keep = ~np.isnan(ranked["x"])
    assert keep.tolist() == [True, True, True, True, False, True]
    assert ranked["x"][0] == 1.0  # -inf: the lowest rank, counted
    assert spearmanr(ranked["x"][keep], tc[keep]).statistic == pytest.approx(
        spearmanr([-1e9, 1, 5, 2, 3], [0, 1, 4, 3, 2.5]).statistic)


def test_readme_figures_come_out_of_report_on_the_committed_csvs(shared_data, tmp_path):
    """README: 3,000-arch table (rank:meco+zico 0.903 over 2,940 without cut-off, 0.908 over 3,000
    with them; MeCo 0.897) and the dev table's 'all 200 archs' column (MeCo 0.935, ZiCo 0.787)."""
    def rho(csv_name: str, cols: str, *flags: str) -> dict[str, tuple[int, float]]:
        res = CliRunner().invoke(app, ["report", "--scores", str(REPO / "benchmarks_data" / csv_name), "--columns",
                                       cols, "--n-boot", "20", "--shared", str(shared_data), "--out",
                                       str(tmp_path / "report"), *flags])
        assert res.exit_code == 0, res.output
        out = {}
        for line in res.output.splitlines():
            cells = [c.strip() for c in line.split("│") if c.strip()]
            if len(cells) == 4 and cells[0] in cols.split(","):
                out[cells[0]] = (int(cells[1]), float(cells[2].split()[0]))
        return out

    no_cut = rho("nb201_cifar10_proxies_3000.csv", "meco,rank:meco+zico", "--archs", "each")
    assert no_cut == {"meco": (2940, 0.897), "rank:meco+zico": (2940, 0.903)}
    with_cut = rho("nb201_cifar10_proxies_3000.csv", "meco,rank:meco+zico", "--archs", "each", "--cut-off", "last")
    assert with_cut == {"meco": (3000, 0.903), "rank:meco+zico": (3000, 0.908)}
    dev = rho("nb201_cifar10_scorers.csv", "meco,zico", "--archs", "each", "--cut-off", "last")
    assert dev == {"meco": (200, 0.935), "zico": (200, 0.787)}


@pytest.mark.parametrize("truth, env, message", [
    ("bogus", None, "--truth 'bogus' is not a column of the NB201 table"),
    ("c100_test", None, "--truth c100_test is measured on cifar100 but the proxies see digits images"),
    ("in16_valid", None, "measured on imagenet16-120"),
    ("c10_test", "nowhere", "NASBEFF_SHARED_DATA"),
])
def test_score_refuses_a_truth_it_cannot_use_before_any_work(tmp_path, monkeypatch, shared_data, truth, env, message):
    if env:
        monkeypatch.setenv("NASBEFF_SHARED_DATA", str(tmp_path / env))
    with pytest.raises((ValueError, FileNotFoundError), match=message.replace("(", r"\(")):
        ScoreConfig(data="digits", archs=(0, 1, 2), proxies=("params",), store=tmp_path / "s.sqlite",
                    out=tmp_path / "s.csv", truth=truth)
    res = CliRunner().invoke(app, ["score", "--data", "digits", "--archs", "0-2", "--proxies", "params", "--truth",
                                   truth, "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 2 and not (tmp_path / "s.sqlite").exists()
    ok = ScoreConfig(data="digits", archs=(0,), proxies=("params",), store=tmp_path / "s.sqlite",
                     out=tmp_path / "s.csv", truth="")  # no Spearman column: nothing to check
    assert ok.truth == ""


def test_score_without_the_table_and_without_asking_for_a_truth_notes_it(tmp_path, monkeypatch):
    """No --truth given and no NB201 table anywhere: the run goes on without a Spearman column and
    says why (a --truth given, or a NASBEFF_SHARED_DATA pointing nowhere, is an error instead)."""
    from nasbeff.runs.score import run_score
    from nasbeff.tables import ground_truth

    monkeypatch.delenv("NASBEFF_SHARED_DATA", raising=False)
    monkeypatch.setattr(ground_truth, "shared_data_dir", lambda: None)
    cfg = ScoreConfig(data="digits", archs=(0, 1, 2), proxies=("params",), store=tmp_path / "s.sqlite",
                      out=tmp_path / "s.csv")
    assert cfg.truth == ""
    res = run_score(cfg)
    assert "no Spearman column: the NB201 ground truth (c10_test) was not found" in res.truth_note
    assert all(s["spearman"] is None for s in res.summary)
    with pytest.raises(FileNotFoundError, match="--truth c10_test"):
        ScoreConfig(data="digits", archs=(0,), proxies=("params",), store=tmp_path / "t.sqlite",
                    out=tmp_path / "t.csv", truth="c10_test")
