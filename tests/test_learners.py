"""Fitted and host learners: agreements with exact answers, closed forms and brute force."""

from __future__ import annotations

import itertools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparselearn import config, learners, targets
from sparselearn.errors import ConfigError, FitFailed
from sparselearn.learners import kernels
from sparselearn.learners.gf2 import GF2
from sparselearn.learners.kernels import KernelRidge, RandomFeatures, dual_solve, primal_solve
from sparselearn.learners.layerwise import Layerwise
from sparselearn.learners.lowdegree import LowDegree, feature_count, features
from sparselearn.targets.inputs import hypercube_points


def _ones(m: int) -> jnp.ndarray:
    return jnp.ones(m, jnp.float32)


def _fit_apply(learner, key, x, y, w, x_eval):
    """learner.apply(learner.fit(...), x_eval) as one compiled call (faster than op by op)."""
    return jax.jit(lambda x, y, w, z: learner.apply(learner.fit(key, x, y, w), z))(x, y, w, x_eval)


# ---------------------------------------------------------------- low-degree regression

@pytest.mark.parametrize("basis", ["walsh", "auto"])
def test_lowdegree_recovers_exact_walsh_coefficients_from_the_whole_cube(basis):
    n, q = 9, 3
    x = hypercube_points(n, 0, 1 << n)
    ld = LowDegree(degree=q, basis=basis, ridge=0.0)
    terms = ld.terms(n)
    rng = np.random.default_rng(0)
    sets = [t for t in terms if len(set(t)) == len(t)]
    truth = {sets[i]: rng.normal() for i in rng.permutation(len(sets))[:12]}
    y = sum(v * jnp.prod(x[:, list(t)], axis=1) for t, v in truth.items())
    coef = np.asarray(ld.fit(jax.random.key(0), x, y)["coef"])
    expected = np.array([truth.get(t, 0.0) for t in terms])
    np.testing.assert_allclose(coef, expected, atol=2e-5)
    assert len(terms) == (feature_count(n, q, "walsh") if basis == "walsh" else math.comb(n + q, q))


def test_lowdegree_estimates_hermite_coefficients_within_monte_carlo_error():
    n, q, m = 4, 3, 40_000
    x = jax.random.normal(jax.random.key(1), (m, n))
    ld = LowDegree(degree=q, basis="hermite", ridge=0.0)
    terms = ld.terms(n)
    truth = {(): 0.3, (0,): -1.0, (1, 1): 0.8, (0, 2, 2): 0.5, (3, 3, 3): -0.4}
    c = np.array([truth.get(t, 0.0) for t in terms])
    noise = 0.5 * jax.random.normal(jax.random.key(2), (m,))
    y = features(x, q, "hermite") @ c + noise
    coef = np.asarray(ld.fit(jax.random.key(0), x, y)["coef"])
    # each coefficient is a mean of m orthonormal-feature products: standard error ≈ σ/√m
    assert np.abs(coef - c).max() < 6 * 0.5 / math.sqrt(m) + 5e-3
    # auto chooses Hermite on Gaussian data and gives the same fit
    auto = LowDegree(degree=q, basis="auto", ridge=0.0).fit(jax.random.key(0), x, y)
    assert not bool(auto["cube"])
    np.testing.assert_allclose(np.asarray(auto["coef"]), coef, atol=1e-4)


@pytest.mark.parametrize("n, degree, m", [(6, 2, 60), (10, 3, 60)])   # primal (N ≤ M) and dual (N > M)
def test_zero_weight_rows_do_not_change_the_fit(n, degree, m):
    key = jax.random.key(3)
    x = jax.random.rademacher(key, (m, n), dtype=jnp.float32)
    y = jnp.prod(x[:, :2], axis=1) + 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (m,))
    half = m // 2
    w = (jnp.arange(m) < half).astype(jnp.float32)
    for learner in (LowDegree(degree=degree, basis="walsh", ridge=1e-3), KernelRidge(ridge=1e-3),
                    RandomFeatures(width=40, ridge=1e-3), Layerwise(width=32, steps=50)):
        padded = _fit_apply(learner, key, x, y, w, x[:half])
        alone = _fit_apply(learner, key, x[:half], y[:half], _ones(half), x[:half])
        np.testing.assert_allclose(padded, alone, atol=2e-3, err_msg=learner.name)


