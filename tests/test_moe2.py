"""Dictionary-sparse inputs (x = D z) against their closed-form moments, and the top-k
mixture-of-experts learner: it contains a routed teacher exactly, and distilling from near that
point returns to the closed-form answer (each expert equals the teacher on its region)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparselearn as sl
from sparselearn import figures
from sparselearn.errors import ConfigError
from sparselearn.learners.moe import MoE as MoEStudent
from sparselearn.targets.inputs import dictionary, dictionary_codes, draw, reference
from sparselearn.targets.moe import MoE as MoETeacher
from sparselearn.train.loop import make_data, trajectory

N_IN, ATOMS, NZ, M = 6, 20, 3, 200_000


@pytest.fixture(scope="module")
def sample():
    """(z (M, N), x (M, n)) from one key: x must be D z."""
    key = jax.random.key(7)
    return (np.asarray(dictionary_codes(key, M, N_IN, ATOMS, NZ), np.float64),
            np.asarray(draw("dictionary", key, M, N_IN, atoms=ATOMS, nonzeros=NZ), np.float64))


def test_dictionary_is_fixed_with_unit_atoms():
    d = dictionary(N_IN, ATOMS)
    assert d.shape == (N_IN, ATOMS) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, rtol=1e-6)
    assert np.array_equal(d, dictionary(N_IN, ATOMS))          # one (n, N), one dictionary
    assert dictionary(N_IN).shape == (N_IN, 4 * N_IN)            # N defaults to 4n
    assert not np.allclose(dictionary(N_IN, ATOMS + 1)[:, :ATOMS], d)


def test_dictionary_inputs_are_d_times_sparse_codes(sample):
    z, x = sample
    np.testing.assert_allclose(x, z @ dictionary(N_IN, ATOMS).T.astype(np.float64), atol=1e-4)
    assert ((z != 0).sum(axis=1) == NZ).all()                    # exactly `nonzeros` atoms per input


def test_each_atom_and_pair_of_atoms_is_used_at_its_rate(sample):
    """P(atom i) = nz/N and P(atoms i and j) = nz(nz−1)/(N(N−1)): the atoms are chosen uniformly
    without replacement. Tolerance: 5 binomial standard errors."""
    on = (sample[0] != 0).astype(np.float64)
    for observed, rate in ((on.mean(axis=0), NZ / ATOMS),
                           ((on.T @ on / M)[np.triu_indices(ATOMS, 1)], NZ * (NZ - 1) / (ATOMS * (ATOMS - 1)))):
        assert np.abs(observed - rate).max() < 5 * math.sqrt(rate * (1 - rate) / M)


def test_dictionary_mean_and_covariance(sample):
    """E x = 0 and E x xᵀ = (n/N)·D Dᵀ, so E‖x‖² = n (as for N(0, I_n)); E z zᵀ = (n/N)·I."""
    z, x = sample
    d = dictionary(N_IN, ATOMS).astype(np.float64)
    cov = N_IN / ATOMS * d @ d.T
    se = np.sqrt(np.diag(cov) / M)
    assert (np.abs(x.mean(axis=0)) < 5 * se).all()
    # the standard error of a second moment is at most sqrt(E x_i² x_j² / M); bound E x_i² x_j² from the sample
    se2 = np.sqrt((x[:, :, None] ** 2 * x[:, None, :] ** 2).mean(axis=0) / M)
    assert (np.abs(x.T @ x / M - cov) < 5 * se2).all()
    assert abs(np.mean((x ** 2).sum(axis=1)) - N_IN) < 0.05 * N_IN
    np.testing.assert_allclose(np.diag(z.T @ z / M), N_IN / ATOMS, rtol=0.05)


def test_dictionary_projections_are_heavy_tailed_as_predicted(sample):
    """The fourth moment of ⟨a, x⟩ = Σ_i z_i c_i (c = Dᵀa, values of variance σ² = n/nz):
    E⟨a,x⟩⁴ = 3σ⁴·[(nz/N)·Σ c_i⁴ + nz(nz−1)/(N(N−1))·Σ_{i≠j} c_i² c_j²], above the Gaussian
    value 3·(E⟨a,x⟩²)² with the same covariance (the mark of sparse codes)."""
    _, x = sample
    d = dictionary(N_IN, ATOMS).astype(np.float64)
    a = np.random.default_rng(0).standard_normal(N_IN)
    a /= np.linalg.norm(a)
    c = d.T @ a
    sigma2 = N_IN / NZ
    pair = NZ * (NZ - 1) / (ATOMS * (ATOMS - 1))
    fourth = 3 * sigma2 ** 2 * (NZ / ATOMS * np.sum(c ** 4) + pair * (np.sum(c ** 2) ** 2 - np.sum(c ** 4)))
    proj = x @ a
    assert np.mean(proj ** 4) == pytest.approx(fourth, rel=0.05)
    assert fourth > 1.3 * 3 * np.mean(proj ** 2) ** 2


def test_dictionary_reference_and_bad_fields():
    xs, w = reference("dictionary", jax.random.key(0), N_IN, atoms=ATOMS, nonzeros=NZ)
    assert xs.shape == (1 << 14, N_IN) and float(w.sum()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="nonzeros"):
        sl.targets.get("moe", n=8, inputs="dictionary", atoms=4, nonzeros=5)
    with pytest.raises(ConfigError, match="atoms"):
        sl.targets.get("moe", n=8, inputs="dictionary", atoms=0)


def test_moe_target_on_dictionary_inputs():
    """The `moe` target takes `inputs: dictionary`: unit-variance labels under that law, inputs
    x = D z, and the new fields stay out of the hashes of configs that do not set them."""
    t = sl.targets.get("moe", n=12, experts=1, expert_width=16, r=1, inputs="dictionary", atoms=30, nonzeros=2)
    params = t.init(jax.random.key(0))
    x, y = t.sample(params, jax.random.key(1), 4096)
    assert float(jnp.var(y)) == pytest.approx(1.0, rel=0.1) and abs(float(jnp.mean(y))) < 0.1
    np.testing.assert_allclose(x, draw("dictionary", jax.random.fold_in(jax.random.key(1), 0), 4096, 12,
                                       atoms=30, nonzeros=2), atol=1e-5)
    plain = sl.config.loads("target: {name: moe, n: 8}\nlearner: {name: mlp, width: 4}\ntrain: {loss: square}\n")
    set_default = sl.config.override(plain, target={"nonzeros": 2, "atoms": None})
    assert sl.config.config_hash(plain) == sl.config.config_hash(set_default)
    assert "nonzeros" not in sl.config.dump(plain)
    assert sl.config.config_hash(sl.config.load("configs/quickstart.yaml")) == "e86cd382762f"


# ------------------------------------------------------------------ the mixture-of-experts learner

def test_student_contains_the_routed_teacher_exactly():
    """With hard gates and the teacher's top, a student loaded with a `moe` teacher's parameters
    computes its labels: on the region where the router picks expert e, the student's expert e
    is the teacher restricted to that region. The mean squared error is then 0 and its gradient
    vanishes: the distillation optimum in closed form."""
    teacher = MoETeacher(n=10, experts=4, expert_width=3, r=2, top=2, inputs="gaussian")
    tp = teacher.init(jax.random.key(3))
    student = MoEStudent(experts=4, expert_width=3, top=2, r=2, gate="hard")
    sp = student.from_teacher(tp)
    x, y = teacher.sample(tp, jax.random.key(4), 2048)
    np.testing.assert_allclose(student.apply(sp, x), y, atol=1e-5)
    assert np.array_equal(student.routes(sp, x), teacher.routes(tp, x))
    grads = jax.grad(lambda p: jnp.mean((student.apply(p, x) - y) ** 2))(sp)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) < 1e-4
    # one expert switched off costs exactly the teacher's mass on that expert's region
    off = {**sp, "u": sp["u"].at[1].set(0.0)}
    routed = np.asarray(jax.nn.one_hot(teacher.routes(tp, x), 4).sum(axis=1))[:, 1]
    part = np.asarray(jnp.sum(jax.nn.relu(x @ tp["w"][1].T - tp["b"][1]) * tp["u"][1], axis=1))
    assert float(jnp.mean((student.apply(off, x) - y) ** 2)) == pytest.approx(np.mean((routed * part) ** 2), rel=1e-4)


def test_distillation_returns_to_the_closed_form_fit():
    """Trained by the normal loop (online samples of a routed teacher, Adam, square loss) from the
    teacher's router with perturbed experts, the student's experts return to the teacher's on
    their regions: the test error falls from the perturbation's to near 0."""
    exp = figures.config({
        "experiment": "moe2_closed_form",
        "target": {"name": "moe", "n": 8, "experts": 4, "expert_width": 4, "r": 2, "top": 1, "inputs": "gaussian"},
        "learner": {"name": "moe", "experts": 4, "expert_width": 4, "top": 1, "r": 2, "gate": "hard"},
        "train": {"optimizer": "adam", "lr": 0.003, "batch": 128, "steps": 600, "loss": "square", "eval_every": 300},
        "data": {"online": True, "test_m": 2048}})
    teacher = make_data(exp)(0, 0, 0.0)[0]          # run seed 0's teacher, as the loop draws it
    student = exp.learner

    def near_teacher(key, hp):
        sp = student.from_teacher(teacher)
        noise = jax.random.normal(key, sp["w"].shape) * 0.1 / math.sqrt(8)
        return {**sp, "w": sp["w"] + noise}

    out = trajectory(exp, {"seed": [0]}, init=near_teacher)
    start, end = out["curve_test_error"][0, 0], out["curve_test_error"][0, -1]
    assert start > 1e-3 and end < 0.01 * start


