"""Recorders (`train.record`) and lottery tickets (`train.rewind`) against float64 numpy
references computed from the same runs' parameters, teachers and test inputs."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from numpy.polynomial import hermite_e

import sparselearn as sl
from sparselearn import config, learners, targets
from sparselearn.store import load_results, load_traces, trace_array
from sparselearn.train import run_group, trajectory
from sparselearn.train.loop import curve_steps, make_data
from sparselearn.train.record import PROBE_INPUTS, State, active_fraction
from sparselearn.train.rewind import restrict


def _params(p, p0):
    return {"w": p[0]["w"], "b": p[0]["b"], "a": p[1]["w"], "c": p[1]["b"],
            "w0": p0[0]["w"], "b0": p0[0]["b"], "a0": p0[1]["w"]}


def _f64(a):
    return np.asarray(a, np.float64)


RECORDING = """
experiment: record_review
target: {name: sparse_mlp, n: 8, s: 8, k: 2}
learner: {name: mlp, width: 6}
train: {steps: 20, eval_every: 10, batch: 8, lr: 0.2, loss: square,
        record: [first_layer, unit_norms, active_fraction, influence]}
data: {m: 64, test_m: 1100}
sweep: {seeds: [0, 1], grid: {data.m: [16, 64]}}
"""


def test_recorders_at_every_curve_point_equal_float64_numpy_and_come_back_in_order(tmp_path):
    """A real-valued teacher (influence is not 0/1) and test_m > PROBE_INPUTS (the probes use
    the first 1024 test inputs); trace_array asked for the runs in reverse order."""
    exp = config.loads(RECORDING)
    runs = sl.run(exp, str(tmp_path), progress=False)
    traces = load_traces(runs.attrs["path"])
    assert len(traces) == 4 * 3 * 4  # runs × curve points × recorders
    order = runs.iloc[::-1]
    got = {}
    for name in exp.train.record:
        ids, steps, got[name] = trace_array(traces, name, run_ids=order["run_id"])
        assert ids == list(order["run_id"]) and steps.tolist() == [0, 10, 20]
    assert got["first_layer"].shape == (4, 3, 8, 6) and got["unit_norms"].shape == (4, 3, 6)
    assert got["active_fraction"].shape == (4, 3) and got["influence"].shape == (4, 3, 8)
    out = trajectory(exp, {"seed": order["seed"].tolist(), "m": order["m"].tolist()}, observe=_params)
    for i, seed in enumerate(order["seed"]):
        teacher, _, _, x_test, _ = make_data(exp)(seed, seed, 0.0)
        x_all = _f64(x_test)
        x = x_all[:PROBE_INPUTS]
        tw, tb, tu = (_f64(teacher[k]) for k in ("w", "b", "u"))

        def h(x):
            return np.maximum(x @ tw.T - tb, 0.0) @ tu

        flips = [h(x * np.where(np.arange(8) == j, -1.0, 1.0)) for j in range(8)]
        influence = np.array([np.mean(np.abs(f - h(x))) / 2 for f in flips])
        assert len(np.unique(np.round(influence, 3))) > 2  # graded, not a support indicator
        for c in range(3):
            w, b, a = _f64(out["trace_w"][i, c]), _f64(out["trace_b"][i, c]), _f64(out["trace_a"][i, c])
            np.testing.assert_array_equal(got["first_layer"][i, c], out["trace_w"][i, c])
            np.testing.assert_allclose(got["unit_norms"][i, c], np.linalg.norm(w, axis=0), rtol=1e-6)
            live = ((x @ w + b) > 0) & (a != 0)
            np.testing.assert_allclose(got["active_fraction"][i, c], live.mean(), atol=1e-6)
            np.testing.assert_allclose(got["influence"][i, c], influence, rtol=1e-5, atol=1e-7)
        # on all 1100 inputs the fraction differs: the probe is the first 1024
        everyone = ((x_all @ _f64(out["trace_w"][i, 0]) + _f64(out["trace_b"][i, 0])) > 0).mean()
        assert abs(everyone - got["active_fraction"][i, 0]) > 1e-5


def test_active_fraction_probes_a_last_partial_batch():
    """20 test inputs: one batch of PROBE_BATCH = 16 and a remainder of 4."""
    target = targets.get("sparse_parity", n=8, k=2)
    teacher = target.init(jax.random.key(0))
    x, _ = target.sample(teacher, jax.random.key(1), 20)
    mlp = learners.get("mlp", width=12)
    p = mlp.init_params(jax.random.key(3), 8)
    live = (_f64(x) @ _f64(p[0]["w"]) + _f64(p[0]["b"])) > 0
    live_tail = live[16:].mean()
    assert abs(live_tail - live.mean()) > 0.01  # the remainder counts
    np.testing.assert_allclose(active_fraction(State(mlp, target, p, p, teacher, x)), live.mean(), atol=1e-6)


FEATURES = """
experiment: feature_review
target: {name: hierarchical, n: 4, k: 2, r: 2, q: 2}
learner: {name: wnl_net, m1: 8, m2: 8}
train: {optimizer: adam, lr: 0.05, steps: 20, eval_every: 10, batch: 16, loss: square, record: [feature_correlation]}
data: {m: 64, test_m: 256}
sweep: {seeds: [0, 1]}
"""


def test_feature_correlation_is_the_numpy_pearson_correlation_at_every_point(tmp_path):
    exp = config.loads(FEATURES)
    runs = sl.run(exp, str(tmp_path), progress=False)
    _, steps, corr = trace_array(load_traces(runs.attrs["path"]), "feature_correlation", runs["run_id"])
    assert corr.shape == (2, 3) and steps.tolist() == [0, 10, 20]
    out = trajectory(exp, {"seed": runs["seed"].tolist()}, observe=lambda p, p0: dict(p))
    for i, seed in enumerate(runs["seed"]):
        teacher, _, _, x_test, _ = make_data(exp)(seed, seed, 0.0)
        x = _f64(x_test)
        # p(x) = Σ_i He_2(⟨v_i, x⟩)/√2 / √r; the learner's feature (u·(xv/√n)³)/m1 + ⟨w, x⟩/√n
        p = hermite_e.hermeval(x @ _f64(teacher["v"]), [0, 0, 1]).sum(axis=1) / math.sqrt(2) / math.sqrt(2)
        for c in range(3):
            v, u, w = (_f64(out[f"trace_{k}"][i, c]) for k in "vuw")
            learned = ((x @ v / 2) ** 3) @ u / 8 + x @ w / 2
            np.testing.assert_allclose(corr[i, c], np.corrcoef(learned, p)[0, 1], atol=1e-6)
    assert np.ptp(corr) > 0.05


TICKET = """
experiment: ticket_review
target: {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 10}
train: {steps: 12, eval_every: 4, batch: 4, lr: 0.1, loss: hinge, rewind: 3, record: [first_layer]}
data: {m: 32, test_m: 16}
"""
HPS = {"seed": [0, 1, 2], "lr": [0.1, 0.2, 0.3], "weight_decay": [0.0, 0.01, 0.0], "m": [32, 16, 32]}


def _parent(ticket):
    return config.override(ticket, train={"rewind": None, "rewind_pick": "largest", "record": ()})


def _kept(ticket_out, full, i):
    """The full network's unit behind each of the ticket's units: the column of the full run's
    initial first layer that the ticket's initial one equals bit for bit (exactly one)."""
    w0, got = full["trace_w0"][i, 0], ticket_out["trace_w0"][i, 0]
    units = []
    for j in range(got.shape[1]):
        (match,) = np.flatnonzero((w0 == got[:, j:j + 1]).all(axis=0))
        units.append(int(match))
    return np.asarray(units)


