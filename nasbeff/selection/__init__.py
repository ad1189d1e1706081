"""Model selection over pre-trained backbones (the paper's Table 1): the backbone zoo and its
pre-training on the source task (:mod:`.zoo`), targets, fine-tuning under the probe and the
Table-1 comparison (:mod:`.finetune`), and the transferability measures LogME, LEEP and NCE
(:mod:`.transfer`).

May import :mod:`nasbeff.core`, :mod:`nasbeff.data`, :mod:`nasbeff.training`,
:mod:`nasbeff.predictors` and :mod:`nasbeff.evaluation`; never the runs or the CLI.
"""
