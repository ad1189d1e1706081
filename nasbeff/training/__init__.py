"""Early training: the one training loop (:mod:`.loop`, :class:`EarlyTrainer`), atomic checkpoints
that belong to one store and unit (:mod:`.checkpoint`), the NB201 early-training study
(:mod:`.nb201_study`: train an arch a few epochs under the probe, summarise its curve), the named
protocols (:mod:`.protocols`) and pre-registered test configs (:mod:`.prereg`).

May import :mod:`nasbeff.core`, :mod:`nasbeff.data`, :mod:`nasbeff.spaces`, :mod:`nasbeff.store`
and :mod:`nasbeff.predictors` (the study's summary), never the runs or the CLI.
"""

from .checkpoint import CheckpointError, UnitCheckpoint, checkpoint_dir, load_checkpoint, save_checkpoint
from .loop import EarlyTrainer, EpochRecord, TrainConfig, accuracy, beta_subset

__all__ = ["EarlyTrainer", "EpochRecord", "TrainConfig", "accuracy", "beta_subset", "CheckpointError",
           "UnitCheckpoint", "checkpoint_dir", "load_checkpoint", "save_checkpoint"]
