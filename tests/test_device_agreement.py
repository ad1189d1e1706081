"""benchmarks/device_agreement.py, the script a lent GPU runs first: on the CPU against itself every
difference is exactly zero and the ranks agree; bad input is one line before any work."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_agreement.py"


@pytest.fixture(scope="module")
def agreement():
    spec = importlib.util.spec_from_file_location("device_agreement", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rel_diff(agreement):
    assert agreement.rel_diff(2.0, 2.5) == pytest.approx(0.25)
    assert agreement.rel_diff(0.0, 1e-13) == pytest.approx(0.1)  # the 1e-12 floor
    assert agreement.rel_diff(-math.inf, -math.inf) == 0.0
    assert agreement.rel_diff(-math.inf, 3.0) == math.inf and agreement.rel_diff(math.nan, 1.0) == math.inf


def test_cpu_against_itself_is_exact(agreement, tmp_path, monkeypatch, capsys, one_torch_thread):
    small = {k: agreement.ARCHS[k] for k in ("pool_skip", "conv1x1_all", "resnet")}
    monkeypatch.setattr(agreement, "ARCHS", small)
    out = tmp_path / "agree.csv"
    assert agreement.main(["--device", "cpu", "--archs", "3", "--proxies", "params,naswot",
                           "--batch-size", "16", "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["arch"], r["quantity"]) for r in rows[:4]] == [
        ("pool_skip", "beta_eff_network"), ("pool_skip", "beta_eff_probe"), ("pool_skip", "params"),
        ("pool_skip", "naswot")]
    assert len(rows) == 12 and all(float(r["rel_diff"]) == 0.0 for r in rows)
    assert all(r["cpu"] == r["device"] for r in rows)
    params = [float(r["cpu"]) for r in rows if r["quantity"] == "params"]
    assert params[0] < params[2] and len(set(params)) == 3  # real, different networks
    text = capsys.readouterr().out
    assert "TF32 off" in text and "params" in text.split("quantity")[1]
    line = next(ln for ln in text.splitlines() if ln.startswith("params "))
    assert line.split()[1:3] == ["0.00e+00", "1.000"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bad_input_is_one_line(agreement, tmp_path, capsys):
    out = tmp_path / "never.csv"
    assert agreement.main(["--device", "cuda", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: --device cuda: CUDA is not available on this machine"
    assert agreement.main(["--device", "cpu", "--proxies", "params,nope", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown proxies nope; available: ")
    assert agreement.main(["--device", "cpu", "--archs", "0", "--out", str(out)]) == 2
    assert "--archs must be 1..7, got 0" in capsys.readouterr().err
    assert not out.exists()
