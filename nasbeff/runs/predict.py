"""``nasbeff predict``: fit a performance predictor over architectures on labelled NB201 archs and
write its predictions for any list of archs (issue 25).

The labels are a column of the NB201 table (``truth``, e.g. ``c10_test``) for the ``train`` archs (a
seeded sample of ``train_size`` of them when given); the features are the cell's graph features
(``graf``) or its one-hot encoding, plus, optionally, score columns of a ``nasbeff score`` CSV
(``scores`` + ``score_columns``: archs without every such value are left out of fitting and get no
prediction). The rows: ``index, arch_str, prediction`` and, where the table has it, the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import check_sample, check_writable, write_csv


@dataclass(frozen=True)
class PredictConfig:
    """What to fit on and what to predict (validated on construction, before any work)."""

    train: tuple[int, ...]
    archs: tuple[int, ...]
    truth: str = "c10_test"
    train_size: int = 0
    seed: int = 0
    features: str = "graf"
    model: str = "rf"
    scores: Path | None = None
    score_columns: tuple[str, ...] = ()
    shared: Path | None = None
    out: Path = Path("runs/predictions.csv")

    def __post_init__(self) -> None:
        from ..predictors.arch_features import FEATURE_SETS

        if not self.train or not self.archs:
            raise ValueError("--train-archs and --archs must each select at least one arch")
        if self.features not in FEATURE_SETS:
            raise ValueError(f"--features must be one of {', '.join(FEATURE_SETS)}, got {self.features!r}")
        if self.model not in ("rf", "gbt"):
            raise ValueError(f"--model must be rf or gbt, got {self.model!r}")
        if self.train_size < 0:
            raise ValueError(f"--train-size must be >= 0 (0: all of --train-archs), got {self.train_size}")
        check_sample(self.train_size, len(self.train), "--train-size", "--train-archs")
        if self.score_columns and self.scores is None:
            raise ValueError("--score-columns needs --scores (a nasbeff score CSV)")
        if self.scores is not None and not Path(self.scores).is_file():
            raise FileNotFoundError(f"--scores {self.scores} not found")
        from ..tables import NB201Table

        table = NB201Table(self.shared)
        if self.truth not in table.columns:
            raise ValueError(f"--truth {self.truth!r} is not a column of the NB201 table")
        check_writable(self.out, "--out")


@dataclass
class PredictResult:
    rows: list[dict]
    train: list[int]
    feature_names: list[str]
    importances: dict[str, float]
    out: Path
    held_out: object = None  # Correlation of the predictions with the truth on the archs not fitted on (>= 3)


def run_predict(cfg: PredictConfig) -> PredictResult:
    """Fit on the (sampled) training archs, predict every arch of ``cfg.archs``, write the rows."""
    from ..predictors import ArchPredictor
    from ..predictors.arch_features import arch_features
    from ..spaces import index_to_str, sample_from_pool
    from ..store import read_csv, to_float
    from ..tables import NB201Table

    table = NB201Table(cfg.shared)
    train = sample_from_pool(cfg.train, cfg.train_size or None, cfg.seed)
    extra = None
    if cfg.score_columns:
        fields, recs = read_csv(Path(cfg.scores), "--scores")
        missing = [c for c in cfg.score_columns if c not in fields]
        if missing:
            raise ValueError(f"--score-columns {missing} are not in {cfg.scores}")
        extra = {int(r["index"]): [to_float(r[c]) for c in cfg.score_columns] for r in recs}

    def usable(i: int) -> bool:
        return extra is None or (i in extra and all(math.isfinite(v) for v in extra[i]))

    fit_archs = [i for i in train if usable(i) and math.isfinite(table.column(cfg.truth, i))]
    if len(fit_archs) < 2:
        raise ValueError(f"fewer than 2 training archs with a {cfg.truth} value and every score column")
    y = np.asarray(table.column(cfg.truth, fit_archs), dtype=float)
    ex = None if extra is None else np.array([extra[i] for i in fit_archs])
    model = ArchPredictor(cfg.features, cfg.model, random_state=cfg.seed).fit(fit_archs, y, extra=ex)
    targets = [i for i in cfg.archs if usable(i)]
    pred = model.predict(targets, extra=None if extra is None else np.array([extra[i] for i in targets]))
    truth = np.asarray(table.column(cfg.truth, targets), dtype=float)
    rows = [{"index": i, "arch_str": index_to_str(i), "prediction": float(p), cfg.truth: float(t),
             "in_training": i in set(fit_archs)} for i, p, t in zip(targets, pred, truth)]
    write_csv(rows, cfg.out)
    names = arch_features([0], cfg.features)[1] + list(cfg.score_columns)
    imp = dict(zip(names, model.feature_importances_.tolist())) if cfg.model == "rf" else {}
    held = [r for r in rows if not r["in_training"] and math.isfinite(r[cfg.truth])]
    corr = None
    if len(held) >= 3:
        from ..evaluation import rank_correlation

        corr = rank_correlation([r["prediction"] for r in held], [r[cfg.truth] for r in held], n_boot=500)
    return PredictResult(rows, fit_archs, names, imp, cfg.out, corr)
