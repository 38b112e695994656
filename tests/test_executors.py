"""Every executor gives the local executor's results; a killed sweep resumes exactly once per run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from sparselearn import config
from sparselearn.sweeps import run

METRICS = ["test_error", "test_loss", "train_error", "train_loss"]


def _by_id(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("run_id").reset_index(drop=True)


def _same_results(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = _by_id(a), _by_id(b)
    assert a["run_id"].tolist() == b["run_id"].tolist()
    np.testing.assert_array_equal(a[METRICS].to_numpy(float), b[METRICS].to_numpy(float))  # bit for bit
    assert a["status"].tolist() == b["status"].tolist()


@pytest.fixture
def local(tiny, tmp_path):
    return run(tiny, tmp_path / "local", progress=False)


def _env():
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory, tiny_text):
    """The tiny sweep with 3 seeds: from the command line in one process with two host CPU
    devices, by the devices executor (quiet) and by the default one (with progress), and in
    this process (one device) as the reference. Returns {"devices" | "default" | "one": results dir}."""
    base = tmp_path_factory.mktemp("two_devices")
    path = base / "tiny.yaml"
    path.write_text(tiny_text)
    outs = {name: base / name for name in ("devices", "default", "one")}
    env = {**_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    args = f"[{str(path)!r}, '--no-plot', '--set', 'sweep.seeds=3', '--out']"
    code = ("import sys, jax; assert len(jax.devices()) == 2, jax.devices(); "
            "from sparselearn.cli import main; "
            f"assert main(['run', *{args}, {str(outs['devices'])!r}, '--executor', 'devices', '--quiet']) == 0; "
            f"assert main(['run', *{args}, {str(outs['default'])!r}]) == 0; "   # with progress, as users run it
            "assert len(jax.local_devices()) == 2, jax.local_devices()")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    if len(jax.local_devices()) != 1:
        pytest.skip("the reference runs on one device; this process has several")
    run(config.override(config.load(path), sweep={"seeds": 3}), outs["one"], progress=False)
    return outs


def test_devices_executor_shards_runs_over_two_cpu_devices(local, tiny, two_devices):
    from sparselearn.sweeps import expand

    sharded = pd.read_parquet(next(two_devices["devices"].glob("tiny/*/runs.parquet")))
    assert len(sharded) == 6  # 6 runs on 2 devices: the runs of the tiny sweep with 3 seeds
    assert set(sharded["run_id"]) == {r.run_id for r in expand(config.override(tiny, sweep={"seeds": 3}))}
    _same_results(sharded, pd.read_parquet(next(two_devices["one"].glob("tiny/*/runs.parquet"))))
    # seeds 0 and 1 (ids differ: the seed count is in the config hash) train as in `local`'s sweep
    by_run = lambda df: df.set_index(["m", "seed"]).sort_index()[METRICS]  # noqa: E731
    np.testing.assert_allclose(by_run(sharded[sharded["seed"] < 2]), by_run(local), rtol=0, atol=1e-6)


def test_ray_executor_matches_local(local, tiny, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        df = run(config.override(tiny, executor={"name": "ray"}), tmp_path / "ray", progress=False)
    finally:
        ray.shutdown()
    _same_results(df, local)
    pd.testing.assert_frame_equal(_stored(tmp_path / "ray")[1], _stored(tmp_path / "local")[1], check_exact=True)


def test_slurm_executor_with_submitit_local_cluster_matches_local(local, tiny, tmp_path):
    pytest.importorskip("submitit")
    exp = config.override(tiny, executor={"name": "slurm", "cluster": "local", "folder": str(tmp_path / "jobs"),
                                          "time_min": 10})
    df = run(exp, tmp_path / "slurm", progress=False)
    _same_results(df, local)
    pd.testing.assert_frame_equal(_stored(tmp_path / "slurm")[1], _stored(tmp_path / "local")[1], check_exact=True)


def test_missing_extra_is_a_clear_config_error(tiny, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(config.ConfigError, match=r"pip install 'sparselearn\[ray\]'"):
        run(config.override(tiny, executor={"name": "ray"}), tmp_path, progress=False)


KILL = """
experiment: kill
target:  {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 8}
train:   {batch: 8, steps: 20, eval_every: 10}
data:    {m: 64, test_m: 64}
sweep:   {seeds: 2, grid: {target.n: [6, 7, 8], data.m: [32, 64]}}
"""


def test_sigkill_loses_only_the_group_in_flight_and_rerun_finishes_each_run_once(tmp_path):
    path = tmp_path / "kill.yaml"
    path.write_text(KILL)
    out = tmp_path / "killed"
    code = ("from sparselearn.cli import main; import sys; "
            f"sys.exit(main(['run', {str(path)!r}, '--quiet', '--no-plot', '--out', {str(out)!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list(out.glob("kill/*/runs.parquet/part-*.parquet")):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = pd.read_parquet(next(out.glob("kill/*/runs.parquet")))
    assert 4 <= len(partial) < 12  # at least one group (4 runs) stored, not all three

    exp = config.load(path)
    resumed = run(exp, out, progress=False)
    assert resumed.attrs["summary"].skipped == len(partial), (resumed.attrs["summary"], partial["status"].tolist())
    stored = pd.read_parquet(next(out.glob("kill/*/runs.parquet")))
    assert len(stored) == 12 and stored["run_id"].is_unique
    curves = pd.read_parquet(next(out.glob("kill/*/curves.parquet")))
    assert curves.groupby("run_id").size().eq(3).all() and curves["run_id"].nunique() == 12
    _same_results(stored, run(exp, tmp_path / "clean", progress=False))


LONG = """
experiment: long
target:  {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 8}
train:   {batch: 8, steps: 20, eval_every: 20}
data:    {m: 64, test_m: 64}
sweep:   {seeds: 2, grid: {train.steps: [20, 40000000]}}
"""


#: `python -c MARKED_CLI MARKS ARGS` is `python -m sparselearn.cli ARGS` (the same entry, `console`)
#: that appends a line to the file MARKS as each group starts training: the local executor trains
#: a group through `interruptible` once its programs, compiled ahead, are ready
MARKED_CLI = """
import runpy, sys
from sparselearn.sweeps.executors import local
marks, real = sys.argv.pop(1), local.interruptible
def interruptible(fn, *args, **kwargs):
    with open(marks, "a") as f:
        f.write("training\\n")
    return real(fn, *args, **kwargs)
