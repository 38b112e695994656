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


# Counts the group programs one `sl.run` in a fresh process compiles, all the programs it
# compiles, and the programs it takes from JAX's cache.
COUNT = """
import json, sys, jax
from jax import monitoring
seen = {"hits": 0, "compiles": 0, "all_compiles": 0}
def listen(event, **kw):
    if event.endswith("/cache_hits"): seen["hits"] += 1
def timed(event, duration, fun_name="", **kw):
    if event == "/jax/core/compile/backend_compile_duration":
        seen["all_compiles"] += 1
        seen["compiles"] += "run_group" in fun_name
monitoring.register_event_listener(listen)
monitoring.register_event_duration_secs_listener(timed)
import sparselearn as sl
cfg = sl.config.load(sys.argv[1], ["sweep.seeds=1", "sweep.grid.data.m=[64]"])
df = sl.run(cfg, sys.argv[2], progress=False)
assert (df["status"] == "ok").all()
print(json.dumps({**seen, "test_loss": sorted(df["test_loss"].tolist())}))
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
    assert first["compiles"] >= 1 and first["hits"] == 0, first
    kept = sorted((cache / runtime.PROGRAMS).iterdir())
    assert kept, "no group program kept"
    # a fresh store trains again: the group program loads without tracing, and nothing else
    # compiles either (the memory plan and the tier traces keys abstractly, `rng.abstract_key`)
    second = _count(tiny_file, tmp_path / "b", env)
    assert second["all_compiles"] == 0 and second["test_loss"] == first["test_loss"], (first, second)
    for f in kept:  # JAX's cache holds no copy of a kept program: deleted, it compiles afresh
        f.unlink()
    third = _count(tiny_file, tmp_path / "c", env)
    assert third["compiles"] >= 1 and third["test_loss"] == first["test_loss"], third
    assert sorted((cache / runtime.PROGRAMS).iterdir()) == kept
    fourth = _count(tiny_file, tmp_path / "e", env)  # and the program kept again loads and runs
    assert fourth["compiles"] == 0 and fourth["test_loss"] == first["test_loss"], fourth
    before = sorted(cache.rglob("*"))
    off = _count(tiny_file, tmp_path / "d", {**env, "SPARSELEARN_CACHE": "off"})
    assert off["hits"] == 0 and off["compiles"] >= 1 and sorted(cache.rglob("*")) == before, off


# One small program in a fresh process: compiled by JAX alone (argv "jax"), or as a kept program.
FROM_JAX_CACHE = """
import sys, jax, jax.numpy as jnp, numpy as np
from sparselearn import runtime
runtime.enable_compile_cache()
program, x = jax.jit(lambda v: jnp.sin(v) * 2 + v), np.linspace(0, 1, 7, dtype=np.float32)
compiled = program.lower(x).compile() if sys.argv[1] == "jax" else runtime.executable(program, (x,), ("sin", 0))
print(np.asarray(compiled(x)).tolist())
"""


def test_a_program_from_jax_own_cache_runs_and_is_not_kept(tmp_path):
    """An executable JAX loads from its cache serializes without its kernels: kept, it would
    fail in the next process. One found there (e.g. written by an earlier version) is used, not
    kept."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "SPARSELEARN_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SPARSELEARN_CACHE", None)

    def values(how: str) -> list[float]:
        done = subprocess.run([sys.executable, "-c", FROM_JAX_CACHE, how], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    expected = values("jax")  # JAX's cache now holds the program
    assert values("kept") == expected and values("kept") == expected
    assert not (tmp_path / runtime.PROGRAMS).exists() or not list((tmp_path / runtime.PROGRAMS).iterdir())


def test_a_kept_program_is_keyed_by_what_it_is_built_from_and_survives_a_broken_file(tmp_path, monkeypatch):
    import jax
    import numpy as np

    monkeypatch.setattr(runtime, "programs_dir", lambda environ=os.environ: tmp_path)
    source = tmp_path / "model.py"
    source.write_text("a = 1\n")
    jitted = jax.jit(lambda x: 2 * x + 1)
    x, wide = np.arange(3.0, dtype=np.float32), np.arange(4.0, dtype=np.float32)
    key = runtime.program_key(("double", 1), (x,), (str(source),))
    assert key == runtime.program_key(("double", 1), (x,), (str(source),))
    assert key != runtime.program_key(("double", 2), (x,), (str(source),))
    assert key != runtime.program_key(("double", 1), (wide,), (str(source),))
    assert key != runtime.program_key(("double", 1), (x.astype(np.float64),), (str(source),))
    source.write_text("a = 2\n")  # the code it is built from changed (files are read once per process)
    runtime._source_digest.cache_clear()
    assert key != runtime.program_key(("double", 1), (x,), (str(source),))

    program = runtime.executable(jitted, (x,), ("affine", 0))
    kept = tmp_path / f"{runtime.program_key(('affine', 0), (x,))}.bin"
    assert kept.exists() and np.array_equal(program(x), 2 * x + 1)
    runtime._LOADED.clear()
    kept.write_bytes(b"truncated")  # a broken file is replaced by a fresh compile
    assert np.array_equal(runtime.executable(jitted, (x,), ("affine", 0))(x), 2 * x + 1)
    assert kept.stat().st_size > len(b"truncated")
    runtime._LOADED.clear()
    assert np.array_equal(runtime.executable(jitted, (x,), ("affine", 0))(x), 2 * x + 1)  # loaded from disk


def test_programs_lowered_in_turn_compile_in_a_pool_and_a_failed_compile_is_raised(tmp_path, monkeypatch):
    """The second program is lowered from the first's out_info while the first compiles; both
    are kept; an error of a compile in the pool reaches the caller of `compiled`."""
    import jax
    import numpy as np

    monkeypatch.setattr(runtime, "programs_dir", lambda environ=os.environ: tmp_path)
    monkeypatch.setattr(runtime, "cpu_count", lambda: 2)
    x = np.arange(3.0, dtype=np.float32)
    with runtime.compile_pool() as pool:
        first = runtime.prepare(jax.jit(lambda v: (2 * v, v.sum())), (x,), ("pair", 0), pool=pool)
        assert first.pending is not None
        second = runtime.prepare(jax.jit(lambda v, s: v + s), tuple(first.out_info), ("sum", 0), pool=pool)
        pair, add = runtime.compiled([first, second])
    assert np.array_equal(add(*pair(x)), 2 * x + 3.0)
    assert len(list(tmp_path.glob("*.bin"))) == 2

    def broken(lowered):
        raise RuntimeError("the compiler gave up")

    with runtime.compile_pool() as pool:
        failing = runtime.prepare(jax.jit(lambda v: v - 1), (x,), ("minus", 0), compile=broken, pool=pool)
        with pytest.raises(RuntimeError, match="gave up"):
            runtime.compiled([failing])
    monkeypatch.setattr(runtime, "cpu_count", lambda: 1)
    with runtime.compile_pool() as pool:
        assert pool is None   # one core: compiled by `compiled`, in this thread


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


def test_a_program_that_cannot_be_serialized_still_runs_and_is_not_kept(tmp_path, monkeypatch):
    import jax
    import numpy as np
    from jax.experimental import serialize_executable

    def refuse(compiled):
        raise RuntimeError("LessThan is not serializable")  # what some programs raise

    monkeypatch.setattr(runtime, "programs_dir", lambda environ=os.environ: tmp_path)
    monkeypatch.setattr(serialize_executable, "serialize", refuse)
    x = np.arange(5.0, dtype=np.float32)
    program = runtime.executable(jax.jit(lambda v: v * 3), (x,), ("unkept", 0))
    assert np.array_equal(program(x), 3 * x) and not list(tmp_path.iterdir())
