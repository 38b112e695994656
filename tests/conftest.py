"""Shared fixtures: tiny configs that compile and train in about a second, and one compilation
cache for the whole test session.

The cache: every process of a session (this one, pytest-xdist workers, the CLI and notebook
subprocesses the tests start) keeps its compiled programs in one fresh temporary directory, so a
shape compiled by one of them loads from disk in the others, and nothing is read from or written
to the user's own cache. A test that counts compiles or cache hits sets its own directory (see
test_runtime.py); jax logs "Finished XLA compilation" for cache hits too, so counting those
logs is not affected. To keep compiled programs from one session to the next (a rerun then
compiles almost nothing: `figs --all --smoke` takes half the time), set SPARSELEARN_CACHE_DIR
to a directory of your choice before running pytest."""

from __future__ import annotations

import gc
import re
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from importlib import metadata

import pytest

import sparselearn as sl
from sparselearn.runtime import CACHE_DIR_ENV, cpu_count

TINY = """
experiment: tiny
target:  {name: sparse_parity, n: 10, k: 2}
learner: {name: mlp, width: 32, depth: 2}
train:   {optimizer: sgd, lr: 0.1, batch: 16, steps: 50, loss: hinge, eval_every: 20, eps: 0.05}
data:    {m: 256, test_m: 128}
sweep:   {seeds: 2, grid: {data.m: [64, 256]}}
"""

#: with as many test workers as cores, each process runs XLA on one thread (the workers, and the
#: command-line and notebook processes they start, inherit it): `figs --all --smoke` in two
#: processes at once took 8% less CPU time this way (151–159 s against 165–172 s)
SINGLE_THREADED_XLA = "--xla_cpu_multi_thread_eigen=false"
#: the programs the tests build themselves (references, helpers, eager jnp operations) compile
#: without LLVM optimisation, as the tiny tier does: most of them run once, for microseconds.
#: The library's programs state their own options (`sparselearn.runtime.FULL_COMPILE`, …), so
#: they compile as they do for users. Inherited by the workers and the processes they start.
CHEAP_COMPILES = "--xla_backend_optimization_level=0" + (
    " --xla_cpu_use_fusion_emitters=false"   # a flag the XLA of jaxlib 0.11 does not know, and aborts on
    if tuple(int(part) for part in re.findall(r"\d+", metadata.version("jaxlib"))[:2]) < (0, 11) else "")


def pytest_configure(config):
    """Point the session at a fresh compilation cache directory (workers inherit it from the
    controller's environment), unless the caller chose one. Young-object collections wait for
    50,000 new objects, as in the `sparselearn` executable (cli.console): tracing allocates
    many short-lived objects above a large long-lived heap, which the default threshold (700)
    rescans thousands of times (about 5% of the time of the training tests). XLA_FLAGS gain
    CHEAP_COMPILES, and with a worker per core SINGLE_THREADED_XLA, unless they already choose."""
    gc.set_threshold(50_000, 20, 20)
    workers = getattr(config.option, "numprocesses", None)
    flags = os.environ.get("XLA_FLAGS", "")
    added = [] if "xla_backend_optimization_level" in flags or "xla_cpu_use_fusion_emitters" in flags else [
        CHEAP_COMPILES]
    if isinstance(workers, int) and workers >= cpu_count() and "xla_cpu_multi_thread_eigen" not in flags:
        # the workers fill the cores: XLA's intra-op threads would only oversubscribe them
        added.append(SINGLE_THREADED_XLA)
    if added:
        config._sparselearn_xla_flags = os.environ.get("XLA_FLAGS")
        os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    if CACHE_DIR_ENV not in os.environ:
        config._sparselearn_cache = tempfile.mkdtemp(prefix="sparselearn-test-cache-")
        os.environ[CACHE_DIR_ENV] = config._sparselearn_cache
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        # This process runs tests: start JAX's backends now, so the command line run in-process
        # (which gives JAX one device per core if it has not started) finds them started,
        # whichever test runs first on a worker; every test then sees the same devices.
        import jax

        jax.devices()
        if jax.default_backend() != "cpu":
            # float32 products on GPUs default to TF32 (10-bit mantissas): the tests' references
            # and tolerances are float32's, as the CPU computes them
            jax.config.update("jax_default_matmul_precision", "highest")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """With several workers (`-n`), the tests that share a module-scoped fixture (a trained
    store, the smoke figures) run on one worker, so it is built once."""
    if not getattr(config.option, "loadgroup", False):  # set by pytest-xdist on its workers
        return
    for item in items:
        for name, defs in item._fixtureinfo.name2fixturedefs.items():
            if defs[-1].scope == "module":
                item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}.{name}"))


def pytest_unconfigure(config):
    if hasattr(config, "_sparselearn_xla_flags"):  # the caller's XLA_FLAGS again
        if config._sparselearn_xla_flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = config._sparselearn_xla_flags
    made = getattr(config, "_sparselearn_cache", None)
    if made:
        os.environ.pop(CACHE_DIR_ENV, None)
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_text() -> str:
    return TINY


@pytest.fixture
def tiny() -> sl.config.Experiment:
    return sl.config.loads(TINY)


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture
def close_figures():
    """Closes the matplotlib figures a test leaves open (pyplot keeps every one alive)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def fail_groups(monkeypatch):
    """`fail_groups(when, error)`: the runner's `run_group` raises `error` for a group whose
    experiment satisfies `when(exp)` and trains the others; returns the real `run_group`, which
    `monkeypatch.setattr(runner, "run_group", real)` puts back."""
    from sparselearn.sweeps import runner

    real = runner.run_group

    def fail(when, error: BaseException):
        def run_group(exp, hps, **kwargs):
            if when(exp):
                raise error
            return real(exp, hps, **kwargs)

        monkeypatch.setattr(runner, "run_group", run_group)
        return real

    return fail


@pytest.fixture
def fresh_programs(tmp_path, monkeypatch):
    """No kept programs, in this process or on disk: every program compiles. Returns the list
    of (tier, thread name) of the compiles that follow."""
    from sparselearn import runtime
    from sparselearn.train import loop

    monkeypatch.setattr(runtime, "_LOADED", OrderedDict())
    (tmp_path / "programs").mkdir()
    monkeypatch.setattr(runtime, "programs_dir", lambda environ=None: tmp_path / "programs")
    compiled, real = [], loop.compile_lowered
    monkeypatch.setattr(loop, "compile_lowered", lambda lowered, tier: compiled.append(
        (tier, threading.current_thread().name)) or real(lowered, tier))
    return compiled
