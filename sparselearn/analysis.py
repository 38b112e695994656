"""Fourier analysis on the hypercube: the quantities of the low-degree learning proof.

Every real function on {±1}^n has the Walsh expansion f(x) = Σ_T f̂(T) χ_T(x), χ_T(x) = Π_{i∈T} x_i,
f̂(T) = E_x[f(x) χ_T(x)] under the uniform measure. Sets T are encoded as bit masks and the
inputs are enumerated in the order of `sparselearn.targets.inputs.hypercube_points`
(row i has x_j = (−1)^{bit j of i}), so χ_T(row i) = (−1)^{popcount(i & T)}.

What is here (Awasthi et al. 2024, §3, the proof of Theorem 8):

- `truth_table` (all 2^n values of a function) and `walsh_hadamard`, the fast transform,
  O(n·2^n); `spectrum` chains the two;
- `degree_weights` W^{=d} = Σ_{|T|=d} f̂(T)² and `tail_mass` Σ_{|T|>d} f̂(T)² (the squared L2
  error of the best degree-d approximation, which low-degree regression targets);
- sensitivities: sen_f(x) = ¼ Σ_i (f(x) − f(x^{⊕i}))², AS(f) = E sen_f = Σ_T |T| f̂(T)², and
  NS_ρ(f) = E ¼(f(x) − f(y))² = ½ Σ_T (1 − ρ^{|T|}) f̂(T)², y a ρ-correlated copy of x.
  `average_sensitivity` and `noise_sensitivity` are exact (enumeration) for n ≤ 20 and Monte
  Carlo beyond; the returned `Estimate` says which.

Claim 2.1 (tail ≤ 2·NS_ρ/(1 − ρ^d)) and the bounds of Lemmas 9–10 are in `sparselearn.theory`.

Example:
    >>> t = sparselearn.targets.get("sparse_parity", n=10, k=3)
    >>> tp = t.init(jax.random.key(0))
    >>> c = spectrum(lambda x: t.labels(tp, x), 10)     # (1024,), a single ±1 at the support mask
    >>> tail_mass(c, 2), average_sensitivity(lambda x: t.labels(tp, x), 10).value
    (1.0, 3.0)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparselearn.targets.inputs import MAX_ENUMERATE, hypercube_points

Fn = Callable[[jax.Array], jax.Array]


class Estimate(NamedTuple):
    """A number that is either exact or a Monte Carlo estimate.

    value: the estimate; stderr: its standard error (0 when exact); exact: True when computed
    by enumerating all 2^n inputs; samples: inputs enumerated or drawn.
    """

    value: float
    stderr: float
    exact: bool
    samples: int

    def __str__(self) -> str:
        if self.exact:
            return f"{self.value:.6g} (exact, {self.samples} inputs)"
        return f"{self.value:.6g} ± {self.stderr:.2g} (Monte Carlo, {self.samples} samples)"


# ------------------------------------------------------------------------- transforms
def truth_table(fn: Fn, n: int, *, chunk: int = 1 << 16) -> np.ndarray:
    """All 2^n values of fn on {±1}^n in enumeration order, shape (2^n,) float64.

    `fn` maps x (m, n) float32 to (m,); it is jitted and called on chunks of `chunk` rows.

    Example:
        >>> truth_table(lambda x: x[:, 0], 2)
        array([ 1., -1.,  1., -1.])
    """
    _check_n(n)
    f = jax.jit(fn)
    total = 1 << n
    step = min(chunk, total)
    parts = [np.asarray(f(hypercube_points(n, lo, min(lo + step, total))), np.float64)
             for lo in range(0, total, step)]
    if parts[0].shape != (step,):   # an (m, 1) output would be read as 2^n functions of n = 0
        raise ValueError(f"fn must map x (m, {n}) to shape (m,), got {parts[0].shape} for m = {step}")
    return np.concatenate(parts)


def walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """Walsh coefficients f̂(T) = 2^{−n} Σ_x f(x) χ_T(x) along the last axis (length 2^n), float64.

    The fast transform: n butterfly passes of (a + b, a − b), O(n·2^n). Leading axes are batch.

    Example:
        >>> walsh_hadamard(np.array([1.0, -1.0, 1.0, -1.0]))     # f = x_0
        array([0., 1., 0., 0.])
    """
    a = np.array(values, dtype=np.float64)
    size = a.shape[-1]
    if size & (size - 1):
        raise ValueError(f"length must be a power of 2, got {size}")
    batch = a.shape[:-1]
    h = 1
    while h < size:
        a = a.reshape(*batch, size // (2 * h), 2, h)
        lo, hi = a[..., 0, :], a[..., 1, :]
        a = np.stack((lo + hi, lo - hi), axis=-2)
        h *= 2
    return a.reshape(*batch, size) / size


def inverse_walsh_hadamard(coeffs: np.ndarray) -> np.ndarray:
    """Values f(x) = Σ_T f̂(T) χ_T(x) from coefficients (the inverse of `walsh_hadamard`)."""
    coeffs = np.asarray(coeffs, dtype=np.float64)
    return walsh_hadamard(coeffs) * coeffs.shape[-1]


def spectrum(fn: Fn, n: int) -> np.ndarray:
    """The exact Walsh spectrum of fn, shape (2^n,) float64 indexed by set masks (n ≤ 20)."""
    return walsh_hadamard(truth_table(fn, n))


def set_sizes(n: int) -> np.ndarray:
    """|T| for every mask T = 0 … 2^n − 1, shape (2^n,) int."""
    return np.bitwise_count(np.arange(1 << n, dtype=np.uint32)).astype(np.int64)


def set_of(mask: int) -> tuple[int, ...]:
    """The coordinates of the set encoded by `mask`, e.g. set_of(0b101) == (0, 2)."""
    return tuple(i for i in range(int(mask).bit_length()) if mask >> i & 1)


def mask_of(coords) -> int:
    """The bit mask of a set of coordinates, e.g. mask_of([0, 2]) == 5."""
    return sum(1 << int(i) for i in set(int(c) for c in coords))


def _n_of(coeffs: np.ndarray) -> int:
    """n of one function's table or spectrum, shape (2^n,)."""
    shape = np.shape(coeffs)
    if len(shape) != 1:     # a batch would be summed or averaged silently, depending on the function
        raise ValueError(f"expected one function's table or spectrum of shape (2^n,), got shape {shape}; "
                         "call once per row")
    size = shape[0]
    n = size.bit_length() - 1
    if size < 1 or size != 1 << n:
        raise ValueError(f"length must be a power of 2, got {size}")
    return n


