"""Model selection over pre-trained backbones (the paper's Table 1): the backbone zoo and its
pre-training on the source task (:mod:`.zoo`), the source task and targets (:mod:`.targets`),
fine-tuning under the probe (:mod:`.finetune`), the Table-1 comparison (:mod:`.table1`) and the
transferability measures LogME, LEEP and NCE (:mod:`.transfer`).

May import :mod:`nasbeff.core`, :mod:`nasbeff.data`, :mod:`nasbeff.training`,
:mod:`nasbeff.predictors` and :mod:`nasbeff.evaluation`; never the runs or the CLI.
"""

from .finetune import Feeder, finetune, finetune_config, transfer_scores
from .table1 import Run, curve_predictions, method_columns, noise_ceiling, selection_figures, selection_rows, \
    selection_table
from .targets import SOURCE_CLASSES, TARGET_POOLS, TARGETS, SplitData, load_source, load_target, svhn_like, upsample
from .transfer import leep, logme, nce

__all__ = ["Feeder", "finetune", "finetune_config", "transfer_scores", "Run", "curve_predictions", "method_columns",
           "noise_ceiling", "selection_figures", "selection_rows", "selection_table", "SOURCE_CLASSES", "TARGET_POOLS",
           "TARGETS", "SplitData", "load_source", "load_target", "svhn_like", "upsample", "leep", "logme", "nce"]
