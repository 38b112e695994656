"""JAX start-up settings: the persistent compilation cache and one host device per core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparselearn import runtime

ROOT = Path(__file__).resolve().parents[1]


def test_host_device_flags_append_and_keep_an_explicit_count():
    assert runtime.host_device_flags({}, count=4) == "--xla_force_host_platform_device_count=4"
    mixed = {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}
    assert runtime.host_device_flags(mixed, count=3) == \
        "--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=3"
    explicit = {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    assert runtime.host_device_flags(explicit, count=8) == explicit["XLA_FLAGS"]
    assert runtime.host_device_flags({}).endswith(f"={runtime.cpu_count()}")


def test_cache_dir_default_override_and_off(tmp_path):
    default = runtime.cache_dir({"XDG_CACHE_HOME": str(tmp_path)})
    assert default.parent == tmp_path / "sparselearn" and default.name.startswith("jax-")
    import jax

    assert jax.__version__ in default.name  # one directory per jax version
    assert runtime.cache_dir({"SPARSELEARN_CACHE_DIR": str(tmp_path / "c")}) == tmp_path / "c"
    for off in ("0", "off", "OFF", "false"):
        assert runtime.cache_dir({"SPARSELEARN_CACHE": off, "SPARSELEARN_CACHE_DIR": "/x"}) is None


# Counts the persistent cache's hits and misses of one `sl.run` in a fresh process.
COUNT = """
import json, sys, jax
from jax import monitoring
seen = {"hits": 0, "misses": 0}
def listen(event, **kw):
    if event.endswith("/cache_hits"): seen["hits"] += 1
    if event.endswith("/cache_misses"): seen["misses"] += 1
monitoring.register_event_listener(listen)
import sparselearn as sl
cfg = sl.config.load(sys.argv[1], ["sweep.seeds=1", "sweep.grid.data.m=[64]"])
df = sl.run(cfg, sys.argv[2], progress=False)
assert (df["status"] == "ok").all()
print(json.dumps(seen))
"""


def _count(tiny_file, out, env) -> dict:
    done = subprocess.run([sys.executable, "-c", COUNT, str(tiny_file), str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_compiles_nothing_it_has_seen(tiny_file, tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "SPARSELEARN_CACHE_DIR": str(cache),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SPARSELEARN_CACHE", None)
    first = _count(tiny_file, tmp_path / "a", env)
    assert first["misses"] >= 1 and first["hits"] == 0, first
    assert any(cache.iterdir()), "nothing written to the cache directory"
    second = _count(tiny_file, tmp_path / "b", env)  # a fresh store: it trains again, compiling nothing
    assert second["hits"] >= 1 and second["misses"] == 0, second
    off = _count(tiny_file, tmp_path / "c", {**env, "SPARSELEARN_CACHE": "off"})
    assert off == {"hits": 0, "misses": 0}, off


def test_local_devices_warns_on_one_host_device_of_many_cores(monkeypatch):
    import jax

    if len(jax.local_devices()) > 1 or jax.default_backend() != "cpu":
        pytest.skip("this process runs several devices")
    monkeypatch.setattr(runtime, "cpu_count", lambda: 8)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with pytest.warns(RuntimeWarning, match="xla_force_host_platform_device_count=8"):
        runtime.local_devices()
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")  # chosen: no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runtime.local_devices()
