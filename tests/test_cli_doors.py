"""Issue 22's doors of the command line: errors on stderr, required options, literal brackets in
messages, option names as typed, one meaning for --seeds and --threads, -h, proxy names in any case.
Every check ends before any real work (a bad option, or the run replaced by a stub)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import typer
from typer.testing import CliRunner

from nasbeff.cli import app

runner = CliRunner()  # click >= 8.2: result.stdout and result.stderr apart, result.output both


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Default outputs (runs/...) of a command that got further than expected land in tmp_path."""
    monkeypatch.chdir(tmp_path)


def _line(text: str) -> str:
    return " ".join(text.split())


def _fails(args: list[str], code: int = 2):
    res = runner.invoke(app, args)
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert "Traceback" not in res.output
    return res


class _Stop(KeyboardInterrupt):
    """Raised by a stubbed run: the command exits 130 right after it built its config."""


def _capture(monkeypatch, module, name: str) -> dict:
    seen: dict = {}

    def stub(*args, **kw):
        seen["args"] = args
        raise _Stop

    monkeypatch.setattr(module, name, stub)
    return seen


# ----------------------------------------------------------------------------------------- 1. stderr

def test_error_lines_go_to_stderr_and_results_stay_on_stdout(tmp_path):
    res = _fails(["score", "--data", "digits", "--proxies", "nope", "--store", str(tmp_path / "s.sqlite")])
    assert "error: unknown proxy 'nope'" in res.stderr
    assert "error" not in res.stdout and res.stdout == ""
    ok = runner.invoke(app, ["version"])
    assert ok.exit_code == 0 and ok.stdout.strip() and ok.stderr == ""


def test_the_interrupted_line_goes_to_stderr(tmp_path, monkeypatch):
    import nasbeff.runs.score as score

    _capture(monkeypatch, score, "run_score")
    res = _fails(["score", "--data", "digits", "--store", str(tmp_path / "s.sqlite"), "--quiet"], code=130)
    assert "interrupted — rerun the same command to resume" in _line(res.stderr)
    assert "interrupted" not in res.stdout


def test_an_error_a_ctrl_c_caused_exits_130_not_2(tmp_path, monkeypatch):
    """A C++ extension may turn the KeyboardInterrupt into its own error (torch's writer: RuntimeError)."""
    import nasbeff.runs.score as score

    def stub(*args, **kw):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 442496 vs 442392")

    monkeypatch.setattr(score, "run_score", stub)
    res = _fails(["score", "--data", "digits", "--store", str(tmp_path / "s.sqlite"), "--quiet"], code=130)
    assert "interrupted — rerun the same command to resume" in _line(res.stderr)
    assert "enforce fail" not in res.output


# ----------------------------------------------------------------------------------------- 2. zoo pretrain --data

def test_zoo_pretrain_without_data_is_one_line_naming_data(tmp_path):
    res = _fails(["zoo", "pretrain", "--out", str(tmp_path / "zoo")])
    assert "error: --data is required" in _line(res.stderr)
    assert not (tmp_path / "zoo").exists()
    config = tmp_path / "c.json"  # a config file may give it instead
    config.write_text(json.dumps({"pretrain": {"data": str(tmp_path / "nowhere"), "epochs": 1}}))
    res = _fails(["zoo", "pretrain", "--config", str(config), "--out", str(tmp_path / "zoo")])
    assert "--data" in res.stderr and "nowhere does not exist" in res.stderr and "required" not in res.stderr


def test_zoo_pretrain_help_marks_data_required_and_states_the_dataclass_defaults():
    import dataclasses
    import re

    from nasbeff.runs.pretrain import PretrainConfig

    cmd = typer.main.get_command(app).commands["zoo"].commands["pretrain"]
    helps = {p.name: p.help for p in cmd.params}
    assert helps["data"].startswith("Required")
    defaults = {f.name: f.default for f in dataclasses.fields(PretrainConfig)}
    checked = 0
    for name, text in helps.items():
        m = re.search(r"default ([^)]+)\)", text or "")
        if m and name in defaults and name != "models":
            assert m.group(1) == format(defaults[name], "," if name == "train_size" else ""), (name, text)
            checked += 1
    assert checked >= 9 and f"(default {PretrainConfig.epochs})" in helps["epochs"]


