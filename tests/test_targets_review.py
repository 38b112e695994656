"""Teachers and input laws against brute-force numpy evaluations of their definitions and
closed-form moments: parities and staircases on the enumerated cube, the uniform law of the
drawn support, label noise, the moe routing and certificate, the four input laws, the moments
of the hierarchical feature, and the threshold of the sign teacher."""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import hermite_e
from scipy import stats

import sparselearn.targets as targets
from sparselearn import config
from sparselearn.contracts import sampler
from sparselearn.errors import ConfigError
from sparselearn.targets.hierarchical import Hierarchical, feature_moments
from sparselearn.targets.inputs import balanced_threshold, dictionary, draw, hypercube_points, reference
from sparselearn.targets.sparse_mlp import SparseMLPSign


def cube(n):
    return np.asarray(hypercube_points(n, 0, 1 << n), np.float64)


# ----------------------------------------------------------------------------- parity family
@pytest.mark.parametrize("name", ["sparse_parity", "staircase"])
@pytest.mark.parametrize("inputs", ["hypercube", "biased"])
def test_labels_equal_the_definition_on_every_input(name, inputs):
    """χ_S(x) = Π_{i∈S} x_i, and the staircase k^{−1/2} Σ_j Π_{i≤j} x_{s_i} in the drawn order."""
    x = cube(7)
    for k in (1, 3, 7):
        t = targets.get(name, n=7, k=k, inputs=inputs, **({"p": 0.3} if inputs == "biased" else {}))
        for seed in range(2):
            tp = t.init(jax.random.key(seed))
            s = np.asarray(tp["support"])
            assert sorted(set(s.tolist())) == sorted(s.tolist()) and len(s) == k and 0 <= s.min() and s.max() < 7
            if name == "sparse_parity":
                want = np.prod(x[:, s], axis=1)
            else:
                want = sum(np.prod(x[:, s[: j + 1]], axis=1) for j in range(k)) / math.sqrt(k)
            np.testing.assert_allclose(np.asarray(t.labels(tp, jnp.asarray(x, jnp.float32))), want, atol=1e-6)


@pytest.mark.parametrize("name", ["sparse_parity", "staircase"])
def test_support_is_a_uniform_random_ordered_subset(name):
    """Over 3000 seeds each of the 5·4 ordered pairs of n = 5 coordinates comes up equally often
    (chi-square), so S is uniform among the C(n, k) sets and the staircase order is uniform."""
    t = targets.get(name, n=5, k=2)
    s = np.asarray(jax.vmap(t.init)(jax.random.split(jax.random.key(11), 3000))["support"])
    cells = {pair: i for i, pair in enumerate(itertools.permutations(range(5), 2))}
    counts = np.bincount([cells[tuple(row)] for row in s.tolist()], minlength=len(cells))
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sparse_parity", "staircase", "moe", "hierarchical"])
def test_label_noise_is_the_stated_level_and_matches_sample(name):
    """Vmapped noise levels: a flip rate (classification) or residual std (regression) within 4
    standard errors of the level, and the same examples as `sample` with that noise."""
    t = targets.get(name, n=8)
    tp = t.init(jax.random.key(0))
    levels, m = (0.0, 0.1, 0.3, 0.5), 40_000
    draw_fn = sampler(t)
    xs, ys = jax.jit(jax.vmap(lambda nz: draw_fn(tp, jax.random.key(4), m, nz)))(jnp.array(levels))
    for i, level in enumerate(levels):
        x2, y2 = dataclasses.replace(t, noise=level).sample(tp, jax.random.key(4), m)
        np.testing.assert_allclose(np.asarray(xs[i]), np.asarray(x2), rtol=0, atol=1e-6)   # Gaussian: an ulp
        np.testing.assert_allclose(np.asarray(ys[i]), np.asarray(y2), atol=1e-5)
        resid = np.asarray(ys[i], np.float64) - np.asarray(t.labels(tp, xs[i]), np.float64)
        if t.task == "classification":
            rate = np.mean(resid != 0)
            assert abs(rate - level) <= 4 * math.sqrt(level * (1 - level) / m) + 1e-12
        else:
            assert abs(np.sqrt(np.mean(resid ** 2)) - level) <= 4 * level / math.sqrt(2 * m) + 1e-6


