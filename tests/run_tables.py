"""Hand-made runs tables with the store's columns and dtypes, for the plotting tests (imported by
them: pytest puts this folder on the path of its test modules)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from sparselearn.schema import RUN_COLUMNS, RUN_DTYPES


def run_row(rid, status="ok", test_error=np.nan, grid=None, **cols) -> dict:
    """One run of a (10, 3)-parity MLP at m = 100, with `cols` set on top."""
    row = dict.fromkeys(RUN_COLUMNS)
    row.update({"run_id": rid, "experiment": "e", "target": "sparse_parity", "learner": "mlp", "n": 10, "k": 3,
                "m": 100, "seed": 0, "eps": 0.05, "steps": 1000, "status": status, "test_error": test_error,
                "grid": json.dumps(grid or {}), **cols})
    return row


def runs_table(rows) -> pd.DataFrame:
    """`rows` (from `run_row`) as a runs table typed as the store types it."""
    return pd.DataFrame(rows, columns=RUN_COLUMNS).astype(RUN_DTYPES)
