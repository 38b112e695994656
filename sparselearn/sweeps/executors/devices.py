"""devices: the same as `local`, which already shards each group's run axis over every local
JAX device (GPUs, TPU cores, or the host devices made with
XLA_FLAGS=--xla_force_host_platform_device_count=N); kept as a name for configs that use it."""

from sparselearn.sweeps.executors.local import execute

__all__ = ["execute"]