# ----------------------------------------------------------------------------------------- 3. brackets

def test_the_ray_hint_shows_its_brackets(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    res = _fails(["score", "--data", "digits", "--backend", "ray", "--store", str(tmp_path / "s.sqlite")])
    assert "pip install 'nasbeff[ray]'" in _line(res.stderr)
    res = _fails(["rank", "--data", str(tmp_path), "--backend", "ray", "--store", str(tmp_path / "r.sqlite")])
    assert "nasbeff[ray]" in _line(res.stderr)


def test_bracketed_user_text_in_errors_is_shown_literally(tmp_path):
    res = _fails(["score", "--data", "digits", "--archs", "[x]", "--store", str(tmp_path / "s.sqlite")])
    assert "bad --archs '[x]'" in res.stderr
    res = _fails(["rank", "--data", str(tmp_path / "[bold]" / "nope"), "--store", str(tmp_path / "r.sqlite")])
    assert "[bold]/nope does not exist" in _line(res.stderr)


# ----------------------------------------------------------------------------------------- 4. wording and options

def test_snake_case_names_read_as_the_options(tmp_path):
    res = _fails(["rank", "--data", str(tmp_path), "--epochs", "3", "--schedule-epochs", "2"])
    assert "--schedule-epochs (2) must be >= epochs (3)" in res.stderr and "schedule_epochs" not in res.stderr


@pytest.mark.parametrize("args, message", [
    (["rank", "--ray-cpus", "-1"], "--ray-cpus must be >= 0, got -1"),
    (["rank", "--time-limit", "-2"], "--time-limit must be >= 0, got -2.0"),
    (["zoo", "pretrain", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["zoo", "pretrain", "--lr", "-1"], "--lr must be a number > 0, got -1.0"),
])
def test_a_bad_value_names_exactly_its_option(tmp_path, args, message):
    res = _fails([*args, "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    line = _line(res.stderr)
    assert f"error: {message}" in line
    assert ", --" not in line and " and --" not in line  # no other option named with it


def test_a_non_integer_list_names_its_option(tmp_path):
    res = _fails(["rank", "--data", str(tmp_path), "--extra-beta-samples", "abc"])
    assert "--extra-beta-samples expects comma-separated integers (e.g. 128,2048), got 'abc'" in _line(res.stderr)
    assert "invalid literal" not in res.stderr
    res = _fails(["select", "--predict-at", "5,x"])
    assert "--predict-at expects comma-separated integers" in res.stderr


def test_demo_quick_with_mlp_says_what_is_wrong():
    res = _fails(["demo", "--quick", "--mlp"])
    assert "--quick and --mlp cannot be combined" in _line(res.stderr) and "--archs" not in res.stderr
    res = _fails(["demo", "--mlp", "--archs", "3"])
    assert "--archs is for the ranking demo" in _line(res.stderr) and "--quick" not in res.stderr


@pytest.mark.parametrize("given, seed_list, count", [("3", (), 3), ("0,3,7", (0, 3, 7), 3), ("5,", (5,), 1)])
def test_search_seeds_is_a_count_or_a_list(tmp_path, monkeypatch, given, seed_list, count):
    import nasbeff.runs.search as search

    seen = _capture(monkeypatch, search, "run_search")
    _fails(["search", "--seeds", given, "--out", str(tmp_path / "s.csv")], code=130)
    cfg = seen["args"][0]
    assert (cfg.seed_list, cfg.seeds, cfg.seed) == (seed_list, count, 0)


def test_search_runs_exactly_the_listed_seeds(tmp_path, shared_data):
    import csv

    from nasbeff.runs.search import SearchConfig, run_search

    cfg = SearchConfig(methods="random", budget=600, seed_list=(0, 3, 7), points=1, shared=shared_data,
                       out=tmp_path / "s.csv")
    res = run_search(cfg)
    assert sorted({int(r["seed"]) for r in csv.DictReader(open(res.out))}) == [0, 3, 7]
    with pytest.raises(ValueError, match="distinct"):
        SearchConfig(seed_list=(1, 1), out=tmp_path / "s.csv")


@pytest.mark.parametrize("given, seeds", [("2", (0, 1)), ("0,3,7", (0, 3, 7)), ("5,", (5,))])
def test_select_seeds_is_a_count_or_a_list(tmp_path, monkeypatch, given, seeds):
    import nasbeff.cli.model_selection as cli_select

    seen = _capture(monkeypatch, cli_select, "_make")
    _fails(["select", "--seeds", given, "--target", "digits", "--zoo", str(tmp_path)], code=130)
    assert seen["args"][1]["seeds"] == seeds


def test_seeds_forms_are_documented_alike_and_bad_ones_are_one_line(tmp_path):
    group = typer.main.get_command(app)
    for name in ("search", "select"):
        (p,) = [p for p in group.commands[name].params if p.name == "seeds"]
        assert "one integer N: N seeds" in p.help and "comma-separated list" in p.help, name
    for name in ("search", "select"):
        res = _fails([name, "--seeds", "two"])
        assert "--seeds expects a count N or a comma-separated list" in _line(res.stderr)
    res = _fails(["search", "--seeds", "1,2", "--seed", "4", "--out", str(tmp_path / "s.csv")])
    assert "drop --seed" in res.stderr


def test_threads_has_one_default_and_one_meaning(tmp_path, monkeypatch):
    import nasbeff.runs.score as score

    group = typer.main.get_command(app)
    opts = {name: next(p for p in group.commands[name].params if p.name == "threads")
            for name in ("demo", "rank", "score")}
    assert {o.default for o in opts.values()} == {1} and len({o.help for o in opts.values()}) == 1
    assert "0 = torch's default in one process, 1 per worker process" in opts["score"].help
    seen = _capture(monkeypatch, score, "run_score")
    base = ["score", "--data", "digits", "--store", str(tmp_path / "s.sqlite"), "--threads", "0"]
    _fails(base, code=130)
    assert seen["args"][0].threads == torch.get_num_threads()
    _fails(base + ["--workers", "2"], code=130)
    assert seen["args"][0].threads == 1


def test_dash_h_is_help_everywhere():
    group = typer.main.get_command(app)
    paths = [[]] + [[n] for n in group.commands] + [["zoo", n] for n in group.commands["zoo"].commands]
    for path in paths:
        res = runner.invoke(app, [*path, "-h"])
        assert res.exit_code == 0 and "Usage" in res.stdout, path


def test_proxy_names_in_any_case(tmp_path, monkeypatch):
    import nasbeff.runs.score as score
    from nasbeff.proxies import canonical_name

    assert canonical_name("MeCo") == "meco" and canonical_name("Rank:NASWOT+Params") == "rank:naswot+params"
    seen = _capture(monkeypatch, score, "run_score")
    _fails(["score", "--data", "digits", "--proxies", "MeCo,ZICO,rank:NASWOT+Params", "--batches", "2",
            "--store", str(tmp_path / "s.sqlite")], code=130)
    assert seen["args"][0].proxies == ("meco", "zico", "rank:naswot+params")
    res = _fails(["score", "--data", "digits", "--proxies", "MeCo,meco", "--store", str(tmp_path / "s.sqlite")])
    assert "lists a name twice" in res.stderr


def test_rank_data_digits_says_rank_needs_cifar10(tmp_path):
    res = _fails(["rank", "--data", "digits", "--store", str(tmp_path / "r.sqlite")])
    line = _line(res.stderr)
    assert "rank needs CIFAR-10 images" in line and "cifar10_jpeg.tar.gz" in line and ".tar.gz" in line
    assert "is a dataset name" in line and not (tmp_path / "r.sqlite").exists()
