"""ray: one Ray task per group, on a local Ray instance or the cluster at `address`.
Results come back to this process, which writes the store as each task finishes."""

from __future__ import annotations

from sparselearn.errors import ConfigError
from sparselearn.runtime import with_compile_cache, worker_compile_cache

WAIT_S = 0.5  # ray.wait in short steps, so Ctrl-C reaches this process at once


def execute(groups, train, on_done, cfg) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray: pip install 'sparselearn[ray]'", key="executor.name") from None
    groups = list(groups)
    if not groups:
        return
    started = not ray.is_initialized()
    if started:
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    try:
        task = ray.remote(num_cpus=cfg.cpus, num_gpus=cfg.gpus)(with_compile_cache)
        cache = worker_compile_cache(cfg.compile_cache)
        pending = {task.remote(cache, train, g): g for g in groups}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
            if not done:
                continue
            ref = done[0]
            g = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # noqa: BLE001 — a lost worker fails its group, not the sweep
                result = e
            on_done(g, result)
    finally:
        if started:
            ray.shutdown()