def test_support_selection_recovers_a_parity_below_the_feature_count():
    t = targets.get("sparse_parity", n=20, k=3)
    tp = t.init(jax.random.key(0))
    x, y = t.sample(tp, jax.random.key(1), 400)                 # 1351 features > 400 samples
    xt, yt = t.sample(tp, jax.random.key(2), 1000)
    ld = LowDegree(degree=3, basis="walsh", keep=4)
    params = ld.fit(jax.random.key(0), x, y)
    assert float(jnp.mean(jnp.sign(ld.apply(params, xt)) != yt)) == 0.0
    top = ld.terms(20)[int(jnp.argmax(jnp.abs(params["coef"])))]
    assert sorted(top) == sorted(int(i) for i in tp["support"])
    clipped = LowDegree(degree=3, basis="walsh", keep=4, clip=0.5)
    assert float(jnp.max(jnp.abs(clipped.apply(params, xt)))) == pytest.approx(0.5)


def test_lowdegree_keep_above_the_live_columns_refits_without_ridge():
    # auto on ±1 inputs: the 4 repeated-index columns of degree 2 are constant and dead;
    # keep = 12 of 15 keeps at least one of them, which the ridge-free refit must skip
    t = targets.get("sparse_parity", n=4, k=2)
    tp = t.init(jax.random.key(0))
    x, y = t.sample(tp, jax.random.key(1), 200)
    ld = LowDegree(degree=2, basis="auto", ridge=0.0, keep=12)
    params = ld.fit(jax.random.key(0), x, y)
    assert bool(jnp.all(jnp.isfinite(params["coef"])))
    np.testing.assert_allclose(ld.apply(params, x), y, atol=1e-4)


def test_lowdegree_config_errors_name_the_key_and_the_numbers():
    base = "target: {name: sparse_parity, n: 8, k: 2}\ntrain: {loss: square}\ndata: {m: 64, test_m: 64}\n"
    with pytest.raises(ConfigError, match=r"learner\.degree.*degree ≤ n = 8"):
        config.loads(base + "learner: {name: lowdegree, degree: 9, basis: walsh}")
    big = "target: {name: sparse_parity, n: 200, k: 3}\ntrain: {loss: square}\ndata: {m: 100000, test_m: 1000}\n"
    with pytest.raises(ConfigError, match=r"learner\.degree.*1,333,501 features.*max_memory_gb = 8"):
        config.loads(big + "learner: {name: lowdegree, degree: 3, basis: walsh}")
    with pytest.raises(ConfigError, match=r"learner\.basis.*gaussian"):
        config.loads("target: {name: hierarchical, n: 8}\nlearner: {name: lowdegree, basis: walsh}\n"
                     "train: {loss: square}\ndata: {m: 64}")
    with pytest.raises(ConfigError, match=r"learner\.keep"):
        config.loads(base + "learner: {name: lowdegree, degree: 1, keep: 100}")
    with pytest.raises(ConfigError, match=r"learner\.ridge"):
        config.loads(base + "learner: {name: lowdegree, ridge: -1}")


@pytest.mark.parametrize("learner", [LowDegree(degree=2), KernelRidge(), RandomFeatures(width=8), Layerwise(width=8)])
def test_fitted_learners_reject_empty_and_mismatched_data(learner):
    x = jnp.ones((10, 4))
    with pytest.raises(ValueError, match="empty"):
        learner.fit(jax.random.key(0), x[:0], jnp.ones(0), jnp.ones(0))
    with pytest.raises(ValueError, match="disagree"):
        learner.fit(jax.random.key(0), x, jnp.ones(9), jnp.ones(10))
    with pytest.raises(ValueError):
        learner.fit(jax.random.key(0), jnp.ones(10), jnp.ones(10), jnp.ones(10))


# ---------------------------------------------------------------- kernels

def _relu_net(params, u):
    return jax.nn.relu(u @ params["w"]) @ params["a"] / math.sqrt(params["a"].shape[0])


def _empirical_ntk(u, width, key):
    params = {"w": jax.random.normal(jax.random.fold_in(key, 0), (u.shape[1], width)),
              "a": jax.random.normal(jax.random.fold_in(key, 1), (width,))}
    jac = jax.jacrev(_relu_net)(params, u)
    flat = jnp.concatenate([jac["w"].reshape(len(u), -1), jac["a"]], axis=1)
    return flat @ flat.T


