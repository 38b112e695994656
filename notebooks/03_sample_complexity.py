# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sample complexity: search m*, then a scaling plot with a theory overlay
#
# `sl.sample_complexity` finds, per grid point, the smallest m at which at least 1 − δ of the
# seeds reach test error ≤ ε. Here the learner is GF(2) elimination on a noiseless parity. With
# `sparsest: false` it returns the solution whose free variables are 0, which is the parity once the
# system has (nearly) full rank: about n samples whatever k is, so m* ∝ n — compared with the
# full-rank bound from `theory.py`. (The default, `sparsest: true`, enumerates the solutions and
# keeps the one with fewest variables; that finds a k-sparse parity from far fewer than n samples,
# and its m* grows much more slowly than n.) Small sizes by default; raise `NS` for a real curve.

# %%
import os
import tempfile

import numpy as np
import pandas as pd

import sparselearn as sl
from sparselearn import theory
from sparselearn.plotting import overlay, scaling_plot

RESULTS = os.environ.get("SPARSELEARN_RESULTS", tempfile.mkdtemp(prefix="sl-nb-"))
NS = [8, 16, 32]

# %%
cfg = sl.config.loads(f"""
experiment: nb_gf2
target:  {{name: sparse_parity, n: 8, k: 3}}
learner: {{name: gf2, sparsest: false}}
data:    {{m: 8, test_m: 512}}
sweep:   {{seeds: 8, grid: {{target.n: {NS}}}}}
""")
res = sl.sample_complexity(cfg, eps=0.0, delta=0.25, out=RESULTS, progress=False)
table = res.table()
table[["target.n", "estimate", "below", "ci_low", "ci_high", "success_rate"]]

# %% [markdown]
# Scaling plot: every searched (n, m) as a point would mix successes and failures, so we plot
# the estimate m* per n and fit its exponent; the dashed line is the theory rate (scaled to the
# first point).

# %%
points = res.estimates().rename(columns={"target.n": "n"})
fig, ax, fits = scaling_plot(points, "n", "m_star", xlabel="n", ylabel="m* (samples)", n_boot=200)
n = np.geomspace(min(NS), max(NS), 20)
bound = theory.gf2_samples(n.round(), np.full(n.shape, 0.25))
overlay(ax, n, bound, "GF(2) full rank, δ = 0.25", anchor=(n[0], points["m_star"].iloc[0]))
ax.legend(frameon=False, fontsize=7)
fits
