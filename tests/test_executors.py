"""Every executor gives the local executor's results; a killed sweep resumes exactly once per run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    np.testing.assert_allclose(a[METRICS].to_numpy(float), b[METRICS].to_numpy(float), atol=1e-6)
    assert a["status"].tolist() == b["status"].tolist()


@pytest.fixture
def local(tiny, tmp_path):
    return run(tiny, tmp_path / "local", progress=False)


def _env():
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_devices_executor_shards_runs_over_two_cpu_devices(local, tiny_file, tmp_path):
    env = {**_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = tmp_path / "devices"
    code = ("import jax; assert len(jax.devices()) == 2, jax.devices(); "
            "from sparselearn.cli import main; import sys; "
            f"sys.exit(main(['run', {str(tiny_file)!r}, '--executor', 'devices', '--quiet', '--no-plot', "
            f"'--out', {str(out)!r}, '--set', 'sweep.seeds=3']))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    sharded = pd.read_parquet(next(out.glob("tiny/*/runs.parquet")))
    assert len(sharded) == 6  # 6 runs on 2 devices; the reference below has the same run ids for seeds 0, 1
    ids = set(local["run_id"])
    assert ids < set(sharded["run_id"]) or not ids & set(sharded["run_id"])
    reference = run(config.override(config.load(tiny_file), sweep={"seeds": 3}), tmp_path / "ref", progress=False)
    _same_results(sharded, reference)


def test_ray_executor_matches_local(local, tiny, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        df = run(config.override(tiny, executor={"name": "ray"}), tmp_path / "ray", progress=False)
    finally:
        ray.shutdown()
    _same_results(df, local)


def test_slurm_executor_with_submitit_local_cluster_matches_local(local, tiny, tmp_path):
    pytest.importorskip("submitit")
    exp = config.override(tiny, executor={"name": "slurm", "cluster": "local", "folder": str(tmp_path / "jobs"),
                                          "time_min": 10})
    df = run(exp, tmp_path / "slurm", progress=False)
    _same_results(df, local)


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
sweep:   {seeds: 2, grid: {target.n: [6, 7, 8, 9, 10, 11], data.m: [32, 64]}}
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
        while time.time() < deadline and not list(out.glob("kill/*/runs.parquet")):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = pd.read_parquet(next(out.glob("kill/*/runs.parquet")))
    assert 4 <= len(partial) < 24  # at least one group (4 runs) stored, not all six

    exp = config.load(path)
    resumed = run(exp, out, progress=False)
    assert resumed.attrs["summary"].skipped == len(partial), (resumed.attrs["summary"], partial["status"].tolist())
    stored = pd.read_parquet(next(out.glob("kill/*/runs.parquet")))
    assert len(stored) == 24 and stored["run_id"].is_unique
    curves = pd.read_parquet(next(out.glob("kill/*/curves.parquet")))
    assert curves.groupby("run_id").size().eq(3).all() and curves["run_id"].nunique() == 24
    _same_results(stored, run(exp, tmp_path / "clean", progress=False))
