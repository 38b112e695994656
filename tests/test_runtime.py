"""JAX start-up settings: the persistent compilation cache and one host device per core."""

from __future__ import annotations

import importlib
import functools
import json
import os
import subprocess
import sys
import types
import warnings
from collections import OrderedDict
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
        # not a directory named "off" in the working directory
        assert runtime.cache_dir({"SPARSELEARN_CACHE_DIR": off, "XDG_CACHE_HOME": str(tmp_path)}) is None
    assert runtime.cache_dir({"SPARSELEARN_CACHE_DIR": str(tmp_path / "off")}) == tmp_path / "off"


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


# A program calling LAPACK (a Cholesky factorization and an eigendecomposition, as the fitted
# learners' solves do), kept in one process and loaded in the next.
WITH_LAPACK = """
import jax, jax.numpy as jnp, numpy as np
from sparselearn import runtime
runtime.enable_compile_cache()
def fit(a):
    g = a @ a.T + jnp.eye(a.shape[0])
    return jnp.linalg.cholesky(g).sum() + jnp.linalg.eigh(g)[0].sum()
a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
print(float(runtime.executable(jax.jit(fit), (a,), ("lapack", 0))(a)))
"""


def test_a_kept_program_that_calls_lapack_runs_in_the_next_process(tmp_path):
    """Loaded without lowering, a program's LAPACK kernels had no routines to call: the second
    process died of a segmentation fault (every compiled fitted learner's second run)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "SPARSELEARN_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SPARSELEARN_CACHE", None)
    outs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", WITH_LAPACK], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
        outs.append(float(done.stdout.strip().splitlines()[-1]))
        assert list((tmp_path / runtime.PROGRAMS).glob("*.bin")), "the program was not kept"
    assert outs[1] == outs[0]


FITTED_RUN = """
import json, sys
import sparselearn as sl
exp = sl.config.loads(sys.argv[1])
df = sl.sweeps.run(exp, sys.argv[2], progress=False)
print(json.dumps(df.sort_values("run_id")[["status", "test_error", "test_loss"]].values.tolist()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["{name: lowdegree, degree: 2}", "{name: kernel}",
                                     "{name: layerwise, width: 16, steps: 7}"])
def test_fitted_learners_run_again_from_their_kept_programs(tmp_path, learner):
    target = "{name: hierarchical, n: 4, k: 2}" if "layerwise" in learner else "{name: sparse_parity, n: 6, k: 2}"
    text = (f"experiment: again\ntarget: {target}\nlearner: {learner}\ntrain: {{loss: square}}\n"
            "data: {m: 64, test_m: 64}\nsweep: {seeds: 2}\n")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "SPARSELEARN_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SPARSELEARN_CACHE", None)
    outs = []
    for store in ("a", "b"):
        done = subprocess.run([sys.executable, "-c", FITTED_RUN, text, str(tmp_path / store)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
        outs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert list((tmp_path / "cache" / runtime.PROGRAMS).glob("*.bin"))
    assert outs[1] == outs[0] and all(row[0] == "ok" for row in outs[0])


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
    monkeypatch.setattr(runtime, "_warn_one_host_device", functools.cache(runtime._warn_one_host_device.__wrapped__))
    with pytest.warns(RuntimeWarning, match="xla_force_host_platform_device_count=8"):
        runtime.local_devices()
    with warnings.catch_warnings():  # once per process, even where every warning shows
        warnings.simplefilter("always")
        warnings.simplefilter("error", RuntimeWarning)
        runtime.local_devices()
    runtime._warn_one_host_device.cache_clear()
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")  # chosen: no warning
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


def _module(tmp_path, monkeypatch, name: str, source: str) -> types.ModuleType:
    """`source` written to tmp_path/`name`.py and imported (without bytecode files, so that a
    reload within the same second reads the edited source); removed from sys.modules after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.setitem(sys.modules, name, None)  # restored (deleted) after the test
    del sys.modules[name]
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)
    return module


PLUG = """
import jax
import sl_helper

@jax.jit
def scale(y):
    return y * 2

class Plug:
    def labels(self, y):
        return scale(sl_helper.transform(y))
"""


def test_a_plugin_is_keyed_by_the_code_it_runs_as_loaded_helpers_included(tmp_path, monkeypatch):
    """A plug-in's programs change with a helper module it imports, and follow the code this
    process loaded, not its file as it reads now (edited after the import)."""
    import numpy as np

    helper = _module(tmp_path, monkeypatch, "sl_helper", "def transform(y):\n    return y + 1\n")
    plug = _module(tmp_path, monkeypatch, "sl_plug", PLUG)
    x = np.arange(3.0, dtype=np.float32)

    def key():
        return runtime.program_key(("labels", 0), (x,), runtime.code_files(plug.Plug()))

    first = key()
    assert key() == first and runtime.code_files(plug.Plug()).local == ()
    (tmp_path / "sl_helper.py").write_text("def transform(y):\n    return y - 1\n")
    assert key() == first  # edited on disk, but this process still runs the old helper
    importlib.reload(helper)  # what a new process loads
    assert key() != first

    edited = _module(tmp_path, monkeypatch, "sl_plug_edited", PLUG)
    (tmp_path / "sl_plug_edited.py").write_text(PLUG.replace("y * 2", "y * 3"))  # between import and first key
    stale = runtime.program_key(("labels", 0), (x,), runtime.code_files(edited.Plug()))
    importlib.reload(edited)
    assert runtime.program_key(("labels", 0), (x,), runtime.code_files(edited.Plug())) != stale


def test_an_installed_plugin_is_keyed_by_the_helper_modules_of_its_package(tmp_path, monkeypatch):
    """A plug-in installed as a package (site-packages: not the user's code) whose class calls a
    helper in another module of that package: a changed helper is a new key."""
    import numpy as np

    root = tmp_path / "site-packages"
    (root / "slplugpkg").mkdir(parents=True)
    (root / "slplugpkg" / "__init__.py").write_text("")
    (root / "slplugpkg" / "helpers.py").write_text("def scale():\n    return 1.0\n")
    (root / "slplugpkg" / "targets.py").write_text(
        "from slplugpkg import helpers\n\nclass Plug:\n    def labels(self, y):\n        return y * helpers.scale()\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for name in ("slplugpkg", "slplugpkg.helpers", "slplugpkg.targets"):
        monkeypatch.setitem(sys.modules, name, None)   # removed after the test
        del sys.modules[name]
    plug = importlib.import_module("slplugpkg.targets")
    x = np.arange(3.0, dtype=np.float32)

    def key():
        return runtime.program_key(("labels", 0), (x,), runtime.code_files(plug.Plug()))

    first = key()
    (root / "slplugpkg" / "helpers.py").write_text("def scale():\n    return 2.0\n")
    importlib.reload(sys.modules["slplugpkg.helpers"])
    assert key() != first


def test_a_plugin_class_without_a_source_file_is_kept_in_this_process_by_its_identity(tmp_path, monkeypatch):
    """A class of `python -c`, a notebook cell or `python - < script` (no file to read): its
    programs are never kept on disk, and a redefinition, edited or not, compiles anew."""
    import jax
    import numpy as np

    monkeypatch.setattr(runtime, "programs_dir", lambda environ=os.environ: tmp_path)
    monkeypatch.setattr(runtime, "_LOADED", OrderedDict())
    stdin = types.ModuleType("sl_stdin")
    stdin.__file__ = "<stdin>"
    monkeypatch.setitem(sys.modules, "sl_stdin", stdin)
    x = np.arange(3.0, dtype=np.float32)
    for namespace in ({"__name__": "sl_cell"}, vars(stdin)):  # a module that is not loaded; stdin's
        programs = []
        for body in ("x + 1", "x - 1", "x - 1"):  # the cell edited, then run again as it is
            exec(f"class Cell:\n    def f(self, x):\n        return {body}\n", namespace)
            cell = namespace["Cell"]()
            code = runtime.code_files(cell)
            assert code.local == (id(type(cell)),)
            programs.append(runtime.executable(jax.jit(cell.f), (x,), ("cell", 0), code))
            assert np.array_equal(programs[-1](x), eval(body))
            assert runtime.executable(jax.jit(cell.f), (x,), ("cell", 0), code) is programs[-1]
        assert programs[1] is not programs[2]
    assert not list(tmp_path.iterdir())


DEVICE_ORDER = """
import jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from sparselearn import runtime

def key(devices):
    x = jax.device_put(np.arange(4.0), NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs")))
    return runtime.program_key(("group", 0), (x,))

print(key(jax.devices()) == key(jax.devices()), key(jax.devices()) != key(jax.devices()[::-1]))
"""


def test_the_order_of_a_program_devices_is_in_its_key():
    """Arguments placed on devices [1, 0] do not load a program compiled for [0, 1] (it would
    refuse them)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", DEVICE_ORDER], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("name, value", [("jax_random_seed_offset", 5), ("jax_softmax_custom_jvp", True),
                                         ("jax_explicit_x64_dtypes", "allow"), ("jax_enable_x64", True)])
def test_jax_settings_that_change_a_program_are_in_its_key(name, value):
    import jax
    import numpy as np

    x = np.arange(3, dtype=np.int32)
    key = runtime.program_key(("draw", 0), (x,))
    assert runtime.program_key(("draw", 0), (x,)) == key
    before = getattr(jax.config, name)
    jax.config.update(name, value)
    try:
        assert runtime.program_key(("draw", 0), (x,)) != key
    finally:
        jax.config.update(name, before)


def test_a_tiered_jit_call_follows_the_jax_settings_it_is_called_under():
    import jax
    import jax.numpy as jnp
    import numpy as np

    if not runtime.tiers_apply():
        pytest.skip("the tiers do not apply here: calls are jax.jit's")
    widen = runtime.tiered_jit(lambda v: v + jnp.zeros(3))
    assert widen(np.float32(1)).dtype == np.float32
    with jax.enable_x64(True):
        assert widen(np.float32(1)).dtype == jax.jit(lambda v: v + jnp.zeros(3))(np.float32(1)).dtype == np.float64
    assert widen(np.float32(1)).dtype == np.float32


@pytest.fixture
def jax_cache_settings(monkeypatch):
    """JAX's cache settings and the runtime's own switch, as they were, after the test."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    saved = {name: getattr(jax.config, name) for name in ("jax_enable_compilation_cache", "jax_compilation_cache_dir")}
    monkeypatch.setattr(runtime, "_switched_off", getattr(runtime, "_switched_off", False), raising=False)
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    cc.reset_cache()


def test_a_sweep_compile_cache_setting_holds_for_that_sweep_and_workers_run_with_it(tmp_path, monkeypatch,
                                                                                    jax_cache_settings):
    import jax

    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    monkeypatch.setenv(runtime.CACHE_DIR_ENV, str(tmp_path))
    assert runtime.compile_cache(True) is not None and runtime.programs_dir() is not None
    assert runtime.compile_cache(False) is None and runtime.programs_dir() is None
    assert runtime.compile_cache(True) is not None and runtime.programs_dir() is not None  # the next sweep's
    assert runtime.with_compile_cache(False, runtime.programs_dir) is None  # a worker, whatever its environment
    assert runtime.with_compile_cache(True, runtime.programs_dir) is not None
    assert runtime.worker_compile_cache(True) and not runtime.worker_compile_cache(False)

    monkeypatch.setenv(runtime.CACHE_ENV, "off")  # `--no-compile-cache`, or the user's own environment
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax"))  # as JAX_COMPILATION_CACHE_DIR sets
    assert runtime.compile_cache(True) is None and not jax.config.jax_enable_compilation_cache
    assert not runtime.worker_compile_cache(True)


def test_ray_and_slurm_workers_are_told_the_sweep_compile_cache_setting(monkeypatch):
    """Workers on other machines do not inherit this process's environment: what they run
    (`with_compile_cache`) takes the setting as an argument."""
    from sparselearn.config import ExecutorConfig
    from sparselearn.sweeps.executors import ray as ray_executor
    from sparselearn.sweeps.executors import slurm

    class Job:  # finished at once
        def done(self):
            return True

        def result(self):
            return None

    submitted = []
    submitit = types.SimpleNamespace(AutoExecutor=lambda **_: types.SimpleNamespace(
        update_parameters=lambda **_: None, submit=lambda fn, *args: submitted.append((fn, *args)) or Job()))
    ray = types.SimpleNamespace(
        is_initialized=lambda: True, get=lambda ref: None, wait=lambda refs, **_: (refs[:1], refs[1:]),
        remote=lambda **_: lambda fn: types.SimpleNamespace(
            remote=lambda *args: submitted.append((fn, *args)) or len(submitted)))
    monkeypatch.setitem(sys.modules, "submitit", submitit)
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    for on in (True, False):
        for name, executor in (("slurm", slurm), ("ray", ray_executor)):
            submitted.clear()
            executor.execute(["g"], "train", lambda g, result: None, ExecutorConfig(name=name, compile_cache=on))
            assert submitted == [(runtime.with_compile_cache, on, "train", "g")]
    monkeypatch.setenv(runtime.CACHE_ENV, "off")
    slurm.execute(["g"], "train", lambda g, result: None, ExecutorConfig(name="slurm"))
    assert submitted[-1] == (runtime.with_compile_cache, False, "train", "g")


LAPACK_GROUPS = """
import sys
import jax
import numpy as np
from sparselearn import config
from sparselearn.train import loop

devices = jax.devices()
runs = 2 * len(devices)
for learner in ({"name": "kernel", "kernel": "ntk", "ridge": 1e-3}, {"name": "kernel", "kernel": "ntk", "ridge": 0.0},
                {"name": "layerwise", "width": 32, "degree": 3, "steps": 20}):
    exp = config.from_dict({"experiment": "lapack", "target": {"name": "hierarchical", "n": 6, "k": 2, "r": 3, "q": 2,
                                                               "g_coeffs": [0, 1, 1]},
                            "learner": learner, "train": {"loss": "square"}, "data": {"m": 64, "test_m": 64}})
    out = loop.run_group(exp, {"seed": list(range(runs)), "m": [64] * runs}, devices=devices)
    print(learner["name"], bool(np.all(np.isfinite(out["test_error"]))), flush=True)
"""


def test_lapack_calls_in_a_group_sharded_over_every_core_do_not_hang():
    """Cholesky, eigh and QR (random target directions) in groups of two runs per host device,
    with one host device per core: jaxlib's batched CPU kernels waited on the intra-op pool that
    the devices' own calls filled, and such a group hung. Here each finishes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "SPARSELEARN_CACHE": "off",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={max(2, cores)}",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run([sys.executable, "-c", LAPACK_GROUPS], env=env, capture_output=True, text=True,
                              timeout=240)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"a group hung; finished: {e.stdout!r}") from None
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["kernel", "True", "kernel", "True", "layerwise", "True"]
