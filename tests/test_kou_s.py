"""Kou-S: the sample-rate study of sign SGD on k-sparse parities (experiments/kou_samples.py) and
its k = 4 diagnosis — the batch search, the summary, the prediction of exact runs from the
initialisation, and the Kou learner trained in smoke mode."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import sparselearn as sl
from sparselearn import figures

ROOT = Path(__file__).resolve().parents[1]
kou = figures.study("kou_samples", near=ROOT / "experiments")


def _all_patterns(k: int) -> np.ndarray:
    """Every s ∈ {±1}^k as the columns of a (k, 2^k) array."""
    return np.array(list(itertools.product([-1.0, 1.0], repeat=k))).T


def test_paper_batch_is_d_to_the_k_minus_1_times_ln_d():
    assert kou.paper_batch(2, 10) == 24 and kou.paper_batch(3, 20) == 1199 and kou.paper_batch(4, 20) == 23966


def test_good_units_are_those_whose_population_gradient_grows_their_feature_weights():
    """With d = k the correlation-loss gradient is exact over all 2^k inputs: a unit is good iff
    every feature weight's sign-descent step has the weight's own sign."""
    k, m = 3, 40
    rng = np.random.default_rng(1)
    w, a = rng.choice([-1.0, 1.0], (k, m)), rng.choice([-1.0, 1.0], m)
    x = _all_patterns(k).T                                               # (2^k, k)
    y = x.prod(1)
    z = x @ w                                                            # (2^k, m)
    grad = -(a * k * z ** (k - 1))[:, None, :] * x[:, :, None] * y[:, None, None]   # d(−y f)/dw
    step = -np.sign(grad.mean(0))                                        # (k, m)
    grows = np.all(step * w > 0, axis=0)
    np.testing.assert_array_equal(kou.good_units(a, w), grows)
    assert 0 < grows.sum() < m


@pytest.mark.parametrize("k", [2, 3, 4])
def test_every_sign_pattern_once_learns_the_parity_exactly(k):
    """All 2^k patterns on S with a_j = Π s_j: the lower-degree terms cancel, the sign is χ_S."""
    w = _all_patterns(k)
    a = w.prod(0)
    assert kou.good_units(a, w).all()
    assert bool(kou.exact_after_training(a, w, k))


def test_a_missing_sign_class_breaks_k_4():
    """k = 4: drop the two good units aligned with ±(1, 1, 1, 1); on x_S = (1, 1, 1, 1) only the
    units agreeing in 3 of 4 places remain, and they push the sign the wrong way."""
    w = _all_patterns(4)
    keep = np.abs(w.sum(0)) != 4
    a = w.prod(0)
    assert not bool(kou.exact_after_training(a[keep], w[:, keep], 4))
    # bad units (a_j Π s_j = −1) are ignored: adding them back changes nothing
    assert not bool(kou.exact_after_training(np.concatenate([a[keep], -a]), np.concatenate([w[:, keep], w], 1), 4))


def test_exact_after_training_broadcasts_over_leading_axes():
    w = np.stack([_all_patterns(3), _all_patterns(3)])
    a = w.prod(1)
    a[1, :] = 0.0                       # no good unit: f = 0, never exact
    np.testing.assert_array_equal(kou.exact_after_training(a, w, 3), [True, False])


def test_coverage_failure_falls_with_width_and_does_not_depend_on_readout_balance():
    narrow, wide = (kou.coverage_failure(4, m, False, trials=3000, seed=2) for m in (64, 256))
    balanced = kou.coverage_failure(4, 64, True, trials=3000, seed=2)
    assert 0.3 < narrow < 0.5 and wide < 0.02
    assert balanced > 0.25              # an exactly balanced readout leaves most of the failures


def _fake_steps(threshold: int):
    """A stand-in for one steps search: exact from `threshold` on, T* = 10 + 4000/batch."""
    def steps(exp, store):
        b = exp.train.batch
        ok = b >= threshold
        return {"k": exp.target.k, "n": exp.target.n, "batch": b, "paper_batch": kou.paper_batch(exp.target.k, exp.target.n),
                "steps": 10.0 + 4000 / b if ok else math.nan, "steps_low": math.nan, "steps_high": math.nan,
                "success_rate": 1.0 if ok else math.nan, "seeds": 10, "censored": not ok}
    return steps


def test_search_halves_to_the_threshold_then_bisects(monkeypatch):
    monkeypatch.setattr(kou, "_steps_to_exact", _fake_steps(threshold=300))
    rows = kou.search(3, 20)                               # paper batch 1199
    assert rows["batch"].tolist() == [299, 423, 599, 1199]
    assert rows["censored"].tolist() == [True, False, False, False]
    np.testing.assert_allclose(rows["samples"], [math.nan, 423 * (10 + 4000 / 423), 599 * (10 + 4000 / 599),
                                                 1199 * (10 + 4000 / 1199)])
    summary = kou.summarise(rows)
    assert summary.loc[0, "batch"] == 423 and summary.loc[0, "smallest_batch"] == 423
    assert summary.loc[0, "samples"] == pytest.approx(423 * 10 + 4000)
    assert summary.loc[0, "paper_samples"] == pytest.approx(1199 * 10 + 4000)


def test_search_doubles_when_the_paper_batch_fails_and_gives_up_at_4x(monkeypatch):
    monkeypatch.setattr(kou, "_steps_to_exact", _fake_steps(threshold=10**9))
    rows = kou.search(2, 10)
    assert rows["batch"].tolist() == [24, 48, 96]
    summary = kou.summarise(rows)
    assert bool(summary.loc[0, "censored"]) and np.isnan(summary.loc[0, "samples"])


def test_theory_exponent_is_k_minus_1():
    for k in (2, 3, 4):
        assert kou.theory_exponent(k)[0] == pytest.approx(k - 1)


def test_smoke_search_trains_the_kou_learner(tmp_path):
    """Smoke mode end to end: the paper's batch is tried, T* is an evaluated step, samples = T*·B."""
    rows = kou.search(2, 6, smoke=True, store=str(tmp_path))
    assert rows["batch"].tolist() == [kou.paper_batch(2, 6)]
    row = rows.iloc[0]
    assert not row["censored"]   # a 2-parity on 6 bits: learned within the smoke steps (T* = 16)
    assert row["steps"] % kou.SMOKE["every"] == 0 and 0 < row["steps"] <= kou.SMOKE["steps"]
    assert row["samples"] == row["steps"] * row["batch"]
    summary = kou.summarise(rows)
    assert summary.columns[:3].tolist() == ["k", "n", "samples"] and len(summary) == 1


def test_trained_runs_are_exact_exactly_when_the_initialisation_predicts_it(tmp_path):
    """Sign SGD with a generous batch ends where the initialisation says: a narrow k = 3 net
    (8 units) is exact on the seeds whose good units cover every sign class, and only there."""
    k, d = 3, 8
    exp = kou.net(k, d, 4 * kou.paper_batch(k, d), width=8, seeds=8, name="kou_s_test")
    exp = figures.config(exp, train={"steps": 60, "eval_every": 20}, data={"test_m": 512})
    runs = sl.run(exp, str(tmp_path), progress=False).sort_values("seed")
    exact = (runs["test_error"] == 0).tolist()
    predicted = [bool(kou.exact_after_training(*kou.initial_support_weights(exp, int(s)), k)) for s in runs["seed"]]
    assert exact == predicted
    assert any(predicted) and not all(predicted)
