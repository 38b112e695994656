"""Sweeps: grid expansion, shape groups and executors (the store lives in `sparselearn.store`).

The names below are imported on first use, so `sparselearn.sweeps.executors.NAMES` (read by
config validation and the CLI) loads without jax.
"""

import importlib

_LAZY = {"Group": "sparselearn.sweeps.grid", "Run": "sparselearn.sweeps.grid", "expand": "sparselearn.sweeps.grid",
         "group": "sparselearn.sweeps.grid", "run": "sparselearn.sweeps.runner",
         "Summary": "sparselearn.sweeps.runner", "Store": "sparselearn.store", "StoreError": "sparselearn.store",
         "load_results": "sparselearn.store"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'sparselearn.sweeps' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
