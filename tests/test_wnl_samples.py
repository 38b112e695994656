"""WNL-samples study (experiments/wnl_samples.py): one search per d with p over all d
coordinates, an inner width that spans the quadratics at every d, a seed count and δ that give a
point where every seed succeeds a Clopper–Pearson upper end, and the kept full-size table."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from sparselearn import figures
from sparselearn.sweeps.search import clopper_pearson

ROOT = Path(__file__).resolve().parents[1]
wnl = figures.study("wnl_samples", near=ROOT / "paper_figs" / "x.py")


@pytest.mark.parametrize("smoke", [False, True])
def test_one_search_per_d_with_p_over_every_coordinate(smoke):
    size = wnl.SMOKE if smoke else wnl.FULL
    exps = wnl.experiments(smoke)
    assert [e.target.n for e in exps] == size["d"]
    for exp in exps:
        d = exp.target.n
        assert exp.target.r == d and not exp.sweep.grid
        assert exp.learner.width >= 1.5 * math.comb(d + 2, 2)
        assert exp.learner.degree == exp.target.k == 2
    assert len({e.experiment for e in exps}) == len(exps)


def test_every_seed_succeeding_gives_an_upper_end():
    seeds = wnl.FULL["seeds"]
    assert seeds >= 5 and wnl.RTOL <= 0.25
    assert clopper_pearson(seeds, seeds)[0] >= 1 - wnl.DELTA
    assert clopper_pearson(seeds - 1, seeds)[1] >= 1 - wnl.DELTA      # one failure still passes


def test_stage_one_target_is_the_feature():
    """The degree-≤2 part of g∘p is a multiple of p (no other quadratic leaks into stage 1's
    target): a least-squares fit of the labels on every polynomial of degree ≤ 2 at d = 4."""
    exp = wnl.experiments(True)[0]
    target = exp.target
    params = target.init(jax.random.key(0))
    x, y = target.sample(params, jax.random.key(1), 200_000)
    x, y = np.asarray(x, float), np.asarray(y, float)
    d = x.shape[1]
    cols = [np.ones(len(x))] + [x[:, i] for i in range(d)] + [x[:, i] * x[:, j] for i in range(d) for j in range(i, d)]
    basis = np.stack(cols, axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    fit = basis @ coef
    p = np.asarray(target.feature(params, x), float)
    assert np.corrcoef(fit, p)[0, 1] > 0.999


def test_kept_table_has_every_d():
    table = pd.read_parquet(wnl.KEPT_TABLE)
    assert table["n"].tolist() == wnl.FULL["d"]
    assert table["m_star"].notna().all() and not table["censored"].any()
    assert (table["seeds"] == wnl.FULL["seeds"]).all()
    assert (table["width"] >= 1.5 * table["quadratics"]).all()
