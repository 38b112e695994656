"""train.record: recorders evaluated at every curve point and stored in the traces table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparselearn as sl
from sparselearn import config
from sparselearn.cli import main
from sparselearn.rng import key_for
from sparselearn.store import Store, StoreError, load_traces, trace_array
from sparselearn.train import trajectory
from sparselearn.train.loop import make_data

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ["first_layer", "unit_norms", "active_fraction", "influence"]


def _recording(tiny, names=RECORDED, **sections):
    return config.override(tiny, train={"record": list(names)}, **sections)


def _one_store(root, exp) -> Store:
    (path,) = (root / exp.experiment).iterdir()
    return Store(path)


def test_recorders_equal_a_recomputation_from_the_runs_weights(tmp_path, tiny):
    exp = _recording(tiny, sweep={"seeds": [0, 1], "grid": {"data.m": [64, 256]}})
    runs = sl.run(exp, str(tmp_path), progress=False)
    traces = load_traces(tmp_path / "tiny")
    assert set(traces["name"]) == set(RECORDED)
    ids, steps, w = trace_array(traces, "first_layer", run_ids=runs["run_id"])
    assert w.shape == (4, len(steps), tiny.target.n, tiny.learner.width)
    assert steps.tolist() == [0, 20, 40, 50]

    # the same runs again outside the store, keeping their whole parameters at every point
    out = trajectory(tiny, {"seed": runs["seed"].tolist(), "m": runs["m"].tolist()},
                     observe=lambda p, p0: {"w": p[0]["w"], "b": p[0]["b"], "a": p[1]["w"]})
    np.testing.assert_allclose(w, out["trace_w"], rtol=1e-6, atol=1e-7)
    _, _, norms = trace_array(traces, "unit_norms", run_ids=ids)
    np.testing.assert_allclose(norms, np.linalg.norm(w, axis=2), rtol=1e-5)
    _, _, active = trace_array(traces, "active_fraction", run_ids=ids)
    _, _, influence = trace_array(traces, "influence", run_ids=ids)
    for i, seed in enumerate(runs["seed"]):
        # the group's program and this eager call may round differently (compile tiers): ulps
        np.testing.assert_allclose(w[i, 0], tiny.learner.init_params(key_for(seed, "init"), tiny.target.n)[0]["w"],
                                   rtol=1e-6, atol=1e-7)
        teacher, _, _, x_test, _ = make_data(tiny)(seed, seed, 0.0)
        z = np.asarray(x_test) @ out["trace_w"][i] + out["trace_b"][i][:, None, :]      # (P, test_m, width)
        live = (z > 0) & (out["trace_a"][i][:, None, :] != 0)
        np.testing.assert_allclose(active[i], live.mean(axis=(1, 2)), atol=1e-6)
        assert 0.2 < active[i, 0] < 0.8  # a ReLU layer at init: about half its units fire
        support = np.zeros(tiny.target.n)
        support[np.asarray(teacher["support"])] = 1.0
        np.testing.assert_array_equal(influence[i], np.broadcast_to(support, influence[i].shape))


def test_traces_survive_a_resume(tmp_path, tiny):
    # two groups (batch sizes are static), stored one after the other
    exp = _recording(tiny, ["first_layer", "unit_norms"], sweep={"seeds": [0, 1], "grid": {"train.batch": [8, 16]}})
    first = sl.run(exp, str(tmp_path), progress=False)
    store = _one_store(tmp_path, exp)
    before = load_traces(store.path)
    # a sweep killed after the last group's traces and curves, before its runs: that group is lost
    last = sorted((store.path / "runs.parquet").glob("part-*.parquet"))[-1]
    lost = set(pd.read_parquet(last)["run_id"])
    last.unlink()
    # read in that state, curves and traces are those of the runs stored, not of the lost group
    runs, curves = sl.load_results(store.path, curves=True)
    assert set(curves["run_id"]) == set(runs["run_id"]) == set(first["run_id"]) - lost
    assert set(load_traces(store.path)["run_id"]) == set(runs["run_id"])
    again = sl.run(exp, str(tmp_path), progress=False)
    summary = again.attrs["summary"]
    assert summary.skipped == 2 and summary.ok == 2
    after = load_traces(store.path)
    assert len(after) == len(before) == 4 * 4 * 2  # runs × curve points × recorders, no duplicates
    assert set(after["run_id"]) == set(first["run_id"]) and lost < set(after["run_id"])
    for name in ("first_layer", "unit_norms"):
        ids, steps, a = trace_array(before, name, run_ids=sorted(first["run_id"]))
        _, steps_b, b = trace_array(after, name, run_ids=ids)
        np.testing.assert_array_equal(steps, steps_b)
        np.testing.assert_array_equal(a, b)  # retraining reproduces them exactly


def test_unknown_recorder_exits_2_naming_train_record(tmp_path, tiny_file, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(tiny_file), "--set", "train.record=[first_layer, weights]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.record" in err and "'weights'" in err
    for name in RECORDED:
        assert name in err
    assert not (tmp_path / "results").exists()


def test_fitted_learners_cannot_record(tiny):
    plain = config.to_plain(tiny)
    plain.update(learner={"name": "lowdegree", "degree": 2}, train={**plain["train"], "record": ["first_layer"]})
    with pytest.raises(config.ConfigError) as e:
        config.from_dict(plain)
    assert e.value.key == "train.record" and "fitted" in e.value.message


def test_configs_without_record_keep_their_hash_and_store_no_traces(tmp_path, tiny):
    assert config.config_hash(tiny) == "7bde90822084"  # the hash from before train.record existed
    assert config.config_hash(config.load(ROOT / "configs" / "quickstart.yaml")) == "e86cd382762f"
    assert "record" not in config.dump(tiny)
    assert config.config_hash(_recording(tiny)) != config.config_hash(tiny)
    runs = sl.run(config.override(tiny, sweep={"seeds": [0]}), str(tmp_path), progress=False)
    store = Store(Path(runs.attrs["path"]))
    assert not (store.path / "traces.parquet").exists()
    assert load_traces(store.path).empty
    with pytest.raises(StoreError, match="add it to train.record"):
        trace_array(load_traces(store.path), "first_layer")


def test_load_traces_imports_no_jax(tmp_path, tiny):
    runs = sl.run(_recording(tiny, ["unit_norms"], sweep={"seeds": [0]}), str(tmp_path), progress=False)
    code = ("import sys, sparselearn as sl; from sparselearn.store import load_traces, trace_array; "
            f"t = load_traces({runs.attrs['path']!r}); print(trace_array(t, 'unit_norms')[2].shape); "
            "assert 'jax' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"(2, 4, {tiny.learner.width})"


SMALL = """
target: {name: sparse_parity, n: 8, k: 2}
learner: %s
train: {steps: 20, eval_every: 10, batch: 8, record: [active_fraction, unit_norms]}
data: {m: 64, test_m: 64}
"""


def test_recorders_run_on_other_learners():
    out = trajectory(config.loads(SMALL % "{name: mlp, width: 16, activation: topk, k: 3}"), {"seed": [0]})
    # a top-k layer keeps at most k of its 16 units per input
    assert out["trace_active_fraction"].shape == (1, 3) and out["trace_unit_norms"].shape == (1, 3, 16)
    assert np.all(out["trace_active_fraction"] <= 3 / 16 + 1e-6) and np.all(out["trace_active_fraction"] > 0)
    out = trajectory(config.loads(SMALL % "{name: neuron, activation: sin}"), {"seed": [0]})
    assert out["trace_unit_norms"].shape == (1, 3)          # one unit: a scalar per point
    np.testing.assert_array_equal(out["trace_active_fraction"], 1.0)  # sin' vanishes nowhere generic


def test_a_rewound_run_trains_the_full_networks_strongest_units_from_their_start(tmp_path, tiny):
    from sparselearn.train.rewind import unit_weights

    parent = config.override(tiny, learner={"width": 12}, sweep={"seeds": [0, 1], "grid": {}})
    full = trajectory(parent, {"seed": [0, 1]}, observe=lambda p, p0: {"u": unit_weights(p), "w0": p0[0]["w"]})
    ticket = config.override(parent, train={"rewind": 3, "record": ["first_layer"]})
    runs = sl.run(ticket, str(tmp_path), progress=False)
    assert runs["width"].tolist() == [12, 12]  # the experiment's network; the run trains 3 of its units
    _, _, w = trace_array(load_traces(runs.attrs["path"]), "first_layer", runs["run_id"])
    assert w.shape[-1] == 3
    for i, seed in enumerate(runs["seed"]):
        top = np.argsort(-full["trace_u"][seed, -1])[:3]
        np.testing.assert_array_equal(np.sort(w[i, 0], axis=1), np.sort(full["trace_w0"][seed, 0][:, top], axis=1))
    with pytest.raises(config.ConfigError, match="must be ≤ the width"):
        config.override(parent, train={"rewind": 13})
    with pytest.raises(config.ConfigError) as e:
        config.override(parent, train={"rewind_pick": "random"})
    assert e.value.key == "train.rewind_pick"


def test_traces_follow_train_init_seed_as_the_loop_does(tmp_path):
    """The recorded teacher and initial weights are those of the run's instance (init_seed when set)."""
    exp = config.loads("""
experiment: seeded
target:  {name: sparse_parity, n: 12, k: 3}
learner: {name: mlp, width: 8, depth: 2}
train:   {steps: 4, eval_every: 2, batch: 4, init_seed: 3, record: [first_layer, influence]}
data:    {online: true, test_m: 64}
sweep:   {seeds: [0, 1]}
""")
    runs = sl.run(exp, str(tmp_path), progress=False)
    traces = load_traces(runs.attrs["path"])
    _, _, w = trace_array(traces, "first_layer", runs["run_id"])
    _, _, influence = trace_array(traces, "influence", runs["run_id"])
    w0 = exp.learner.init_params(key_for(3, "init"), exp.target.n)[0]["w"]
    support = np.flatnonzero(influence[0, 0] > 0.5)
    assert np.array_equal(support, np.sort(np.asarray(exp.target.init(key_for(3, "teacher"))["support"])))
    for i in range(2):  # both seeds share the instance of init_seed 3
        np.testing.assert_allclose(w[i, 0], w0, rtol=1e-6, atol=1e-7)   # eager vs compiled group: ulps
        np.testing.assert_array_equal(w[i, 0], w[0, 0])
        np.testing.assert_array_equal(influence[i], influence[0])
    assert not np.array_equal(w[0, -1], w[1, -1])  # and train on their own batches


