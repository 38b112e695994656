"""Scaling study: sample complexity m* of the layerwise three-layer learner on hierarchical
polynomials h = g∘p vs the input dimension d, against the Õ(d^k) of Wang–Nichani–Lee.

Target: x ~ N(0, I_d), p(x) = r^{−1/2} Σ_{i≤r} λ_i h_k(x_{a_i}) on r = 8 random coordinates a_i
(fixed r, so the signal of stage 1 does not change with d; paper_figs/fig_wnl_1.py uses r = d),
g(z) = z + z², labels centred and scaled to unit variance. Learner:
`layerwise` with Hermite random features of degree k, width 512 (spans the C(d + 2, 2) ≤ 351
quadratics for d ≤ 24). m* = the smallest m with test MSE ≤ EPS on ≥ 2 of 3 seeds, by
`sl.sample_complexity` (doubling, then bisection on log m to a factor 1.5), searched for all d
side by side. Theory: stage 1 needs Õ(d^k) samples (exponent k in d); kernels Θ̃(d^{kq}).

Run:   python experiments/wnl_samples.py            full: k = 2, d ∈ {8, 12, 16, 24}, 3 seeds
       python experiments/wnl_samples.py --smoke    seconds
Used by `sparselearn figs exponents`.

Measured at full size (1 run of 631 s on a 2-core AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with
other jobs): m* = 1024, 2048, 2048, 2896 for d = 8, 12, 16, 24; fitted exponent 0.89 [0.00, 1.71]
against k = 2. The search resolves m* only to a factor 1.5–2 and four d values span a factor 3,
so the interval is wide; over this range m* grows more slowly than d². Why is not settled here
(the coarse ε = 0.2, small d, and the part of p² that leaks into stage 1's degree-2 target,
variance 8/r = 1, are candidates); a finer search (rtol 0.1, more seeds, d up to 48) would tell.
Rerun (175 s, same machine, load average ≈ 6) for the kept table
paper_figs/data/wnl-samples-m_star.parquet: the same m* for every d.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import sparselearn as sl
from sparselearn import figures, theory

TARGET, LEARNER = "hierarchical", "layerwise"
X, Y, BY = "n", "m_star", "k"

#: the full-size table (kept by `sparselearn figs exponents`; delete it to search again)
KEPT_TABLE = Path(__file__).resolve().parents[1] / "paper_figs" / "data" / "wnl-samples-m_star.parquet"

DELTA = 0.34                     # ≥ 2 of 3 seeds
G_COEFFS = [0, 1, 1]             # g(z) = z + z²

FULL = {"k": 2, "r": 8, "d": [8, 12, 16, 24], "width": 512, "test_m": 4096, "seeds": 3, "start": 512,
        "max_m": 32768, "rounds": 40, "eps": 0.2}
SMOKE = {"k": 2, "r": 4, "d": [4, 6], "width": 64, "test_m": 256, "seeds": 2, "start": 256,
         "max_m": 1024, "rounds": 1, "eps": 1.0}



def experiments(smoke: bool) -> list[sl.config.Experiment]:
    size = SMOKE if smoke else FULL
    return [figures.config({
        "experiment": f"wnl_samples{'_smoke' if smoke else ''}_k{size['k']}",
        "target": {"name": "hierarchical", "n": max(size["d"]), "k": size["k"], "r": size["r"],
                   "directions": "coordinate", "g_coeffs": G_COEFFS},
        "learner": {"name": "layerwise", "width": size["width"], "degree": size["k"], "steps": 500},
        "train": {"loss": "square", "eps": size["eps"]},
        "data": {"m": size["start"], "test_m": size["test_m"]},
        "sweep": {"seeds": size["seeds"], "grid": {"target.n": size["d"]}}})]


def measure(smoke: bool = False, store: str = "results") -> pd.DataFrame:
    """One row per d: n (= d), k, m_star (NaN when no m ≤ max_m reached EPS), ci_low, ci_high."""
    size = SMOKE if smoke else FULL
    rows = []
    for exp in experiments(smoke):
        res = sl.sample_complexity(exp, eps=size["eps"], delta=DELTA, out=str(store), start=size["start"],
                                   max_value=size["max_m"], rtol=0.5, progress=False, max_rounds=size["rounds"])
        est = res.estimates()
        rows.append(pd.DataFrame({"n": est["target.n"].astype(int), "k": exp.target.k,
                                  **est[["m_star", "ci_low", "ci_high", "censored"]]}))
    return pd.concat(rows, ignore_index=True)


def theory_exponent(k) -> tuple[float, str]:
    """The exponent of d in WNL's Õ(d^k) for the three-layer learner, read off
    `theory.hierarchical_samples_three_layer` by a log-log fit."""
    d = np.array([8.0, 24.0])
    _, alpha = theory.fit_power_law(d, theory.hierarchical_samples_three_layer(d, k))
    return alpha, "WNL: Õ(d^k) (kernels: d^(kq))"


def reason(k) -> str | None:
    """Why the row may disagree with d^k (see the module docstring: not settled)."""
    return ("not settled: m* is resolved to a factor 1.5–2 over a factor 3 in d; candidates are the "
            "coarse ε = 0.2 and the part of p² that leaks into stage 1's target (r = 8 fixed)")


if __name__ == "__main__":
    figures.study_main(__file__)
