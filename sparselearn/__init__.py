"""sparselearn: PAC learning of sparsely activated MLPs, measured.

Example:
    >>> import sparselearn as sl
    >>> cfg = sl.config.load("configs/quickstart.yaml", overrides=["train.steps=500"])
    >>> df = sl.run(cfg)                          # one row per run, also stored
    >>> df = sl.load_results("results/quickstart")
    >>> sl.sample_complexity(cfg, eps=0.05, delta=0.1).table()   # smallest m, with a bracket
"""

from sparselearn import config, learners, targets
from sparselearn.errors import ConfigError
from sparselearn.sweeps import load_results, run
from sparselearn.sweeps.search import sample_complexity

__version__ = "0.1.0"

__all__ = ["ConfigError", "config", "learners", "load_results", "run", "sample_complexity", "targets",
           "__version__"]
