"""Scaling study: sample complexity m* of the layerwise three-layer learner on hierarchical
polynomials h = g∘p vs the input dimension d, against the Õ(d^k) of Wang–Nichani–Lee.

Target: x ~ N(0, I_d), p(x) = d^{−1/2} Σ_{i≤d} λ_i h_2(x_i) over all r = d coordinates (as in
paper_figs/fig_wnl_1.py; h_2 is even, so the signs λ_i drop out and p = (‖x‖² − d)/√(2d), a
standardised χ²_d), g(z) = z + z², labels centred and scaled to unit variance. The degree-≤2 part
of g∘p is a multiple of p (the diagonal of p² projects onto 1 + (2√2/√d)·p), so stage 1's target
is the feature itself and nothing else leaks into it (tests/test_wnl_samples.py checks this).
r = d changes the target with d, so there is one experiment (and one search) per d.

Learner: `layerwise`, Hermite features of degree k = 2, width 1.6·C(d + 2, 2) rounded up to a
multiple of 64 (128 at d = 8 … 1984 at d = 48: 1.6–2.8× the C(d + 2, 2) polynomials of degree
≤ 2 it must span), 100 stage-1 steps (converged: at d = 24, m = 8192 the test MSE is the same to
four digits at 100 and 1500 steps (width 1024); at d = 48, m = 32768 it is 0.126 at 100 and
0.127 at 250).

m* = the smallest m with test MSE ≤ EPS = 0.1 (4096 test points) on ≥ 2/3 of 10 seeds (DELTA =
1/3: a point where all 10 succeed has a Clopper–Pearson interval above 2/3, lower end 0.69, so
its bracket gets an upper end), by `sl.sample_complexity`: doubling from the power of two at or
below 3·C(d + 2, 2)/ε, then bisection on log m to a factor 1.25; budget 98304.
EPS from a measurement: the test MSE follows c·C(d + 2, 2)/m with c ≈ 3–6 and no floor in sight
(0.008 at d = 8, m = 32768 and 0.007–0.009 at d = 24, m = 131072, 2 seeds each), so the learner's
floor lies more than 10× below ε and m* measures stage 1's sample complexity.
Theory: stage 1 needs Õ(d^k) samples (exponent k = 2 in d); kernels Θ̃(d^{kq}).

Run:   python experiments/wnl_samples.py            full: k = 2, d ∈ {8, 12, 16, 24, 32, 40, 48}, 10 seeds
       python experiments/wnl_samples.py --smoke    seconds
       (--results DIR for another results root)
Used by `sparselearn figs exponents`, which reads the kept table
paper_figs/data/wnl-samples-m_star.parquet (delete it to search again).

Measured at full size (40 min of wall time, 34 min of CPU, from an empty results directory,
pinned to one core of a 2-core AMD EPYC, jax 0.10.2, the other core busy; the same m* as an
earlier run on a 2-core Intel Xeon):

    d                    8     12     16     24     32     40     48
    m*                2896   4871   6889  13777  19484  27554  38968
    largest failing m 2435   4096   5793  11585  16384  23170  32768
    m*/C(d + 2, 2)    64.4   53.5   45.0   42.4   34.7   32.0   31.8

Fitted exponent 1.45 [1.16, 2.06] over d ∈ [8, 48] (95% interval: the least-squares t-interval
over the points, widened by the slopes the m* brackets allow, ci_low the largest tried m whose
Clopper–Pearson interval lies below 1 − δ), upper half (d ≥ 24) 1.49 [0.56, 2.94]; local slopes
1.25, 1.51, 1.51, 1.35, 1.70. The interval covers k = 2 (it left 2 out, [1.29, 1.79], with the
earlier brackets that could end at m* itself), but the point estimate sits at 1.45, and the
measurement below says why the slope is low at these d.

Why, measured: m* ≈ c(d)·C(d + 2, 2)/ε. C(d + 2, 2) = (d + 1)(d + 2)/2, the polynomials stage 1
fits among, grows with slope 1.85 over d ∈ [8, 48] (1.91 over [24, 48]), not 2, and the constant
falls: m*/C(d + 2, 2) ∝ d^−0.40 [−0.47, −0.33] (t-interval over the points). At
m = 50·C(d + 2, 2) (4, 4, 2, 4, 2 seeds):

    d                                       8     16     24     32     48
    test MSE · m/C(d + 2, 2)             5.77   4.86   3.86   3.45   3.42
    E[h′(p)² δ²] · m/C(d + 2, 2)         5.82   4.48   3.66   3.25   3.15
    Var δ · m/C(d + 2, 2)                2.56   2.18   1.82   1.69   1.68
    the same, homoscedastic least sq.    0.63   0.77   0.87   0.94   1.05
    E[h′²δ²] / (E[h′²]·E[δ²])            2.95   2.13   1.87   1.68   1.51

δ is stage 1's feature error in units of p (the learned feature minus its best affine fit by p).
The test MSE is the first-order term E[h′(p)²δ²]; stage 1's error is several times the
homoscedastic least-squares value σ²_res·C(d + 2, 2)/(a²m) (σ²_res and a² the parts of Var h
outside and inside degree ≤ 2; the residual, the degree-4 part of p², is large where ‖x‖ is), and
it sits where g′ is large; both excesses are 1/d effects of p being a skewed, heavy-tailed χ²_d
(skewness √(8/d), excess kurtosis 12/d) and fade with d. So c(d) falls
from 5.8 to 3.4 and levels off from d ≈ 32 on (3.45 → 3.42): c(d)·C(d + 2, 2) has slope 1.55 over
[8, 48] but 1.90 over [32, 48]. The d² of the theorem is the large-d limit; at the resolution
of the search (each m* to a factor 1.19–1.25), the slope over [32, 48] alone is ±0.7, and
d ≥ 64 (width ≥ 3456, m* ≈ 70 000) is beyond one core in an hour.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

import sparselearn as sl
from sparselearn import figures, theory

TARGET, LEARNER = "hierarchical", "layerwise"
X, Y, BY = "n", "m_star", "k"

#: the full-size table (kept by `sparselearn figs exponents`; delete it to search again)
KEPT_TABLE = Path(__file__).resolve().parents[1] / "paper_figs" / "data" / "wnl-samples-m_star.parquet"

EPS = 0.1                        # test MSE ≤ 0.1 (a tenth of the label variance)
DELTA = 1 / 3                    # on ≥ 2/3 of the seeds; with 10 seeds a point where all succeed has a
                                 # Clopper–Pearson interval above 2/3 (lower end 0.69)
RTOL = 0.25                      # bisection on log m to a factor 1.25
G_COEFFS = [0, 1, 1]             # g(z) = z + z²

FULL = {"k": 2, "d": [8, 12, 16, 24, 32, 40, 48], "test_m": 4096, "seeds": 10, "steps": 100,
        "max_m": 98304, "rounds": 40, "eps": EPS, "start": None}
SMOKE = {"k": 2, "d": [4, 6], "test_m": 256, "seeds": 2, "steps": 100, "max_m": 1024, "rounds": 1,
         "eps": 1.0, "start": 256}


def quadratics(d: int, k: int = 2) -> int:
    """C(d + k, k): the polynomials of degree ≤ k in d variables, the span stage 1 fits in."""
    return math.comb(d + k, k)


def width(d: int, k: int = 2) -> int:
    """Inner width at dimension d: 1.6·C(d + k, k) rounded up to a multiple of 64 (≥ 1.6× the
    span at every d, so the ratio width/span, and with it the conditioning of stage 1, stays
    about the same along d)."""
    return 64 * math.ceil(1.6 * quadratics(d, k) / 64)


def start(d: int, size: dict) -> int:
    """The first m tried: the power of two at or below 3·C(d + k, k)/ε (the test MSE is about
    c·C(d + k, k)/m with c ≈ 3–6, see the module docstring). It changes the values tried, not
    m*."""
    if size["start"] is not None:
        return size["start"]
    return 1 << int(math.floor(math.log2(3 * quadratics(d, size["k"]) / size["eps"])))


def experiments(smoke: bool) -> list[sl.config.Experiment]:
    """One config per d (r = d, so the target changes with d and there is no grid axis)."""
    size = SMOKE if smoke else FULL
    k = size["k"]
    return [figures.config({
        "experiment": f"wnl_samples{'_smoke' if smoke else ''}_k{k}_d{d}",
        "target": {"name": "hierarchical", "n": d, "k": k, "r": d, "directions": "coordinate",
                   "g_coeffs": G_COEFFS},
        "learner": {"name": "layerwise", "width": width(d, k), "degree": k, "steps": size["steps"]},
        "train": {"loss": "square", "eps": size["eps"]},
        "data": {"m": start(d, size), "test_m": size["test_m"]},
        "sweep": {"seeds": size["seeds"]}}) for d in size["d"]]


def measure(smoke: bool = False, store: str = "results") -> pd.DataFrame:
    """One row per d: n (= d), k, width, quadratics (C(d + k, k)), m_star (NaN when no
    m ≤ max_m reached EPS, or when the smallest m the search may try did: an upper bound only), ci_low, ci_high (Clopper–Pearson bracket), censored, below (the
    largest failing m under m_star), budget (the largest m tried), tried, seeds."""
    size = SMOKE if smoke else FULL
    rows = []
    for exp in experiments(smoke):
        d = exp.target.n
        res = sl.sample_complexity(exp, eps=size["eps"], delta=DELTA, out=str(store), start=start(d, size),
                                   max_value=size["max_m"], rtol=RTOL, progress=False, max_rounds=size["rounds"])
        est, table = res.estimates().iloc[0], res.table().iloc[0]
        rows.append({"n": d, "k": exp.target.k, "width": exp.learner.width, "quadratics": quadratics(d, exp.target.k),
                     "m_star": float("nan") if est["floored"] else est["m_star"], "ci_low": est["ci_low"], "ci_high": est["ci_high"],
                     "censored": bool(est["censored"]),
                     "below": float("nan") if pd.isna(table["below"]) else float(table["below"]),
                     "budget": int(max(table["values"])), "tried": int(table["tried"]),
                     "seeds": int(table["seeds"])})
    return pd.DataFrame(rows)


def theory_exponent(k) -> tuple[float, str]:
    """The exponent of d in WNL's Õ(d^k) for the three-layer learner, read off
    `theory.hierarchical_samples_three_layer` by a log-log fit."""
    d = np.array([8.0, 48.0])
    _, alpha = theory.fit_power_law(d, theory.hierarchical_samples_three_layer(d, k))
    return alpha, "WNL: Õ(d^k) (kernels: d^(kq))"


def reason(k) -> str | None:
    """Why the slope falls short of d^k at these d (measured; the tables are in the module docstring)."""
    return ("m* ≈ c(d)·C(d+2, 2)/ε: the C(d+2, 2) quadratics stage 1 fits grow with slope 1.85 over "
            "d ∈ [8, 48], and c(d) = test MSE·m/C(d+2, 2) falls from 5.8 (d = 8) to 3.4 (d = 48), "
            "levelling off from d ≈ 32: stage 1's error is heteroscedastic and sits where g′ is large "
            "(at d = 8 it is 4.1× the homoscedastic least-squares error and 3.0× concentrated there, "
            "at d = 48 1.6× and 1.5×), 1/d effects of p = (‖x‖² − d)/√(2d) being a skewed χ²_d; "
            "c(d)·C(d+2, 2) has slope 1.55 over [8, 48] and "
            "1.90 over [32, 48], so d² is the large-d limit")


if __name__ == "__main__":
    figures.study_main(__file__)
