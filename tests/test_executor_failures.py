"""Remote executors on Ctrl-C and on requests a local Ray instance cannot meet."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import pytest

from sparselearn import config
from sparselearn.sweeps.executors import EXECUTORS


def _interrupt(g, result):
    raise KeyboardInterrupt


class _Job:
    def __init__(self, done: bool):
        self._done, self.cancelled = done, False

    def done(self) -> bool:
        return self._done

    def result(self):
        return "result"

    def cancel(self, check: bool = True) -> None:
        self.cancelled = True


def _fake_submitit(jobs: list, fail_at: int | None = None):
    """A submitit whose first job is done at once and the others never; submission `fail_at` raises."""

    class AutoExecutor:
        def __init__(self, folder, cluster):
            pass

        def update_parameters(self, **params):
            pass

        def submit(self, fn, *args):
            if len(jobs) == fail_at:
                raise RuntimeError("sbatch: error: invalid partition")
            jobs.append(_Job(done=not jobs))
            return jobs[-1]

    return types.SimpleNamespace(AutoExecutor=AutoExecutor)


def test_slurm_cancels_the_jobs_left_on_ctrl_c(monkeypatch, tmp_path):
    jobs: list[_Job] = []
    monkeypatch.setitem(sys.modules, "submitit", _fake_submitit(jobs))
    cfg = config.ExecutorConfig(name="slurm", folder=str(tmp_path), compile_cache=False)
    with pytest.raises(KeyboardInterrupt):
        EXECUTORS["slurm"](["a", "b", "c"], str.upper, _interrupt, cfg)
    assert [j.cancelled for j in jobs] == [False, True, True]  # the results of b and c could not be stored


def test_slurm_cancels_the_jobs_submitted_when_a_submission_fails(monkeypatch, tmp_path):
    jobs: list[_Job] = []
    monkeypatch.setitem(sys.modules, "submitit", _fake_submitit(jobs, fail_at=2))
    cfg = config.ExecutorConfig(name="slurm", folder=str(tmp_path), compile_cache=False)
    with pytest.raises(RuntimeError, match="invalid partition"):
        EXECUTORS["slurm"](["a", "b", "c"], str.upper, lambda g, r: None, cfg)
    assert [j.cancelled for j in jobs] == [True, True]


def test_ray_cancels_the_tasks_left_on_ctrl_c_on_a_cluster_it_did_not_start():
    ray = pytest.importorskip("ray")
    marks = Path(tempfile.mkdtemp())

    def train(g):  # pickled by value: a nested function
        # both tasks run at once; the one that claims "first" returns once the other is running,
        # and the other sleeps. Cancelling a task that is executing, not one Ray is still handing
        # to a worker, keeps the test clear of Ray's own dispatch races (ray-project/ray#24359).
        (marks / f"pid-{g}").write_text(str(os.getpid()))
        try:
            (marks / "first").open("x").close()
        except FileExistsError:
            time.sleep(60)
            return g
        deadline = time.monotonic() + 60
        while len(list(marks.glob("pid-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return g

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cfg = config.ExecutorConfig(name="ray", compile_cache=False)
        returned = []
        with pytest.raises(KeyboardInterrupt):
            EXECUTORS["ray"](["a", "b"], train, lambda g, r: (returned.append(g), _interrupt(g, r)), cfg)
        (left,) = {"a", "b"} - set(returned)
        pid = int((marks / f"pid-{left}").read_text())
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the worker of the task left still lives after Ctrl-C (a forced cancel ends it)"
    finally:
        ray.shutdown()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ray_says_when_a_task_asks_for_more_cpus_than_the_local_instance_has(monkeypatch):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is running already")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "init", functools.partial(ray.init, num_cpus=1))  # a small local instance
    cfg = config.ExecutorConfig(name="ray", cpus=2, compile_cache=False)
    raised = []

    def call():
        try:
            EXECUTORS["ray"](["a"], str.upper, lambda g, r: None, cfg)
        except Exception as e:  # noqa: BLE001
            raised.append(e)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "waits for ever for a task no node can run"
    assert not ray.is_initialized()
    assert len(raised) == 1 and isinstance(raised[0], config.ConfigError), raised
    assert raised[0].key == "executor.cpus" and "has 1" in str(raised[0])


def test_a_chunk_capped_below_the_device_count_is_not_padded_to_it(tiny, monkeypatch):
    from sparselearn.sweeps import runner
    from sparselearn.sweeps.grid import expand, group

    calls = []

    def spy(exp, hps, devices=None, **kwargs):
        calls.append((len(hps["seed"]), devices))
        raise RuntimeError("not trained here")

    monkeypatch.setattr(runner, "run_group", spy)
    monkeypatch.setattr(runner, "prepare_group", spy)
    g = group(expand(config.override(tiny, sweep={"seeds": 3, "grid": {}})))[0]
    devices = ("d0", "d1", "d2", "d3")
    runs, _, _ = runner.train_group(g, max_runs=1, devices=devices)
    assert (runs["status"] == "failed").all()
    assert calls == [(1, None)]  # one run on one device, not padded to four (the first chunk raised)
    calls.clear()
    runner.train_group(g, max_runs=2, devices=devices)
    assert calls == [(2, ("d0", "d1"))]
    calls.clear()
    with pytest.raises(RuntimeError):
        runner.prepare_group_runs(g, max_runs=2, devices=devices)
    assert calls == [(2, ("d0", "d1"))]  # compiles what trains


PADDED_TIER = """
import jax, numpy as np
from sparselearn import config
from sparselearn.train import loop
assert len(jax.devices()) == 2
exp = config.loads('''
experiment: padded
target:  {name: sparse_parity, n: 10, k: 2}
learner: {name: mlp, width: 512, depth: 2}
train:   {optimizer: sgd, lr: 0.1, batch: 16, steps: 4400, loss: hinge, eval_every: 400}
data:    {m: 256, test_m: 128}
''')
# 3 runs are a tiny group, the 4 that fill two devices would be a quick one
assert (loop.compile_tier(exp, 3), loop.compile_tier(exp, 4)) == ("tiny", "quick")
tiers, keep = [], loop.kept_program
loop.kept_program = lambda static, name, tier, *rest: tiers.append(tier) or keep(static, name, tier, *rest)
hps = {"seed": [0, 1, 2]}
one, two = loop.run_group(exp, hps), loop.run_group(exp, hps, devices=jax.devices())
assert tiers == ["tiny", "tiny"], tiers
for k in one:   # two runs a device against three on one: the same program but for the last bits
    np.testing.assert_allclose(one[k], two[k], rtol=1e-6, atol=0, err_msg=k)