def _check_rho(rho: float) -> None:
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [−1, 1], got {rho}")


def _check_samples(n: int, samples: int) -> None:
    if n < 1 or samples < 2:      # a standard error needs two samples
        raise ValueError(f"need n ≥ 1 and samples ≥ 2, got n = {n}, samples = {samples}")


# ------------------------------------------------------------------------- spectral weights
def degree_weights(coeffs: np.ndarray) -> np.ndarray:
    """W^{=d} = Σ_{|T|=d} f̂(T)² for d = 0 … n, shape (n + 1,). Sums to E[f²] (Parseval)."""
    n = _n_of(coeffs)
    return np.bincount(set_sizes(n), weights=np.asarray(coeffs, np.float64) ** 2, minlength=n + 1)


def tail_mass(coeffs: np.ndarray, d: int) -> float:
    """Σ_{|T|>d} f̂(T)²: the squared L2 distance from f to the degree-≤d polynomials."""
    return float(np.sum(degree_weights(coeffs)[max(d + 1, 0):]))


def top_coefficients(coeffs: np.ndarray, count: int = 10, tol: float = 1e-9) -> list[tuple[tuple[int, ...], float]]:
    """The `count` largest |f̂(T)| above `tol`, as (set, coefficient), largest first."""
    c = np.asarray(coeffs, np.float64)
    _n_of(c)
    order = np.argsort(-np.abs(c), kind="stable")[:count]
    return [(set_of(int(t)), float(c[t])) for t in order if abs(c[t]) > tol]


# ------------------------------------------------------------------------- sensitivities
def influences(values: np.ndarray) -> np.ndarray:
    """Inf_i = E_x ¼(f(x) − f(x^{⊕i}))² for each coordinate, from a truth table; shape (n,)."""
    a = np.asarray(values, np.float64)
    n = _n_of(a)
    out = np.empty(n)
    for i in range(n):
        pairs = a.reshape(-1, 2, 1 << i)
        out[i] = np.mean(0.25 * (pairs[:, 0, :] - pairs[:, 1, :]) ** 2)
    return out


def average_sensitivity_exact(values: np.ndarray) -> float:
    """AS(f) = E_x sen_f(x) = Σ_i Inf_i, from a truth table (2^n,)."""
    return float(np.sum(influences(values)))


def average_sensitivity_fourier(coeffs: np.ndarray) -> float:
    """AS(f) = Σ_T |T| f̂(T)², from the spectrum."""
    return float(np.sum(set_sizes(_n_of(coeffs)) * np.asarray(coeffs, np.float64) ** 2))