def test_closed_form_ntk_matches_the_empirical_ntk_of_a_wide_net():
    x = jax.random.rademacher(jax.random.key(0), (12, 10), dtype=jnp.float32)
    u = kernels.augment(x, 1.0)
    exact = kernels.kernel_matrix("ntk", x, x, bias=1.0)
    errors = {}
    for width in (256, 16384):
        emp = np.mean([_empirical_ntk(u, width, jax.random.key(s)) for s in range(2)], axis=0)
        errors[width] = np.linalg.norm(emp - exact) / np.linalg.norm(exact)
    assert errors[16384] < 0.03 and errors[16384] < errors[256] / 3   # ∝ width^{-1/2}: 8× expected


def test_random_features_gram_converges_to_the_arccos_kernel():
    x = jax.random.normal(jax.random.key(4), (16, 6))
    exact = kernels.kernel_matrix("arccos1", x, x, bias=0.5)
    errors = {}
    for width in (256, 65536):
        rf = RandomFeatures(width=width, bias=0.5)
        params = rf.fit(jax.random.key(5), x, jnp.zeros(16))
        phi = rf.features(params, x)
        errors[width] = np.linalg.norm(phi @ phi.T - exact) / np.linalg.norm(exact)
    assert errors[65536] < 0.02 and errors[65536] < errors[256] / 4


def test_arccos0_matches_monte_carlo_and_ridge_primal_equals_dual():
    u = kernels.augment(jax.random.normal(jax.random.key(6), (5, 3)), 1.0)
    w = jax.random.normal(jax.random.key(7), (u.shape[1], 200_000))
    step = (u @ w > 0).astype(jnp.float32)
    np.testing.assert_allclose(step @ step.T / w.shape[1], kernels.arccos0(u, u), atol=5e-3)
    phi = jax.random.normal(jax.random.key(8), (30, 12))
    y = jax.random.normal(jax.random.key(9), (30,))
    weights = (jnp.arange(30) < 20).astype(jnp.float32)
    primal = primal_solve(phi, y, weights, 0.1)
    dual = phi.T @ (weights * dual_solve(phi @ phi.T, y, weights, 0.1))
    np.testing.assert_allclose(primal, dual, atol=1e-4)


def test_kernel_ridge_interpolates_and_the_memory_check_names_the_limit():
    x = jax.random.rademacher(jax.random.key(0), (50, 8), dtype=jnp.float32)
    y = x[:, 0] * x[:, 1]
    for name in kernels.KERNELS:
        k = KernelRidge(kernel=name, ridge=1e-6, **({"degree": 3} if name == "poly" else {}))
        assert float(jnp.max(jnp.abs(_fit_apply(k, None, x, y, _ones(50), x) - y))) < 0.05, name
    with pytest.raises(ConfigError, match=r"learner\.max_memory_gb.*GiB.*limit"):
        config.loads("target: {name: sparse_parity, n: 8, k: 2}\nlearner: {name: kernel}\n"
                     "train: {loss: square}\ndata: {m: 200000}")


# ---------------------------------------------------------------- GF(2)

def _brute_force(x: np.ndarray, y: np.ndarray) -> list[tuple[int, ...]]:
    n = x.shape[1]
    found = []
    for size in range(n + 1):
        for subset in itertools.combinations(range(n), size):
            if np.array_equal(np.prod(x[:, list(subset)], axis=1), y):
                found.append(subset)
    return found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 10), m=st.integers(1, 24), kind=st.sampled_from(["parity", "noisy", "random"]),
       seed=st.integers(0, 2**31 - 1))
def test_gf2_agrees_with_brute_force(n, m, kind, seed):
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(m, n))
    support = rng.permutation(n)[: rng.integers(0, n + 1)]
    y = np.prod(x[:, support], axis=1)
    if kind == "noisy":
        y[rng.integers(m)] *= -1
    elif kind == "random":
        y = rng.choice([-1.0, 1.0], size=m)
    consistent = _brute_force(x, y)
    if not consistent:
        with pytest.raises(FitFailed, match="no parity"):
            GF2().fit(None, x, y)
        return
    params = GF2().fit(None, x, y)
    got = tuple(int(i) for i in params["support"])
    assert got in consistent
    assert len(got) == min(len(s) for s in consistent)             # sparsest: nullity ≤ 10 here
    assert 2 ** params["nullity"] == len(consistent)
    np.testing.assert_array_equal(GF2().apply(params, x), y)


def test_gf2_recovers_a_3_parity_on_50_bits_from_60_samples_for_every_seed():
    t = targets.get("sparse_parity", n=50, k=3)
    for seed in range(25):
        tp = t.init(jax.random.key(seed))
        x, y = (np.asarray(a) for a in t.sample(tp, jax.random.key(1000 + seed), 60))
        assert sorted(GF2().fit(None, x, y)["support"]) == sorted(np.asarray(tp["support"])), seed