def _largest(full, i, point=-1):
    """numpy's pick: the units by decreasing float64 |a_j|·‖w_j‖₂, lower index first on ties."""
    score = np.abs(_f64(full["trace_a"][i, point])) * np.linalg.norm(_f64(full["trace_w"][i, point]), axis=0)
    return np.argsort(-score, kind="stable"), score


def _check_rewound(ticket_out, full, i, units):
    """The ticket starts from exactly the full run's initial weights, biases and output weights
    of `units`, and keeps its output bias."""
    for name in ("w0", "b0", "a0"):
        np.testing.assert_array_equal(ticket_out[f"trace_{name}"][i, 0], full[f"trace_{name}"][i, 0][..., units])
    np.testing.assert_array_equal(ticket_out["trace_c"][i, 0], full["trace_c"][i, 0])


@pytest.mark.parametrize("k", [1, 3])
def test_largest_pick_is_the_numpy_ranking_rewound_exactly_and_trained_as_the_width_k_net(k):
    ticket = config.loads(TICKET, overrides=[f"train.rewind={k}"])
    parent = _parent(ticket)
    out = trajectory(ticket, HPS, observe=_params)
    full = trajectory(parent, HPS, observe=_params)
    picks = []
    for i in range(3):
        order, score = _largest(full, i)
        assert score[order[k - 1]] - score[order[k]] > 1e-3  # a clear cut, far from float32 rounding
        units = _kept(out, full, i)
        np.testing.assert_array_equal(units, order[:k])
        _check_rewound(out, full, i, units)
        picks.append(units)
    alone = trajectory(config.override(parent, learner={"width": k}), {**HPS, "units": np.stack(picks)},
                       observe=_params, init=lambda key, hp: restrict(parent.learner.init_params(key, 6), hp["units"]))
    for key in ("test_error", "test_loss", "train_error", "train_loss", "steps_to_eps", "evaluated",
                "curve_train_loss", "curve_test_error", "curve_drift", "trace_w"):
        np.testing.assert_allclose(out[key], alone[key], atol=1e-6, err_msg=key)
    np.testing.assert_array_equal(out["steps"], curve_steps(ticket))