@pytest.mark.parametrize("p", [0.1, 0.3, 0.8])
def test_biased_parity_inputs_have_mean_2p_minus_1_and_the_product_law(p):
    """E x_i = 2p − 1, uncorrelated coordinates, and E χ_S = (2p − 1)^k, within 4 standard errors."""
    t = targets.get("sparse_parity", n=6, k=3, inputs="biased", p=p)
    tp = t.init(jax.random.key(0))
    m = 100_000
    x, y = t.sample(tp, jax.random.key(2), m)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mu, var = 2 * p - 1, 1 - (2 * p - 1) ** 2
    assert np.all(np.abs(x.mean(axis=0) - mu) < 4 * math.sqrt(var / m))
    cov = np.cov(x.T)[np.triu_indices(6, 1)]
    assert np.all(np.abs(cov) < 4 * var / math.sqrt(m) * 1.5)
    assert abs(y.mean() - mu ** 3) < 4 * math.sqrt((1 - mu ** 6) / m)


# ----------------------------------------------------------------------------- moe
def moe_numpy(tp, x, top):
    """Routes (m, top) (ties to the lower index), labels (m,) and active units (m,) in float64."""
    P = {key: np.asarray(v, np.float64) for key, v in tp.items()}
    scores = x @ P["router"] @ P["gates"]
    routes = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    pre = np.einsum("mn,ehn->meh", x, P["w"]) - P["b"]
    gate = np.zeros(scores.shape)
    np.put_along_axis(gate, routes, 1.0, axis=1)
    y = np.sum(gate * np.sum(np.maximum(pre, 0) * P["u"], axis=2), axis=1) - P["offset"]
    return routes, y, np.sum(gate[:, :, None] * (pre > 0), axis=(1, 2))


@pytest.mark.parametrize("cfg", [
    dict(n=8, experts=8, expert_width=3, r=3, top=1),
    dict(n=9, experts=6, expert_width=2, r=1, top=2),          # r = 1: exact ties, lower index wins
    dict(n=8, experts=5, expert_width=4, r=8, top=3),
    dict(n=8, experts=4, expert_width=2, r=2, top=1, inputs="biased", p=0.2),
])
def test_moe_routes_labels_and_certificate_equal_numpy_on_the_cube(cfg):
    t = targets.get("moe", **cfg)
    x = cube(t.n)
    xf = jnp.asarray(x, jnp.float32)
    _, weights = reference(t.inputs, jax.random.key(0), t.n, t.p)
    weights = np.asarray(weights, np.float64)
    for seed in range(2):
        tp = t.init(jax.random.key(seed))
        routes, y, active = moe_numpy(tp, x, t.top)
        assert np.array_equal(np.sort(np.asarray(t.routes(tp, xf)), axis=1), np.sort(routes, axis=1))
        got = np.asarray(t.labels(tp, xf), np.float64)
        np.testing.assert_allclose(got, y, atol=2e-6)
        mean = np.sum(weights * got)
        assert abs(mean) < 1e-5 and abs(np.sum(weights * (got - mean) ** 2) - 1) < 1e-5
        np.testing.assert_array_equal(np.asarray(t.active_units(tp, xf)), active)
        cert = t.certify(tp)
        assert cert.exact and cert.max_active == active.max() <= t.k


# ----------------------------------------------------------------------------- input laws
@pytest.mark.parametrize("law, p", [("hypercube", 0.5), ("gaussian", 0.5), ("biased", 0.15),
                                    ("biased", 0.9), ("dictionary", 0.5)])
def test_input_law_moments_within_standard_errors(law, p):
    """Mean and E x xᵀ of 100k draws against the closed forms, within 5 standard errors."""
    n, m = 5, 100_000
    x = np.asarray(draw(law, jax.random.key(3), m, n, p), np.float64)
    mu = np.full(n, 2 * p - 1) if law == "biased" else np.zeros(n)
    if law == "dictionary":
        second = dictionary(n).astype(np.float64) @ dictionary(n).T.astype(np.float64) / 4
    elif law == "biased":
        second = np.outer(mu, mu) + np.diag(1 - mu ** 2)
    else:
        second = np.eye(n)
    assert np.all(np.abs(x.mean(axis=0) - mu) <= 5 * np.sqrt(np.diag(second) - mu ** 2 + 1e-12) / math.sqrt(m))
    se2 = np.sqrt(np.mean(x[:, :, None] ** 2 * x[:, None, :] ** 2, axis=0) / m)
    assert np.all(np.abs(x.T @ x / m - second) <= 5 * se2 + 1e-12)
    if law in ("hypercube", "biased"):
        assert set(np.unique(x)) == {-1.0, 1.0}


