"""Second review of the gf2, layerwise, neuron and polynomial learners against independent
references: a plain-integer GF(2) elimination, float64 numpy re-implementations of both
layerwise stages, float64 forward formulas and gradients, and a hand-stepped training run."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from numpy.polynomial.hermite_e import hermeval

from sparselearn import config, targets
from sparselearn.errors import FitFailed
from sparselearn.learners.gf2 import GF2
from sparselearn.learners.layerwise import POWER_ITERATIONS, Layerwise, hermite_signs
from sparselearn.learners.neuron import Neuron
from sparselearn.learners.polynomial import PolyMLP, PolyNet
from sparselearn.train.loop import instance_keys, make_data, trajectory
from sparselearn.train.losses import LOSSES

# ---------------------------------------------------------------- GF(2)


def _reference_gf2(a: np.ndarray, c: np.ndarray):
    """Plain int64 Gauss–Jordan over GF(2) on A s = c: (consistent, rank, particular, null basis)."""
    m, n = a.shape
    aug = np.concatenate([a, c[:, None]], axis=1).astype(np.int64) % 2
    pivots, r = [], 0
    for col in range(n):
        if r == m:
            break
        rows = [i for i in range(r, m) if aug[i, col]]
        if not rows:
            continue
        aug[[r, rows[0]]] = aug[[rows[0], r]]
        for i in range(m):
            if i != r and aug[i, col]:
                aug[i] = (aug[i] + aug[r]) % 2
        pivots.append(col)
        r += 1
    consistent = not aug[r:, n].any()
    particular = np.zeros(n, np.int64)
    particular[pivots] = aug[:r, n]
    basis = []
    for f in (j for j in range(n) if j not in pivots):
        v = np.zeros(n, np.int64)
        v[f] = 1
        v[pivots] = aug[:r, f]
        basis.append(v)
    return consistent, r, particular, basis


def _min_weight(particular, basis) -> int:
    return min(int(((particular + sum((b * t for b, t in zip(basis, bits)), np.zeros_like(particular))) % 2).sum())
               for bits in itertools.product((0, 1), repeat=len(basis)))


def _case(rng, n: int, m: int, kind: str):
    x = rng.choice([-1.0, 1.0], size=(m, n))
    if kind == "duplicates":
        x = np.concatenate([x, x[rng.integers(0, m, size=m)]])
    if kind == "all_ones_rows":
        x[rng.random(len(x)) < 0.5] = 1.0
    support = rng.permutation(n)[: rng.integers(0, min(n, 6) + 1)]
    y = np.prod(x[:, support], axis=1)
    if kind == "noisy":
        y[rng.integers(len(y))] *= -1
    elif kind == "random":
        y = rng.choice([-1.0, 1.0], size=len(y))
    elif kind == "constant":
        y = np.full(len(y), rng.choice([-1.0, 1.0]))
    return x, y


@pytest.mark.parametrize("n", [1, 5, 63, 64, 65, 129])
def test_gf2_agrees_with_an_independent_integer_elimination(n):
    """Rank-deficient (m < n), full-rank, duplicated, all-ones and noisy/constant-label samples:
    same consistency verdict, rank and nullity, a returned support that satisfies every equation,
    and (nullity ≤ 10) the fewest variables of all 2^nullity solutions."""
    rng = np.random.default_rng(n)
    kinds = ["parity", "noisy", "random", "duplicates", "all_ones_rows", "constant"]
    checked = {"fail": 0, "deficient": 0, "full": 0}
    for trial in range(60):
        kind = kinds[trial % len(kinds)]
        m = int(rng.integers(1, n)) if (trial // len(kinds)) % 2 and n > 1 else n + int(rng.integers(0, 15))
        x, y = _case(rng, n, m, kind)
        a, c = (x < 0).astype(np.int64), (y < 0).astype(np.int64)
        consistent, rank, particular, basis = _reference_gf2(a, c)
        if not consistent:
            with pytest.raises(FitFailed, match="no parity"):
                GF2().fit(None, x, y)
            checked["fail"] += 1
            continue
        params = GF2().fit(None, x, y)
        s = np.zeros(n, np.int64)
        s[params["support"]] = 1
        assert (params["rank"], params["nullity"]) == (rank, n - rank), (kind, x.shape)
        np.testing.assert_array_equal(a @ s % 2, c)
        np.testing.assert_array_equal(GF2().apply(params, x), y)
        if len(basis) <= 10:
            assert s.sum() == _min_weight(particular, basis), (kind, x.shape)
        checked["full" if rank == n else "deficient"] += 1
    assert checked["fail"] > 0 and checked["full"] > 0 and (checked["deficient"] > 0 or n == 1)


def test_gf2_empty_parity_constant_labels_and_all_ones_inputs():
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(40, 20))
    params = GF2().fit(None, x, np.ones(40))                                 # k = 0: χ_∅ = 1
    assert params["support"].size == 0 and params["rank"] == 20
    np.testing.assert_array_equal(GF2().apply(params, x), np.ones(40, np.float32))
    with pytest.raises(FitFailed):                                            # −1 everywhere: no parity at rank n
        GF2().fit(None, x, -np.ones(40))
    ones = np.ones((8, 20))                                                   # every equation is 0 = c
    params = GF2().fit(None, ones, np.ones(8))
    assert (params["rank"], params["nullity"], params["support"].size) == (0, 20, 0)
    with pytest.raises(FitFailed):
        GF2().fit(None, ones, np.concatenate([np.ones(7), [-1.0]]))


def test_gf2_reads_plus_minus_one_in_any_dtype_and_refuses_zero_one_encodings():
    rng = np.random.default_rng(1)
    x = rng.choice([-1, 1], size=(40, 20))
    y = np.prod(x[:, [2, 5, 11]], axis=1)
    for xx, yy in [(x, y), (x.astype(np.int8), y.astype(np.int8)), (x.astype(np.float32), y.astype(np.float32))]:
        np.testing.assert_array_equal(GF2().fit(None, xx, yy)["support"], [2, 5, 11])
    for xx, yy in [((x < 0).astype(int), y), (x, (y < 0).astype(int)), (x > 0, y), (x, y > 0)]:
        with pytest.raises(ValueError, match=r"\{±1\}"):
            GF2().fit(None, xx, yy)


# ---------------------------------------------------------------- layerwise


def _inner64(v: np.ndarray, x: np.ndarray, degree: int) -> np.ndarray:
    """(1, Σ_j ε_aj He_j(⟨v_a, x⟩)/√j!) in float64 from numpy's probabilists' Hermite series."""
    z = x @ v
    signs = hermite_signs(v.shape[1], degree)
    units = sum(signs[:, j - 1] * hermeval(z, [0] * j + [1]) / math.sqrt(math.factorial(j))
                for j in range(1, degree + 1))
    return np.concatenate([np.ones((len(x), 1)), units], axis=1)


def _stage1_64(phi, y, w, lw: Layerwise, steps: int):
    """Stage 1 in float64: (u after `steps` Nesterov steps, the exact ridge minimiser)."""
    m = max(w.sum(), 1.0)
    hess = (phi * w[:, None]).T @ phi / m + lw.weight_decay * np.eye(phi.shape[1])
    rhs = (phi * w[:, None]).T @ y / m
    vec = np.ones(phi.shape[1]) / math.sqrt(phi.shape[1])
    for _ in range(POWER_ITERATIONS):
        vec = hess @ vec / np.linalg.norm(hess @ vec)
    eta = lw.lr / (1.05 * vec @ hess @ vec)
    u, vel = np.zeros(phi.shape[1]), np.zeros(phi.shape[1])
    for _ in range(steps):
        vel = lw.momentum * vel - eta * (hess @ (u + lw.momentum * vel) - rhs)
        u = u + vel
    return u, np.linalg.solve(hess, rhs)


def _hierarchical(m: int, seed: int = 0):
    t = targets.get("hierarchical", n=6, k=2, r=4, q=2)
    tp = t.init(jax.random.key(seed))
    return t.sample(tp, jax.random.key(seed + 1), m)


@pytest.mark.parametrize("steps", [1, 2, 3, 40])
def test_layerwise_stage1_takes_exactly_its_steps(steps):
    """u after `steps` Nesterov steps equals a float64 re-implementation run for the same count
    (successive iterates differ by ≳ 10% here, so an off-by-one shows), with a zero-weight tail."""
    x, y = _hierarchical(300)
    w = np.where(np.arange(300) < 250, 1.0, 0.0)
    lw = Layerwise(width=40, degree=2, steps=steps)
    with jax.default_matmul_precision("highest"):
        params = jax.jit(lw.fit)(jax.random.key(3), x, y, jnp.asarray(w, jnp.float32))
    phi = _inner64(np.asarray(params["v"], np.float64), np.asarray(x, np.float64), 2)
    want, _ = _stage1_64(phi, np.asarray(y, np.float64), w, lw, steps)
    before, _ = _stage1_64(phi, np.asarray(y, np.float64), w, lw, steps - 1)
    err = np.linalg.norm(np.asarray(params["u"]) - want) / np.linalg.norm(want)
    assert err < 1e-3 < np.linalg.norm(before - want) / np.linalg.norm(want) / 10


def test_layerwise_stage1_reaches_the_ridge_minimiser_at_degree_two():
    x, y = _hierarchical(2000)
    w = np.ones(2000)
    lw = Layerwise(width=128, degree=2, steps=500)
    with jax.default_matmul_precision("highest"):
        params = jax.jit(lw.fit)(jax.random.key(3), x, y, jnp.asarray(w, jnp.float32))
    phi = _inner64(np.asarray(params["v"], np.float64), np.asarray(x, np.float64), 2)
    _, exact = _stage1_64(phi, np.asarray(y, np.float64), w, lw, 0)
    feature = phi @ np.asarray(params["u"], np.float64)
    assert np.linalg.norm(feature - phi @ exact) < 1e-4 * np.linalg.norm(phi @ exact)


def test_layerwise_stages_leave_the_other_parameters_bit_identical():
    """split: stage 1 reads only the even rows, stage 2 only the odd ones; V is its own draw."""
    x, y = _hierarchical(400)
    lw = Layerwise(width=48, degree=2, steps=100, outer_width=8, split=True)
    fit, w = jax.jit(lw.fit), jnp.ones(400)
    odd = jnp.arange(400) % 2 == 1
    base = fit(jax.random.key(3), x, y, w)
    stage2_rows = fit(jax.random.key(3), x, jnp.where(odd, 0.7 * y - 1.3, y), w)
    stage1_rows = fit(jax.random.key(3), x, jnp.where(odd, y, 0.7 * y - 1.3), w)
    same = lambda a, b: np.array_equal(np.asarray(a), np.asarray(b))   # noqa: E731
    assert same(base["v"], stage2_rows["v"]) and same(base["u"], stage2_rows["u"])
    assert not same(base["c"], stage2_rows["c"])
    assert same(base["v"], stage1_rows["v"]) and not same(base["u"], stage1_rows["u"])
    draw = jax.jit(lambda k: jax.random.normal(jax.random.fold_in(k, 0), (6, 48)))(jax.random.key(3))
    np.testing.assert_allclose(base["v"], draw / jnp.linalg.norm(draw, axis=0, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("split", [False, True])
def test_layerwise_stage2_and_apply_match_float64(split):
    x, y = _hierarchical(400)
    x_test, _ = _hierarchical(200, seed=5)
    w = np.where(np.arange(400) < 350, 1.0, 0.0)
    lw = Layerwise(width=48, degree=2, steps=100, outer_width=8, split=split)
    with jax.default_matmul_precision("highest"):
        params = jax.jit(lw.fit)(jax.random.key(3), x, y, jnp.asarray(w, jnp.float32))
        out = np.asarray(jax.jit(lw.apply)(params, x_test))
    w2 = w * (np.arange(400) % 2 == 1) if split else w
    v, u = np.asarray(params["v"], np.float64), np.asarray(params["u"], np.float64)
    raw = _inner64(v, np.asarray(x, np.float64), 2) @ u
    mean = (w2 * raw).sum() / w2.sum()
    std = np.sqrt((w2 * (raw - mean) ** 2).sum() / w2.sum())
    z = (raw - mean) / std
    kept = np.sort(z[w2 > 0])
    knots = kept[np.clip(((np.arange(8) + 0.5) / 8 * len(kept)).astype(int), 0, len(kept) - 1)]

    def psi(z):
        return np.concatenate([np.ones((len(z), 1)), z[:, None], np.maximum(z[:, None] - knots, 0)], axis=1)

    phi = psi(z)
    c = np.linalg.solve((phi * w2[:, None]).T @ phi / w2.sum() + lw.outer_ridge * np.eye(10),
                        (phi * w2[:, None]).T @ np.asarray(y, np.float64) / w2.sum())
    assert float(params["mean"]) == pytest.approx(mean, abs=1e-5)
    assert float(params["std"]) == pytest.approx(std, rel=1e-5)
    np.testing.assert_allclose(params["knots"], knots, atol=1e-5)
    np.testing.assert_allclose(params["c"], c, rtol=2e-3, atol=2e-3 * np.abs(c).max())
    want = psi((_inner64(v, np.asarray(x_test, np.float64), 2) @ u - mean) / std) @ c
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


def test_fitted_layerwise_curve_is_one_point_at_step_zero():
    exp = config.loads("target: {name: hierarchical, n: 4, k: 2}\nlearner: {name: layerwise, width: 16, steps: 7}\n"
                       "train: {loss: square}\ndata: {m: 64, test_m: 64}")
    out = trajectory(exp, {"seed": [0]})
    np.testing.assert_array_equal(out["steps"], [0])
    assert out["curve_test_loss"].shape == (1, 1) and int(out["evaluated"][0]) == 1
    assert float(out["curve_test_loss"][0, 0]) == float(out["test_loss"][0])
    assert int(out["steps_to_eps"][0]) == -1


# ---------------------------------------------------------------- the layerwise arm of PolyMLP through the loop


def test_polymlp_trained_layer_curve_points_count_steps_and_frozen_layers_are_bit_identical():
    """Curve point c holds the parameters after exactly steps[c] SGD updates (point 0: none),
    re-stepped by hand on the loop's own batches; layers 0 and the readout never change a bit."""
    exp = config.loads("target: {name: sparse_parity, n: 6, k: 2}\n"
                       "learner: {name: polymlp, hidden: [4, 2], power: 2, trained_layers: [1]}\n"
                       "train: {optimizer: sgd, lr: 0.001, batch: 8, steps: 25, eval_every: 10, loss: square}\n"
                       "data: {m: 64, test_m: 64}")

    def observe(p, p0):
        (l0, l1), r = p["layers"], p["readout"]
        return {"w0": l0["w"], "b0": l0["b"], "w1": l1["w"], "b1": l1["b"], "a": r["a"], "c": r["c"]}

    out = trajectory(exp, {"seed": [0]}, observe=observe)
    np.testing.assert_array_equal(out["steps"], [0, 10, 20, 25])
    keys = instance_keys(0, 0)
    _, x, y, _, _ = make_data(exp)(0, 0, 0.0)
    net = exp.learner
    params = init = net.init_params(keys["init"], 6)
    loss = lambda p, xb, yb: jnp.mean(LOSSES["square"](net.apply(p, xb), yb))   # noqa: E731
    bits = lambda a: np.asarray(a).view(np.uint32)                              # noqa: E731
    for t in range(26):
        if t in out["steps"]:
            c = int(np.flatnonzero(out["steps"] == t)[0])
            trained = params["layers"][1]
            np.testing.assert_allclose(out["trace_w1"][0, c], trained["w"], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(out["trace_b1"][0, c], trained["b"], rtol=1e-5, atol=1e-6)
            l0, r = init["layers"][0], init["readout"]
            for name, held in [("w0", l0["w"]), ("b0", l0["b"]), ("a", r["a"]), ("c", r["c"])]:
                np.testing.assert_array_equal(bits(out[f"trace_{name}"][0, c]), bits(held), err_msg=name)
        rows = jax.random.randint(jax.random.fold_in(keys["batches"], t), (8,), 0, 64)
        grads = jax.grad(loss)(params, x[rows], y[rows])
        params = jax.tree.map(lambda p, g: p - 0.001 * g, params, grads)
    assert np.abs(out["trace_w1"][0, -1] - out["trace_w1"][0, 0]).max() > 1e-3


# ---------------------------------------------------------------- neuron and polynomial nets in float64


def _f64(tree):
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)


