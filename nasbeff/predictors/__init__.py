"""Final-accuracy predictors behind one scikit-learn protocol (:mod:`.base`): the paper's
beta_eff predictor (:mod:`.beta_eff`), the learning-curve baselines (:mod:`.curves`) and the
training-speed estimators TSE, TSE-E, TSE-EMA (:mod:`.tse`); and the predictor over architectures
(:mod:`.arch_features`: the features each search space provides, plus any proxy columns, in one random forest
or boosted-trees regressor).

Fit on curves, predict: they need no training code. Imports numpy, scipy and scikit-learn, and of
nasbeff only :mod:`nasbeff.spaces` (the SVR's arch encoding, the cell and size features)."""

from .arch_features import (
    FEATURE_SETS,
    ArchPredictor,
    FeatureMap,
    arch_features,
    feature_map,
    feature_sets,
    graf_features,
    onehot_features,
    size_features,
)
from .base import (
    CurvePredictor,
    BestSeenValue,
    LastSeenValue,
    best_seen,
    best_seen_value,
    check_curves,
    cross_val_predict_by_arch,
    last_seen,
    last_seen_value,
)
from .beta_eff import MIN_POINTS, REGRESSIONS, TRANSFORMS, BetaEffPredictor, BetaFit, beta_transform, fit_beta_curve
from .tse import TSE, TSE_GAMMA, TSEE, TSEEMA
from .curves import (
    LCE_FAMILIES,
    WEIGHTINGS,
    AffineEnsemble,
    CurveExtrapolation,
    CurveFamily,
    CurveSVR,
    LCEFit,
    curve_features,
    extrapolate_curve,
    nb201_arch_features,
)

__all__ = ["FEATURE_SETS", "ArchPredictor", "FeatureMap", "arch_features", "feature_map", "feature_sets", "graf_features",
    "onehot_features", "size_features",
    "CurvePredictor", "LastSeenValue", "BestSeenValue", "BetaEffPredictor", "CurveSVR", "CurveExtrapolation",
    "AffineEnsemble", "BetaFit", "fit_beta_curve", "MIN_POINTS", "CurveFamily", "LCE_FAMILIES", "LCEFit",
    "WEIGHTINGS", "extrapolate_curve", "last_seen", "best_seen", "last_seen_value", "best_seen_value",
    "curve_features", "nb201_arch_features", "cross_val_predict_by_arch", "check_curves", "TSE", "TSEE", "TSEEMA",
    "TSE_GAMMA", "TRANSFORMS", "REGRESSIONS", "beta_transform",
]
