"""Executors under review: the same stored runs and curves from submitit's in-process executor as
from the local one, summaries that match the store, a sweep interrupted between groups resumes
with only what is missing, and bad executor settings as ConfigErrors naming their key."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pandas as pd
import pytest

from sparselearn import config, load_results
from sparselearn.sweeps import run, runner
from sparselearn.sweeps.executors import EXECUTORS


def _stored(out) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs, curves = load_results(out / "tiny", curves=True)
    return (runs.drop(columns="wall_s").sort_values("run_id").reset_index(drop=True),
            curves.sort_values(["run_id", "step"]).reset_index(drop=True))


def test_submitit_debug_executor_stores_what_the_local_one_stores(tiny, tmp_path):
    pytest.importorskip("submitit")
    exp = config.override(tiny, sweep={"grid": {"data.m": [64, 256], "target.n": [8, 10]}})
    run(exp, tmp_path / "local", progress=False)
    debug = config.override(exp, executor={"name": "slurm", "cluster": "debug", "folder": str(tmp_path / "jobs")})
    df = run(debug, tmp_path / "debug", progress=False)
    assert df.attrs["summary"].ok == 8
    (runs_l, curves_l), (runs_d, curves_d) = _stored(tmp_path / "local"), _stored(tmp_path / "debug")
    assert len(runs_l) == 8 and len(curves_l) == 8 * 4
    pd.testing.assert_frame_equal(runs_d, runs_l, check_exact=True)  # every column but the wall time
    pd.testing.assert_frame_equal(curves_d, curves_l, check_exact=True)


def test_summary_counts_of_ok_diverged_failed_and_stored_match_the_store(tiny, tmp_path, monkeypatch,
                                                                          fail_groups):
    exp = config.override(tiny, sweep={"seeds": 1, "grid": {"target.n": [8, 10], "train.lr": [0.1, 1e38]}})
    real = fail_groups(lambda e: e.target.n == 8, RuntimeError("simulated crash"))
    s = run(exp, tmp_path, progress=False).attrs["summary"]
    stored = load_results(tmp_path / "tiny")["status"].value_counts().to_dict()
    assert stored == {"failed": 2, "ok": 1, "diverged": 1}
    assert (s.total, s.skipped, s.ok, s.diverged, s.failed) == (4, 0, 1, 1, 2)
    s = run(exp, tmp_path, progress=False).attrs["summary"]
    assert (s.skipped, s.stored_failed, s.ok + s.diverged + s.failed) == (4, 2, 0)
    monkeypatch.setattr(runner, "run_group", real)
    s = run(exp, tmp_path, retry_failed=True, progress=False).attrs["summary"]
    # the failed group again, and the diverged run (as DESIGN.md's --retry-failed): it diverges again
    assert (s.skipped, s.ok, s.diverged, s.failed) == (1, 1, 2, 0)
    assert load_results(tmp_path / "tiny")["status"].value_counts().to_dict() == {"ok": 2, "diverged": 2}
    s = run(exp, tmp_path, progress=False).attrs["summary"]
    assert (s.skipped, s.stored_failed) == (4, 0)                 # without the flag, diverged runs stay


def test_ctrl_c_between_groups_keeps_the_first_and_a_rerun_trains_only_the_rest(tiny, tmp_path, monkeypatch):
    exp = config.override(tiny, sweep={"grid": {"target.n": [8, 10]}})
    real, trained = runner.run_group, []

    def interrupted_second(e, hps, **kwargs):
        if trained:
            raise KeyboardInterrupt
        trained.append(e.target.n)
        return real(e, hps, **kwargs)

    monkeypatch.setattr(runner, "run_group", interrupted_second)
    with pytest.raises(KeyboardInterrupt):
        run(exp, tmp_path, progress=False)
    first = load_results(tmp_path / "tiny")
    assert len(first) == 2 and set(first["n"]) == set(trained)
    assert not list((tmp_path / "tiny").glob("*/.leases/*.json"))  # every lease released
    monkeypatch.setattr(runner, "run_group", lambda e, hps, **kw: trained.append(e.target.n) or real(e, hps, **kw))
    s = run(exp, tmp_path, progress=False).attrs["summary"]
    assert (s.skipped, s.ok) == (2, 2) and len(trained) == 2 and trained[0] != trained[1]
    assert load_results(tmp_path / "tiny")["run_id"].is_unique


def test_a_slurm_folder_that_cannot_be_made_is_a_config_error_naming_it(tmp_path):
    pytest.importorskip("submitit")
    (tmp_path / "file").write_text("x")
    cfg = config.ExecutorConfig(name="slurm", cluster="local", folder=str(tmp_path / "file" / "jobs"),
                                compile_cache=False)
    with pytest.raises(config.ConfigError) as e:
        EXECUTORS["slurm"](["a"], str.upper, lambda g, r: None, cfg)
    assert e.value.key == "executor.folder" and str(tmp_path / "file" / "jobs") in str(e.value)


def test_cluster_slurm_without_slurm_is_a_config_error_naming_the_key(tmp_path):
    pytest.importorskip("submitit")
    if shutil.which("srun"):
        pytest.skip("this machine has SLURM")
    cfg = config.ExecutorConfig(name="slurm", folder=str(tmp_path / "results" / ".submitit"), compile_cache=False)
    with pytest.raises(config.ConfigError, match="executor.cluster: local") as e:
        EXECUTORS["slurm"](["a"], str.upper, lambda g, r: None, cfg)
    assert e.value.key == "executor.cluster"
    assert not (tmp_path / "results").exists()   # the folders it made for the jobs are gone again


def test_a_ray_address_nobody_answers_is_a_config_error_within_seconds():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is running already")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = config.ExecutorConfig(name="ray", address=f"127.0.0.1:{port}", compile_cache=False)
    raised = []

    def call():
        try:
            EXECUTORS["ray"](["a"], str.upper, lambda g, r: None, cfg)
        except Exception as e:  # noqa: BLE001
            raised.append(e)

    start = time.perf_counter()
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), "Ray retries an unreachable address for ever"
    assert time.perf_counter() - start < 10
    assert len(raised) == 1 and isinstance(raised[0], config.ConfigError), raised
    assert raised[0].key == "executor.address" and str(port) in str(raised[0])


def test_a_ray_address_that_answers_passes_the_check():
    pytest.importorskip("ray")
    from sparselearn.sweeps.executors.ray import _check_reachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}", "auto", "local", None):
            _check_reachable(address)
    with pytest.raises(config.ConfigError):
        _check_reachable(f"ray://127.0.0.1:{port}")  # closed now


def test_a_ray_address_other_than_the_cluster_this_process_is_connected_to_is_a_config_error(monkeypatch):
    """A notebook that ran `ray.init()`: the configured address must not be ignored silently."""
    import types

    pytest.importorskip("ray")
    context = types.SimpleNamespace(gcs_address="10.0.0.1:6379")
    fake = types.SimpleNamespace(is_initialized=lambda: True, get_runtime_context=lambda: context)
    monkeypatch.setitem(__import__("sys").modules, "ray", fake)
    cfg = config.ExecutorConfig(name="ray", address="10.0.0.2:6379", compile_cache=False)
    with pytest.raises(config.ConfigError) as info:
        EXECUTORS["ray"](["a"], str.upper, lambda g, r: None, cfg)
    assert info.value.key == "executor.address" and "10.0.0.1:6379" in str(info.value)
    from sparselearn.sweeps.executors.ray import _check_connected_to

    for same in ("10.0.0.1:6379", "auto", None, "ray://10.0.0.2:10001"):
        _check_connected_to(fake, same)


def test_what_a_remote_worker_receives_carries_no_stored_run_ids(tiny, tmp_path, monkeypatch):
    """`train` as a Ray task or SLURM job pickles it: without the store's view (every stored run
    id), and it still trains the group there."""
    import cloudpickle

    from sparselearn.sweeps import Store, expand

    store, runs = Store.create(tmp_path, tiny), expand(tiny)
    first = [r for r in runs if dict(r.point)["data.m"] == 64]
    runner.execute(store, first, config.ExecutorConfig(), progress=False)
    stored = {r.run_id for r in first}
    sent = []

    def remote(groups, train, on_done, cfg):
        for g in groups:
            sent.append(cloudpickle.dumps(train))
            on_done(g, cloudpickle.loads(sent[-1])(g))

    monkeypatch.setattr(runner, "EXECUTORS", {"local": EXECUTORS["local"], "ray": remote})
    df, summary = runner.execute(store, runs, config.ExecutorConfig(name="ray"), progress=False)
    assert (summary.ok, summary.skipped) == (2, 2) and len(df) == 4 and set(df["status"]) == {"ok"}
    assert len(sent) == 1 and not any(rid.encode() in sent[0] for rid in stored)


def test_slurm_job_files_go_beside_the_results_unless_a_folder_is_set(tiny, tmp_path, monkeypatch):
    """With --out elsewhere, the job files went to ./results/.submitit of the working directory."""
    pytest.importorskip("submitit")
    monkeypatch.chdir(tmp_path)
    debug = config.override(tiny, sweep={"seeds": 1}, executor={"name": "slurm", "cluster": "debug"})
    assert run(debug, tmp_path / "out", progress=False).attrs["summary"].ok == 2
    assert (tmp_path / "out" / ".submitit").is_dir() and not (tmp_path / "results").exists()
