"""Targets, fifth review: Haar-random directions (QR signs fixed), B alone refused wherever the
biased construction cuts at the median 0 of an enumerated cube, and a user g given as a list."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn.errors import ConfigError
from sparselearn.targets.hierarchical import Hierarchical
from sparselearn.targets.inputs import orthonormal_columns, reference
from sparselearn.targets.sparse_mlp import SparseMLP, quantile_bias


def test_orthonormal_columns_are_haar_random_in_sign_and_span_g():
    g = jax.random.normal(jax.random.key(0), (400, 6, 3))
    q = jax.vmap(orthonormal_columns)(g)
    np.testing.assert_allclose(jnp.einsum("bni,bnj->bij", q, q), np.broadcast_to(np.eye(3), (400, 3, 3)), atol=1e-5)
    r = jnp.einsum("bni,bnj->bij", q, g)        # g = q r with r upper triangular, positive diagonal
    np.testing.assert_allclose(jnp.einsum("bni,bij->bnj", q, r), g, atol=1e-4)
    assert bool((jnp.diagonal(r, axis1=1, axis2=2) > 0).all())
    negative = np.asarray(q[:, 0, :] < 0).mean(axis=0)     # first entry of each column: a fair sign
    assert np.all(np.abs(negative - 0.5) < 5 * np.sqrt(0.25 / 400)), negative


def test_hierarchical_random_directions_have_no_fixed_sign():
    t = Hierarchical(n=8, k=3, r=4)
    v = jax.vmap(t.init)(jax.random.split(jax.random.key(1), 400))["v"]
    assert abs(float((v[:, 0, 0] < 0).mean()) - 0.5) < 5 * np.sqrt(0.25 / 400)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_b_alone_is_refused_exactly_where_the_biased_cut_is_the_median_0(n):
    """Against the cut `quantile_bias` makes for 4 Gaussian units on the whole n-cube (what the
    construction does where it does not know the cut is 0) over a grid of actives: refused iff
    every bias is 0."""
    x, weights = reference("hypercube", jax.random.key(0), n)
    z = x @ jax.random.normal(jax.random.key(3), (n, 4))
    edges = (0.5 - 2.0 ** -(n + 1), 0.5 + 2.0 ** -(n + 1))   # the tie: the lower edge cuts at 0, the upper not
    for active in (0.05, 0.3, 0.45, 0.47, 0.49, 0.499, 0.5, 0.501, 0.51, 0.53, 0.7, *edges):
        if not 0 < active < 1:
            continue
        fields = dict(n=n, s=4, k=4, construction="biased", active=active)
        b = jax.vmap(quantile_bias, in_axes=(1, None, None))(z, weights, active)
        zero = bool(jnp.all(b == 0))
        try:
            SparseMLP(B=1.0, **fields)
            refused = False
        except ConfigError as e:
            refused = True
            assert e.key == "B" and (active == 0.5 or f"{n}-cube" in str(e))
        assert refused == zero, (n, active, np.asarray(b))


def test_a_user_g_given_as_a_list_is_kept_as_a_tuple_and_draws():
    listed = Hierarchical(n=8, k=2, r=2, g_coeffs=[0, 0, 1])
    assert listed == Hierarchical(n=8, k=2, r=2, g_coeffs=(0, 0, 1)) and isinstance(listed.g_coeffs, tuple)
    params = listed.init(jax.random.key(0))
    x, y = listed.sample(params, jax.random.key(1), 16)
    assert x.shape == (16, 8) and bool(jnp.isfinite(y).all())
