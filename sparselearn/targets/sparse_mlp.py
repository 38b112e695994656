"""Sparsely activated ReLU teachers: the class H_{n,s,k} of Awasthi–Dikkala–Kamath–Meka (2024).

    h(x) = Σ_{j≤s} u_j · relu(⟨w_j, x⟩ − b_j),   at most k units with ⟨w_j, x⟩ − b_j > 0 for every x

Every construction is a sum of k *groups*. Within a group the active regions of the units
are pairwise disjoint, so each group contributes at most one active unit and the whole
network at most k — on every point of the support, not just on average. A group reads a
few "address" coordinates (a random subset, so the teacher is randomly permuted):

- ``junta`` (paper's member (a)): a group is a junta on a = ⌊log₂(s/k)⌋ coordinates J; unit α
  ∈ {±1}^a computes relu(⟨α, x_J⟩ − a + 1), which is 1 exactly when x_J = α. Output weights
  are a random non-constant ±1 function of α (a constant draw has its first sign flipped, so
  no group is wasted on a constant), or Π α (``junta_fn="parity"``: an a-sparse parity).
- ``index`` (member (b)): b address bits select one of 2^b data bits; unit α has weight α on the
  address and ½ on data bit α, output weight 1; the group computes 1[data bit at the address is +1].
  The bias is b − ¼ rather than the paper's b − ½: the unit then outputs ¾ instead of 1 (the same
  function up to scale) and an inactive unit has pre-activation ≤ −¼ instead of exactly 0, so
  counting active units is robust to rounding.
- ``dense_weight`` (member (c), App. A): unit α computes relu(⟨v_α, y⟩ + Γ(⟨α, x_addr⟩ − b)) with
  a dense unit vector v_α on the other q = n − b coordinates y; Γ = √q (default) makes it
  exactly 1-sparse per group, a smaller `gamma` only with high probability (Remark 11).
- ``random``: Hamming balls. A group picks L coordinates J and g distinct random codewords c_j ∈
  {±1}^L; unit j fires on the ball {x : dist(x_J, c_j) < R_j} with R_j = ⌊(d_j + 1)/2⌋, d_j the
  distance to the nearest other codeword, so the balls are disjoint. Each unit also gets a dense
  random weight vector on the remaining coordinates with ℓ₁ norm ½, which changes the unit's value
  but never its activity (pre-activations are odd integers ± ½); at k = s a group is one unit whose
  ball is the whole cube, an affine teacher (the dense comparisons are below). With
  ``inputs="gaussian"`` no construction with s > 2k can be k-sparse on all of R^n (two halfspaces
  always meet unless antipodal), so ``random`` then uses random unit directions (stacked Haar-random
  orthonormal bases) with a common bias: the largest (k+1)-th largest projection over 2^14 reference
  draws, so no reference draw has more than k active units. Fresh draws exceed k with probability of
  order 2^−14 (the regime of the paper's Remark 11); the certificate is sampled and labelled as
  such, and the price is a very sparse function (most inputs activate no unit at all).

Two dense comparisons make no sparsity promise (k = s; `certify` measures the k they attain):

- ``parity`` (the hard dense member behind the §1.3 lower bounds): the parity χ_S(x) = Π_{i∈S} x_i of
  p = min(n, s − 1) random coordinates S (``bits`` sets a smaller p), written as p + 1 ramps in the
  sum c = Σ_{i∈S} x_i. Every unit has weight 1 on S; c takes the values c_i = −p + 2i, and χ_S =
  (−1)^{p−i} there. Unit 0 has bias −p − 1 (always active, it carries the value at c_0) and unit
  j ≥ 1 bias c_{j−1} + ½, just past the j-th value, so on c_i exactly units 0…i fire (between 1
  and p + 1, about p/2 on a typical input) and no pre-activation is within ½ of 0. The output
  weights solve the (lower-triangular) interpolation system; they alternate in sign and stay
  at most 4 in magnitude for every p. The Fourier degree is p.
- ``biased``: the dense random net with every bias shifted so that each unit fires on a fraction
  ``active`` = q of the inputs (the (1 − q)-quantile of its pre-activation under the input
  distribution, exact on the enumerated cube for n ≤ 14, else from 2^14 draws; the threshold sits
  halfway between two reference values). Gaussian first-layer weights N(0, I/n), Gaussian output
  weights; q → 1/s is a net with about one unit active on a typical input, so q sweeps the fraction
  of active units at fixed s. On a symmetric law (hypercube, biased with p = ½, Gaussian) the
  median is exactly 0, so q = ½ sets every bias to 0 for any n, not to a sampled median: the
  zero-bias `dense` net.

Scale: by default the output weights are rescaled to unit output variance under the input
distribution (exact on the enumerated hypercube for n ≤ 14, else from 2^14 draws; for Gaussian
``random``, whose few active inputs plain draws rarely meet, 2^14 draws given that a unit fires,
importance-weighted: `active_reference`); the factor is
returned as ``params["scale"]``. Giving `W` and/or `B` instead scales the teacher to the largest
member of H^{W,B}_{n,s,k}: ‖u‖_∞·max‖w_j‖ ≤ W and ‖u‖_∞·max|b_j| ≤ B (the ratio of the two is
fixed by the construction). `norms(params)` reports both. `B` alone is refused wherever a draw
can have every bias 0 (it would bound nothing): the zero-bias constructions, and ``random`` with
s/k = 2 and an odd codeword length ≥ 3, whose two codewords are antipodal, bias 0, with probability
1/(2^bits − 1) per group. ``sparse_mlp_sign`` is the ±1-label variant sign(h − median); on
Gaussian inputs a config whose rarer label has mass below MIN_MINORITY is refused (see
`SparseMLPSign`).

Example:
    >>> t = SparseMLP(n=12, s=64, k=4)
    >>> tp = t.init(jax.random.key(0))
    >>> jax.tree.map(jnp.shape, tp)
    {'b': (64,), 'scale': (), 'u': (64,), 'w': (64, 12)}
    >>> x, y = t.sample(tp, jax.random.key(1), 512)
    >>> bool(t.active_units(tp, x).max() <= 4)
    True
    >>> t.certify(tp)                          # over all 2^12 inputs
    Certificate(max_active=4, exact=True, n_inputs=4096, k=4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparselearn.errors import ConfigError, require
from sparselearn.fields import OMIT_DEFAULT
from sparselearn.runtime import TINY_COMPILE, known_options, tiered_jit
from sparselearn.targets.inputs import (MAX_REFERENCE, REFERENCE_SAMPLES, Certificate, LabelNoise, balanced_threshold,
                                        certify_max, check_probability, draw_many, hypercube_points, labelled,
                                        orthonormal_columns, reference, unit_variance)

HIGHEST = jax.lax.Precision.HIGHEST
CONSTRUCTIONS = ("random", "junta", "index", "dense_weight", "dense", "parity", "biased")
#: constructions without a sparsity promise: config k = s, the certificate measures the k attained
DENSE = ("dense", "parity", "biased")
#: `sparse_mlp_sign` on Gaussian inputs: the least mass of the rarer label a config may have
MIN_MINORITY = 0.1
#: `sparse_mlp_sign` on Gaussian inputs: the teachers (keys 0 … PROBES − 1) that check it
PROBES = 4
_MINORITY: dict = {}    # `SparseMLPSign.probe_minority` per config (noise aside)


def _choice(value, key: str, choices) -> None:
    require(value in choices, key, f"must be one of {', '.join(map(repr, choices))}; got {value!r}")


class Layout(NamedTuple):
    """Static shape of a construction: k groups of `group_units` units, each group
    addressed by `bits` coordinates; `units` = k · group_units ≤ s."""

    bits: int
    group_units: int
    units: int


def _floor_log2(v: int) -> int:
    return max(v, 1).bit_length() - 1


def frame(gaussians: jax.Array, units: int) -> jax.Array:
    """`units` unit vectors in R^n, shape (units, n), from Gaussian matrices (blocks, n, n): stacked
    random orthonormal bases (Q of each QR, Haar), orthogonal within a basis; units of different
    bases are independent, so two can be close (largest |cos| 0.95 at n = 8, s = 64, where the
    Welch bound is 0.33). A union of whole bases is a tight frame; a last partial basis is not."""
    bases = jnp.swapaxes(jax.vmap(orthonormal_columns)(gaussians), 1, 2)
    return bases.reshape(-1, gaussians.shape[-1])[:units]


def calibrated_bias(w: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """The smallest common bias τ with at most k of the pre-activations ⟨w_j, x⟩ − τ positive on
    every row of x: the largest (k+1)-th largest projection over the rows. Shape ()."""
    if w.shape[0] <= k:
        return jnp.zeros((), jnp.float32)
    z = jnp.matmul(x, w.T, precision=HIGHEST)
    return jnp.max(jax.lax.top_k(z, k + 1)[0][:, -1])


def active_reference(w: jax.Array, tau: jax.Array, key: jax.Array, samples: int) -> tuple[jax.Array, jax.Array]:
    """Points and weights for moments under x ~ N(0, I) of a function that vanishes where no
    unit of w (units, n) (unit-norm rows, one threshold τ) fires: x drawn given that a uniformly
    chosen unit j fires, x = g + (z − ⟨w_j, g⟩)·w_j with z ~ N(0, 1) above τ, weighted by
    units·Φ̄(τ) / (samples · units active at x), so Σ weight·f(x) estimates E[f(x); some unit fires]
    without bias. Returns x (samples, n) float32 and weights (samples + 1,), the last the mass
    where no unit fires (for the value 0 appended to f; the weights sum to 1).

    Plain draws see few points of support when τ is high: a teacher with n = 8, s = 64, k = 1 had 1
    to 28 non-zero values among 2^14 draws and a fresh-draw std of 0.80 to 97 after scaling to 1."""
    units, n = w.shape
    k_unit, k_tail, k_rest = jax.random.split(key, 3)
    j = jax.random.randint(k_unit, (samples,), 0, units)
    above = jax.scipy.special.ndtr(-tau)
    # z = Φ⁻¹ of a uniform point of the tail's mass, from its far end (a mass of 0 would be z = inf)
    z = -jax.scipy.special.ndtri(above * jax.random.uniform(k_tail, (samples,), minval=1e-7, maxval=1.0))
    g = jax.random.normal(k_rest, (samples, n))
    along = w[j]
    x = g + (z - jnp.sum(g * along, axis=1))[:, None] * along
    active = jnp.sum(jnp.matmul(x, w.T, precision=HIGHEST) > tau, axis=1)
    weights = units * above / (samples * jnp.maximum(active, 1))
    rest = jnp.maximum(1.0 - jnp.sum(weights), 0.0)
    weights = jnp.append(weights, rest)
    return x, weights / jnp.sum(weights)


def quantile_bias(z: jax.Array, weights: jax.Array, q: float) -> jax.Array:
    """A threshold b with mass ≈ q of the values z (N,) above it, under weights (N,) summing to
    1: the cut between consecutive distinct sorted values whose upper tail mass is closest to q,
    placed halfway between them (so no reference value sits on it). Shape ()."""
    order = jnp.argsort(z)
    zs, ws = z[order], weights[order]
    tail = 1.0 - jnp.cumsum(ws) + ws                      # tail[i] = mass of zs[i:]
    gap = jnp.concatenate([jnp.zeros((1,), bool), zs[1:] > zs[:-1]])   # a cut below i is possible
    i = jnp.argmin(jnp.where(gap, jnp.abs(tail - q), jnp.inf))
    return 0.5 * (zs[i - 1] + zs[i])


def parity_ramps(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Biases (p + 1,) and output weights (p + 1,) of the ramps whose sum, as a function of
    c = Σ_{i∈S} x_i ∈ {−p, −p + 2, …, p}, is the parity (−1)^{(p − c)/2} (see the module
    docstring): bias −p − 1, then c_{j−1} + ½ for j = 1 … p.

    Example:
        >>> parity_ramps(2)               # b = [-3, -3/2, 1/2], u = [1, -8/3, 32/9]
        (array([-3. , -1.5,  0.5], dtype=float32), array([ 1. , -2.6666667,  3.5555556], dtype=float32))
    """
    c = -p + 2.0 * np.arange(p + 1)
    b = np.concatenate([[-p - 1.0], c[:-1] + 0.5])
    ramps = np.maximum(c[:, None] - b[None, :], 0.0)      # lower triangular, positive diagonal
    u = np.linalg.solve(ramps, (-1.0) ** (p - np.arange(p + 1)))
    return b.astype(np.float32), u.astype(np.float32)