def test_gf2_on_1000_bits_takes_seconds():
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(1010, 1000)).astype(np.float32)
    support = rng.permutation(1000)[:5]
    start = time.perf_counter()
    params = GF2().fit(None, x, np.prod(x[:, support], axis=1))
    assert time.perf_counter() - start < 10.0
    assert sorted(params["support"]) == sorted(support) and params["rank"] == 1000


def test_gf2_noisy_labels_are_stored_as_failed_runs(tmp_path):
    exp = config.loads("experiment: gf2_noisy\ntarget: {name: sparse_parity, n: 20, k: 3, noise: 0.1}\n"
                       "learner: {name: gf2}\ndata: {m: 200, test_m: 256}\nsweep: {seeds: 2}")
    df = learners_run(exp, tmp_path)
    assert set(df["status"]) == {"failed"} and df["error"].str.contains("noisy labels").all()
    clean = config.override(exp, target={"noise": 0.0})
    df = learners_run(clean, tmp_path)
    assert set(df["status"]) == {"ok"} and (df["test_error"] == 0).all()
    with pytest.raises(ConfigError, match=r"learner\.name.*±1 inputs"):
        config.loads("target: {name: hierarchical, n: 8}\nlearner: {name: gf2}\ntrain: {loss: square}")


def learners_run(exp, out):
    from sparselearn.sweeps import run
    return run(exp, out, progress=False)


# ---------------------------------------------------------------- layerwise three-layer training

def test_layerwise_beats_every_degree_k_baseline_on_a_hierarchical_target():
    """h = g∘p on d = 8 with p of degree k = 2: the best degree-≤2 fit explains only the
    part of h that is ∝ p (here 40% of its variance); learning p then g does much better."""
    t = targets.get("hierarchical", n=8, k=2, r=4, q=2)
    m = 2000
    lw = Layerwise(width=256, degree=2, steps=300)
    fit_lw = jax.jit(lw.fit)
    # least squares on all polynomials of degree ≤ 1 or 2 = kernel ridge with the degree-≤k kernel
    baselines = [LowDegree(degree=d, basis="hermite", ridge=r) for d in (1, 2) for r in (1e-4, 1e-1)]
    ours, best = [], []
    for seed in range(3):
        tp = t.init(jax.random.key(seed))
        x, y = t.sample(tp, jax.random.key(10 + seed), m)
        xt, yt = t.sample(tp, jax.random.key(20 + seed), 8192)
        params = fit_lw(jax.random.key(seed), x, y, _ones(m))
        ours.append(float(jnp.mean((lw.apply(params, xt) - yt) ** 2)))
        corr = np.corrcoef(lw.feature(params, xt), t.feature(tp, xt))[0, 1]
        assert abs(corr) > 0.9                                    # stage 1 found the feature p
        best.append(min(float(jnp.mean((_fit_apply(b, None, x, y, _ones(m), xt) - yt) ** 2)) for b in baselines))
    assert min(best) > 0.45                                       # the degree-≤2 floor is ≈ 0.6
    assert np.mean(ours) < 0.6 * np.mean(best), (ours, best)


def test_registry_lists_the_learners_and_they_build_from_config():
    assert {"lowdegree", "kernel", "random_features", "gf2", "layerwise"} <= set(learners.names())
    for name in ("lowdegree", "kernel", "random_features", "layerwise"):
        exp = config.loads(f"target: {{name: sparse_parity, n: 6, k: 2}}\nlearner: {{name: {name}}}\n"
                           "train: {loss: square}\ndata: {m: 32, test_m: 32}")
        assert exp.learner.kind == "fitted"
    with pytest.raises(ConfigError, match=r"lr: must be in \(0, 1.36\)"):
        learners.get("layerwise", lr=3.0)


def test_comparison_configs_load_and_share_one_experiment_per_target():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "configs" / "compare"
    by_experiment: dict[str, set[str]] = {}
    for path in sorted(root.glob("*.yaml")):
        exp = config.load(path)                                   # runs every learner's check
        assert path.read_text().startswith("#") and "Run:" in path.read_text(), path.name
        by_experiment.setdefault(exp.experiment, set()).add(exp.learner.name)
    assert by_experiment["compare_parity"] == {"mlp", "lowdegree", "gf2", "kernel"}
    assert by_experiment["compare_teacher"] == {"mlp", "lowdegree", "kernel"}
    assert by_experiment["compare_hierarchical"] == {"layerwise", "lowdegree", "mlp", "kernel"}
