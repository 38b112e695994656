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
# # Sparse teachers: build, certify, Fourier-analyse
#
# A teacher in H_{n,s,k} (Awasthi et al. 2024) is a ReLU network with s hidden units of which at most k
# fire on any input. We build one, certify the promise by enumerating the cube, and look at its
# Walsh spectrum: how much weight sits above degree d, which is what low-degree regression pays for.
# Next to it, a dense network of the same s with no promise (k = s): `construction="parity"`, the
# hard dense member, a parity on p = min(n, s − 1) coordinates written as s ReLU ramps.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

from sparselearn import analysis, targets, theory

N, S = 10, 8

# %%
sparse = targets.get("sparse_mlp", n=N, s=S, k=2, construction="random")
dense = targets.get("sparse_mlp", n=N, s=S, k=S, construction="parity")
sp, dp = sparse.init(jax.random.key(0)), dense.init(jax.random.key(0))
print("sparse:", sparse.certify(sp), sparse.norms(sp))
print("dense: ", dense.certify(dp))

# %% [markdown]
# The certificate is exact for n ≤ 20: every one of the 2ⁿ inputs activates at most k units (the
# parity net uses all s = 8 on some inputs). Next, the Fourier weight per degree, Σ_{|T|=d} ĥ(T)²,
# from the exact Walsh–Hadamard transform (both teachers are scaled to unit variance).

# %%
fig, ax = plt.subplots(figsize=(4.5, 3.2))
for name, t, p in (("sparse, k = 2", sparse, sp), (f"dense parity net, k = s = {S}", dense, dp)):
    coeffs = analysis.walsh_hadamard(analysis.truth_table(lambda x, t=t, p=p: t.labels(p, x), N))
    weights = analysis.degree_weights(coeffs)
    ax.semilogy(range(len(weights)), np.maximum(weights, 1e-12), "o-", label=name)
    print(f"{name}: highest degree {np.flatnonzero(weights > 1e-9).max()}, "
          f"weight above degree 3 {analysis.tail_mass(coeffs, 3):.3f}")
ax.set_xlabel("degree d")
ax.set_ylabel("Fourier weight at degree d")
ax.legend(frameon=False, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1))  # above the axes, clear of both lines

# %% [markdown]
# The sparse teacher has no weight above degree 5 (each unit fires on a Hamming ball in a few
# address coordinates and is affine there) and 6.6% above degree 3, so low-degree regression of
# degree 5 can fit it exactly; the parity net of the same s has all its weight at degree p = 7.
# (Zero weights are drawn at 10⁻¹².)
#
# Sensitivities of the sparse teacher, exactly, next to the ADKM Lemma 9 bound (hidden constant 1):

# %%
values = analysis.truth_table(lambda x: sparse.labels(sp, x), N)
norms = sparse.norms(sp)
print(f"AS = {analysis.average_sensitivity_exact(values):.3f}; Lemma 9 bound "
      f"{float(theory.as_bound_lemma9(N, S, 2, norms['W'], norms['B'])):.1f}")
print(f"NS_0.9 = {analysis.noise_sensitivity_exact(values, 0.9):.4f}; tail above d=3 "
      f"{analysis.tail_mass(analysis.walsh_hadamard(values), 3):.4f}")