def test_a_stored_ticket_is_the_width_k_nets_runs_curves_and_traces(tmp_path):
    ticket = config.override(config.loads(TICKET), train={"rewind": 1}, sweep={"seeds": [0, 1], "grid": {"data.m": [16, 32]}})
    stored = sl.run(ticket, str(tmp_path), progress=False)
    path = stored.attrs["path"]
    runs, curves = load_results(path, curves=True)
    runs = runs.sort_values(["seed", "m"]).reset_index(drop=True)
    out = run_group(ticket, {"seed": runs["seed"].tolist(), "m": runs["m"].tolist()})
    for key in ("test_error", "test_loss", "train_error", "train_loss"):
        np.testing.assert_allclose(runs[key], out[key], rtol=1e-6, err_msg=key)
    for i, rid in enumerate(runs["run_id"]):
        rows = curves[curves["run_id"] == rid].sort_values("step")
        assert rows["step"].tolist() == [0, 4, 8, 12]
        np.testing.assert_allclose(rows["test_loss"], out["curve_test_loss"][i], rtol=1e-6)
        np.testing.assert_allclose(rows["drift"], out["curve_drift"][i], rtol=1e-6)
    assert runs["steps"].tolist() == [12] * 4 and runs["width"].tolist() == [10] * 4
    _, steps, w = trace_array(load_traces(path), "first_layer", runs["run_id"])
    assert w.shape == (4, 4, 6, 1) and steps.tolist() == [0, 4, 8, 12]
    np.testing.assert_array_equal(w, out["trace_first_layer"])


