"""A top-k mixture of experts with a rank-r router, trained by gradient steps.

    scores(x) = (x A) G                     A: (n, r), G: (r, E)      the rank-r router
    f_e(x)   = Σ_{j≤width} u_{ej} relu(⟨w_{ej}, x⟩ − b_{ej}) + c_e     expert e, one hidden layer
    f(x)     = Σ_{e ∈ top_k(scores(x))} g_e(x) f_e(x) + c

The `top` experts with the highest scores are active on an input; the others contribute nothing,
so at most top · expert_width of the experts · expert_width hidden units fire. The gate g_e:

- ``softmax`` (default): the softmax of all E scores, evaluated at the chosen experts and not
  renormalised (as in Switch/GShard layers), so the router is trained by the loss at every k,
  including k = 1;
- ``hard``: 1 on each chosen expert, the gating of the `moe` target; the choice is piecewise
  constant in the router, so the router keeps its initial value and only the experts learn.

At rank r = 1 the scores are s(x)·g_e for one scalar s(x), so the chosen experts are the `top`
largest or the `top` smallest g_e: at most 2·top experts are ever used, however G trains (a
rank-1 router is a choice between two groups, not a narrower router over all E).

The parameters mirror the `moe` target's (router, gates, w, b, u), so a teacher's parameters
can be loaded into a student of the same shape (see `from_teacher`). Every expert is computed
and the unchosen ones masked: at these widths that is cheaper on a CPU than gathering.

Example:
    >>> net = MoE(experts=8, expert_width=4, top=2, r=4)
    >>> params = net.init_params(jax.random.key(0), 16)
    >>> net.apply(params, jnp.ones((5, 16))).shape
    (5,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.errors import require

HIGHEST = jax.lax.Precision.HIGHEST


@dataclass(frozen=True)
class MoE:
    """Fields: `experts` (E), `expert_width` (hidden units per expert), `top` (k, experts active
    per input), `r` (router rank, ≤ n), `gate` (``softmax`` or ``hard``, see the module).

    Initialisation: A and the expert weights w ~ N(0, 1/n), G with unit-norm N(0, 1) columns (as
    the `moe` target), b ~ U[±1/√n], u ~ N(0, 1/width), c_e = c = 0.

    Example:
        >>> MoE(experts=16, expert_width=8, top=2, r=4).active_units
        16
    """

    experts: int = 8
    expert_width: int = 8
    top: int = 1
    r: int = 4
    gate: Literal["softmax", "hard"] = "softmax"

    name: ClassVar[str] = "moe"
    kind: ClassVar[str] = "gradient"

    def __post_init__(self):
        require(self.experts >= 1, "experts", f"must be ≥ 1, got {self.experts}")
        require(self.expert_width >= 1, "expert_width", f"must be ≥ 1, got {self.expert_width}")
        require(1 <= self.top <= self.experts, "top",
                f"must satisfy 1 ≤ top ≤ experts = {self.experts}, got {self.top}")
        require(self.r >= 1, "r", f"router rank must be ≥ 1, got {self.r}")

    @property
    def active_units(self) -> int:
        """Hidden units of the chosen experts, top · expert_width."""
        return self.top * self.expert_width

    def check(self, target, data) -> None:
        """The router rank is at most n."""
        require(self.r <= target.n, "r", f"router rank must satisfy r ≤ n = {target.n}, got {self.r}")

    def init_params(self, key: jax.Array, n: int) -> dict:
        """router (n, r), gates (r, E), w (E, width, n), b (E, width), u (E, width), c (E,), out ()."""
        E, h = self.experts, self.expert_width
        k_router, k_gates, k_w, k_b, k_u = jax.random.split(key, 5)
        gates = jax.random.normal(k_gates, (self.r, E), jnp.float32)
        bound = 1.0 / math.sqrt(n)
        return {
            "router": jax.random.normal(k_router, (n, self.r), jnp.float32) / math.sqrt(n),
            "gates": gates / jnp.linalg.norm(gates, axis=0, keepdims=True),
            "w": jax.random.normal(k_w, (E, h, n), jnp.float32) / math.sqrt(n),
            "b": jax.random.uniform(k_b, (E, h), jnp.float32, -bound, bound),
            "u": jax.random.normal(k_u, (E, h), jnp.float32) / math.sqrt(h),
            "c": jnp.zeros((E,), jnp.float32),
            "out": jnp.zeros((), jnp.float32),
        }

    def scores(self, params: dict, x: jax.Array) -> jax.Array:
        """Router scores (x A) G, shape (m, E)."""
        return jnp.matmul(jnp.matmul(x, params["router"], precision=HIGHEST), params["gates"], precision=HIGHEST)

    def routes(self, params: dict, x: jax.Array) -> jax.Array:
        """The chosen experts per input, (m, top) int32 (ties go to the lower index)."""
        return jax.lax.top_k(self.scores(params, x), self.top)[1].astype(jnp.int32)

    def gates(self, params: dict, x: jax.Array) -> jax.Array:
        """g_e(x) of every expert, (m, E): the gate on the chosen experts, 0 elsewhere."""
        scores = self.scores(params, x)
        chosen = jnp.sum(jax.nn.one_hot(jax.lax.top_k(scores, self.top)[1], self.experts, dtype=jnp.float32), axis=1)
        return chosen if self.gate == "hard" else chosen * jax.nn.softmax(scores, axis=-1)

    def expert_outputs(self, params: dict, x: jax.Array) -> jax.Array:
        """f_e(x) of every expert, (m, E)."""
        pre = jnp.einsum("mn,ehn->meh", x, params["w"], precision=HIGHEST) - params["b"]
        return jnp.sum(jax.nn.relu(pre) * params["u"], axis=2) + params["c"]

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        """Network output for x (m, n): shape (m,)."""
        return jnp.sum(self.gates(params, x) * self.expert_outputs(params, x), axis=1) + params["out"]

    def first_layer(self, params: dict) -> jax.Array:
        """The experts' first-layer weights as (n, E, width), inputs first as every learner's
        (`contracts.first_layer`); kept as (E, width, n)."""
        return jnp.moveaxis(params["w"], -1, 0)

    def from_teacher(self, teacher: dict) -> dict:
        """Student parameters equal to those of a `moe` target's `teacher` params with the same
        experts, expert_width and r: with ``hard`` gates and the teacher's top, the student
        computes the teacher's labels exactly."""
        E = teacher["u"].shape[0]
        return {"router": teacher["router"], "gates": teacher["gates"], "w": teacher["w"], "b": teacher["b"],
                "u": teacher["u"], "c": jnp.zeros((E,), jnp.float32), "out": -teacher["offset"]}
