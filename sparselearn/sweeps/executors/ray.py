"""ray: one Ray task per group, on a local Ray instance or the cluster at `address`.
Results come back to this process, which writes the store as each task finishes; Ctrl-C or
an error here cancels the tasks left, whose results nothing would store."""

from __future__ import annotations

import contextlib
import os
import socket

from sparselearn.errors import ConfigError
from sparselearn.runtime import with_compile_cache, worker_compile_cache

WAIT_S = 0.5  # ray.wait in short steps, so Ctrl-C reaches this process at once
CONNECT_S = 5.0  # for `executor.address` to answer: Ray itself retries an unreachable one for ever


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
        _check_reachable(cfg.address)
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    else:
        _check_connected_to(ray, cfg.address)
    pending = {}
    try:
        if started and cfg.address is None and "RAY_ADDRESS" not in os.environ:
            _check_fits(ray.cluster_resources(), cfg)
        task = ray.remote(num_cpus=cfg.cpus, num_gpus=cfg.gpus)(with_compile_cache)
        cache = worker_compile_cache(cfg.compile_cache)
        for g in groups:
            pending[task.remote(cache, train, g)] = g
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
    except BaseException:
        # Ctrl-C or an error here: nothing would store what the tasks left return
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def _check_reachable(address: str | None) -> None:
    """Raise ConfigError when `address` names a host:port (or ray://host:port) that takes no
    connection within CONNECT_S; other forms ("auto", "local", None) are left to Ray."""
    host, sep, port = (address or "").removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_S).close()
    except OSError as e:
        raise ConfigError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one there "
                          "(`ray start --head`), or leave `executor.address` unset for a local instance",
                          key="executor.address") from None


def _check_fits(resources: dict, cfg) -> None:
    """Raise ConfigError when one task asks for more CPUs or GPUs than the Ray instance started
    here has: Ray would keep such a task waiting for ever, and say nothing."""
    for key, unit in (("cpus", "CPU"), ("gpus", "GPU")):
        have = int(resources.get(unit, 0))
        if getattr(cfg, key) > have:
            raise ConfigError(f"each task asks for {getattr(cfg, key)} {unit}s, but the local Ray instance has "
                              f"{have}; lower it, or give `executor.address` of a cluster that has them",
                              key=f"executor.{key}")


def _check_connected_to(ray, address: str | None) -> None:
    """ConfigError (executor.address) when this process is already connected to Ray (a notebook
    that ran `ray.init()`) at another cluster than the `host:port` the config names: the sweep
    would run there, not where the config says."""
    if not address or "://" in address or address in ("auto", "local"):
        return
    connected = getattr(ray.get_runtime_context(), "gcs_address", None)
    if connected and connected != address:
        raise ConfigError(f"{address}, but this process is already connected to the Ray cluster at {connected} "
                          "(call ray.shutdown() first, or leave executor.address unset to use that one)",
                          key="executor.address")
