"""Small things of issue 24: a protocol carries the beta_eff predictor chosen with it, and score's
--batches default is what the listed proxies need."""

from __future__ import annotations

import pytest

from nasbeff.runs.rank import build_rank_config
from nasbeff.runs.score import ScoreConfig
from nasbeff.training.nb201_study import BetaVariant
from nasbeff.training.protocols import PROTOCOL_VARIANTS, protocol_variant


def test_a_protocol_predicts_with_its_own_variant(tmp_path, tiny_cifar):
    kw = dict(data=tiny_cifar, archs=(0,), store=tmp_path / "s.sqlite", out=tmp_path / "r.csv")
    cpu = build_rank_config("cpu", None, {}, "", **kw)
    assert cpu.variant == BetaVariant.parse("points,identity,bayes,bic") == BetaVariant(source="points")
    assert build_rank_config("", None, {}, "", **kw).variant == BetaVariant()  # no protocol: epochs
    assert build_rank_config("cpu", None, {}, "epochs,signlog", **kw).variant == BetaVariant(transform="signlog")
    assert protocol_variant("gpu") == PROTOCOL_VARIANTS["gpu"]
    with pytest.raises(ValueError, match="unknown --protocol"):
        protocol_variant("tpu")


def test_score_batches_default_is_what_the_proxies_need(tmp_path):
    kw = dict(data="digits", archs=(0,), store=tmp_path / "s.sqlite", out=tmp_path / "s.csv", truth="")
    assert ScoreConfig(proxies=("meco", "zico"), **kw).batches == 2
    assert ScoreConfig(proxies=("meco",), **kw).batches == 1
    assert ScoreConfig(proxies=("naswot",), batches=3, **kw).batches == 3
    with pytest.raises(ValueError, match="zico needs --batches >= 2, got 1"):
        ScoreConfig(proxies=("zico",), batches=1, **kw)
