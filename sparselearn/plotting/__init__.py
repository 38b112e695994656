"""Figures drawn from the results store (never training)."""

from sparselearn.plotting.curves import error_vs_m, error_vs_steps, learnability

__all__ = ["error_vs_m", "error_vs_steps", "learnability"]
