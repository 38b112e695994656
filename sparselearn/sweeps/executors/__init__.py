"""Executors decide where groups run. Each is `execute(groups, train, on_done, cfg)`:
it calls `train(group)` somewhere and `on_done(group, result)` here as groups finish,
where `result` is train's return value or the exception that lost the group."""

from sparselearn.sweeps.executors import devices, local, ray, slurm

EXECUTORS = {"local": local.execute, "devices": devices.execute, "ray": ray.execute, "slurm": slurm.execute}