local.interruptible = interruptible
runpy.run_module("sparselearn.cli", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_during_a_long_group_exits_130_within_2_s_and_keeps_the_store(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text(LONG)
    out, marks = tmp_path / "out", tmp_path / "marks"
    # Ctrl-C's default action in the child even where pytest itself was started in the background
    # (a shell then ignores SIGINT for it, and children inherit that)
    proc = subprocess.Popen([sys.executable, "-c", MARKED_CLI, str(marks), "run", str(path), "--quiet", "--no-plot",
                             "--out", str(out)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # the short group stored, then the long one (minutes), compiled, trains
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not (
                list(out.glob("long/*/runs.parquet/part-*")) and marks.exists()
                and len(marks.read_text().split()) == 2):
            time.sleep(0.1)
        time.sleep(1)  # into the 40M steps
        assert proc.poll() is None, proc.communicate()
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert took < 2, took
    assert "rerun the same command to resume" in err
    from sparselearn import load_results

    stored = load_results(out / "long")
    assert len(stored) == 2 and (stored["steps"] == 20).all() and (stored["status"] == "ok").all()
    assert not list(out.glob("long/*/.leases/*.json"))  # the abandoned group's lease is released


def test_a_rerun_with_runs_stored_as_failed_says_so_and_exits_1(tmp_path, capsys):
    from sparselearn.cli import main

    path = tmp_path / "gf2.yaml"
    path.write_text("experiment: gf2_noisy\ntarget: {name: sparse_parity, n: 20, k: 3, noise: 0.1}\n"
                    "learner: {name: gf2}\ndata: {m: 200, test_m: 256}\nsweep: {seeds: 2}\n")
    args = ["run", str(path), "--quiet", "--no-plot", "--out", str(tmp_path / "out")]
    assert main(args) == 1
    assert "2 failed" in capsys.readouterr().out
    assert main(args) == 1  # nothing recomputed, and the failure is not hidden
    captured = capsys.readouterr()
    assert "(2 already stored, 2 of them failed)" in captured.out
    assert "2 runs are stored as failed" in captured.err and "--retry-failed" in captured.err
    assert main(args + ["--retry-failed"]) == 1  # recomputed: noisy labels fail again
    assert "0 already stored" in capsys.readouterr().out


def _stored(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sparselearn import load_results

    runs, curves = load_results(out / "tiny", curves=True)
    return (_by_id(runs[["run_id", *METRICS, "steps_to_eps", "status"]]),
            curves.sort_values(["run_id", "step"]).reset_index(drop=True))


def test_every_core_by_default_gives_results_identical_to_one_device(two_devices):
    """The default executor shards the run axis over both devices: runs and curves are those
    of one device, bit for bit (a run on one device gives the same in this process as from
    the command line). One exception: the curve `train_loss`, a mean over each step's
    mini-batch, may differ in its last bit (XLA orders that float32 sum by the batch of runs a
    device holds); the parameters, and so every other value, are bit for bit the same."""
    (runs1, curves1), (runs2, curves2) = _stored(two_devices["one"]), _stored(two_devices["default"])
    assert len(runs1) == 6
    pd.testing.assert_frame_equal(runs1, runs2, check_exact=True)
    pd.testing.assert_frame_equal(curves1.drop(columns="train_loss"), curves2.drop(columns="train_loss"),
                                  check_exact=True)
    np.testing.assert_allclose(curves1["train_loss"], curves2["train_loss"], rtol=1e-6, atol=0)


def test_the_cli_starts_jax_with_one_host_device_per_core(tiny_file, tmp_path):
    env = {k: v for k, v in _env().items() if k != "XLA_FLAGS"}
    # 3 seeds: on two cores, the program `two_devices` compiled, loaded from the session's cache
    code = ("import os, sys; from sparselearn.cli import main; "
            f"code = main(['run', {str(tiny_file)!r}, '--quiet', '--no-plot', '--out', {str(tmp_path)!r}, "
            "'--set', 'sweep.seeds=3']); "
            "import jax; from sparselearn.runtime import cpu_count; "
            "assert len(jax.local_devices()) == cpu_count(), (jax.local_devices(), os.environ['XLA_FLAGS']); "
            "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
