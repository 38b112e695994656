"""Top-k layers that compute only the units a low-rank router picks.

    scores = (x @ u) @ v + b1                  router of rank r: u (n, r), v (r, s)
    idx    = the k highest scores per example  (ties: lower unit index)
    z      = x · w1[idx] + b1[idx]             only k of the s first-layer rows
    out    = Σ_j relu(z_j) · w2[idx_j]

This is the path on which activation sparsity saves FLOPs: the first layer costs
O(m·k·n) instead of O(m·s·n), the router O(m·r·(n + s)). The router estimates the
weight part x · w1ᵀ of the pre-activations; the bias is known and added exactly. When
the router ranks the truly largest pre-activations first, `idx` is the dense top-k set
and the output equals the dense top-k MLP `topk_mlp_reference`.

`routed_layer` returns the layer's (z, idx), to stack further layers on through
`gather_matmul`; `routed_mlp` is the one-hidden-layer network built from it.

The choice of units is piecewise constant in the router, so the router's exact
gradient is zero almost everywhere; it gets none here. A learner that wants a
router must build it from other parameters (see `router_from_weights`) or train
it by another signal. The sparse and pallas paths are custom VJPs: `jax.jvp` and `jacfwd`
through them raise; the dense path takes every mode, so under "auto" forward mode works where
`prefers_sparse` is false (pass `impl="dense"` for it). `jax.hessian` (forward over the
gradient) works on the sparse path too; the pallas path raises for any second derivative.

The sparse path reads each gathered row once per example, while a dense matrix
product reuses every weight across the batch; on CPU it wins only at low density
and while one example's k rows (k·n weights) stay in cache. Outside those limits
(`prefers_sparse`) `impl="auto"` computes all s units densely and keeps the routed
ones: same output, dense speed. Where it does win, over half of its time on CPU is
`lax.top_k` of the (m, s) router scores (56%; 64% with the scores themselves), the same
top-k the dense top-k MLP pays on its pre-activations (see the breakdown in
benchmarks/results/primitives.json).

Example:
    >>> m, n, s, r, k = 8, 16, 64, 4, 4
    >>> ks = jax.random.split(jax.random.key(0), 5)
    >>> x = jax.random.normal(ks[0], (m, n))
    >>> router = (jax.random.normal(ks[1], (n, r)), jax.random.normal(ks[2], (r, s)))
    >>> w1, b1 = jax.random.normal(ks[3], (s, n)), jnp.zeros(s)
    >>> routed_mlp(x, router, w1, b1, jax.random.normal(ks[4], (s,)), k).shape
    (8,)
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from sparselearn.primitives import _checks, _rows
from sparselearn.primitives.gather import gather_matmul
from sparselearn.primitives.pallas import prefers_pallas
from sparselearn.primitives.topk import keep_mask, topk
from sparselearn.runtime import one_at_a_time

# Limits of `impl="auto"`'s sparse path, from benchmarks/results/primitives.json on 2-core
# CPUs (n = 512, batch 256, speedups over `impl="dense"`, the same network computed densely):
# the sparse path won at density 1/64 (1.32–1.82× at the last run, k ≤ 256; 1.45–2.1× over the
# dense top-k network in earlier runs); at 1/16 it lost (0.81–0.89×), and at 1/4 more (0.45–0.63×).
SPARSE_MAX_DENSITY = 1 / 32
SPARSE_MAX_ROW_ELEMENTS = 1 << 17


def prefers_sparse(k: int, s: int, n: int) -> bool:
    """Whether `impl="auto"` gathers rows: k/s ≤ SPARSE_MAX_DENSITY and k·n ≤ SPARSE_MAX_ROW_ELEMENTS."""
    return k / s <= SPARSE_MAX_DENSITY and k * n <= SPARSE_MAX_ROW_ELEMENTS


def rows_vjp(rows):
    """z = x · w1[idx] + b1[idx] as a custom_vjp function of (x, w1, b1, idx) built from
    the row helpers of `rows` (`_rows`, or `pallas.kernels` for the Pallas path)."""

    def z(x, w1, b1, idx):
        return rows.row_dots(x, w1, idx) + b1[idx]

    layer = jax.custom_vjp(z)

    def fwd(x, w1, b1, idx):   # z, not layer: forward mode over the VJP (a hessian) reaches it
        return z(x, w1, b1, idx), (x, w1, b1, idx)

    def bwd(res, gz):
        x, w1, b1, idx = res
        s = w1.shape[0]
        d_x = rows.row_combine(gz, idx, w1).astype(x.dtype)
        d_w1 = rows.row_scatter_add(s, idx, gz, x, w1.dtype)
        d_b1 = _rows.scatter_add_1d(s, idx, gz, b1.dtype)
        return d_x, d_w1, d_b1, None

    layer.defvjp(fwd, bwd)

    def apply(x, w1, b1, idx):
        return layer(*_rows.as_arrays(x, w1, b1, idx))

    return apply


_rows_sparse = rows_vjp(_rows)


@functools.cache
def _rows_pallas_vjp():
    from sparselearn.primitives.pallas import kernels  # loads jax.experimental.pallas

    return rows_vjp(kernels)


def _rows_pallas(x, w1, b1, idx):
    return _rows_pallas_vjp()(x, w1, b1, idx)


def _rows_dense(x, w1, b1, idx):
    return jnp.take_along_axis(x @ w1.T + b1, idx, axis=1)


def _masked_dense(x, w1, b1, w2, idx):
    """relu(x @ w1ᵀ + b1) kept at the units idx (m, k), zero elsewhere, times w2."""
    z = x @ w1.T + b1
    h = jnp.where(keep_mask(idx, w1.shape[0]), jax.nn.relu(z), jnp.zeros((), z.dtype))
    return h @ w2


def _check_route(x, router, b1) -> None:
    """The arguments of `route`: x (m, n), router (u (n, r), v (r, s)), b1 (s,), all floats."""
    _checks.ndim("x", x, 2, "(m, n)")
    if not (isinstance(router, (tuple, list)) and len(router) == 2):
        raise ValueError("router must be a pair (u, v) with u (n, r) and v (r, s)")
    u, v = router
    _checks.ndim("router u", u, 2, "(n, r)")
    _checks.ndim("router v", v, 2, "(r, s)")
    _checks.ndim("b1", b1, 1, "(s,)")
    for name, a in [("x", x), ("router u", u), ("router v", v), ("b1", b1)]:
        _checks.floating(name, a)
    _checks.same("input sizes n", ("x.shape[1]", x.shape[1]), ("router u.shape[0]", u.shape[0]))
    _checks.same("router ranks r", ("u.shape[1]", u.shape[1]), ("v.shape[0]", v.shape[0]))
    _checks.same("hidden sizes s", ("router v.shape[1]", v.shape[1]), ("b1.shape[0]", b1.shape[0]))


def _check(x, router, w1, b1, w2=None) -> tuple[int, int]:
    _check_route(x, router, b1)
    u, v = router
    _checks.ndim("w1", w1, 2, "(s, n): one row per hidden unit")
    arrays = [("w1", w1)]
    if w2 is not None:
        _checks.ndim("w2", w2, (1, 2), "(s,) or (s, out)")
        arrays.append(("w2", w2))
    for name, a in arrays:
        _checks.floating(name, a)
    n, s = x.shape[1], w1.shape[0]
    _checks.same("input sizes n", ("x.shape[1]", n), ("router u.shape[0]", u.shape[0]), ("w1.shape[1]", w1.shape[1]))
    sizes = [("w1.shape[0]", s), ("router v.shape[1]", v.shape[1]), ("b1.shape[0]", b1.shape[0])]
    if w2 is not None:
        sizes.append(("w2.shape[0]", w2.shape[0]))
    _checks.same("hidden sizes s", *sizes)
    return n, s


def route(x: jax.Array, router, b1: jax.Array, k: int) -> jax.Array:
    """(m, k) int32: the k units with the highest router scores (x @ u) @ v + b1 per example."""
    _check_route(x, router, b1)
    u, v = jax.lax.stop_gradient(tuple(router))
    k = _checks.k_in_range(k, v.shape[-1])
    scores = (jax.lax.stop_gradient(x) @ u) @ v + jax.lax.stop_gradient(b1)
    return jax.lax.top_k(scores, k)[1]


def routed_layer(x: jax.Array, router, w1: jax.Array, b1: jax.Array, k: int,
                 *, impl: Literal["auto", "sparse", "dense", "pallas"] = "auto") -> tuple[jax.Array, jax.Array]:
    """Pre-activations of the k router-selected units of a layer, and which units they are.

    Args:
        x: (m, n) inputs.
        router: (u, v), u (n, r) and v (r, s); scores are (x @ u) @ v + b1. No gradient.
        w1: (s, n) weights, one row per unit.
        b1: (s,) biases.
        k: static int, 1 ≤ k ≤ s: units computed per example.
        impl: "sparse" (gather the k rows; custom VJP that scatters back into them),
            "dense" (all s units, then keep the routed ones), "pallas" (the sparse path
            as Triton kernels, `primitives.pallas`; off GPUs in interpret mode, slowly)
            or "auto": sparse where `prefers_sparse(k, s, n)` and the program is
            compiled for a CPU (the rule was measured on CPUs), pallas where
            `pallas.prefers_pallas("routed", k, s)` and it is compiled for a CUDA GPU
            (never so far: slower than dense on the GPU measured), dense otherwise. All return the same
            values and gradients while w1 is finite (the dense path also computes the
            units not routed: an inf or NaN in one of their rows reaches x's gradient).
            A NaN in an example's x reaches every row of w1's gradient on the dense path,
            only its k rows on the others.

    Returns:
        z (m, k) = x[i] · w1[idx[i, j]] + b1[idx[i, j]], and idx (m, k) int32, the
        units in decreasing router score. Gradients reach x, w1 and b1 through z.
        Feed (relu(z), idx) to `gather_matmul` for the next layer.
    """
    n, s = _check(x, router, w1, b1)
    k = _checks.k_in_range(k, s)
    x, w1, b1 = _rows.as_arrays(x, w1, b1)
    idx = route(x, router, b1, k)
    z = _rows.by_impl(impl, prefers_sparse(k, s, n), _rows_sparse, _rows_dense, x, w1, b1, idx,
                      pallas=_rows_pallas, pallas_wins=prefers_pallas("routed", k, s))
    return z, idx


def routed_mlp(x: jax.Array, router, w1: jax.Array, b1: jax.Array, w2: jax.Array, k: int,
               *, impl: Literal["auto", "sparse", "dense", "pallas"] = "auto") -> jax.Array:
    """Top-k MLP output computing only the k router-selected hidden units per example:
    `gather_matmul(relu(z), idx, w2)` of `routed_layer`'s (z, idx).

    Args:
        x, router, w1, b1, k, impl: as in `routed_layer`; impl also picks the second
            layer's path ("sparse" and "pallas" gather the k rows of w2, "dense"
            multiplies all s: an inf or NaN in a row of w2 that no example routes makes
            the dense output NaN, so the paths agree while w1 and w2 are finite).
        w2: (s, out) second-layer weights, or (s,) for a scalar output.

    Returns:
        (m, out), or (m,) when w2 is (s,).
    """
    n, s = _check(x, router, w1, b1, w2)
    k = _checks.k_in_range(k, s)
    x, w1, b1, w2 = _rows.as_arrays(x, w1, b1, w2)
    # the dense path takes all units at once and a mask: no (m, k) gathers of z in and out
    return _rows.by_impl(impl, prefers_sparse(k, s, n), _sparse_mlp, _masked_dense, x, w1, b1, w2,
                         route(x, router, b1, k), pallas=_pallas_mlp, pallas_wins=prefers_pallas("routed", k, s))


def _sparse_mlp(x, w1, b1, w2, idx):
    z = _rows_sparse(x, w1, b1, idx)
    return gather_matmul(jax.nn.relu(z), idx, w2, impl="sparse")


def _pallas_mlp(x, w1, b1, w2, idx):
    z = _rows_pallas(x, w1, b1, idx)
    return gather_matmul(jax.nn.relu(z), idx, w2, impl="pallas")


def routed_layer_reference(x, router, w1, b1, k):
    """`routed_layer` by the dense layer x @ w1ᵀ + b1 and plain autodiff; arguments and
    result as there."""
    _check(x, router, w1, b1)
    idx = route(x, router, b1, _checks.k_in_range(k, w1.shape[0]))
    return _rows_dense(x, w1, b1, idx), idx


def routed_mlp_reference(x, router, w1, b1, w2, k):
    """`routed_mlp` by dense matrices and plain autodiff; arguments and result as there."""
    _check(x, router, w1, b1, w2)
    k = _checks.k_in_range(k, w1.shape[0])
    return _masked_dense(x, w1, b1, w2, route(x, router, b1, k))


def topk_mlp_reference(x, w1, b1, w2, k):
    """The dense top-k MLP relu(topk(x @ w1ᵀ + b1, k)) @ w2 (w1 (s, n), b1 (s,), w2 (s, …)),
    which `routed_mlp` equals when its router ranks the truly top-k units first."""
    k = _checks.k_in_range(k, w1.shape[0])
    return jax.nn.relu(topk(x @ w1.T + b1, k)) @ w2


@functools.lru_cache(maxsize=32)
def _gaussian_sketch(r: int, s: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((r, s)).astype(np.float32)


@one_at_a_time
def _orthonormal_rows(y: jax.Array) -> jax.Array:
    """Rows (r, d) of an orthonormal basis of the row space of y (r, d), r ≤ d, by
    Householder QR: orthonormal to working precision however ill-conditioned y is. One
    matrix per LAPACK call under vmap (`one_at_a_time`)."""
    return jnp.linalg.qr(y.T)[0].T


def router_from_weights(w1: jax.Array, rank: int, *, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """A rank-r router that approximates the first layer itself: scores ≈ x @ w1ᵀ + b1.

    With r ≥ n the router is exact: (u, v) = (I_n, w1ᵀ), scores = x @ w1ᵀ + b1, so the
    routed units are the dense top-k. With r < n, a randomized range finder with one
    power iteration (Halko, Martinsson & Tropp), re-orthonormalised by QR after every
    product, finds an orthonormal basis Qᵀ (r, n) of w1's dominant row space; the router
    is (u, v) = (Q, (w1 Q)ᵀ), so x @ u @ v = x Q Qᵀ w1ᵀ. It ranks the true top-k first
    whenever w1 is close to rank r. Costs O(s·n·r); no gradient flows through it.

    Args:
        w1: (s, n) first-layer rows.
        rank: r ≥ 1, capped at n; with s < r < n the router has rank s (w1's row space
            has no more dimensions), still exact.
        seed: of the (r, s) Gaussian sketch, a constant of the compiled program (so the
            router is a deterministic function of w1 and costs no random draws per step).

    Returns:
        u (n, r), v (r, s) in the dtype of w1, r the capped rank.
    """
    _checks.ndim("w1", w1, 2, "(s, n)")
    _checks.floating("w1", w1)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise ValueError(f"rank must be an integer ≥ 1, got {rank!r}")
    s, n = w1.shape
    w1 = jax.lax.stop_gradient(jnp.asarray(w1))
    if rank >= n:
        return jnp.eye(n, dtype=w1.dtype), w1.T
    w = w1.astype(jnp.float32)
    r = int(rank)
    # Every product below contracts over the minor axis of its right operand or keeps
    # w in its stored (s, n) layout: XLA on CPU is several times slower otherwise.
    # Without the QR between products the power iteration would cube the singular
    # values, and float32 would lose the weaker directions of an ill-conditioned w1.
    q = _orthonormal_rows(jnp.asarray(_gaussian_sketch(r, s, seed)) @ w)   # (r, n): range of w1ᵀ Ω
    z = _orthonormal_rows(jnp.einsum("rn,sn->rs", q, w))                  # (r, s): range of w1 Q
    q = _orthonormal_rows(jnp.einsum("rs,sn->rn", z, w))                  # (r, n): range of w1ᵀ w1 Q
    return q.T.astype(w1.dtype), jnp.einsum("rn,sn->rs", q, w).astype(w1.dtype)