@pytest.mark.parametrize("law", ["hypercube", "gaussian", "biased", "dictionary"])
def test_draws_are_deterministic_per_key_and_vmap_equals_per_key(law):
    keys = jax.random.split(jax.random.key(5), 6)
    one = lambda key: draw(law, key, 33, 7, 0.3)      # noqa: E731
    loop = np.stack([np.asarray(one(k)) for k in keys])
    np.testing.assert_array_equal(loop, np.stack([np.asarray(one(k)) for k in keys]))
    if law == "dictionary":  # codes @ atoms: a batched product may sum in another order (an ulp)
        np.testing.assert_allclose(np.asarray(jax.vmap(one)(keys)), loop, rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(np.asarray(jax.vmap(one)(keys)), loop)
    # jit fuses the N(0, n/nonzeros) scaling of dictionary codes: equal to an ulp
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(one))(keys)), loop, rtol=0, atol=1e-6)
    assert not np.array_equal(loop[0], loop[1])


# ----------------------------------------------------------------------------- hierarchical
def exact_feature_moments(k, r, order):
    """E p^j, j ≤ order: the moments of Σ_{i≤r} He_k(ξ_i) in integers (He_k has integer
    coefficients, E ξ^d = (d − 1)!! for even d), divided by (k!·r)^{j/2}."""
    he = [int(c) for c in hermite_e.herme2poly([0] * k + [1])]
    gauss = [0 if d % 2 else math.prod(range(1, d, 2)) for d in range(k * order + 1)]
    one, power = [], [1]
    for _ in range(order + 1):
        one.append(sum(c * gauss[d] for d, c in enumerate(power)))
        power = [sum(power[i] * he[d - i] for i in range(len(power)) if 0 <= d - i < len(he))
                 for d in range(len(power) + len(he) - 1)]
    total = [1] + [0] * order
    for _ in range(r):
        total = [sum(math.comb(j, l) * total[l] * one[j - l] for l in range(j + 1)) for j in range(order + 1)]
    return [v / (math.factorial(k) * r) ** (j / 2) for j, v in enumerate(total)]


@pytest.mark.parametrize("k, r", [(1, 3), (2, 1), (2, 4), (3, 2), (4, 3)])
def test_feature_moments_equal_exact_rational_moments(k, r):
    """E p^j against exact integer arithmetic."""
    want = exact_feature_moments(k, r, 6)
    np.testing.assert_allclose(feature_moments(k, r, 6), want, rtol=1e-9, atol=1e-9)
    assert want[1] == 0 and want[2] == pytest.approx(1.0)


@pytest.mark.parametrize("cfg", [dict(n=8, k=2, r=4), dict(n=6, k=3, r=6, q=3, directions="coordinate",
                                                        g_coeffs=(0, 0, 0, 1)),
                                 dict(n=6, k=2, r=3, g_coeffs=(1.0, 2.0, 0.0, 0.5)), dict(n=5, k=4, r=1)])
def test_hierarchical_labels_equal_the_definition_and_are_standardised(cfg):
    """y = (g(p) − μ)/σ with p = r^{−1/2} Σ He_k(⟨v_i, x⟩)/√(k!) in numpy; E p, E p² − 1, E y and
    E y² − 1 within 5 standard errors over 100k draws."""
    t = Hierarchical(**cfg)
    tp = t.init(jax.random.key(1))
    v = np.asarray(tp["v"], np.float64)
    np.testing.assert_allclose(v.T @ v, np.eye(t.r), atol=1e-6)
    m = 100_000
    x, y = t.sample(tp, jax.random.key(2), m)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    p = hermite_e.hermeval(x @ v, [0] * t.k + [1]).sum(axis=1) / math.sqrt(math.factorial(t.k) * t.r)
    mu, sigma = t.normalization
    want = (np.polynomial.polynomial.polyval(p, t.coeffs) - mu) / sigma
    np.testing.assert_allclose(y, want, atol=1e-3 * max(1.0, np.abs(want).max()))
    for values, target in ((p, 0.0), (p ** 2, 1.0), (y, 0.0), (y ** 2, 1.0)):
        assert abs(values.mean() - target) < 5 * values.std() / math.sqrt(m)