def noise_operator(values: np.ndarray, rho: float) -> np.ndarray:
    """(T_ρ f)(x) = E[f(y)] where each y_i equals x_i with probability (1 + ρ)/2, from a truth table."""
    _check_rho(rho)
    a = np.array(values, np.float64)
    n = _n_of(a)
    keep, flip = (1 + rho) / 2, (1 - rho) / 2
    for i in range(n):
        pairs = a.reshape(-1, 2, 1 << i)
        a = np.stack((keep * pairs[:, 0] + flip * pairs[:, 1], keep * pairs[:, 1] + flip * pairs[:, 0]), axis=1)
    return a.reshape(-1)


def noise_sensitivity_exact(values: np.ndarray, rho: float) -> float:
    """NS_ρ(f) = E ¼(f(x) − f(y))² = ½(E[f²] − E[f·T_ρ f]), from a truth table."""
    a = np.asarray(values, np.float64)
    return float(0.5 * (np.mean(a * a) - np.mean(a * noise_operator(a, rho))))


def noise_sensitivity_fourier(coeffs: np.ndarray, rho: float) -> float:
    """NS_ρ(f) = ½ Σ_T (1 − ρ^{|T|}) f̂(T)², from the spectrum."""
    _check_rho(rho)
    sizes = set_sizes(_n_of(coeffs))
    return float(0.5 * np.sum((1.0 - rho ** sizes) * np.asarray(coeffs, np.float64) ** 2))


def average_sensitivity_mc(fn: Fn, n: int, *, key: jax.Array, samples: int = 1 << 12) -> Estimate:
    """Monte Carlo AS(f): mean over x ~ Unif{±1}^n of sen_f(x), with its standard error.

    Costs (n + 1)·samples evaluations of fn, one coordinate flip at a time (memory of one batch).
    """
    _check_samples(n, samples)

    @jax.jit
    def sen(key):
        x = jnp.where(jax.random.uniform(key, (samples, n)) < 0.5, 1.0, -1.0).astype(jnp.float32)
        fx = fn(x)
        flips = jax.lax.map(lambda i: fn(x.at[:, i].multiply(-1.0)), jnp.arange(n))   # (n, samples)
        return 0.25 * jnp.sum((flips - fx) ** 2, axis=0)

    s = np.asarray(sen(key), np.float64)
    return Estimate(float(s.mean()), float(s.std(ddof=1) / np.sqrt(samples)), False, samples)


def noise_sensitivity_mc(fn: Fn, n: int, rho: float, *, key: jax.Array, samples: int = 1 << 16) -> Estimate:
    """Monte Carlo NS_ρ(f): mean of ¼(f(x) − f(y))² over ρ-correlated pairs (each bit of y flipped
    with probability (1 − ρ)/2), with its standard error."""
    _check_rho(rho)
    _check_samples(n, samples)

    @jax.jit
    def terms(key):
        u = jax.random.uniform(key, (2, samples, n))             # one draw: signs of x, then flips
        x = jnp.where(u[0] < 0.5, 1.0, -1.0).astype(jnp.float32)
        y = jnp.where(u[1] < (1 - rho) / 2, -x, x)
        return 0.25 * (fn(x) - fn(y)) ** 2

    s = np.asarray(terms(key), np.float64)
    return Estimate(float(s.mean()), float(s.std(ddof=1) / np.sqrt(samples)), False, samples)


def average_sensitivity(fn: Fn, n: int, *, key: jax.Array | None = None, samples: int = 1 << 12) -> Estimate:
    """AS(f) under the uniform measure: exact for n ≤ 20, else Monte Carlo (key defaults to key(0))."""
    if n <= MAX_ENUMERATE:
        return Estimate(average_sensitivity_exact(truth_table(fn, n)), 0.0, True, 1 << n)
    return average_sensitivity_mc(fn, n, key=jax.random.key(0) if key is None else key, samples=samples)


def noise_sensitivity(fn: Fn, n: int, rho: float, *, key: jax.Array | None = None,
                      samples: int = 1 << 16) -> Estimate:
    """NS_ρ(f) under the uniform measure: exact for n ≤ 20, else Monte Carlo (key defaults to key(0))."""
    _check_rho(rho)
    if n <= MAX_ENUMERATE:
        return Estimate(noise_sensitivity_exact(truth_table(fn, n), rho), 0.0, True, 1 << n)
    return noise_sensitivity_mc(fn, n, rho, key=jax.random.key(0) if key is None else key, samples=samples)


def _check_n(n: int) -> None:
    if not 1 <= n <= MAX_ENUMERATE:
        raise ValueError(f"exact enumeration needs 1 ≤ n ≤ {MAX_ENUMERATE}, got n = {n}; "
                         "use the Monte Carlo estimators")
