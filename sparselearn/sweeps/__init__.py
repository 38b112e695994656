"""Sweeps: grid expansion, shape groups and executors (the store lives in `sparselearn.store`)."""

from sparselearn.store import Store, StoreError, load_results
from sparselearn.sweeps.grid import Group, Run, expand, group
from sparselearn.sweeps.runner import Summary, run

__all__ = ["Group", "Run", "expand", "group", "run", "Summary", "Store", "StoreError", "load_results"]
