"""The theory numbers the exponent table prints beside its verdicts: what the adkm_s2 rows say
about the bound at the cube's radius and about low-degree regression's own count, a parity bound
that is no power of s, and Claim 2.1's domain."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from sparselearn import theory
from sparselearn.figures import study

ROOT = Path(__file__).resolve().parents[1]
adkm_s2 = study("adkm_s2", near=ROOT / "paper_figs" / "x.py")


def _slope(x, y):
    return np.polyfit(np.log(x), np.log(y), 1)[0]


def test_rows_along_n_state_the_bound_at_the_cubes_radius():
    """Thm 17 with R = √n and B = 0 is ∝ n·n·log(k√n/ε): along n it grows like n^2.1, which the
    k·s·n headline (fixed WR + B) leaves out; the theorem column says so with that slope."""
    series = "junta k=2, vs n (s=4)"
    _, _, values = adkm_s2._grown("mlp", series)
    n = np.asarray(values, float)
    k, s = 2, 4
    full = [(math.sqrt(v)) ** 2 * k * s * v * max(math.log(k * math.sqrt(v) / adkm_s2.EPS), 1.0)
            + math.log(1 / adkm_s2.DELTA) for v in n]
    alpha, theorem = adkm_s2.arm_theory("mlp", series)
    assert alpha == pytest.approx(1.0, abs=0.01)
    stated = float(re.search(r"R = √n .* slope (\d\.\d\d)\)", theorem).group(1))
    assert stated == pytest.approx(_slope(n, np.array(full)), abs=0.006) and stated > 2
    # a row along s keeps the headline alone
    assert "R = √n" not in adkm_s2.arm_theory("mlp", "junta k=1, vs s (n=12)")[1]


@pytest.mark.parametrize("series", ["junta k=1, vs s (n=12)", "junta k=2, vs n (s=4)"])
def test_low_degree_rows_name_their_own_feature_count(series):
    """The low-degree arm's m* tracks N_d(n) = Σ_{j ≤ d} C(n, j), d = log₂(s/k): its slope is in
    the theorem column whatever the verdict."""
    grown, fixed, values = adkm_s2._grown("lowdegree", series)
    k = int(series.split("k=")[1][0])
    x = np.asarray(values, float)
    n, s = (x, np.full_like(x, fixed["s"])) if grown == "n" else (np.full_like(x, fixed["n"]), x)
    count = [sum(math.comb(int(a), j) for j in range(int(math.log2(b // k)) + 1)) for a, b in zip(n, s)]
    theorem = adkm_s2.arm_theory("lowdegree", series)[1]
    stated = float(re.search(r"N_d\(n\).*: slope (\d\.\d\d)", theorem).group(1))
    assert stated == pytest.approx(_slope(x, count), abs=0.006)
    assert "N_d(n)" not in adkm_s2.arm_theory("mlp", series)[1]


def test_a_parity_bound_along_s_is_named_as_no_power_of_s():
    """n^(s−2) has local log-log slope s·ln n/… growing with s: the row says its fit depends on
    the range, with the first and last local slopes."""
    alpha, theorem = adkm_s2.arm_theory("mlp", "dense parity, vs s (n=12)")
    _, fixed, values = adkm_s2._grown("mlp", "dense parity, vs s (n=12)")
    s = np.array([v for v in values if v <= fixed["n"] + 1], float)
    y = 12.0 ** (s - 2)
    local = np.diff(np.log(y)) / np.diff(np.log(s))
    assert alpha == pytest.approx(_slope(s, y), abs=1e-6)
    assert f"local slopes {local[0]:.2f} → {local[-1]:.2f}" in theorem and "not a power of s" in theorem


@pytest.mark.parametrize("rho,d,message", [(0.0, 2, "rho must lie in"), (-0.5, 3, "rho must lie in"),
                                           (1.0, 2, "rho must lie in"), (1.5, 2, "rho must lie in"),
                                           (0.5, 0, "d must be at least 1"), (0.5, 0.5, "d must be at least 1")])
def test_claim_2_1_refuses_a_correlation_or_degree_outside_its_domain(rho, d, message):
    """At ρ = −0.5, d = 3 the formula gives 0.833 for χ_T with |T| = 4, whose tail above 3 is 1:
    not a bound; d = 0 divides by zero."""
    with pytest.raises(ValueError, match=message):
        theory.tail_bound_claim21(0.1, rho, d)
    assert theory.tail_bound_claim21(0.1, 0.5, 1) == pytest.approx(0.4)
