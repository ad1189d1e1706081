"""The command-line tool and the main job on the embedded default (digits)."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from nasbeff.cli import app

runner = CliRunner()


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "demo" in res.output


def test_demo_runs_and_predicts():
    res = runner.invoke(app, ["demo", "--epochs", "4", "--final-epochs", "8", "--beta-samples", "128"])
    assert res.exit_code == 0, res.output
    assert "beta_eff -> 0" in res.output and "final validation accuracy after 8 epochs" in res.output


def test_demo_bad_option_is_one_clear_line():
    res = runner.invoke(app, ["demo", "--epochs", "2"])
    assert res.exit_code == 2
    assert "error:" in res.output and "Traceback" not in res.output


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "nasbeff", "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.1.0"
