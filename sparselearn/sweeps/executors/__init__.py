"""Executors decide where groups run. Each is `execute(groups, train, on_done, cfg)`:
it calls `train(group)` somewhere and `on_done(group, result)` here as groups finish,
where `result` is train's return value or the exception that lost the group.

`MODULES` is the one list of executor names (config validation, the CLI and `sparselearn
list` read it); `EXECUTORS[name]` imports that module on first use, so naming the executors
imports neither ray nor submitit.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

#: executor name → the module that defines its `execute`
MODULES: dict[str, str] = {
    "local": "sparselearn.sweeps.executors.local",
    "devices": "sparselearn.sweeps.executors.devices",
    "ray": "sparselearn.sweeps.executors.ray",
    "slurm": "sparselearn.sweeps.executors.slurm",
}
NAMES: tuple[str, ...] = tuple(MODULES)

#: executor name → the `executor.*` settings it reads besides name, max_group_runs and compile_cache
READS: dict[str, tuple[str, ...]] = {
    "local": (), "devices": (),
    "ray": ("address", "cpus", "gpus"),
    "slurm": ("cpus", "gpus", "partition", "time_min", "mem_gb", "folder", "cluster"),
}


def unread(cfg) -> list[str]:
    """The settings of ExecutorConfig `cfg` changed from their defaults that its executor does
    not read (e.g. `gpus` for `local`), as `executor.<key>`.

    Example:
        >>> unread(sparselearn.config.ExecutorConfig(name="local", gpus=1, partition="gpu"))
        ['executor.gpus', 'executor.partition']
    """
    default = type(cfg)()
    return [f"executor.{key}" for key in sorted({k for keys in READS.values() for k in keys})
            if key not in READS[cfg.name] and getattr(cfg, key) != getattr(default, key)]


class _Lazy(Mapping):
    """name → execute function, each module imported when first asked for."""

    def __getitem__(self, name: str):
        return importlib.import_module(MODULES[name]).execute

    def __iter__(self):
        return iter(MODULES)

    def __len__(self) -> int:
        return len(MODULES)


EXECUTORS: Mapping = _Lazy()