def test_runs_that_stop_at_eps_store_traces_up_to_their_stop(tmp_path, tiny):
    """With train.stop_at_eps, a run's trace rows end at its last evaluated point, as its curve
    rows do, and trace_array pads the runs that stopped earlier with NaN."""
    exp = _recording(tiny, ["unit_norms"], sweep={"seeds": [0, 1], "grid": {"data.m": [16, 256]}})
    exp = config.override(exp, train={"stop_at_eps": True, "eps": 0.5})
    runs = sl.run(exp, str(tmp_path), progress=False)
    _, curves = sl.load_results(tmp_path / "tiny", curves=True)
    traces = load_traces(tmp_path / "tiny")
    for rid, part in curves.groupby("run_id"):
        stored = traces[traces["run_id"] == rid]["step"].sort_values().tolist()
        assert stored == part["step"].sort_values().tolist()
    ids, steps, norms = trace_array(traces, "unit_norms", run_ids=runs["run_id"])
    reached = [len(curves[curves["run_id"] == rid]) for rid in ids]
    assert len(set(reached)) > 1 and max(reached) <= len(steps)  # runs stopped at different points
    for i, points in enumerate(reached):
        assert np.isfinite(norms[i, :points]).all() and np.isnan(norms[i, points:]).all()


def test_a_deleted_traces_part_is_recomputed_as_the_corrupt_file_error_says(tmp_path, tiny):
    """A run counted as done once its row and curves were stored: deleting a corrupt traces part,
    as the error advised, lost those traces for good."""
    exp = _recording(tiny, ["unit_norms"], sweep={"seeds": [0, 1], "grid": {"train.batch": [8, 16]}})
    first = sl.run(exp, str(tmp_path), progress=False)
    store = _one_store(tmp_path, exp)
    before = load_traces(store.path)
    part = sorted((store.path / "traces.parquet").glob("part-*.parquet"))[-1]
    lost = set(pd.read_parquet(part)["run_id"])
    part.write_bytes(part.read_bytes()[:100])                      # truncated
    with pytest.raises(StoreError, match="delete it and rerun the same command: the runs whose traces it held"):
        sl.run(exp, str(tmp_path), progress=False)
    part.unlink()
    summary = sl.run(exp, str(tmp_path), progress=False).attrs["summary"]
    assert summary.ok == len(lost) and summary.skipped == len(first) - len(lost)
    after = load_traces(store.path)
    assert set(after["run_id"]) == set(first["run_id"])
    ids, _, a = trace_array(before, "unit_norms", run_ids=sorted(first["run_id"]))
    np.testing.assert_array_equal(trace_array(after, "unit_norms", run_ids=ids)[2], a)
    assert len(sl.load_results(store.path)) == len(first)       # the retrained runs' rows replace theirs


def test_a_copied_store_has_each_trace_once(tmp_path, tiny):
    import shutil

    exp = _recording(tiny, ["unit_norms"], sweep={"seeds": [0, 1]})
    sl.run(exp, str(tmp_path), progress=False)
    store = _one_store(tmp_path, exp)
    alone = load_traces(store.path)
    shutil.copytree(store.path, store.path.with_name(store.path.name + "_copy"))
    both = load_traces(store.path.parent)
    assert len(both) == len(alone) and not both.duplicated(["run_id", "step", "name"]).any()
