"""sparselearn: PAC learning of sparsely activated MLPs, measured.

Importing the package is cheap and imports no jax: `load_results` reads stored results with
pandas alone, and the rest (config, targets, learners, run, sample_complexity, …) is imported
the first time it is used.

Example:
    >>> import sparselearn as sl
    >>> cfg = sl.config.load("configs/quickstart.yaml", overrides=["train.steps=500"])
    >>> df = sl.run(cfg)                          # one row per run, also stored  # doctest: +SKIP
    >>> df = sl.load_results("results/quickstart")                                # doctest: +SKIP
    >>> sl.sample_complexity(cfg, eps=0.05, delta=0.1).table()   # smallest m, with a bracket  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from sparselearn.errors import ConfigError

__version__ = "0.1.0"

#: public name → (module, attribute or None for the module itself), imported on first use
_LAZY = {
    "config": ("sparselearn.config", None),
    "targets": ("sparselearn.targets", None),
    "learners": ("sparselearn.learners", None),
    "theory": ("sparselearn.theory", None),
    "analysis": ("sparselearn.analysis", None),
    "plotting": ("sparselearn.plotting", None),
    "store": ("sparselearn.store", None),
    "train": ("sparselearn.train", None),
    "runtime": ("sparselearn.runtime", None),
    "run": ("sparselearn.sweeps.runner", "run"),
    "sample_complexity": ("sparselearn.sweeps.search", "sample_complexity"),
    "load_results": ("sparselearn.store", "load_results"),
}

__all__ = ["ConfigError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'sparselearn' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
