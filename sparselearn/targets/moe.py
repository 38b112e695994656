"""Mixture-of-experts teachers: sparsely activated by routing.

    scores(x) = (x A) G                      A: (n, r) router, G: (r, E) unit-norm columns
    h(x) = Σ_{e ∈ top(x)} Σ_{j≤width} u_{ej} relu(⟨w_{ej}, x⟩ − b_{ej})  (then centred and scaled)

Each input is sent to the `top` experts with the highest routing score, and only their units can
be active, so at most k = top · expert_width of the s = experts · expert_width hidden units fire on
any input — by construction, whatever the input distribution. The router has rank r; its output
columns have unit norm, so for r ≥ 2 every expert is an extreme point of the score polytope and wins
on some region of R^n; with r = 1 the columns are ±1 and the scores ±xA, so at most 2·top experts
are ever routed (two for top = 1, four for top = 2). Ties in the score are broken towards the lower
expert index.

The output is centred and scaled to mean 0 and variance 1 under the input distribution (exact on
the enumerated hypercube for n ≤ 14, otherwise from 2^14 draws); ``params["offset"]`` and
``params["scale"]`` hold the constants. A teacher constant on the inputs (tiny ones where no unit
ever fires) gets scale 0: labels 0, as a constant `sparse_mlp` teacher's.

Example:
    >>> t = MoE(n=10, experts=8, expert_width=4, r=4)
    >>> tp = t.init(jax.random.key(0))
    >>> x, y = t.sample(tp, jax.random.key(1), 256)      # real y
    >>> x.shape, y.shape, t.routes(tp, x).shape            # routes: the chosen expert per input
    ((256, 10), (256,), (256, 1))
    >>> t.certify(tp).max_active <= t.k                    # k = top · expert_width = 4
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.errors import require
from sparselearn.fields import OMIT_DEFAULT
from sparselearn.runtime import tiered_jit
from sparselearn.targets.inputs import (INPUTS, NONZEROS, Certificate, LabelNoise, certify_max, check_dictionary, check_probability,
                                        dictionary_options, draw_many, labelled, reference, unit_variance)

HIGHEST = jax.lax.Precision.HIGHEST


@dataclass(frozen=True)
class MoE(LabelNoise):
    """A top-`top` routed mixture of `experts` one-hidden-layer ReLU experts of `expert_width` units.

    Fields: `n`, `experts` (E), `expert_width`, `r` (router rank, ≤ n), `top` (experts per input),
    `noise` (std of additive Gaussian label noise), `inputs`, `p` (+1 probability for biased),
    `atoms` and `nonzeros` (dictionary inputs: N atoms, default 4n, and non-zeros per input).
    Derived: `s` = experts · expert_width hidden units, `k` = top · expert_width (the promise).

    Example:
        >>> MoE(n=20, experts=16, expert_width=4, r=2, top=2).k
        8
    """

    n: int = 16
    experts: int = 8
    expert_width: int = 4
    r: int = 4
    top: int = 1
    noise: float = 0.0
    inputs: Literal["hypercube", "gaussian", "biased", "dictionary"] = "hypercube"
    p: float = 0.5
    # left out of config hashes at their defaults
    atoms: int | None = field(default=None, metadata=OMIT_DEFAULT)
    nonzeros: int = field(default=NONZEROS, metadata=OMIT_DEFAULT)

    name: ClassVar[str] = "moe"
    task: ClassVar[str] = "regression"

    def __post_init__(self):
        require(self.inputs in INPUTS, "inputs", f"must be one of {', '.join(map(repr, INPUTS))}; got {self.inputs!r}")
        require(self.n >= 1, "n", f"must be ≥ 1, got {self.n}")
        require(self.experts >= 1, "experts", f"must be ≥ 1, got {self.experts}")
        require(self.expert_width >= 1, "expert_width", f"must be ≥ 1, got {self.expert_width}")
        require(1 <= self.r <= self.n, "r", f"router rank must satisfy 1 ≤ r ≤ n = {self.n}, got {self.r}")
        require(1 <= self.top <= self.experts, "top",
                f"must satisfy 1 ≤ top ≤ experts = {self.experts}, got {self.top}")
        require(self.noise >= 0.0, "noise", f"noise standard deviation must be ≥ 0, got {self.noise}")
        check_probability(self.p, self.inputs)
        for key, unset in (("atoms", None), ("nonzeros", NONZEROS)):    # before their ranges: unused is the error
            require(getattr(self, key) == unset or self.inputs == "dictionary", key,
                    f"is used only by inputs='dictionary' (got inputs={self.inputs!r})")
        if self.inputs == "dictionary":
            check_dictionary(self.n, self.atoms, self.nonzeros)

    @property
    def s(self) -> int:
        """Total hidden units, experts · expert_width."""
        return self.experts * self.expert_width

    @property
    def k(self) -> int:
        """Most units that can be active on one input, top · expert_width."""
        return self.top * self.expert_width

    @tiered_jit(static_argnums=0)
    def init(self, key: jax.Array) -> dict:
        """Teacher parameters: router (n, r), gates (r, E), w (E, width, n), b (E, width),
        u (E, width) (already scaled), offset () and scale ()."""
        E, h, n = self.experts, self.expert_width, self.n
        router, gates, w, b, u = draw_many("normal", jax.random.fold_in(key, 0),
                                           (n, self.r), (self.r, E), (E, h, n), (E, h), (E, h))
        raw = {
            "router": router / math.sqrt(n),
            "gates": gates / jnp.linalg.norm(gates, axis=0, keepdims=True),
            "w": w / math.sqrt(n),
            "b": 0.5 * b,
            "u": u,
            "offset": jnp.zeros((), jnp.float32),
            "scale": jnp.ones((), jnp.float32),
        }
        x, weights = reference(self.inputs, jax.random.fold_in(key, 1), self.n, self.p, **dictionary_options(self))
        mean, scale = unit_variance(self.labels(raw, x), weights)
        return {**raw, "u": raw["u"] * scale, "offset": mean * scale, "scale": scale}

    def routes(self, params: dict, x: jax.Array) -> jax.Array:
        """Indices of the chosen experts, shape (m, top) int32."""
        scores = jnp.matmul(jnp.matmul(x, params["router"], precision=HIGHEST), params["gates"], precision=HIGHEST)
        return jax.lax.top_k(scores, self.top)[1].astype(jnp.int32)

    def _gate(self, params: dict, x: jax.Array) -> jax.Array:
        """(m, E) float32: 1 for the routed experts, 0 elsewhere."""
        return jnp.sum(jax.nn.one_hot(self.routes(params, x), self.experts, dtype=jnp.float32), axis=1)

    def _preact(self, params: dict, x: jax.Array) -> jax.Array:
        """Pre-activations of every unit of every expert, (m, E, width)."""
        return jnp.einsum("mn,ehn->meh", x, params["w"], precision=HIGHEST) - params["b"]

    def labels(self, params: dict, x: jax.Array) -> jax.Array:
        """Noiseless labels, shape (m,)."""
        per_expert = jnp.sum(jax.nn.relu(self._preact(params, x)) * params["u"], axis=2)   # (m, E)
        return jnp.sum(self._gate(params, x) * per_expert, axis=1) - params["offset"]

    @tiered_jit(static_argnums=(0, 3))
    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32, y (m,) float32."""
        return labelled(self, params, key, m)

    def active_units(self, params: dict, x: jax.Array) -> jax.Array:
        """Active units (routed expert and positive pre-activation) per input, (m,) int32."""
        on = (self._preact(params, x) > 0).astype(jnp.float32)
        return jnp.sum(self._gate(params, x)[:, :, None] * on, axis=(1, 2)).astype(jnp.int32)

    def certify(self, params: dict, *, key: jax.Array | None = None, samples: int = 1 << 16) -> Certificate:
        """Largest `active_units` over the support: exact by enumeration for hypercube/biased inputs
        with n ≤ 20, otherwise a sampled lower bound (`exact=False`). The promise is k."""
        return certify_max(self.active_units, params, self.n, self.inputs, self.k,
                           key=key, samples=samples, p=self.p, **dictionary_options(self))
