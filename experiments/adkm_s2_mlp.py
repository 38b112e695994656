"""Scaling study: m* of a trained 2-layer ReLU net on sparse juntas vs the dense parity net (ADKM-S2).

A width-256 ReLU net (`mlp`, standard init) trained by Adam (lr 3·10⁻³, batch 64, square loss) on
a fixed sample of m, at most 2000 steps, stopped at the first evaluation (every 250 steps) with
test MSE ≤ ε (`train.stop_at_eps`); budget m ≤ 8192, floor m ≥ 64 (the batch). Teachers, series,
m*, seeds and theory exponents are those of experiments/adkm_s2.py (the low-degree arm), which
holds the shared code; the dense rows compare with SGD's n^(p−1) parity samples
(`theory.parity_sgd_samples`).

Run:   python experiments/adkm_s2_mlp.py [--smoke]
"""

from __future__ import annotations

from sparselearn import figures

base = figures.study("adkm_s2", near=__file__)

ARM = "mlp"
TARGET, LEARNER = base.TARGET, "mlp"
X, Y, BY = base.X, base.Y, base.BY
KEPT_TABLE = base.DATA / f"adkm-s2-{ARM}.parquet"

experiments, measure, theory_exponent, reason = base.arm_study(ARM)

if __name__ == "__main__":
    figures.study_main(__file__)