def test_student_gates_and_check():
    net = MoEStudent(experts=6, expert_width=2, top=3, r=2)
    params = net.init_params(jax.random.key(0), 5)
    x = jax.random.normal(jax.random.key(1), (64, 5))
    g = net.gates(params, x)
    assert ((g > 0).sum(axis=1) == 3).all() and (g.sum(axis=1) < 1).all()   # softmax mass of the chosen 3
    hard = MoEStudent(experts=6, expert_width=2, top=3, r=2, gate="hard")
    assert (hard.gates(params, x).sum(axis=1) == 3).all()
    assert net.active_units == 6
    # the router is trained through the softmax gate even at top 1
    one = MoEStudent(experts=6, expert_width=2, top=1, r=2)
    grads = jax.grad(lambda p: jnp.mean(one.apply(p, x) ** 2))(params)
    assert float(jnp.abs(grads["router"]).max()) > 0
    with pytest.raises(ConfigError, match="top"):
        sl.learners.get("moe", experts=2, top=3)
    with pytest.raises(ConfigError, match="learner.r"):
        sl.config.loads("target: {name: moe, n: 4, r: 2}\nlearner: {name: moe, r: 5}\ntrain: {loss: square}\n")


@pytest.mark.parametrize("top", [1, 2])
def test_a_rank_one_router_only_ever_picks_the_extreme_gates(top):
    """scores = s(x)·g_e at r = 1: the chosen experts are the `top` largest or smallest g_e, so
    at most 2·top of E = 16 are used, whatever G is (as the learner's docstring says)."""
    net = MoEStudent(experts=16, expert_width=4, top=top, r=1)
    params = net.init_params(jax.random.key(0), 10)
    params["gates"] = jax.random.normal(jax.random.key(1), params["gates"].shape)   # a trained G
    used = np.unique(np.asarray(net.routes(params, jax.random.normal(jax.random.key(2), (20000, 10)))))
    order = np.argsort(np.asarray(params["gates"][0]))
    assert set(used) <= set(order[:top]) | set(order[-top:]) and len(used) == 2 * top
    wider = MoEStudent(experts=16, expert_width=4, top=top, r=2)
    wide = wider.init_params(jax.random.key(0), 10)
    assert len(np.unique(np.asarray(wider.routes(wide, jax.random.normal(jax.random.key(2), (20000, 10)))))) > 2 * top