# ----------------------------------------------------------------------------- sign threshold
def test_balanced_threshold_keeps_a_rounded_atom_together():
    """An atom at −1 (mass 0.45) whose float32 values differ by an ulp, as a rounded sum gives:
    the cut goes above or below the whole atom, never between its two roundings."""
    ulp = np.nextafter(np.float32(-1.0), np.float32(0.0))
    v = jnp.asarray(np.array([-2.0, -1.0, ulp, 0.0, 1.0], np.float32))
    w = jnp.array([0.2, 0.25, 0.2, 0.2, 0.15])
    t = float(balanced_threshold(v, w))
    assert -1.0 + 1e-3 < t < 0.0                    # above the atom: upper mass 0.35 (below it: 0.8)
    assert float(balanced_threshold(jnp.array([3.0, 3.0]), jnp.array([0.5, 0.5]))) == 3.0


def test_sign_teacher_labels_are_a_function_of_h():
    """sparse_mlp_sign on the enumerated cube: inputs with the same h (in float64) get the same
    label, whatever the batch the labels are computed in. This junta teacher has an atom of
    mass 0.43 at −scale whose float32 values differ by an ulp."""
    t = SparseMLPSign(n=12, s=32, k=4, construction="junta")
    tp = t.init(jax.random.key(1))
    x = cube(12)
    xf = jnp.asarray(x, jnp.float32)
    P = {key: np.asarray(v, np.float64) for key, v in tp.items()}
    h = np.maximum(x @ P["w"].T - P["b"], 0) @ P["u"]
    y = np.asarray(t.labels(tp, xf))
    atoms = np.round(h / np.abs(h).max(), 6)
    for a in np.unique(atoms):
        assert len(np.unique(y[atoms == a])) == 1
    np.testing.assert_array_equal(np.asarray(jax.jit(t.labels)(tp, xf[:777])), y[:777])
    rows = np.concatenate([np.asarray(t.labels(tp, xf[i:i + 1])) for i in range(0, 4096, 41)])
    np.testing.assert_array_equal(rows, y[::41])


def test_a_moe_teacher_that_never_fires_is_zero_with_scale_zero():
    t = targets.get("moe", n=1, experts=1, expert_width=1, r=1)   # one unit: often never active on ±1
    scales = [float(t.init(jax.random.key(i))["scale"]) for i in range(12)]
    assert 0.0 in scales and max(scales) < 1e6
    p = t.init(jax.random.key(scales.index(0.0)))
    x, y = t.sample(p, jax.random.key(1), 16)
    np.testing.assert_array_equal(np.asarray(y), 0.0)


@pytest.mark.parametrize("target, key", [
    ({"name": "sparse_parity", "n": 8, "k": 2, "p": 0.9}, "p"),
    ({"name": "sparse_mlp", "n": 8, "s": 16, "k": 2, "p": 0.9, "inputs": "gaussian"}, "p"),
    ({"name": "moe", "n": 8, "p": 0.9}, "p"),
    ({"name": "moe", "n": 8, "atoms": 3}, "atoms"),
    ({"name": "moe", "n": 8, "inputs": "gaussian", "nonzeros": 3}, "nonzeros"),
    ({"name": "sparse_mlp", "n": 10, "s": 16, "k": 16, "construction": "dense", "bits": 2}, "bits"),
])
def test_an_option_of_an_input_law_or_construction_not_chosen_is_an_error(target, key):
    """p without biased inputs, atoms or nonzeros without dictionary inputs, bits for a dense net:
    each would be ignored (and still change the config hash), so each names its key."""
    with pytest.raises(ConfigError, match=f"target.{key}: is (not )?used"):
        config.from_dict({"target": target, "learner": {"name": "mlp"}, "train": {"loss": "square"}})