@dataclass(frozen=True)
class SparseMLP(LabelNoise):
    """A ReLU network with s hidden units of which at most k are active on any input.

    Fields: `n` inputs, `s` hidden units (the construction may use fewer; see `layout`),
    sparsity `k`, `construction` (random | junta | index | dense_weight, or the dense comparisons
    with k = s: `dense`, Gaussian weights and zero biases; `parity`, a parity on min(n, s − 1)
    bits; `biased`, Gaussian weights with biases giving each unit the active fraction `active`),
    `bits` (address bits per group; codeword length for random; the parity's size p for parity;
    default from s/k), `junta_fn` (random | parity), `gamma` (Γ of dense_weight), norms `W`, `B`
    (default: unit variance instead), `noise` (std of additive Gaussian label noise), `inputs`,
    `p` (+1 probability for biased inputs), and `active` (biased only: the fraction q ∈ (0, 1)).

    Example:
        >>> t = SparseMLP(n=12, s=16, k=1, construction="junta", junta_fn="parity")
        >>> tp = t.init(jax.random.key(0))          # a 4-sparse parity written as 16 ReLUs
    """

    n: int = 16
    s: int = 64
    k: int = 4
    construction: Literal["random", "junta", "index", "dense_weight", "dense", "parity", "biased"] = "random"
    bits: int | None = None
    junta_fn: Literal["random", "parity"] = "random"
    gamma: float | None = None
    W: float | None = None
    B: float | None = None
    noise: float = 0.0
    inputs: Literal["hypercube", "gaussian", "biased"] = "hypercube"
    p: float = 0.5
    active: float | None = field(default=None, metadata=OMIT_DEFAULT)   # left out of config hashes while None

    name: ClassVar[str] = "sparse_mlp"
    task: ClassVar[str] = "regression"

    def __post_init__(self):
        _choice(self.inputs, "inputs", ("hypercube", "gaussian", "biased"))
        _choice(self.construction, "construction", CONSTRUCTIONS)
        _choice(self.junta_fn, "junta_fn", ("random", "parity"))
        require(self.n >= 1, "n", f"must be ≥ 1, got {self.n}")
        require(self.s >= 1, "s", f"must be ≥ 1, got {self.s}")
        require(1 <= self.k <= self.s, "k", f"must satisfy 1 ≤ k ≤ s = {self.s}, got {self.k}")
        c = self.construction
        if self.construction in DENSE:
            require(self.k == self.s, "k", f"construction {self.construction!r} has no sparsity promise: "
                    f"set k = s = {self.s} (certify() measures the k it attains)")
        else:
            require(self.k <= self.n, "k", f"must be ≤ n = {self.n}, got {self.k}")
        check_probability(self.p, self.inputs)
        for key in ("W", "B", "gamma"):
            value = getattr(self, key)
            require(value is None or value > 0, key, f"must be > 0, got {value}")
        self._check_noise()
        require(self.inputs != "gaussian" or c in ("random", "biased", "dense"), "construction",
                f"{c!r} is defined on the hypercube; with inputs='gaussian' use random, biased or dense")
        if c == "biased":
            require(self.active is not None and 0.0 < self.active < 1.0, "active",
                    f"construction 'biased' needs the active fraction of units in (0, 1), got {self.active}")
        else:
            require(self.active is None, "active", "is used only by construction='biased'")
        if c == "parity":
            require(self.s >= 2, "s", f"construction 'parity' needs s ≥ 2 (a parity on s − 1 bits), got {self.s}")
            require(self.bits is None or self.bits <= min(self.n, self.s - 1), "bits",
                    f"the parity's size must be ≤ min(n, s − 1) = {min(self.n, self.s - 1)}, got {self.bits}")
        require(self.gamma is None or c == "dense_weight", "gamma", "is used only by construction='dense_weight'")
        require(self.junta_fn == "random" or c == "junta", "junta_fn", "is used only by construction='junta'")
        require(self.bits is None or c not in ("dense", "biased"), "bits",
                f"is not used by construction {c!r} (only by random, junta, index, dense_weight and parity)")
        require(self.bits is None or self.bits >= 1, "bits", f"must be ≥ 1, got {self.bits}")
        per_group = self.s // self.k
        if c in ("junta", "index", "dense_weight"):
            require(per_group >= 2, "s", f"construction {c!r} needs s ≥ 2k = {2 * self.k}, got {self.s}")
        if self.bits is not None:
            require(self.inputs != "gaussian", "bits", "is not used with inputs='gaussian'")
            require(self.bits <= self.n, "bits", f"must be ≤ n = {self.n}, got {self.bits}")
        if self.bits is not None and c not in ("random", "parity"):
            require(2 ** self.bits <= per_group, "bits",
                    f"2^bits units per group must fit in s/k = {per_group}, got bits = {self.bits}")
        if c == "index":
            b = self.layout.bits
            # the key the user can change: bits when they chose it, else n (bits already shrank to fit)
            require(b + 2 ** b <= self.n, "n" if self.bits is None else "bits",
                    f"index with {b} address bits needs n ≥ {b + 2 ** b}, got n = {self.n}")
        if c == "dense_weight":
            require(self.layout.bits < self.n, "bits", f"dense_weight needs address bits < n = {self.n}")
        if self.B is not None and self.W is None and self._antipodal_draws:
            bits = self.layout.bits
            even = " an even `bits` (≤ n)," if self.n >= 2 else ""
            chance = f"1/{2 ** bits - 1}" if bits <= 20 else f"2^−{bits}"
            raise ConfigError(f"construction 'random' with s/k = 2 units per group and odd codeword length "
                              f"bits = {bits} draws antipodal codeword pairs, whose biases are 0, with probability "
                              f"{chance} per group; when every group does, B alone sets no scale: give W "
                              f"as well,{even} or s ≥ 3k = {3 * self.k}", key="B")
        median = (f" (active = {self.active} cuts every unit at its median, 0, on the {self.n}-cube)"
                  if self._median_cut and self.active != 0.5 else "")
        require(self.B is None or self.W is not None or not self._zero_bias, "B",
                f"construction {c!r} has zero biases here{median}, so B alone sets no scale: give W as well")

    @property
    def _antipodal_draws(self) -> bool:
        """Random Hamming balls that may draw all biases 0: groups of 2 codewords of odd length > 1
        (an antipodal pair has radius (bits + 1)/2, bias 0; with 3 or more codewords, or even bits,
        some bias is ≥ 1)."""
        bits, g, _ = self.layout
        return self.construction == "random" and self.inputs != "gaussian" and g == 2 and bits % 2 == 1 and bits > 1

    @property
    def _zero_bias(self) -> bool:
        """True when every bias of the construction is 0 (so B bounds nothing)."""
        bits, g, _ = self.layout
        c = self.construction
        if c == "random":
            return g == 1 if self.inputs == "gaussian" else (bits == 1 and g == 2)   # codewords ±1: R = 1
        return c == "dense" or self._median_cut or (c == "junta" and bits == 1) or (c == "dense_weight" and bits == 0)

    @property
    def _median_cut(self) -> bool:
        """`biased` cutting every unit at its median, 0, on a symmetric law (hypercube, biased with
        p = ½, Gaussian): at active = ½ whatever n, and on an enumerated cube (n ≤ MAX_REFERENCE)
        wherever ½ is the achievable tail mass nearest `active` (its values pair up as ±z, so the
        middle cut lies halfway between −z and z): −2^−(n+1) ≤ active − ½ < 2^−(n+1) (at the upper
        end the tie goes to the larger tail, ½ + 2^−n, as `quantile_bias` breaks it), any active at
        n = 1. Every bias is then 0."""
        symmetric = self.inputs in ("hypercube", "gaussian") or (self.inputs == "biased" and self.p == 0.5)
        if self.construction != "biased" or not symmetric:
            return False
        enumerated = self.inputs != "gaussian" and self.n <= MAX_REFERENCE
        half = 2.0 ** -(self.n + 1)
        return self.active == 0.5 or (enumerated and (self.n == 1 or -half <= self.active - 0.5 < half))

    def _check_noise(self):
        require(self.noise >= 0.0, "noise", f"noise standard deviation must be ≥ 0, got {self.noise}")

    # ----------------------------------------------------------------- structure
    @property
    def layout(self) -> Layout:
        """Address bits per group, units per group and total units (static, from the config)."""
        per_group = self.s // self.k
        c = self.construction
        if c in ("dense", "biased"):
            return Layout(0, 1, self.s)
        if c == "parity":
            p = self.bits or min(self.n, self.s - 1)
            return Layout(p, p + 1, p + 1)
        if c == "random" and self.inputs == "gaussian":
            return Layout(0, per_group, self.k * per_group)
        if c == "random":
            bits = self.bits or min(self.n, _floor_log2(per_group) + 2)
            g = min(per_group, 2 ** bits)
            return Layout(bits, g, self.k * g)
        bits = self.bits or _floor_log2(per_group)
        if c == "index" and self.bits is None:
            while bits > 1 and bits + 2 ** bits > self.n:
                bits -= 1
        if c == "dense_weight" and self.bits is None:
            bits = min(bits, self.n - 1)
        bits = min(bits, self.n)
        return Layout(bits, 2 ** bits, self.k * 2 ** bits)

    @property
    def _thresholded(self) -> bool:
        """Gaussian `random`: unit directions with one calibrated threshold (more units than k)."""
        return self.construction == "random" and self.inputs == "gaussian" and self.layout.units > self.k

    # ----------------------------------------------------------------- parameters
    def _groups(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """All k groups: (w (k, g, n), b (k, g), u (k, g)) before scaling.

        Each group is built with its address coordinates first (then, for index, its data bits),
        and then its coordinates are permuted by an independent random permutation.
        """
        bits, g, _ = self.layout
        K, n = self.k, self.n
        c = self.construction
        n_words = 2 ** bits if (c == "random" and bits <= 20) else 0
        perm_u, word_u, sign_u = draw_many("uniform", jax.random.fold_in(key, 0), (K, n), (K, n_words), (K, g))
        dense, out = draw_many("normal", jax.random.fold_in(key, 1), (K, g, n - bits), (K, g))
        signs = jnp.where(sign_u < 0.5, 1.0, -1.0).astype(jnp.float32)

        perm = jnp.argsort(perm_u, axis=1)         # (K, n): a random permutation per group

        def canonical(*blocks):                     # (g, ·) or (K, g, ·) blocks → (K, g, n), permuted
            blocks = [jnp.broadcast_to(blk, (K, g, blk.shape[-1])) for blk in blocks]
            used = sum(blk.shape[-1] for blk in blocks)
            w = jnp.concatenate(blocks + [jnp.zeros((K, g, n - used), jnp.float32)], axis=-1)
            return jnp.take_along_axis(w, perm[:, None, :], axis=2)

        alpha = hypercube_points(bits, 0, g) if c != "random" else None     # (g, bits) all addresses
        if c == "junta":
            constant = jnp.all(signs == signs[:, :1], axis=1, keepdims=True)                  # (K, 1)
            signs = signs.at[:, 0].multiply(jnp.where(constant[:, 0], -1.0, 1.0)) if g > 1 else signs
            u = jnp.broadcast_to(jnp.prod(alpha, axis=1), (K, g)) if self.junta_fn == "parity" else signs
            return canonical(alpha), jnp.full((K, g), bits - 1.0, jnp.float32), u
        if c == "index":
            w = canonical(alpha, 0.5 * jnp.eye(g, dtype=jnp.float32))
            return w, jnp.full((K, g), bits - 0.25, jnp.float32), jnp.ones((K, g), jnp.float32)
        if c == "dense_weight":
            gamma = self.gamma if self.gamma is not None else math.sqrt(n - bits)
            v = dense / jnp.linalg.norm(dense, axis=-1, keepdims=True)
            return canonical(gamma * alpha, v), jnp.full((K, g), gamma * bits, jnp.float32), signs
        # random Hamming balls: g distinct codewords per group, radius from the nearest other codeword
        if n_words:
            idx = jnp.argsort(word_u, axis=1)[:, :g].astype(jnp.int32)
            code = (1 - 2 * ((idx[..., None] >> jnp.arange(bits)) & 1)).astype(jnp.float32)   # (K, g, bits)
        else:   # too many words to draw without replacement; duplicates have probability < g²/2^21
            code = jax.random.rademacher(jax.random.fold_in(key, 2), (K, g, bits), dtype=jnp.float32)
        dist = 0.5 * (bits - jnp.einsum("kib,kjb->kij", code, code, precision=HIGHEST))    # Hamming distances
        nearest = jnp.min(jnp.where(jnp.eye(g, dtype=bool), jnp.inf, dist), axis=2)
        radius = jnp.where(jnp.isfinite(nearest), jnp.floor((nearest + 1) / 2), bits + 1.0)
        v = 0.5 * dense / jnp.maximum(jnp.sum(jnp.abs(dense), axis=-1, keepdims=True), 1e-30)   # ℓ₁ norm ½
        return canonical(code, v), bits - 2.0 * radius + 1.0, out

    def _raw(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(w (units, n), b (units,), u (units,)) before scaling."""
        _, g, units = self.layout
        if self.construction in ("dense", "biased"):  # dense: about half of the units fire on a typical input
            w, u = draw_many("normal", jax.random.fold_in(key, 0), (units, self.n), (units,))
            w = w / math.sqrt(self.n)
            if self.construction == "dense" or self._median_cut:   # the exact quantile, not a sampled one
                return w, jnp.zeros((units,), jnp.float32), u
            x, weights = reference(self.inputs, jax.random.fold_in(key, 2), self.n, self.p)
            z = jnp.matmul(x, w.T, precision=HIGHEST)                                   # (N, units)
            return w, jax.vmap(quantile_bias, in_axes=(1, None, None))(z, weights, self.active), u
        if self.construction == "parity":
            p = self.layout.bits
            on = jnp.argsort(jax.random.uniform(jax.random.fold_in(key, 0), (self.n,))) < p   # S: p random coordinates
            b, u = parity_ramps(p)
            return jnp.broadcast_to(on.astype(jnp.float32), (p + 1, self.n)), jnp.asarray(b), jnp.asarray(u)
        if self.inputs == "gaussian":
            blocks = -(-units // self.n)
            g, u = draw_many("normal", jax.random.fold_in(key, 0), (blocks, self.n, self.n), (units,))
            w = frame(g, units)
            x, _ = reference(self.inputs, jax.random.fold_in(key, 2), self.n)
            return w, jnp.full((units,), calibrated_bias(w, x, self.k), jnp.float32), u
        w, b, u = self._groups(jax.random.fold_in(key, 1))
        return w.reshape(units, self.n), b.reshape(units), u.reshape(units)

    @tiered_jit(static_argnums=0)
    def init(self, key: jax.Array) -> dict:
        """Teacher parameters {"w": (units, n), "b": (units,), "u": (units,), "scale": ()}.

        `u` already includes the factor `scale` (unit variance, or the W/B normalisation).
        A teacher that is constant on the inputs (its groups cancel) gets scale 0, so every
        label is 0, instead of rounding noise amplified by 1/std.
        `B` alone is refused by the config wherever a draw can have every bias 0 (random Hamming
        balls of antipodal codewords included); a draw that still did would get scale NaN.
        """
        w, b, u = self._raw(jax.random.fold_in(key, 0))
        if self.W is None and self.B is None and self._thresholded:
            x, weights = active_reference(w, b[0], jax.random.fold_in(key, 1), REFERENCE_SAMPLES)
            _, scale = unit_variance(jnp.append(_forward(w, b, u, x), 0.0), weights)
        elif self.W is None and self.B is None:
            x, weights = reference(self.inputs, jax.random.fold_in(key, 1), self.n, self.p)
            _, scale = unit_variance(_forward(w, b, u, x), weights)
        else:
            umax = jnp.max(jnp.abs(u))
            scale = jnp.inf
            if self.W is not None:
                scale = jnp.minimum(scale, self.W / (umax * jnp.max(jnp.linalg.norm(w, axis=1))))
            if self.B is not None:
                bmax = umax * jnp.max(jnp.abs(b))
                scale = jnp.minimum(scale, jnp.where(bmax > 0, self.B / jnp.where(bmax > 0, bmax, 1.0), jnp.inf))
                if self.W is None:      # drawn biases that all vanish: B alone sets no scale
                    scale = jnp.where(jnp.isinf(scale), jnp.nan, scale)
        return {"w": w, "b": b, "u": u * scale, "scale": jnp.asarray(scale, jnp.float32)}

    # ----------------------------------------------------------------- evaluation
    def output(self, params: dict, x: jax.Array) -> jax.Array:
        """The network h(x), shape (m,)."""
        return _forward(params["w"], params["b"], params["u"], x)

    def labels(self, params: dict, x: jax.Array) -> jax.Array:
        """Noiseless labels h(x), shape (m,)."""
        return self.output(params, x)

    @tiered_jit(static_argnums=(0, 3))
    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32, y (m,) float32 (h(x) plus Gaussian noise)."""
        return labelled(self, params, key, m)

    def active_units(self, params: dict, x: jax.Array) -> jax.Array:
        """How many hidden units have a strictly positive pre-activation, per input: (m,) int32."""
        return jnp.sum(_preact(params["w"], params["b"], x) > 0, axis=1, dtype=jnp.int32)

    def certify(self, params: dict, *, key: jax.Array | None = None, samples: int = 1 << 16) -> Certificate:
        """Largest `active_units` over the support.

        Exact (all 2^n inputs, chunked) for hypercube/biased inputs with n ≤ 20; otherwise the
        maximum over `samples` draws — a lower bound, flagged by `exact=False`.
        """
        return certify_max(self.active_units, params, self.n, self.inputs, self.k,
                           key=key, samples=samples, p=self.p)

    def norms(self, params: dict) -> dict:
        """The class parameters this teacher attains: W = ‖u‖_∞·max‖w_j‖₂, B = ‖u‖_∞·max|b_j|,
        and the output bound C_H = k(W√n + B) (R = √n on the cube). Python floats."""
        umax = float(jnp.max(jnp.abs(params["u"])))
        W = umax * float(jnp.max(jnp.linalg.norm(params["w"], axis=1)))
        B = umax * float(jnp.max(jnp.abs(params["b"])))
        return {"W": W, "B": B, "C_H": self.k * (W * math.sqrt(self.n) + B), "scale": float(params["scale"])}


@dataclass(frozen=True)
class SparseMLPSign(SparseMLP):
    """The ±1-label variant of `SparseMLP`: y = sign(h(x) − t) with t the (tie-aware) median
    of h under the input distribution, so the classes are as balanced as h allows.
    `noise` is a label-flip probability here. ``params["threshold"]`` holds t.

    Balance: h is 0 wherever no unit fires, and when that atom carries most of the mass t cuts
    beside it, so the rarer label has mass about P(h > 0) or P(h < 0). On Gaussian inputs with
    construction random and s ≥ 2k (one high common threshold) that was 0.001–0.03 (n = 8–16, s =
    32–64, k = 2–4): a constant predictor then has test error below a typical `eps`. So on
    Gaussian inputs the config is refused (ConfigError naming k, or active for biased) when
    `probe_minority()`, the least rarer-label mass over the teachers of keys 0 … PROBES − 1, is
    below MIN_MINORITY = 0.1; a run's own teachers (other keys) vary around it (0.28 and 0.37 for
    n = 30, s = 64, k = 8). Cube inputs are not checked: t is the median cut of the enumerated cube
    for n ≤ 14 (exact) and of 2^14 draws above it (the configs/sparse_mlp_sign.yaml teachers, n = 16:
    rarer label 0.125–0.14 at k = 1, ≥ 0.37 at k ≥ 4); `minority(params, x)` measures any teacher.

    Example:
        >>> t = SparseMLPSign(n=10, s=16, k=2)
        >>> x, y = t.sample(t.init(jax.random.key(0)), jax.random.key(1), 128)
        >>> x.shape, np.unique(y)
        ((128, 10), array([-1.,  1.], dtype=float32))
    """

    name: ClassVar[str] = "sparse_mlp_sign"
    task: ClassVar[str] = "classification"

    def __post_init__(self):
        super().__post_init__()
        if self.inputs == "gaussian":
            mass = self.probe_minority()
            change = ("active (more units fire)" if self.construction == "biased"
                      else "k (with s < 2k there is no common threshold)")
            require(mass >= MIN_MINORITY, "active" if self.construction == "biased" else "k",
                    f"on Gaussian inputs the rarer label has mass {mass:.4f} < {MIN_MINORITY} (least over "
                    f"{PROBES} teachers; h is 0 wherever no unit fires), so a constant predictor errs only "
                    f"that often: raise {change}, or use inputs='hypercube'")

    def _check_noise(self):
        require(0.0 <= self.noise < 0.5, "noise", f"label-flip probability must be in [0, 0.5), got {self.noise}")

    def minority(self, params: dict, x: jax.Array, weights: jax.Array | None = None) -> jax.Array:
        """Mass of the rarer noiseless label on x (m, n) under weights (m,) summing to 1 (default
        equal). Shape ()."""
        w = jnp.full(x.shape[:1], 1.0 / x.shape[0], jnp.float32) if weights is None else weights
        plus = jnp.sum(jnp.where(self.labels(params, x) > 0, w, 0.0))
        return jnp.minimum(plus, 1.0 - plus)

    def probe_minority(self) -> float:
        """The least `minority` over the teachers of keys 0 … PROBES − 1, each on its own 2^14 fresh
        draws (the whole cube with exact weights for n ≤ 14); computed once per config (noise aside)."""
        config = (type(self),) + tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "noise")
        if config not in _MINORITY:
            def one(seed):
                key = jax.random.key(seed)
                x, weights = reference(self.inputs, jax.random.fold_in(key, 2), self.n, self.p)
                return self.minority(self.init(key), x, weights)

            seeds = np.arange(PROBES, dtype=np.int32)
            with jax.ensure_compile_time_eval():        # also when first built inside a trace
                # compiled without optimisation: it runs once, and the compile is most of its cost
                # (3–4 s at n = 30, s = 64 against 5–8 s at the tier its work would choose)
                probe = jax.jit(jax.vmap(one)).lower(seeds).compile(known_options(TINY_COMPILE))
                _MINORITY[config] = float(np.min(probe(seeds)))
        return _MINORITY[config]

    @tiered_jit(static_argnums=0)
    def init(self, key: jax.Array) -> dict:
        """As `SparseMLP.init`, plus "threshold": () float32."""
        params = super().init(key)
        x, weights = reference(self.inputs, jax.random.fold_in(key, 1), self.n, self.p)
        return {**params, "threshold": balanced_threshold(self.output(params, x), weights)}

    def labels(self, params: dict, x: jax.Array) -> jax.Array:
        """Noiseless labels sign(h(x) − t) in {±1}, shape (m,)."""
        return jnp.where(self.output(params, x) > params["threshold"], 1.0, -1.0).astype(jnp.float32)

    @tiered_jit(static_argnums=(0, 3))
    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32, y (m,) float32 in {±1}, flipped w.p. `noise`."""
        return labelled(self, params, key, m)


def _preact(w: jax.Array, b: jax.Array, x: jax.Array) -> jax.Array:
    """Pre-activations ⟨w_j, x⟩ − b_j, shape (m, units)."""
    return jnp.matmul(x, w.T, precision=HIGHEST) - b


def _forward(w: jax.Array, b: jax.Array, u: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.matmul(jax.nn.relu(_preact(w, b, x)), u, precision=HIGHEST)
