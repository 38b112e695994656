"""Training: one run as a pure function (`make_run`), groups of runs as `run_group`; the
run contract (which values are vmapped axes) in `spec`.

The loop is imported on first use, so `sparselearn.train.optimizers` and `.losses` (the
registries config validation reads) load without it.
"""

import importlib

_LOOP = ("curve_steps", "make_run", "prepare_group", "run_group", "run_one", "trajectory")
__all__ = [*_LOOP, "static_part"]


def __getattr__(name: str):
    if name in _LOOP:
        return getattr(importlib.import_module("sparselearn.train.loop"), name)
    if name == "static_part":
        return importlib.import_module("sparselearn.train.spec").static_part
    raise AttributeError(f"module 'sparselearn.train' has no attribute {name!r}")
