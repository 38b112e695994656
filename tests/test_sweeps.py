"""Grid expansion, shape groups, the results store: schema, atomic writes, resume, force, failures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sparselearn import config
from sparselearn.sweeps import Store, StoreError, expand, group, load_results, run
from sparselearn.sweeps import grid, runner
from sparselearn.schema import CURVE_COLUMNS, RUN_COLUMNS
from sparselearn.train import curve_steps


def test_expand_is_grid_times_seeds_with_stable_unique_ids(tiny):
    runs = expand(tiny)
    assert len(runs) == 2 * 2
    assert len({r.run_id for r in runs}) == 4
    assert [r.run_id for r in runs] == [r.run_id for r in expand(config.loads(config.dump(tiny)))]
    assert {(dict(r.point)["data.m"], r.seed) for r in runs} == {(64, 0), (64, 1), (256, 0), (256, 1)}


def test_run_ids_do_not_depend_on_the_order_of_grid_keys(tiny):
    a = config.override(tiny, sweep={"grid": {"data.m": [64, 256], "train.lr": [0.1, 0.2]}})
    b = config.override(tiny, sweep={"grid": {"train.lr": [0.1, 0.2], "data.m": [64, 256]}})
    assert [k for k, _ in a.sweep.grid] != [k for k, _ in b.sweep.grid]
    ids = [{(tuple(sorted(r.point)), r.seed): r.run_id for r in expand(e)} for e in (a, b)]
    assert ids[0] == ids[1] and len(ids[0]) == 8


def test_a_store_written_with_the_earlier_ids_resumes(tiny, tmp_path, monkeypatch):
    """Ids hashed the grid point in the grid's key order before: a store written then, with keys
    not in sorted order, resumes under its own ids instead of training every run again."""
    exp = config.override(tiny, sweep={"seeds": 1, "grid": {"train.lr": [0.1, 0.2], "data.m": [64, 256]}})
    earlier = {r.run_id for r in expand(exp, ordered=True)}
    assert earlier.isdisjoint(r.run_id for r in expand(exp))
    with monkeypatch.context() as m:
        m.setattr(runner, "expand", lambda e, ordered=False: grid.expand(e, ordered=True))
        run(exp, tmp_path, progress=False)
    df = run(exp, tmp_path, progress=False)
    assert df.attrs["summary"].skipped == 4 and set(df["run_id"]) == earlier


def test_round_m_rounds_only_where_m_is_a_vmapped_axis(tiny, tiny_text):
    fitted = config.loads(tiny_text.replace("{name: mlp, width: 32, depth: 2}", "{name: lowdegree, degree: 2}")
                          .split("train:")[0] + "train: {loss: square}\n" + tiny_text.split("train:")[1].split("\n", 1)[1])
    for exp, size in ((tiny, 16384), (fitted, 8193)):
        runs = expand(config.override(exp, sweep={"grid": {"data.m": [8193]}}))
        assert [g.exp.data.m for g in group(runs, round_m=True)] == [size]


def test_vmapped_axes_share_a_group_and_shapes_split_groups(tiny):
    exp = config.override(tiny, sweep={"grid": {"data.m": [64, 256], "train.lr": [0.1, 0.5],
                                                "train.weight_decay": [0.0, 0.01]}})
    groups = group(expand(exp))
    assert len(groups) == 1 and len(groups[0].runs) == 16 and groups[0].exp.data.m == 256
    exp = config.override(tiny, sweep={"grid": {"data.m": [64, 256], "target.n": [10, 12]}})
    groups = group(expand(exp))
    assert sorted(len(g.runs) for g in groups) == [4, 4]
    assert {g.exp.target.n for g in groups} == {10, 12}


def test_sweep_writes_the_schema_and_rerun_skips(tiny, tmp_path):
    df = run(tiny, tmp_path, progress=False)
    path = tmp_path / "tiny" / config.config_hash(tiny)
    assert df.attrs["path"] == str(path)
    assert {p.name for p in path.iterdir()} >= {"config.yaml", "runs.parquet", "curves.parquet"}
    assert config.loads((path / "config.yaml").read_text()) == tiny
    runs = pd.read_parquet(path / "runs.parquet")
    curves = pd.read_parquet(path / "curves.parquet")
    assert list(runs.columns) == RUN_COLUMNS and list(curves.columns) == CURVE_COLUMNS
    assert len(runs) == 4 and set(runs["status"]) == {"ok"}
    assert set(runs["config_hash"]) == {config.config_hash(tiny)} and set(runs["experiment"]) == {"tiny"}
    assert sorted(runs["m"].tolist()) == [64, 64, 256, 256]
    assert runs["test_error"].between(0, 1).all()
    assert (runs["target"] == "sparse_parity").all() and (runs["width"] == 32).all()
    assert len(curves) == 4 * len(curve_steps(tiny)) and set(curves["run_id"]) == set(runs["run_id"])
    assert json.loads(runs["grid"].iloc[0]) in ({"data.m": 64}, {"data.m": 256})
    assert not list(path.glob("*.tmp")) and not list(path.glob(".*.tmp"))

    again = run(tiny, tmp_path, progress=False)
    s = again.attrs["summary"]
    assert (s.skipped, s.ok) == (4, 0)
    pd.testing.assert_frame_equal(again, runs)

    forced = run(tiny, tmp_path, force=True, progress=False)
    assert forced.attrs["summary"].ok == 4
    assert len(pd.read_parquet(path / "runs.parquet")) == 4  # replaced, not duplicated
    np.testing.assert_allclose(forced.sort_values("run_id")["test_error"],
                               runs.sort_values("run_id")["test_error"], atol=1e-6)


def test_a_failed_group_is_stored_as_failed_and_retried(tiny, tmp_path, monkeypatch):
    real = runner.run_group

    def broken(exp, hps, devices=None):
        raise RuntimeError("simulated out-of-memory")

    monkeypatch.setattr(runner, "run_group", broken)
    df = run(tiny, tmp_path, progress=False)
    assert set(df["status"]) == {"failed"} and df["error"].str.contains("simulated").all()
    assert run(tiny, tmp_path, progress=False).attrs["summary"].skipped == 4  # failed stays failed
    monkeypatch.setattr(runner, "run_group", real)
    df = run(tiny, tmp_path, retry_failed=True, progress=False)
    assert set(df["status"]) == {"ok"} and df.attrs["summary"].ok == 4


def test_diverged_runs_are_marked_not_raised(tiny, tmp_path):
    exp = config.override(tiny, sweep={"grid": {"data.m": [64], "train.lr": [0.1, 1e38]}})
    df = run(exp, tmp_path, progress=False)
    status = dict(zip(df["lr"], df["status"]))
    assert status[0.1] == "ok" and status[1e38] == "diverged"
    # a diverged classifier's outputs are NaN: its error is as undefined as its loss, not 1
    diverged = df[df["lr"] == 1e38]
    assert diverged[["test_error", "train_error", "test_loss"]].isna().all().all()
    assert df.loc[df["lr"] == 0.1, "test_error"].notna().all()


def test_chunked_groups_equal_one_big_group(tiny, tmp_path, monkeypatch):
    real, calls = runner.run_group, []

    def counted(exp, hps, devices=None, **kwargs):
        calls.append(len(hps["seed"]))
        return real(exp, hps, devices=devices, **kwargs)

    monkeypatch.setattr(runner, "run_group", counted)
    whole = run(tiny, tmp_path / "a", progress=False).sort_values("run_id")
    assert calls == [4]
    exp = config.override(tiny, executor={"max_group_runs": 3})  # 4 runs → 2 chunks of 2
    chunked = run(exp, tmp_path / "b", progress=False).sort_values("run_id")
    assert calls == [4, 2, 2]
    np.testing.assert_allclose(chunked["test_error"], whole["test_error"], atol=1e-6)
    np.testing.assert_allclose(chunked["train_loss"], whole["train_loss"], atol=1e-6)


def test_the_next_group_compiles_while_one_trains(tiny, tmp_path, fresh_programs, monkeypatch):
    """The local executor compiles group i + 1 in a thread while group i trains; training it
    takes that program. One compile per group, and the same results as without."""
    exp = config.override(tiny, sweep={"seeds": 2, "grid": {"target.n": [8, 9, 10]}})
    df = run(exp, tmp_path / "ahead", progress=False).sort_values("run_id")
    assert len(fresh_programs) == 3
    assert [name for _, name in fresh_programs].count("sparselearn-compile-ahead") == 2
    monkeypatch.setattr(runner, "prepare_group_runs", lambda *args, **kwargs: None)
    alone = run(exp, tmp_path / "alone", progress=False).sort_values("run_id")
    assert len(fresh_programs) == 3  # the kept programs
    np.testing.assert_array_equal(df["test_error"], alone["test_error"])
    np.testing.assert_array_equal(df["train_loss"], alone["train_loss"])


def test_a_group_is_compiled_ahead_only_under_this_process_lease(tiny, tmp_path):
    import os

    store = Store.create(tmp_path, tiny)
    g = group(expand(tiny))[0]
    prepared = []

    def ahead(token):
        runner._claimed_ahead(g, prepare=lambda group, **kwargs: prepared.append(group.group_id), store=store,
                              token=token, owner=os.getpid())

    assert store.claim(g.group_id, "other")  # another live holder: not compiled here
    ahead("mine")
    assert prepared == []
    store.release(g.group_id, "other")
    ahead("mine")  # free: claimed, then compiled; the other process now passes it by
    assert prepared == [g.group_id] and not store.claim(g.group_id, "other")


def test_local_executor_prepares_each_next_group_first_and_ignores_its_errors():
    from types import SimpleNamespace

    from sparselearn.sweeps.executors import local

    groups = [SimpleNamespace(group_id=i, runs=(0,) * (i + 1)) for i in range(3)]
    events, done = [], []

    def prepare(g, devices):
        events.append(("prepare", g.group_id))
        if g.group_id == 2:
            raise RuntimeError("cannot compile")

    def train(g, devices):
        events.append(("train", g.group_id))
        return g.group_id

    local.execute(groups, train, lambda g, result: done.append(result), None, prepare=prepare)
    assert done == [0, 1, 2] and ("prepare", 0) not in events
    assert all(events.index(("prepare", i)) < events.index(("train", i)) for i in (1, 2))


def test_corrupt_store_is_reported(tiny, tmp_path):
    run(tiny, tmp_path, progress=False)
    path = next((tmp_path / "tiny" / config.config_hash(tiny) / "runs.parquet").glob("part-*.parquet"))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StoreError, match="unreadable"):
        run(tiny, tmp_path, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StoreError, match="no runs.parquet"):
        load_results(empty)
    with pytest.raises(StoreError, match="no such results directory"):
        load_results(tmp_path / "missing")


def test_load_results_reads_experiment_and_root(tiny, tmp_path):
    run(tiny, tmp_path, progress=False)
    other = config.override(tiny, train={"lr": 0.05})
    run(other, tmp_path, progress=False)
    assert len(load_results(tmp_path / "tiny")) == 8
    assert len(load_results(tmp_path)) == 8
    runs, curves = load_results(Store.create(tmp_path, other).path, curves=True)
    assert len(runs) == 4 and set(curves["run_id"]) == set(runs["run_id"])
