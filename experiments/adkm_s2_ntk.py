"""Scaling study: m* of NTK ridge regression on sparse juntas vs the dense parity net (ADKM-S2).

The infinite-width NTK of a 2-layer ReLU net with bias 1 (`kernel`, kernel ntk, ridge 10⁻⁶), an
exact solve on the m training rows; budget m ≤ 4096 (ten vmapped 4096×4096 solves). Teachers,
series, m*, seeds and theory exponents are those of experiments/adkm_s2.py (the low-degree arm),
which holds the shared code; the dense rows compare with the N_p(n) characters of degree ≤ p.

Run:   python experiments/adkm_s2_ntk.py [--smoke]
"""

from __future__ import annotations

from sparselearn import figures

base = figures.study("adkm_s2", near=__file__)

ARM = "ntk"
TARGET, LEARNER = base.TARGET, "kernel"
X, Y, BY = base.X, base.Y, base.BY
KEPT_TABLE = base.DATA / f"adkm-s2-{ARM}.parquet"

experiments, measure, theory_exponent, reason = base.arm_study(ARM)

if __name__ == "__main__":
    figures.study_main(__file__)
