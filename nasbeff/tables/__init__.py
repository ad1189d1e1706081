"""Benchmark ground-truth tables (:mod:`.ground_truth`): the offline NB201 table of all 15,625
archs and three datasets, per-seed accuracies, learning curves, NB201's own ``.pth`` files and the
NATS-Bench API, read lazily with explicit split names; :class:`SearchView` hides test accuracies
from search code.

Imports :mod:`nasbeff.data.names` only.
"""

from .ground_truth import (DATASETS, HPS, SPLITS, BenchmarkSource, HiddenTestAccuracyError, LearningCurves,
                           NATSBench, NB201File, NB201Table, PerSeedTable, SearchView, TEST_COLUMNS, column_dataset,
                           is_test_column, load_ground_truth, open_benchmark, shared_data_dir)

__all__ = ["DATASETS", "SPLITS", "HPS", "BenchmarkSource", "HiddenTestAccuracyError", "LearningCurves", "NATSBench",
           "NB201File", "NB201Table", "PerSeedTable", "SearchView", "TEST_COLUMNS", "column_dataset", "is_test_column",
           "load_ground_truth", "open_benchmark", "shared_data_dir"]
