"""The main job on the embedded default: ``nasbeff demo --quick`` ranks NB201 archs on digits and
prints the Spearman table with its noise ceiling; the MLP demo stays available as ``--mlp``."""

from __future__ import annotations

from PIL import Image
from typer.testing import CliRunner

from nasbeff.cli import app
import pytest

from nasbeff.runs.demo import RankDemoConfig

runner = CliRunner()


def test_quick_ranking_demo_prints_the_table_and_writes_the_figure(tmp_path):
    png = tmp_path / "rank.png"
    res = runner.invoke(app, ["demo", "--quick", "--png", str(png)], terminal_width=120)
    assert res.exit_code == 0, res.output
    out = res.output
    for text in ("beta_eff pred. (3 ep)", "LSV (3 ep)", "naswot (init)", "synflow (init)", "noise ceiling",
                 "97-99%", "rho [95% CI]"):
        assert text in out, text
    w, h = Image.open(png).size
    assert w > 300 and h > 200


def test_mlp_demo_is_still_available():
    res = runner.invoke(app, ["demo", "--mlp", "--epochs", "4", "--final-epochs", "8", "--beta-samples", "128"])
    assert res.exit_code == 0, res.output
    assert "beta_eff -> 0" in res.output and "final validation accuracy after 8 epochs" in res.output


def test_demo_rejects_bad_settings_in_one_line():
    for args in (["demo", "--quick", "--archs", "2"], ["demo", "--quick", "--epochs", "2"],
                 ["demo", "--epochs", "6", "--final-epochs", "5"], ["demo", "--mlp", "--quick"],
                 ["demo", "--quick", "--beta-samples", "601"], ["demo", "--quick", "--device", "cuda:7"],
                 ["demo", "--mlp", "--epochs", "0"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert "error:" in res.output and "Traceback" not in res.output


def test_quick_config_is_the_reduced_default():
    q, full = RankDemoConfig.quick(), RankDemoConfig()
    assert q.archs == 6 and q.archs < full.archs and q.final_epochs < full.final_epochs
    assert full.archs == 24 and full.truth_seeds == 2


def test_config_fails_before_any_data_is_loaded():
    with pytest.raises(ValueError, match="beta-samples must lie in 1..600"):
        RankDemoConfig.quick(beta_samples=601)
    with pytest.raises(KeyError, match="unknown proxy"):
        RankDemoConfig.quick(proxies=("nosuchproxy",))
