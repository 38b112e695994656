"""Input distributions, and the tools that walk their support.

Every target draws its x through `draw`. Four distributions:

- ``hypercube``: uniform on {±1}^n;
- ``gaussian``: standard normal N(0, I_n);
- ``biased``: independent coordinates, +1 with probability p and −1 otherwise
  (the p-biased product measure; same support as the hypercube);
- ``dictionary``: dictionary-sparse x = D z, the structure sparse autoencoders find in network
  activations. D = `dictionary(n, atoms)` is a fixed n × N matrix of unit-norm atoms (a function
  of n and N alone, like the hypercube's support), and z has exactly `nonzeros` non-zero entries
  on atoms drawn uniformly without replacement, with N(0, n / nonzeros) values, so
  E‖x‖² = n as under N(0, I_n). Moments: E x = 0, E x xᵀ = (n / N)·D Dᵀ.

The hypercube is enumerated in one fixed order, shared with `sparselearn.analysis`:
row i of `hypercube_points(n, 0, 2**n)` has x_j = (−1)^{bit j of i}, so the Walsh
character χ_T(x_i) = (−1)^{popcount(i & T)} and index T encodes the set T as a bit mask.

`certify_max` turns any per-input count (for example the number of active hidden units)
into a `Certificate`: the exact maximum over the whole hypercube when n is small enough
to enumerate, otherwise the maximum over a random sample, which is only a lower bound.

Example:
    >>> x = draw("hypercube", jax.random.key(0), 8, 30)
    >>> x.shape, x.dtype, np.unique(x).tolist()
    ((8, 30), dtype('float32'), [-1.0, 1.0])
    >>> x = draw("dictionary", jax.random.key(0), 8, 30, atoms=120, nonzeros=3)   # 3 atoms per row
    >>> hypercube_points(3, 0, 8)[5]                          # index 5 = bits 101
    Array([-1.,  1., -1.], dtype=float32)
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparselearn.errors import require
from sparselearn.runtime import one_at_a_time, tiered_jit

INPUTS = ("hypercube", "gaussian", "biased", "dictionary")

#: ``dictionary``: non-zero codes per input when a target does not set `nonzeros`
NONZEROS = 2
#: ``dictionary``: atoms per input coordinate when a target leaves `atoms` unset (N = 4n, overcomplete)
ATOMS_PER_COORDINATE = 4
#: seeds every dictionary (with n and N), so one (n, N) names one dictionary in every process
_DICTIONARY_SEED = 0x64696374

#: Largest n whose hypercube `certify_max` enumerates exactly (2^20 ≈ 10^6 points).
MAX_ENUMERATE = 20
#: Largest n whose support `reference` enumerates (exact moments for normalisation).
MAX_REFERENCE = 14
#: Sample size `reference` uses when it cannot enumerate.
REFERENCE_SAMPLES = 1 << 14


def draw(inputs: str, key: jax.Array, m: int, n: int, p: float = 0.5, *,
         atoms: int | None = None, nonzeros: int = NONZEROS) -> jax.Array:
    """m inputs in R^n, shape (m, n) float32.

    `p` is the probability of +1 per coordinate and is used only by ``biased``; `atoms` (N,
    default 4n) and `nonzeros` only by ``dictionary`` (see `dictionary_codes`).

    Example:
        >>> bool(draw("biased", jax.random.key(0), 4, 10, p=0.9).mean() > 0.5)
        True
    """
    if inputs == "hypercube":
        return jax.random.rademacher(key, (m, n), dtype=jnp.float32)
    if inputs == "gaussian":
        return jax.random.normal(key, (m, n), dtype=jnp.float32)
    if inputs == "biased":
        return jnp.where(jax.random.bernoulli(key, p, (m, n)), 1.0, -1.0).astype(jnp.float32)
    if inputs == "dictionary":
        z = dictionary_codes(key, m, n, atoms, nonzeros)
        return jnp.matmul(z, jnp.asarray(dictionary(n, atoms).T), precision=jax.lax.Precision.HIGHEST)
    raise ValueError(f"unknown inputs {inputs!r}; expected one of {INPUTS}")


def atom_count(n: int, atoms: int | None) -> int:
    """N, the number of atoms of the ``dictionary`` law on R^n: `atoms`, or 4n when unset."""
    return ATOMS_PER_COORDINATE * n if atoms is None else atoms


def check_probability(p: float, inputs: str) -> None:
    """ConfigError (key `p`) unless 0 < p < 1, and p = ½ unless the inputs are biased (no other
    law reads it)."""
    require(0.0 < p < 1.0, "p", f"probability of +1 must be in (0, 1), got {p}")
    require(p == 0.5 or inputs == "biased", "p", f"is used only by inputs='biased' (got inputs={inputs!r})")


def check_dictionary(n: int, atoms: int | None, nonzeros: int) -> None:
    """ConfigError (key `atoms` or `nonzeros`) unless 1 ≤ nonzeros ≤ N and N ≥ 1."""
    require(atoms is None or atoms >= 1, "atoms", f"must be ≥ 1 (or null for 4n), got {atoms}")
    require(1 <= nonzeros <= atom_count(n, atoms), "nonzeros",
            f"must satisfy 1 ≤ nonzeros ≤ atoms = {atom_count(n, atoms)}, got {nonzeros}")


def dictionary_options(target) -> dict:
    """`atoms` and `nonzeros` of a target (defaults for a target without those fields), as the
    keyword arguments of `draw`, `reference` and `certify_max`."""
    return {"atoms": getattr(target, "atoms", None), "nonzeros": getattr(target, "nonzeros", NONZEROS)}


@functools.lru_cache(maxsize=64)
def dictionary(n: int, atoms: int | None = None) -> np.ndarray:
    """The dictionary D of the ``dictionary`` law: (n, N) float32, Gaussian columns scaled to
    unit norm, fixed by (n, N) (a numpy generator seeded with them; read-only).

    Example:
        >>> d = dictionary(8, 32)
        >>> d.shape, np.allclose(np.linalg.norm(d, axis=0), 1.0)
        ((8, 32), True)
    """
    count = atom_count(n, atoms)
    d = np.random.default_rng([_DICTIONARY_SEED, n, count]).standard_normal((n, count))
    d = (d / np.linalg.norm(d, axis=0, keepdims=True)).astype(np.float32)
    d.setflags(write=False)
    return d


def dictionary_codes(key: jax.Array, m: int, n: int, atoms: int | None = None,
                     nonzeros: int = NONZEROS) -> jax.Array:
    """The sparse codes z of `draw("dictionary", key, m, n, …)`, shape (m, N) float32.

    Each row has exactly `nonzeros` non-zero entries, on atoms chosen uniformly without
    replacement (the top entries of N uniform draws), with independent N(0, n / nonzeros)
    values. So P(atom i is used) = nonzeros / N and E z zᵀ = (n / N)·I.

    Example:
        >>> (dictionary_codes(jax.random.key(0), 5, 8, 32, 3) != 0).sum(1)
        Array([3, 3, 3, 3, 3], dtype=int32)
    """
    count = atom_count(n, atoms)
    pick, value = jax.random.split(key)
    _, idx = jax.lax.top_k(jax.random.uniform(pick, (m, count)), nonzeros)
    values = math.sqrt(n / nonzeros) * jax.random.normal(value, (m, nonzeros), jnp.float32)
    return jnp.zeros((m, count), jnp.float32).at[jnp.arange(m)[:, None], idx].set(values)


def draw_many(kind: str, key: jax.Array, *shapes: tuple[int, ...]) -> list[jax.Array]:
    """Independent standard normal (``kind="normal"``) or U[0, 1) (``"uniform"``) float32 arrays of
    the given shapes, cut from one draw.

    One random call instead of several: on CPU every threefry call costs ~0.3 s of compilation,
    and a teacher's `init` is compiled once per run group. Appending a shape leaves the earlier
    arrays unchanged.

    Example:
        >>> [a.shape for a in draw_many("normal", jax.random.key(0), (3, 4), (5,))]
        [(3, 4), (5,)]
    """
    sizes = [math.prod(s) for s in shapes]
    fn = {"normal": jax.random.normal, "uniform": jax.random.uniform}[kind]
    flat = fn(key, (max(sum(sizes), 1),), jnp.float32)
    bounds = np.cumsum([0] + sizes)
    return [flat[lo:hi].reshape(s) for lo, hi, s in zip(bounds[:-1], bounds[1:], shapes)]


@one_at_a_time
def orthonormal_columns(g: jax.Array) -> jax.Array:
    """Q (n, r) of the QR of g (n, r), r ≤ n: orthonormal columns spanning those of g, each signed
    so that R's diagonal is positive, which makes Q Haar-distributed for a Gaussian g (LAPACK's
    own signs would, e.g., give the first column a negative first entry on every draw). A batch
    (vmap) is a loop of unbatched LAPACK calls (`one_at_a_time`), as a group needs."""
    q, r = jnp.linalg.qr(g)
    return q * jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(q.dtype)


def is_discrete(inputs: str) -> bool:
    """True when the support is {±1}^n (hypercube and biased), so it can be enumerated."""
    return inputs in ("hypercube", "biased")


def hypercube_points(n: int, start: int, stop: int) -> jax.Array:
    """Rows start … stop−1 of the enumeration of {±1}^n, shape (stop − start, n) float32.

    Row i has x_j = 1 − 2·((i >> j) & 1): bit j set means coordinate j is −1.

    Example:
        >>> hypercube_points(2, 0, 4)
        Array([[ 1.,  1.], [-1.,  1.], [ 1., -1.], [-1., -1.]], dtype=float32)
    """
    idx = jnp.arange(start, stop, dtype=jnp.int32)
    bits = (idx[:, None] >> jnp.arange(n, dtype=jnp.int32)[None, :]) & 1
    return (1 - 2 * bits).astype(jnp.float32)


def probabilities(x: jax.Array, inputs: str, p: float = 0.5) -> jax.Array:
    """Probability of each row of x (m, n) ∈ {±1}^n under ``hypercube`` or ``biased``, shape (m,)."""
    n = x.shape[-1]
    if inputs == "hypercube":
        return jnp.full(x.shape[:-1], 0.5 ** n, jnp.float32)
    plus = jnp.sum(x > 0, axis=-1)
    return jnp.exp(plus * np.log(p) + (n - plus) * np.log1p(-p)).astype(jnp.float32)


def reference(inputs: str, key: jax.Array, n: int, p: float = 0.5, *, atoms: int | None = None,
              nonzeros: int = NONZEROS) -> tuple[jax.Array, jax.Array]:
    """Points and weights that stand for the input distribution, for computing moments.

    Returns (x (N, n) float32, w (N,) float32 summing to 1). For a discrete support with
    n ≤ MAX_REFERENCE this is the whole hypercube with its exact probabilities (so means,
    variances and medians are exact); otherwise REFERENCE_SAMPLES draws with equal weights.
    The choice depends only on (inputs, n), so the shapes are static and this is vmappable
    over `key`.

    Example:
        >>> x, w = reference("hypercube", jax.random.key(0), 4)
        >>> x.shape, w.shape, bool((w == 1 / 16).all())
        ((16, 4), (16,), True)
    """
    if is_discrete(inputs) and n <= MAX_REFERENCE:
        x = hypercube_points(n, 0, 1 << n)
        return x, probabilities(x, inputs, p)
    x = draw(inputs, key, REFERENCE_SAMPLES, n, p, atoms=atoms, nonzeros=nonzeros)
    return x, jnp.full((REFERENCE_SAMPLES,), 1.0 / REFERENCE_SAMPLES, jnp.float32)


def weighted_moments(v: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, standard deviation) of values v (N,) under weights w (N,) summing to 1."""
    mean = jnp.sum(w * v)
    return mean, jnp.sqrt(jnp.maximum(jnp.sum(w * (v - mean) ** 2), 0.0))


