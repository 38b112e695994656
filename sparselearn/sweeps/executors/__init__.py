"""Executors decide where groups run; each calls `on_done(group, result)` as groups finish."""

from sparselearn.sweeps.executors import local

EXECUTORS = {"local": local.execute}