def test_ties_in_the_largest_pick_go_to_the_lower_index():
    """SGD with lr·weight_decay = 1 sets a parameter to minus its gradient: units that fire on no
    input of a step end at exactly 0, so |a_j|·‖w_j‖ ties at 0 across the cut."""
    ticket = config.loads(TICKET, overrides=["train.rewind=6", "train.batch=2", "train.lr=0.5",
                                             "train.weight_decay=2.0", "train.loss=square"])
    hps = {"seed": list(range(6))}
    out = trajectory(ticket, hps, observe=_params)
    full = trajectory(_parent(ticket), hps, observe=_params)
    crossing = 0
    for i in range(6):
        order, score = _largest(full, i)
        crossing += int(score[order[5]] == score[order[6]])
        units = _kept(out, full, i)
        np.testing.assert_array_equal(units, order[:6])
        _check_rewound(out, full, i, units)
    assert crossing >= 3  # the tie rule decides most of these picks


@pytest.mark.parametrize("pick", ["largest", "random"])
def test_a_ticket_of_every_unit_is_the_full_network(pick):
    ticket = config.loads(TICKET, overrides=["train.rewind=10", f"train.rewind_pick={pick}"])
    out = trajectory(ticket, HPS, observe=_params)
    full = trajectory(_parent(ticket), HPS, observe=_params)
    for i in range(3):
        units = _kept(out, full, i)
        assert sorted(units) == list(range(10)) and units.tolist() != list(range(10))  # a permutation
        if pick == "largest":
            np.testing.assert_array_equal(units, _largest(full, i)[0])
        _check_rewound(out, full, i, units)
    for key in ("test_error", "test_loss", "train_error", "train_loss", "curve_train_loss", "curve_test_loss"):
        np.testing.assert_allclose(out[key], full[key], atol=5e-7, err_msg=key)  # a sum in another order
    np.testing.assert_array_equal(out["steps_to_eps"], full["steps_to_eps"])


def test_largest_pick_is_taken_where_the_full_run_stopped_at_eps():
    ticket = config.loads("""
target: {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 16}
train: {steps: 100, eval_every: 20, batch: 16, lr: 0.2, eps: 0.05, stop_at_eps: true, rewind: 8}
data: {m: 256, test_m: 128}
""")
    hps = {"seed": [0, 1]}
    out = trajectory(ticket, hps, observe=_params)
    full = trajectory(_parent(ticket), hps, observe=_params)
    whole = trajectory(config.override(_parent(ticket), train={"stop_at_eps": False}), hps, observe=_params)
    assert full["evaluated"].tolist() == [2, 3]
    for i in range(2):
        units = _kept(out, full, i)
        np.testing.assert_array_equal(units, _largest(full, i, full["evaluated"][i] - 1)[0][:8])
        _check_rewound(out, full, i, units)
    # seed 0 stopped at step 20, where its strongest 8 units are not those of step 100
    assert set(_kept(out, full, 0)) != set(_largest(whole, 0)[0][:8])


def test_random_pick_draws_distinct_units_from_the_seed_alone():
    ticket = config.loads(TICKET, overrides=["train.rewind=4", "train.rewind_pick=random"])
    hps = {"seed": [0, 1, 2, 3], "lr": [0.1, 0.2, 0.3, 0.4], "weight_decay": [0.0, 0.01, 0.0, 0.1], "m": [32, 16, 32, 8]}
    a = trajectory(ticket, hps, observe=_params)
    b = trajectory(ticket, {**hps, "lr": [0.4, 0.3, 0.2, 0.1], "m": [8, 32, 16, 32]}, observe=_params)
    full = trajectory(_parent(ticket), hps, observe=_params)
    picks = [tuple(_kept(a, full, i)) for i in range(4)]
    for i in range(4):
        assert len(set(picks[i])) == 4
        np.testing.assert_array_equal(_kept(b, full, i), picks[i])  # not the lr, decay or m
        _check_rewound(a, full, i, np.asarray(picks[i]))
    assert len(set(picks)) == 4