"""


def test_runs_padded_to_fill_the_devices_compile_at_the_tier_of_the_runs_asked_for():
    """Three runs on two devices (one copy added) compile at the tier of three runs, as on one
    device, not at that of the four the devices hold."""
    import os
    import subprocess

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", PADDED_TIER], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_settings_the_executor_does_not_read_are_named_in_a_warning(tiny, tmp_path):
    from sparselearn.config import ExecutorConfig
    from sparselearn.sweeps.executors import unread
    from sparselearn.sweeps.runner import run

    assert unread(ExecutorConfig()) == [] and unread(ExecutorConfig(name="slurm", partition="gpu", gpus=2)) == []
    assert unread(ExecutorConfig(name="local", gpus=1, partition="gpu")) == ["executor.gpus", "executor.partition"]
    assert unread(ExecutorConfig(name="ray", cluster="local", cpus=2)) == ["executor.cluster"]
    exp = config.override(tiny, executor={"gpus": 1}, sweep={"seeds": 1, "grid": {"data.m": [64]}})
    with pytest.warns(UserWarning, match=r"local executor does not read executor\.gpus"):
        run(exp, tmp_path, progress=False)


def test_a_lost_group_stores_its_error_without_terminal_colours(tiny):
    from sparselearn.sweeps.grid import expand, group
    from sparselearn.sweeps.runner import failed_frames

    g = group(expand(tiny))[0]
    runs, _, _ = failed_frames(g, "\x1b[36mray::with_compile_cache()\x1b[39m (pid=1)\nModuleNotFoundError: x")
    assert set(runs["error"]) == {"ray::with_compile_cache() (pid=1)\nModuleNotFoundError: x"}
