"""Datasets: adapters that read the official release layouts as users download them.

Each adapter lists items (a media path, a label in the dataset's vocabulary, speaker and split) without
decoding anything, and ``check`` reports missing or unreadable files and label counts before a run.
"""

from omniemo.data.datasets import DATASETS, CheckReport, Item, check, get_dataset

__all__ = ["DATASETS", "CheckReport", "Item", "check", "get_dataset"]