def unit_variance(v: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, scale) that standardise a teacher's outputs v (N,) under weights w (N,):
    (v − mean)·scale has variance 1; scale 0 for outputs constant up to rounding (a teacher
    whose units cancel or never fire), whose labels are then 0, not rounding noise times 1/std."""
    mean, std = weighted_moments(v, w)
    constant = std <= 1e-6 * jnp.maximum(jnp.max(jnp.abs(v)), 1e-30)
    return mean, jnp.where(constant, 0.0, 1.0 / jnp.maximum(std, 1e-30))


#: `balanced_threshold`: values closer than this times max|v| count as one atom
ATOM_RTOL = 1e-5


def balanced_threshold(v: jax.Array, w: jax.Array) -> jax.Array:
    """A threshold t for labels sign(v − t) that splits the mass as evenly as possible.

    t sits halfway across a gap of the sorted values: the one whose upper mass is closest to
    ½ (the higher one on a tie), so atoms of mass at the median, common on the hypercube,
    never make the labels constant unless v itself is constant (then t = max v). Only gaps
    wider than ATOM_RTOL·max|v| count: float32 rounding of a sum spreads an exact atom over
    neighbouring values a few ulps apart, and a cut between those would label equal values
    differently (and differently again in another batch shape). Shape ().
    """
    if v.shape[0] < 2:
        return v[-1]
    order = jnp.argsort(v)
    vs, ws = v[order], w[order]
    upper = jnp.cumsum(ws[::-1])[::-1][1:]                 # upper[i] = mass of vs[i + 1:]
    cut = vs[1:] - vs[:-1] > ATOM_RTOL * jnp.max(jnp.abs(vs))
    miss = jnp.where(cut, jnp.abs(upper - 0.5), jnp.inf)
    i = miss.shape[0] - 1 - jnp.argmin(miss[::-1])         # the highest of equally good cuts
    return jnp.where(jnp.any(cut), 0.5 * (vs[i] + vs[i + 1]), vs[-1])


class Certificate(NamedTuple):
    """The largest number of active units seen over a target's input support.

    max_active: the maximum count found.
    exact: True when every point of the support was enumerated (then `max_active` is the
        true maximum); False when it is the maximum over `n_inputs` random draws, which is
        only a **lower bound** on the true maximum.
    n_inputs: how many inputs were evaluated.
    k: the sparsity the target promises (at most k active units on every input).
    """

    max_active: int
    exact: bool
    n_inputs: int
    k: int

    @property
    def holds(self) -> bool:
        """max_active ≤ k (a proof when `exact`, only evidence otherwise)."""
        return self.max_active <= self.k

    @property
    def method(self) -> str:
        return "exact (all 2^n inputs)" if self.exact else "sampled lower bound"

    def __str__(self) -> str:
        return f"max active = {self.max_active} (promise k = {self.k}; {self.method}, {self.n_inputs} inputs)"


def certify_max(count: Callable, params, n: int, inputs: str, k: int, *, key: jax.Array | None = None,
                samples: int = 1 << 16, p: float = 0.5, chunk: int = 1 << 16, atoms: int | None = None,
                nonzeros: int = NONZEROS) -> Certificate:
    """Maximum of `count(params, x) -> (m,) int` over the support of `inputs`.

    For a discrete support (``hypercube``, ``biased``) with n ≤ MAX_ENUMERATE, all 2^n points
    are enumerated in chunks of `chunk` rows (exact). Otherwise `samples` draws from the
    distribution (key defaults to `jax.random.key(0)`; `p`, `atoms`, `nonzeros` as in `draw`) give
    a sampled lower bound. `count` must be hashable (a bound method of a frozen target is): each
    chunk runs one cached, jitted call. ValueError unless `samples` and `chunk` are ≥ 1.

    Example:
        >>> certify_max(lambda _, x: (x > 0).sum(1), None, 10, "hypercube", k=10)
        Certificate(max_active=10, exact=True, n_inputs=1024, k=10)
    """
    for name, value in (("samples", samples), ("chunk", chunk)):
        if isinstance(value, bool) or not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{name}: must be an integer ≥ 1, got {value!r}")
    if is_discrete(inputs) and n <= MAX_ENUMERATE:
        total = 1 << n
        step = min(chunk, total)
        best = max(int(_enumerated_max(count, params, lo, n, step)) for lo in range(0, total, step))
        return Certificate(best, True, total, k)
    key = jax.random.key(0) if key is None else key
    step = min(chunk, samples)
    best = max(int(_sampled_max(count, params, jax.random.fold_in(key, i), inputs, n, step, p, atoms, nonzeros))
               for i in range(-(-samples // step)))
    return Certificate(best, False, step * -(-samples // step), k)


@tiered_jit(static_argnums=(0, 3, 4))
def _enumerated_max(count, params, start, n: int, size: int) -> jax.Array:
    idx = start + jnp.arange(size, dtype=jnp.int32)
    x = (1 - 2 * ((idx[:, None] >> jnp.arange(n, dtype=jnp.int32)) & 1)).astype(jnp.float32)
    return jnp.max(count(params, x))


@tiered_jit(static_argnums=(0, 3, 4, 5, 6, 7, 8))
def _sampled_max(count, params, key, inputs: str, n: int, size: int, p: float, atoms, nonzeros: int) -> jax.Array:
    return jnp.max(count(params, draw(inputs, key, size, n, p, atoms=atoms, nonzeros=nonzeros)))


def add_label_noise(task: str, y: jax.Array, key: jax.Array, noise) -> jax.Array:
    """y with label noise of level `noise` (a float or a traced scalar): each ±1 label
    flipped with probability `noise` (classification), or N(0, noise²) added (regression).
    The noise is drawn from fold_in(key, 1), `key` being the key of the sample."""
    noise_key = jax.random.fold_in(key, 1)
    if task == "classification":
        return jnp.where(jax.random.bernoulli(noise_key, noise, y.shape), -y, y)
    return y + noise * jax.random.normal(noise_key, y.shape, jnp.float32)


def labelled(target, params, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """m examples of `target`: x drawn from its inputs, y = target.labels(params, x), then
    the label noise of `add_label_noise`. Shapes (m, n) and (m,), float32."""
    x = draw(target.inputs, jax.random.fold_in(key, 0), m, target.n, getattr(target, "p", 0.5),
             **dictionary_options(target))
    y = target.labels(params, x)
    if target.noise > 0:
        y = add_label_noise(target.task, y, key, target.noise)
    return x, y


class LabelNoise:
    """For targets whose `sample` is `labelled`: declares its noise model as the `add_noise`
    hook (`sparselearn.contracts.Target`), so training draws clean examples and adds noise
    of a vmapped level — a grid over `noise` is then one compiled group."""

    def add_noise(self, y: jax.Array, key: jax.Array, noise) -> jax.Array:
        """y with the label noise `sample(params, key, m)` adds at level `noise`."""
        return add_label_noise(self.task, y, key, noise)