def _triangle(t):
    """The triangle wave through sin(πt/2)'s crests and troughs: (2/π)·arcsin(sin(πt/2))."""
    return 2 / np.pi * np.arcsin(np.sin(np.pi * t / 2))


NEURONS = [Neuron(activation="sin", period=3.0), Neuron(activation="zigzag", period=3.0),
           Neuron(activation="zigzag", pieces=3, period=2.5), Neuron(activation="relu", readout="none"),
           Neuron(activation="sin", bias=False)]


@pytest.mark.parametrize("neuron", NEURONS, ids=lambda n: f"{n.activation}-{n.pieces}-{n.bias}-{n.readout}")
def test_neuron_forward_matches_float64(neuron):
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(64, 9))
    params = {"w": rng.normal(size=9)}
    if neuron.bias:
        params["b"] = np.float64(rng.normal())
    if neuron.readout == "trained":
        params["u"] = np.float64(-1.7)
    z = x @ params["w"] + params.get("b", 0.0)
    t = 4 * z / neuron.period
    if neuron.activation == "sin":
        sigma = np.sin(2 * np.pi * z / neuron.period)
    elif neuron.activation == "relu":
        sigma = np.maximum(z, 0)
    elif neuron.pieces is None:
        sigma = _triangle(t)
    else:                         # k linear pieces between (−1)^((k − s)/2) at s = −k, −k + 2, …, k
        k = neuron.pieces
        grid = np.arange(-k, k + 1, 2)
        sigma = np.interp(np.clip(t, -k, k), grid, (-1.0) ** ((k - grid) // 2))
    want = sigma * params.get("u", 1.0)
    with jax.enable_x64(True):
        got = np.asarray(neuron.apply(_f64(params), jnp.asarray(x)))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


NETS = [PolyNet(factors=3), PolyNet(factors=3, disjoint=True), PolyMLP(hidden=(5, 3), power=3),
        PolyMLP(hidden=(4,), power=2, bias=False), PolyMLP(hidden=(6,), power=3, readout="fixed")]


def _net_forward64(net, params, x):
    if isinstance(net, PolyNet):
        w = np.asarray(params["w"], np.float64)
        if net.disjoint:
            b = w.shape[1]
            return np.prod([x[:, i * b:(i + 1) * b] @ w[i] for i in range(net.factors)], axis=0)
        return np.prod(x @ w.T, axis=1)
    h = x
    for layer in params["layers"]:
        h = (h @ np.asarray(layer["w"], np.float64) + (np.asarray(layer["b"], np.float64) if net.bias else 0)) ** net.power
    a = np.asarray(params["readout"]["a"], np.float64)
    a = np.where(np.signbit(a), -1.0, 1.0) if net.readout == "fixed" else a
    return h @ a + (float(params["readout"]["c"]) if net.bias and net.readout == "trained" else 0.0)


@pytest.mark.parametrize("net", NETS + NEURONS, ids=[f"{n.name}{i}" for i, n in enumerate(NETS + NEURONS)])
def test_forward_and_gradients_in_float64(net):
    """Forward against numpy (polynomial nets), then check_grads to second order, both modes."""
    rng = np.random.default_rng(1)
    x = rng.choice([-1.0, 1.0], size=(6, 12))
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), net.init_params(jax.random.key(2), 12))
    if isinstance(net, PolyMLP):
        params["readout"]["c"] = np.float64(0.3)           # nonzero, so using it or not shows
        for layer in params["layers"]:
            layer["b"] = rng.normal(size=layer["b"].shape)  # nonzero even when bias=False (ignored)
    if isinstance(net, Neuron) and "u" in params:
        params["u"] = np.float64(-1.3)
    with jax.enable_x64(True):
        p64, x64 = _f64(params), jnp.asarray(x)
        got = np.asarray(net.apply(p64, x64))
        if not isinstance(net, Neuron):
            np.testing.assert_allclose(got, _net_forward64(net, params, x), rtol=1e-12, atol=1e-12)
        order = 1 if isinstance(net, Neuron) and net.activation != "sin" else 2   # piecewise linear: 2nd order is 0
        check_grads(lambda p: net.apply(p, x64), (p64,), order=order, modes=("fwd", "rev"), eps=1e-6,
                    atol=1e-6, rtol=1e-6)
