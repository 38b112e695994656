"""Sweeps: grid expansion, shape groups, the results store and executors."""

from sparselearn.sweeps.grid import Group, Run, expand, group
from sparselearn.sweeps.runner import Summary, run
from sparselearn.sweeps.store import Store, StoreError, load_results

__all__ = ["Group", "Run", "expand", "group", "run", "Summary", "Store", "StoreError", "load_results"]
