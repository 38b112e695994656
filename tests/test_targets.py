"""Targets: certified sparsity, exact normalisation, determinism, vmap/jit, and config errors."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e

import sparselearn.targets as targets
from sparselearn.analysis import spectrum, top_coefficients
from sparselearn.errors import ConfigError
from sparselearn.runtime import FULL_COMPILE, known_options
from sparselearn.targets.hierarchical import Hierarchical, feature_moments, hermite_normalized, polynomial_moments
from sparselearn.targets.inputs import Certificate, balanced_threshold, hypercube_points, reference
from sparselearn.targets.moe import MoE
from sparselearn.targets.parity import SparseParity, Staircase
from sparselearn.targets.sparse_mlp import SparseMLP, SparseMLPSign

KEY = jax.random.key(0)

# small instances of every registered target
SMALL = {
    "sparse_parity": dict(n=8, k=3),
    "staircase": dict(n=8, k=3),
    "sparse_mlp": dict(n=8, s=16, k=2),
    "sparse_mlp_sign": dict(n=8, s=16, k=2),
    "hierarchical": dict(n=6, k=2, r=3),
    "moe": dict(n=8, experts=4, expert_width=3, r=2),
}


def all_points(n):
    return hypercube_points(n, 0, 1 << n)


def test_every_registered_target_has_a_small_instance():
    assert sorted(SMALL) == targets.names()


# ----------------------------------------------------------------------------- generic contract
@functools.lru_cache(maxsize=None)
def small(name):
    """A small instance of target `name` and its teacher for KEY (built once per session)."""
    t = targets.get(name, **SMALL[name])
    return t, t.init(KEY)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_sample_shapes_determinism_jit_and_vmap(name):
    t, tp = small(name)
    x, y = t.sample(tp, jax.random.key(1), 5)
    assert x.shape == (5, t.n) and y.shape == (5,) and x.dtype == jnp.float32 and y.dtype == jnp.float32
    x2, y2 = t.sample(tp, jax.random.key(1), 5)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x1, y1 = t.sample(tp, jax.random.key(1), 1)                   # m = 1 works (the loop draws row by row)
    assert x1.shape == (1, t.n) and y1.shape == (1,)
    np.testing.assert_allclose(t.labels(tp, x), y, rtol=1e-5, atol=1e-5)
    # teachers and samples vmap over keys (traced only: compiling every batched teacher is slow)
    keys = jax.random.split(KEY, 3)
    batch = jax.eval_shape(jax.vmap(t.init), keys)
    jax.tree.map(lambda a, b: a.shape == (3, *b.shape) or pytest.fail(f"{a.shape} vs {b.shape}"), batch, tp)
    xs, ys = jax.eval_shape(jax.vmap(lambda p, k: t.sample(p, k, 5)), batch, keys)
    assert xs.shape == (3, 5, t.n) and ys.shape == (3, 5)
    if t.task == "classification":
        assert set(np.unique(np.asarray(y))) <= {-1.0, 1.0}


@pytest.mark.parametrize("name", ["sparse_mlp"])
def test_vmapped_teachers_equal_unbatched_ones(name):
    t, _ = small(name)
    keys = jax.random.split(KEY, 2)
    batch = jax.jit(jax.vmap(t.init))(keys)
    one = t.init(keys[1])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[1], b, rtol=1e-5, atol=1e-6), batch, one)
    xs, ys = jax.jit(jax.vmap(lambda p, k: t.sample(p, k, 5)))(batch, jnp.stack([jax.random.key(1)] * 2))
    x, y = t.sample(one, jax.random.key(1), 5)
    np.testing.assert_array_equal(xs[1], x)
    np.testing.assert_allclose(ys[1], y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_noise(name):
    t, tp = small(name)
    noisy = dataclasses.replace(t, noise=0.3)
    x, y = noisy.sample(tp, jax.random.key(2), 4000)
    clean = t.labels(tp, x)
    if t.task == "classification":
        assert abs(float(jnp.mean(y != clean)) - 0.3) < 0.04
    else:
        assert abs(float(jnp.std(y - clean)) - 0.3) < 0.02


# ----------------------------------------------------------------------------- parities
def test_parity_labels_are_the_product_of_the_support():
    t = SparseParity(n=12, k=4)
    tp = t.init(KEY)
    x, y = t.sample(tp, jax.random.key(3), 256)
    S = np.asarray(tp["support"])
    assert len(set(S.tolist())) == 4 and S.min() >= 0 and S.max() < 12
    np.testing.assert_array_equal(y, np.prod(np.asarray(x)[:, S], axis=1))


def test_parity_spectrum_is_a_single_coefficient_at_its_set():
    t = SparseParity(n=9, k=3)
    tp = t.init(jax.random.key(4))
    c = spectrum(lambda x: t.labels(tp, x), 9)
    assert top_coefficients(c) == [(tuple(sorted(np.asarray(tp["support"]).tolist())), 1.0)]


def test_biased_parity_inputs():
    t = SparseParity(n=10, k=2, inputs="biased", p=0.8)
    x, y = t.sample(t.init(KEY), jax.random.key(5), 20000)
    assert abs(float(jnp.mean(x)) - 0.6) < 0.02
    assert abs(float(jnp.mean(y)) - 0.36) < 0.03          # E χ_S = (2p − 1)^k


def test_staircase_spectrum_is_the_nested_sets():
    t = Staircase(n=8, k=4)
    tp = t.init(jax.random.key(6))
    S = np.asarray(tp["support"]).tolist()
    c = spectrum(lambda x: t.labels(tp, x), 8)
    found = dict(top_coefficients(c, count=10))
    assert found == {tuple(sorted(S[: j + 1])): pytest.approx(0.5) for j in range(4)}
    assert float(np.sum(c ** 2)) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- sparse MLP
def brute_force_max(t, tp):
    return int(jnp.max(t.active_units(tp, all_points(t.n))))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 12), s=st.integers(2, 40), k=st.integers(1, 5),
       construction=st.sampled_from(["random", "junta", "index", "dense_weight"]), seed=st.integers(0, 2 ** 16))
def test_certificate_equals_brute_force(n, s, k, construction, seed):
    try:
        t = SparseMLP(n=n, s=s, k=k, construction=construction)
    except ConfigError:
        assume(False)
    tp = t.init(jax.random.key(seed))
    cert = t.certify(tp)
    assert cert.exact and cert.n_inputs == 2 ** n and cert.k == k
    assert cert.max_active == brute_force_max(t, tp) <= k
    assert cert.holds


@pytest.mark.parametrize("construction", ["random", "junta", "index", "dense_weight"])
def test_sparse_mlp_is_non_degenerate_and_unit_variance(construction):
    t = SparseMLP(n=12, s=16, k=2, construction=construction)
    tp = t.init(jax.random.key(7))
    x = all_points(12)
    pre = np.asarray(x @ tp["w"].T - tp["b"])
    assert pre.shape[1] == t.layout.units <= t.s
    assert np.all((pre > 0).any(axis=0)), "every unit fires on some input"
    y = np.asarray(t.labels(tp, x), np.float64)
    assert np.std(y) == pytest.approx(1.0, rel=1e-4)             # exact on the enumerated cube
    assert float(tp["scale"]) > 0
    if construction != "dense_weight":     # there activity is the sign of a dense random projection
        assert np.min(np.abs(pre)) >= 0.25, "a margin keeps the activation pattern robust to rounding"


def test_junta_parity_construction_is_a_sparse_parity():
    t = SparseMLP(n=10, s=8, k=1, construction="junta", junta_fn="parity")
    tp = t.init(jax.random.key(8))
    top = top_coefficients(spectrum(lambda x: t.labels(tp, x), 10))
    assert len(top) == 1 and len(top[0][0]) == 3 and abs(top[0][1]) == pytest.approx(1.0, rel=1e-5)
    assert t.certify(tp).max_active == 1
    assert np.all(np.asarray(t.active_units(tp, all_points(10))) == 1), "a junta group always has one unit on"


def test_index_construction_computes_the_addressed_bit():
    t = SparseMLP(n=6, s=4, k=1, construction="index")            # 2 address bits, 4 data bits
    tp = t.init(KEY)
    x = all_points(6)
    values = np.unique(np.round(np.asarray(t.labels(tp, x)) / float(tp["scale"]), 5))
    np.testing.assert_allclose(values, [0.0, 0.75], atol=1e-5)  # ¾·1[addressed bit = +1] before scaling
    # unit α reads the (permuted) address coordinates with weights α and one data bit of its own
    w, xs = np.asarray(tp["w"]), np.asarray(x)
    address = np.flatnonzero(np.all(np.abs(w) == 1, axis=0))
    data = [int(np.flatnonzero(row == 0.5)[0]) for row in w]
    assert len(address) == 2 and sorted(data) == sorted(set(range(6)) - set(address))
    assert len({tuple(row) for row in w[:, address]}) == 4      # every address has its unit
    unit = [int(np.flatnonzero(np.all(w[:, address] == row[address], axis=1))[0]) for row in xs]
    addressed = xs[np.arange(64), np.asarray(data)[unit]]
    np.testing.assert_allclose(np.asarray(t.labels(tp, x)) / float(tp["scale"]), 0.75 * (addressed > 0), atol=1e-5)


def test_dense_weight_with_small_gamma_may_break_sparsity_and_the_certificate_says_so():
    t = SparseMLP(n=12, s=8, k=1, construction="dense_weight", gamma=0.3)
    found = [t.certify(t.init(jax.random.key(i))).max_active for i in range(4)]
    assert max(found) > 1
    for i in range(2):
        tp = t.init(jax.random.key(i))
        assert t.certify(tp).max_active == brute_force_max(t, tp)


def test_norms_scale_the_teacher_into_the_class():
    t = SparseMLP(n=10, s=16, k=2, W=2.0, B=3.0)
    norms = t.norms(t.init(KEY))
    assert norms["W"] <= 2.0 + 1e-5 and norms["B"] <= 3.0 + 1e-5
    assert max(norms["W"] / 2.0, norms["B"] / 3.0) == pytest.approx(1.0, rel=1e-5)
    assert norms["C_H"] == pytest.approx(2 * (norms["W"] * math.sqrt(10) + norms["B"]))
    x = all_points(10)
    assert float(jnp.max(jnp.abs(t.labels(t.init(KEY), x)))) <= norms["C_H"]


def test_biased_inputs_keep_the_exact_certificate():
    t = SparseMLP(n=10, s=24, k=3, inputs="biased", p=0.7)
    tp = t.init(KEY)
    cert = t.certify(tp)
    assert cert.exact and cert.max_active <= 3
    x, w = reference("biased", KEY, 10, 0.7)
    y = t.labels(tp, x)
    mean = jnp.sum(w * y)
    assert float(jnp.sqrt(jnp.sum(w * (y - mean) ** 2))) == pytest.approx(1.0, rel=1e-4)


def test_large_n_certificate_is_a_labelled_lower_bound():
    t = SparseMLP(n=24, s=16, k=2)
    cert = t.certify(t.init(KEY), samples=4096)
    assert isinstance(cert, Certificate)
    assert not cert.exact and cert.n_inputs == 4096 and "lower bound" in cert.method
    assert cert.max_active <= 2                                   # the construction guarantees it


def test_gaussian_construction_is_rarely_violated_and_labelled_sampled():
    t = SparseMLP(n=16, s=32, k=4, inputs="gaussian")
    tp = t.init(KEY)
    cert = t.certify(tp, samples=8192)
    assert not cert.exact and "lower bound" in str(cert)
    x, y = t.sample(tp, jax.random.key(9), 8192)
    assert float(jnp.mean(t.active_units(tp, x) > 4)) < 2e-3
    assert float(jnp.std(y)) > 0.5


def test_a_gaussian_teacher_that_rarely_fires_has_unit_variance_on_fresh_draws():
    """n = 8, s = 64, k = 1: one unit fires on about 1 input in 1,000, so 2^14 plain draws met 1
    to 28 of them and the scaled teacher's std on fresh draws was 0.80 to 97. Scaled from draws
    given that a unit fires, its std over 2^23 fresh draws is 1 within 15% for every key."""
    t = SparseMLP(n=8, s=64, k=1, inputs="gaussian")
    teachers = [t.init(jax.random.key(seed)) for seed in range(4)]

    def sums(x):   # (4, 2): Σ y and Σ y² per teacher over the rows of x, in float64 on the host
        y = jnp.stack([t.labels(tp, x) for tp in teachers])
        return jnp.stack([y.sum(1), (y * y).sum(1)], axis=1)

    rows = np.random.default_rng(100).standard_normal((8, 1 << 20, 8), dtype=np.float32)   # fresh draws
    # optimised as the library's programs are: the tests' own programs compile unoptimised
    # (conftest), which ran this one 2× slower
    program = jax.jit(sums).lower(rows[0]).compile(known_options(FULL_COMPILE))
    total = sum(np.asarray(program(x), np.float64) for x in rows)
    mean, second = (total / (8 << 20)).T
    std = np.sqrt(second - mean ** 2)
    assert np.all((0.85 < std) & (std < 1.15)), std


def test_sign_variant_is_balanced_and_binary():
    t = SparseMLPSign(n=12, s=32, k=4)
    tp = t.init(KEY)
    y = np.asarray(t.labels(tp, all_points(12)))
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert 0.2 < np.mean(y > 0) < 0.8
    assert SparseMLPSign.task == "classification" and SparseMLP.task == "regression"


def test_balanced_threshold_handles_an_atom_at_the_median():
    v = jnp.array([0.0] * 6 + [1.0, 2.0, 3.0, -1.0])
    w = jnp.full((10,), 0.1)
    t = float(balanced_threshold(v, w))
    assert 0.0 < t < 1.0 or -1.0 < t < 0.0
    assert 0 < np.mean(np.asarray(v) > t) < 1


# ----------------------------------------------------------------------------- hierarchical
def test_hermite_terms_are_orthonormal_by_quadrature():
    nodes, weights = hermite_e.hermegauss(30)
    weights = weights / weights.sum()
    z = jnp.asarray(nodes, jnp.float32)
    H = np.stack([np.asarray(hermite_normalized(z, j), np.float64) for j in range(6)])
    gram = (H * weights) @ H.T
    np.testing.assert_allclose(gram, np.eye(6), atol=1e-4)


def test_feature_moments_match_two_dimensional_quadrature():
    nodes, weights = hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    X, Y = np.meshgrid(nodes, nodes)
    Wt = np.outer(weights, weights)
    he = lambda z, k: hermite_e.hermeval(z, [0] * k + [1]) / math.sqrt(math.factorial(k))  # noqa: E731
    for k in (1, 2, 3):
        p = (he(X, k) + he(Y, k)) / math.sqrt(2)
        exact = [float(np.sum(Wt * p ** j)) for j in range(7)]
        np.testing.assert_allclose(feature_moments(k, 2, 6), exact, rtol=1e-8, atol=1e-8)
    coeffs = (0.5, -1.0, 0.0, 2.0)
    g = np.polyval(coeffs[::-1], (he(X, 3) + he(Y, 3)) / math.sqrt(2))
    mean = np.sum(Wt * g)
    assert polynomial_moments(coeffs, 3, 2) == pytest.approx((mean, math.sqrt(np.sum(Wt * (g - mean) ** 2))))


@pytest.mark.parametrize("cfg", [dict(n=12, k=2, r=4, q=2), dict(n=10, k=1, r=2, q=3),
                                 dict(n=12, k=3, r=12, directions="coordinate", g_coeffs=(0, 0, 0, 1))])
def test_hierarchical_has_mean_zero_unit_variance(cfg):
    t = Hierarchical(**cfg)
    tp = t.init(KEY)
    np.testing.assert_allclose(tp["v"].T @ tp["v"], np.eye(t.r), atol=1e-5)
    x, y = t.sample(tp, jax.random.key(10), 1 << 17)
    y = np.asarray(y, np.float64)
    # tolerance: 5 standard errors of the sample mean and variance, estimated from the sample
    # (a degree-9 polynomial of Gaussians has heavy tails, so a fixed tolerance would be arbitrary)
    assert abs(y.mean()) < 5 * y.std() / np.sqrt(len(y))
    assert abs(y.var() - 1.0) < 5 * np.std(y ** 2) / np.sqrt(len(y))
    f = np.asarray(t.feature(tp, x), np.float64)
    assert abs(f.mean()) < 0.02 and abs(f.var() - 1.0) < 0.05


def test_hierarchical_coordinate_directions_are_signed_axes():
    t = Hierarchical(n=8, k=3, r=8, directions="coordinate")
    v = np.asarray(t.init(KEY)["v"])
    assert set(np.unique(np.abs(v))) == {0.0, 1.0}
    np.testing.assert_array_equal(np.abs(v).sum(axis=0), 1)
    np.testing.assert_array_equal(np.abs(v).sum(axis=1), 1)


# ----------------------------------------------------------------------------- MoE
def test_moe_is_exactly_standardised_on_the_cube_and_certified():
    t = MoE(n=10, experts=6, expert_width=3, r=3, top=2)
    tp = t.init(KEY)
    x = all_points(10)
    y = np.asarray(t.labels(tp, x), np.float64)
    assert abs(y.mean()) < 1e-4 and y.std() == pytest.approx(1.0, rel=1e-4)
    cert = t.certify(tp)
    assert cert.exact and cert.k == 6 and cert.max_active == int(jnp.max(t.active_units(tp, x))) <= 6
    routes = np.asarray(t.routes(tp, x))
    assert routes.shape == (1024, 2) and np.all(routes[:, 0] != routes[:, 1])
    assert len(np.unique(routes)) > 2


def test_moe_gaussian_mean_zero_unit_variance():
    t = MoE(n=12, experts=8, expert_width=4, r=4, inputs="gaussian")
    tp = t.init(KEY)
    _, y = t.sample(tp, jax.random.key(11), 1 << 16)
    y = np.asarray(y, np.float64)
    assert abs(y.mean()) < 0.05 and abs(y.var() - 1.0) < 0.08      # reference of 2^14 draws + MC error
    assert not t.certify(tp, samples=4096).exact


def test_moe_only_routed_experts_contribute():
    t = MoE(n=8, experts=4, expert_width=2, r=2)
    tp = t.init(KEY)
    x = all_points(8)
    chosen = np.asarray(t.routes(tp, x))[:, 0]
    pre = np.asarray(jnp.einsum("mn,ehn->meh", x, tp["w"]) - tp["b"])
    direct = np.maximum(pre, 0) * np.asarray(tp["u"])
    direct = direct.sum(axis=2)[np.arange(256), chosen] - float(tp["offset"])
    np.testing.assert_allclose(t.labels(tp, x), direct, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- bad parameters
BAD = [
    ("sparse_mlp", dict(n=10, s=4, k=5), "k"),
    ("sparse_mlp", dict(n=3, s=16, k=4), "k"),
    ("sparse_mlp", dict(W=-1.0), "W"),
    ("sparse_mlp", dict(B=0.0), "B"),
    ("sparse_mlp", dict(inputs="sphere"), "inputs"),
    ("sparse_mlp", dict(construction="junta", inputs="gaussian"), "construction"),
    ("sparse_mlp", dict(construction="index", n=2, s=8, k=1), "n"),
    ("sparse_mlp", dict(construction="index", n=6, s=16, k=2, bits=3), "bits"),   # the key the user set
    ("sparse_mlp", dict(gamma=1.0), "gamma"),
    ("sparse_mlp_sign", dict(noise=0.5), "noise"),
    ("sparse_parity", dict(n=5, k=6), "k"),
    ("sparse_parity", dict(inputs="gaussian"), "inputs"),
    ("sparse_parity", dict(inputs="biased", p=1.0), "p"),
    ("staircase", dict(noise=-0.1), "noise"),
    ("hierarchical", dict(n=4, r=5), "r"),
    ("hierarchical", dict(q=3, g_coeffs=(0, 1)), "q"),
    ("hierarchical", dict(g_coeffs=(1.0,)), "g_coeffs"),
    ("hierarchical", dict(inputs="hypercube"), "inputs"),
    ("moe", dict(top=9, experts=8), "top"),
    ("moe", dict(n=4, r=5), "r"),
]


@pytest.mark.parametrize("name,cfg,key", BAD)
def test_bad_parameters_raise_config_error_naming_the_key(name, cfg, key):
    with pytest.raises(ConfigError) as err:
        targets.get(name, **cfg)
    assert err.value.key == key
    with pytest.raises(ValueError):                          # and a ValueError from Python directly
        targets.lookup(name)(**cfg)


def test_unknown_field_is_an_error():
    with pytest.raises(ConfigError):
        targets.get("sparse_mlp", width=3)


def test_dense_construction_is_a_nonlinear_unconstrained_comparison():
    from sparselearn import analysis
    t = targets.get("sparse_mlp", n=10, s=16, k=16, construction="dense")
    tp = t.init(jax.random.key(0))
    cert = t.certify(tp)
    assert cert.exact and 4 < cert.max_active <= 16
    weights = analysis.degree_weights(analysis.walsh_hadamard(analysis.truth_table(lambda x: t.labels(tp, x), 10)))
    assert weights[2:].sum() / weights.sum() > 0.1  # not a linear function of x
    with pytest.raises(ConfigError, match="k = s"):
        targets.get("sparse_mlp", n=10, s=16, k=4, construction="dense")


def test_parity_noise_one_half_gives_labels_independent_of_x():
    t = targets.get("sparse_parity", n=8, k=2, noise=0.5)
    tp = t.init(jax.random.key(0))
    x, y = t.sample(tp, jax.random.key(1), 20000)
    agree = jnp.mean(y == t.labels(tp, x))
    assert abs(float(agree) - 0.5) < 0.02
    with pytest.raises(ConfigError, match="noise"):
        targets.get("sparse_parity", n=8, k=2, noise=0.51)


def test_tiny_junta_teachers_are_never_constant_and_never_blow_up():
    for k in (1, 2):
        t = targets.get("sparse_mlp", n=12, s=4, k=k, construction="junta")
        stds = []
        for seed in range(40):
            tp = t.init(jax.random.key(seed))
            y = t.labels(tp, t.sample(tp, jax.random.key(1000 + seed), 4096)[0])
            stds.append(float(jnp.std(y)))
        stds = np.asarray(stds)
        # unit variance (up to sampling), or exactly 0 for a teacher whose groups cancel
        assert np.all((np.abs(stds - 1) < 0.1) | (stds == 0.0)), stds
        if k == 1:  # one group, never constant by construction
            assert np.all(stds > 0.5)
