"""The results schema, defined once: the columns of runs.parquet, curves.parquet and
traces.parquet, and the run columns' pandas dtypes. The training loop names its curve outputs
after `CURVES`, the runner fills `RUN_COLUMNS`, the store checks files against all three;
none of this imports jax.

Example:
    >>> RUN_COLUMNS[:3], CURVE_COLUMNS[:2]
    (['run_id', 'experiment', 'config_hash'], ['run_id', 'step'])
"""

from __future__ import annotations

import numpy as np

#: run column → pandas dtype ("object" for strings, JSON text and booleans that may be null)
RUN_DTYPES: dict[str, str] = {
    "run_id": "object", "experiment": "object", "config_hash": "object", "group_id": "object",
    "target": "object", "learner": "object",
    "n": "Int64", "k": "Int64", "s": "Int64", "m": "Int64", "width": "Int64", "depth": "Int64",
    "seed": "Int64", "init_seed": "Int64", "lr": "float64", "weight_decay": "float64",
    "steps": "Int64", "batch": "Int64", "optimizer": "object", "loss": "object", "noise": "float64",
    "online": "object", "eps": "float64", "grid": "object",
    "test_error": "float64", "test_loss": "float64", "train_error": "float64", "train_loss": "float64",
    "steps_to_eps": "Int64", "wall_s": "float64", "status": "object", "error": "object",
}
RUN_COLUMNS: list[str] = list(RUN_DTYPES)

#: the quantities recorded at every evaluated step (curve_<name> outputs of a run)
CURVES: tuple[str, ...] = ("train_loss", "train_error", "test_error", "test_loss", "drift")
CURVE_COLUMNS: list[str] = ["run_id", "step", *CURVES]

#: the traces table (experiments with `train.record`): one row per (run, curve step, recorder),
#: the recorder's array flattened to float32 `values` with its `shape`
TRACE_COLUMNS: list[str] = ["run_id", "step", "name", "shape", "values"]

#: run statuses: a rerun skips ok and diverged runs, and failed ones unless asked to retry
STATUSES: tuple[str, ...] = ("ok", "diverged", "failed")


#: relative slack of `eps_bound`: an error rate k/N comes out of XLA up to two float32 steps
#: above float32(k/N) (it multiplies by a rounded 1/N: 120 errors in 250 give 0.48000002), while
#: a rate truly above eps is at least 1/N above it, far more than this for any test set
EPS_SLACK = 2.0 ** -21


def eps_bound(eps):
    """The largest float32 error that counts as ≤ eps: float32(eps) and a few float32 steps more
    (`EPS_SLACK`), so eps·N wrong rows of N reach eps. A number, array or pandas Series."""
    return _f32(_f32(eps) * (1 + EPS_SLACK))


def _f32(v):
    return v.astype(np.float32) if hasattr(v, "astype") else np.float32(v)


def within_eps(values, eps):
    """values ≤ eps as the training loop decides it (`steps_to_eps`, `stop_at_eps`): in float32,
    up to `eps_bound`. The stored metrics are float32 values widened to float64, so 50 errors in
    1,000 are stored as 0.0500000007, which a float64 comparison with eps = 0.05 would call above.
    `values` and `eps`: numbers, arrays or pandas Series (a Series keeps its index).

    Example:
        >>> within_eps(np.float64(np.float32(0.05)), 0.05), np.float64(np.float32(0.05)) <= 0.05
        (np.True_, np.False_)
    """
    return _f32(values) <= eps_bound(eps)
