"""slurm: one submitit job per group (partition, time, GPUs from the executor config);
`cluster: local` runs the same jobs as local processes, for testing. Logs and pickles go
to `executor.folder`; this process polls the jobs and writes the store as each finishes.
Ctrl-C or an error here (a failed submission too) cancels the jobs left, whose results nothing
would store."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from sparselearn.errors import ConfigError
from sparselearn.runtime import with_compile_cache, worker_compile_cache

POLL_S = 0.5


def execute(groups, train, on_done, cfg) -> None:
    try:
        import submitit
    except ImportError:
        raise ConfigError("the slurm executor needs submitit: pip install 'sparselearn[slurm]'",
                          key="executor.name") from None
    groups = list(groups)
    if not groups:
        return
    executor = _executor(submitit, cfg)
    params = {"timeout_min": cfg.time_min, "cpus_per_task": cfg.cpus, "name": "sparselearn"}
    if cfg.gpus:
        params["gpus_per_node"] = cfg.gpus
    if cfg.mem_gb:
        params["mem_gb"] = cfg.mem_gb
    if cfg.partition:
        params["slurm_partition"] = cfg.partition
    executor.update_parameters(**params)
    cache = worker_compile_cache(cfg.compile_cache)
    pending = {}
    try:
        for g in groups:
            pending[executor.submit(with_compile_cache, cache, train, g)] = g
        while pending:
            finished = [job for job in pending if job.done()]
            for job in finished:
                g = pending.pop(job)
                try:
                    result = job.result()
                except Exception as e:  # noqa: BLE001 — a killed job fails its group, not the sweep
                    result = e
                on_done(g, result)
            if pending and not finished:
                time.sleep(POLL_S)
    except BaseException:
        # Ctrl-C, a failed submission or an error here: nothing would store what the jobs left return
        for job in pending:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        raise


def _executor(submitit, cfg):
    """submitit's executor for `cfg`; ConfigError naming the setting when `executor.folder`
    cannot be made or `cluster: slurm` finds no SLURM here (submitit's own errors name neither)."""
    folder = cfg.folder or "results/.submitit"   # a sweep sets it beside its results
    made = [d for d in (Path(folder), *Path(folder).parents) if not d.exists()]   # deepest first
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot make the job folder {folder}: {e.strerror or e}",
                          key="executor.folder") from None
    try:
        return submitit.AutoExecutor(folder=folder, cluster=cfg.cluster)
    except RuntimeError as e:
        for d in made:   # no empty folders left behind by a sweep that never started
            with contextlib.suppress(OSError):
                d.rmdir()
        if cfg.cluster != "slurm":
            raise
        raise ConfigError(f"{e} (set `executor.cluster: local` to run the jobs as processes here)",
                          key="executor.cluster") from None
