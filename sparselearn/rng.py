"""PRNG keys split by purpose, so adding a new random draw never shifts the others.

    key = fold_in(fold_in(root, seed), PURPOSE)

Example:
    >>> k = key_for(3, "init")          # the initialisation key of seed 3
"""

from __future__ import annotations

import functools

import jax

PURPOSES = {
    "teacher": 0,
    "train_data": 1,
    "test_data": 2,
    "init": 3,
    "batches": 4,
    "fit": 5,
}

ROOT_SEED = 0


def seed_key(seed) -> jax.Array:
    """The key of one seed (seed may be a traced int under vmap)."""
    return jax.random.fold_in(jax.random.key(ROOT_SEED), seed)


@functools.cache
def abstract_key() -> jax.ShapeDtypeStruct:
    """The shape and dtype of a key, for `jax.eval_shape` and `jax.make_jaxpr`: a concrete key
    would compute its seed eagerly, compiling a program of its own (about 0.1 s per process)."""
    return jax.eval_shape(lambda: jax.random.key(ROOT_SEED))


def key_for(seed, purpose: str) -> jax.Array:
    """`fold_in(fold_in(root, seed), PURPOSES[purpose])`."""
    return jax.random.fold_in(seed_key(seed), PURPOSES[purpose])
