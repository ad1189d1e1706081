"""Data: the one vocabulary of dataset and split names (:mod:`.names`) and the one image-reading
path (:mod:`.loaders`: CIFAR pickles, ImageNet16 batches, image trees and archives, digits, the
decoded-data cache, device-resident batches).

Imports numpy, torch and PIL, and of nasbeff only :mod:`nasbeff.store` (the cache is written
atomically).
"""

from .loaders import (CIFAR10_CLASSES, DataFormatError, decode_images, read_archive_members, read_image_folder, read_npz_images, DeviceBatches, ImageSet, channel_stats, default_cache_dir, eval_batches,
                      load_dataset, load_digits, read_cifar10_batches, read_cifar100, read_image_tree,
                      read_imagenet16, read_source, stratified_split, stratified_subset, to_tensor, train_batches)
from .names import (DATASET_ALIASES, DATASETS, NORMALIZATION, SPLIT_SIZES, SPLITS, TEST_SPLITS, canonical_dataset,
                    canonical_split, check_split, check_subset_size, dataset_stats, nats_name, split_size)

__all__ = ["CIFAR10_CLASSES", "decode_images", "read_archive_members", "read_image_folder", "read_npz_images", "ImageSet", "DataFormatError", "DeviceBatches", "channel_stats", "default_cache_dir", "eval_batches",
           "load_dataset", "load_digits", "read_cifar10_batches", "read_cifar100", "read_image_tree",
           "read_imagenet16", "read_source", "stratified_split", "stratified_subset", "to_tensor", "train_batches",
           "DATASETS", "DATASET_ALIASES", "SPLITS", "SPLIT_SIZES", "TEST_SPLITS", "NORMALIZATION",
           "canonical_dataset", "canonical_split", "check_split", "check_subset_size", "dataset_stats", "nats_name",
           "split_size"]
