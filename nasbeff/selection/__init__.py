"""Model selection over pre-trained backbones (the paper's Table 1): the backbone zoo and its
pre-training on the source task (:mod:`.zoo`), targets, fine-tuning under the probe and the
Table-1 comparison (:mod:`.finetune`), and the transferability measures LogME, LEEP and NCE
(:mod:`.transfer`).

May import :mod:`nasbeff.core`, :mod:`nasbeff.data`, :mod:`nasbeff.training`,
:mod:`nasbeff.predictors` and :mod:`nasbeff.evaluation`; never the runs or the CLI.
"""

from .finetune import (TARGETS, Feeder, finetune, finetune_config, load_source, load_target, method_columns,
                       noise_ceiling, selection_table, transfer_scores)
from .transfer import leep, logme, nce

__all__ = ["TARGETS", "Feeder", "finetune", "finetune_config", "load_source", "load_target", "method_columns",
           "noise_ceiling", "selection_table", "transfer_scores", "leep", "logme", "nce"]
