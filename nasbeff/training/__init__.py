"""Early training: the one training loop (:mod:`.loop`, :class:`EarlyTrainer`), atomic checkpoints
that belong to one store and unit (:mod:`.checkpoint`), the NB201 early-training study
(:mod:`.nb201_study`: train an arch a few epochs under the probe, summarise its curve), the named
protocols (:mod:`.protocols`) and pre-registered test configs (:mod:`.prereg`).

May import :mod:`nasbeff.core`, :mod:`nasbeff.data`, :mod:`nasbeff.spaces`, :mod:`nasbeff.store`
and :mod:`nasbeff.predictors` (the study's summary), never the runs or the CLI.
"""

from .checkpoint import CheckpointError, UnitCheckpoint, checkpoint_dir, load_checkpoint, save_checkpoint
from .loop import EarlyTrainer, EpochRecord, TrainConfig, accuracy, beta_subset
from .nb201_study import (BetaVariant, StudyConfig, load_study_data, run_key, summarize, summarize_curve,
                          train_arch)
from .prereg import TestConfig, draw_test_sample, load_test_config, make_test_config
from .protocols import protocol_values, study_config

__all__ = ["EarlyTrainer", "EpochRecord", "TrainConfig", "accuracy", "beta_subset", "CheckpointError",
           "UnitCheckpoint", "checkpoint_dir", "load_checkpoint", "save_checkpoint", "BetaVariant", "StudyConfig",
           "load_study_data", "run_key", "summarize", "summarize_curve", "train_arch", "TestConfig",
           "draw_test_sample", "load_test_config", "make_test_config", "protocol_values", "study_config"]
