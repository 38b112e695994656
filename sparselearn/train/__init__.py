"""Training: one run as a pure function (`make_run`), groups of runs as `run_group`."""

from sparselearn.train.loop import curve_steps, make_run, run_group, run_one, static_part, trajectory

__all__ = ["curve_steps", "make_run", "run_group", "run_one", "static_part", "trajectory"]
