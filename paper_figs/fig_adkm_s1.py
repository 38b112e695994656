"""ADKM-S1: measured sample complexity m* of a ReLU MLP on certified sparse teachers vs s and vs k.

The measured counterpart of ADKM Theorem 17 (Õ(k·s·n/ε²) samples for the sparsely activated
class H_{n,s,k}) against the dense baseline Õ(s²/ε²). m* per teacher from
`experiments/adkm_s1.py`: the smallest m with test MSE ≤ 0.1 (10% of the label variance) on
≥ 2 of 3 seeds, by `sl.sample_complexity`. Left: s grows at k = 2; right: k grows at s = 32
(n = 12, `sparse_mlp` construction random, certified by enumerating {±1}^12). Error bars: the
Clopper–Pearson bracket of m*; solid: fitted power law (exponent and bootstrap CI in the
legend); dashed: the theory rates (constants unknown, anchored at the first point).

Full size: `sparselearn figs ADKM-S1` (runs experiments/adkm_s1.py at full size: 8 searches,
3 seeds each, m ≤ 16384, bisection to a factor 1.5): 1549 s (26 min) on a 2-core AMD EPYC
(Zen 4) CPU, jax 0.10.2, shared with other jobs (load average ≈ 15); table kept in
paper_figs/data/adkm-s1-m_star.parquet. Measured m*:
    s = 4, 8, 16, 32 at k = 2:    256, 512, 724, 2896      α = 1.10 [0.50, 2.00]
    k = 1, 2, 4, 8 at s = 32:     11585, 2896, 1448, 1024  α = −1.15 [−2.00, −0.50]
(α: fitted exponent, 95% bootstrap interval over the four teachers; theory: 1 and 1 for ADKM,
2 and 0 for the dense rate). Growing s at fixed k, m* grows about linearly, as k·s·n says, and
slower than the dense s²; the interval is wide (four points, factor-1.5 resolution) and does
not exclude 2. Growing k at fixed s, m* falls: the ADKM rate is a bound over the whole class
H_{n,s,k}, which grows with k, while this construction gets simpler as k grows (s/k units per
group on log₂(s/k) + 2 address bits: k = 1 is one 32-ball function of 7 bits, k = 8 a sum of
eight 4-ball functions of 4 bits). The upper ends of the m* brackets are missing: with 3 seeds
no Clopper–Pearson interval can certify a success rate ≥ 2/3.
Smoke: `sparselearn figs ADKM-S1 --smoke` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures, theory
from sparselearn.plotting import fit_exponent, overlay
from sparselearn.plotting.style import PALETTE, panels

ID = "ADKM-S1"
adkm_s1 = figures.study("adkm_s1", near=__file__)
experiments = adkm_s1.experiments


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"m_star": one row per teacher (the study's table)."""
    return {"m_star": adkm_s1.measure(smoke, store)}


def _rates(sweep: str, part: pd.DataFrame, grid: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(label, curve) of the ADKM and dense rates along the grown quantity."""
    n, s, k = int(part["n"].iloc[0]), part["s"].to_numpy(), part["k"].to_numpy()
    R, eps, delta = np.sqrt(n), adkm_s1.EPS, adkm_s1.DELTA
    if sweep.startswith("s"):
        sparse = theory.sample_complexity_sparse(n, grid, k[0], eps, delta, 1.0, 1.0, R)
        dense = theory.sample_complexity_dense(grid, eps, delta, 1.0, 1.0, R)
    else:
        sparse = theory.sample_complexity_sparse(n, s[0], grid, eps, delta, 1.0, 1.0, R)
        dense = theory.sample_complexity_dense(np.full_like(grid, s[0]), eps, delta, 1.0, 1.0, R)
    return [("ADKM Thm 17: k·s·n", sparse), ("dense: s²", dense)]


def draw(results):
    table = results["m_star"]
    sweeps = list(dict.fromkeys(table["sweep"]))
    fig, axes = panels(1, len(sweeps), width=4.2 * len(sweeps), height=4.2)
    for i, (ax, sweep) in enumerate(zip(np.atleast_1d(axes), sweeps)):
        part = table[table["sweep"] == sweep].sort_values("size")
        ok = part.dropna(subset=["m_star"])
        color = PALETTE[i % len(PALETTE)]
        try:
            fit = fit_exponent(ok["size"], ok["m_star"])
            label = f"measured m*: {fit.label()}"
        except ValueError:
            fit, label = None, "measured m* (too few points to fit)"
        lo = (ok["m_star"] - ok["ci_low"].fillna(ok["m_star"])).clip(lower=0)
        hi = (ok["ci_high"].fillna(ok["m_star"]) - ok["m_star"]).clip(lower=0)
        ax.errorbar(ok["size"], ok["m_star"], yerr=[lo, hi], fmt="o", color=color, ms=5, capsize=3, label=label)
        if fit is not None:
            grid = np.geomspace(ok["size"].min(), ok["size"].max(), 40)
            ax.plot(grid, fit(grid), "-", color=color, lw=1)
            for j, (name, curve) in enumerate(_rates(sweep, part, grid)):
                overlay(ax, grid, curve, name, anchor=(grid[0], ok["m_star"].iloc[0]), color=("0.2", "0.6")[j])
        censored = part[part["m_star"].isna()]
        for x in censored["size"]:
            ax.axvline(x, color="0.8", lw=0.8)
        grown = "s (hidden units)" if sweep.startswith("s") else "k (active units)"
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(grown)
        ax.set_title(f"{sweep}, n={int(part['n'].iloc[0])}" + (f" ({len(censored)} censored)" if len(censored) else ""),
                     fontsize=9)
        # below the axes: inside, it covered the data of one panel or the other
        ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    np.atleast_1d(axes)[0].set_ylabel(f"m* (test MSE ≤ {adkm_s1.EPS:g})")
    return fig


if __name__ == "__main__":
    figures.main(__file__)
