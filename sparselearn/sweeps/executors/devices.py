"""devices: each group's run axis sharded over every local JAX device (GPUs, TPU cores,
or CPU devices made with XLA_FLAGS=--xla_force_host_platform_device_count=N)."""

from __future__ import annotations

import jax


def execute(groups, train, on_done, cfg) -> None:
    """Train groups in order, each split evenly across `jax.devices()`."""
    del cfg
    devices = tuple(jax.devices())
    for g in groups:
        on_done(g, train(g, devices=devices))
