"""Fully connected networks with a scalar output, trained by gradient steps.

Besides the plain ReLU network, three sparse variants built on `sparselearn.primitives`:

- `activation="topk"`: each hidden layer keeps its k largest pre-activations and applies
  ReLU to them, so at most k units per layer are active; the layer after it multiplies
  only those k (`gather_matmul`).
- `init="sparse"`: each first-layer unit starts connected to `fan_in` inputs drawn at
  random without replacement (the sparse initialisation of Edelman et al., "Pareto
  frontiers in neural feature learning"). With `connectivity="fixed"` (default) it stays
  connected to exactly those during training (weight sparsity); with
  `connectivity="free"` the zero weights train like any other, as in Edelman et al.,
  where only the initialisation is sparse (needed whenever fan_in < k: a unit that sees
  fewer than k inputs cannot carry a k-parity).
- `routed=True` (with `activation="topk"`): a rank-`router_rank` router picks the k
  first-layer units per example and only those first-layer rows are computed
  (`routed_layer`); at depth 3 the second hidden layer is a top-k over all its units,
  fed by the k routed ones (`gather_matmul`).

Two options for the neural-tangent-kernel regime (Yang et al., "Neural networks with sparse
activation induced by large bias"): `parametrization="ntk"` draws every weight from N(0, 1) and
divides each layer's input by √fan_in in the forward pass, so the output's scale at
initialisation does not depend on the width; `bias_init=c` starts every hidden bias at the
constant c. With c = −β a unit fires on a unit-norm input x/√n with probability Φ(−β) at
initialisation. `learners.kernels.bias_ntk` is this network's kernel as the width grows.

How the fixed sparse connectivity survives training: the connectivity *is* the set of nonzero
first-layer weights. There is no separate mask in the parameters (`jax.grad` rejects
bool leaves, and a float mask would be shrunk by weight decay); instead the first layer
is applied as `masked_matmul(x, w, w != 0)`, whose weight gradient is zero off the mask.
A weight that is zero with zero gradient stays zero under every optimizer the training
loop offers (sgd with momentum and decay, sign-sgd, adamw), so the pattern is invariant.
(A trained weight that lands on exactly 0.0 would leave the pattern; in float32 this has
probability ~0 and would act as pruning.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.contracts import threshold_degree
from sparselearn.errors import ConfigError, require
from sparselearn.fields import OMIT_DEFAULT
from sparselearn.primitives import (
    gather_matmul,
    masked_matmul,
    random_fan_in_mask,
    routed_layer,
    routed_mlp,
    router_from_weights,
    topk_indices,
)

# Fixed streams, so the extra draws of the sparse variants never shift the standard ones.
_MASK_STREAM = 0x6D61736B   # fold_in label of the sparse-init connectivity
_ROUTER_SKETCH_SEED = 0     # the router's Gaussian sketch: the same at every step and seed


def _xavier_uniform(key: jax.Array, fan_in: int, fan_out: int) -> jax.Array:
    c = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -c, c)


def _bias_uniform(key: jax.Array, fan_in: int, shape: tuple[int, ...]) -> jax.Array:
    c = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -c, c)


@dataclass(frozen=True)
class MLP:
    """A depth-2 (one hidden layer) or depth-3 network f: R^n → R.

    `init="standard"`: Xavier-uniform weights U[±√(6/(fan_in+fan_out))] and biases
    U[±1/√fan_in], the setup of the Hidden Progress experiments.
    `init="sparse"`: first-layer unit j sees `fan_in` random inputs; its weights there are
    Xavier-uniform with fan_in in place of n, its bias U[±1/√fan_in]; all other weights
    of the unit are 0, and remain 0 unless `connectivity="free"`. Deeper layers are
    initialised as in "standard".

    `activation="topk"` needs `k` (1 ≤ k ≤ width); `routed=True` needs it too and
    replaces the first layer by the routed kernel, whose router is a rank-`router_rank`
    approximation of the first layer recomputed at every call (no router parameters,
    no gradient; exact when router_rank ≥ n). With routing, the first-layer weights are
    stored as rows, shape (width, n), because that is what the kernel gathers.

    `parametrization="ntk"` (ReLU, standard init, not routed): weights and the hidden biases
    ~ N(0, 1), and

        f(x) = Σ_j a_j relu(Σ_i w_ij x_i/√n + b_j)/√width        (depth 2; depth 3 alike)

    with no output bias (the output layer's b is kept at 0 and not used, so it never trains).
    `bias_init`: every hidden bias starts at this constant instead (needs `bias=True`); the
    output bias, if any, keeps its own initialisation. Both fields are left out of config
    hashes at their defaults.

    Example:
        >>> net = MLP(width=256, depth=2, activation="topk", k=16, init="sparse", fan_in=4)
        >>> params = net.init_params(jax.random.key(0), 30)
        >>> net.apply(params, jnp.ones((8, 30))).shape
        (8,)
    """

    width: int = 256
    depth: Literal[2, 3] = 2
    activation: Literal["relu", "topk"] = "relu"
    init: Literal["standard", "sparse"] = "standard"
    bias: bool = True
    k: int | None = None
    fan_in: int | None = None
    routed: bool = False
    router_rank: int = 8
    connectivity: Literal["fixed", "free"] = "fixed"
    parametrization: Literal["standard", "ntk"] = field(default="standard", metadata=OMIT_DEFAULT)
    bias_init: float | None = field(default=None, metadata=OMIT_DEFAULT)

    name: ClassVar[str] = "mlp"
    kind: ClassVar[str] = "gradient"

    def __post_init__(self):
        require(self.width >= 1, "width", f"must be ≥ 1, got {self.width}")
        if self.activation == "topk":
            require(self.k is not None, "k", "is required with activation: topk (units kept per layer)")
            require(1 <= self.k <= self.width, "k", f"must satisfy 1 ≤ k ≤ width = {self.width}, got {self.k}")
        else:
            require(self.k is None, "k", f"is used only with activation: topk, got activation: {self.activation}")
        if self.init == "sparse":
            require(self.fan_in is not None, "fan_in", "is required with init: sparse (inputs per first-layer unit)")
            require(self.fan_in >= 1, "fan_in", f"must be ≥ 1, got {self.fan_in}")
        else:
            require(self.fan_in is None, "fan_in", f"is used only with init: sparse, got init: {self.init}")
            require(self.connectivity == "fixed", "connectivity", "is used only with init: sparse")
        require(self.router_rank >= 1, "router_rank", f"must be ≥ 1, got {self.router_rank}")
        if self.routed:
            require(self.activation == "topk", "routed", "needs activation: topk (the router picks k units)")
        else:
            require(self.router_rank == type(self).router_rank, "router_rank",
                    f"is used only with routed: true, got {self.router_rank}")
        require(self.parametrization in ("standard", "ntk"), "parametrization",
                f"must be 'standard' or 'ntk', got {self.parametrization!r}")
        if self.parametrization == "ntk":
            require(self.activation == "relu" and self.init == "standard" and not self.routed, "parametrization",
                    "ntk is implemented for activation: relu, init: standard, routed: false")
        if self.bias_init is not None:
            require(self.bias, "bias_init", "needs bias: true (the hidden biases it sets)")
            require(math.isfinite(self.bias_init), "bias_init", f"must be a finite number, got {self.bias_init}")

    def check(self, target, data) -> None:
        """Limits that depend on the target: fan_in ≤ n; and a depth-2 ReLU net with fixed
        connectivity and fan_in below the target's threshold degree (k for a k-sparse parity)
        cannot sign-represent it (its output is a sum of functions of fan_in inputs each; not
        so with top-k, whose choice of units depends on all of them)."""
        if self.fan_in is None:
            return
        require(self.fan_in <= target.n, "fan_in", f"must be ≤ n = {target.n} (inputs), got {self.fan_in}")
        degree = threshold_degree(target)
        if self._masked and self.depth == 2 and self.activation == "relu" and degree is not None:
            require(self.fan_in >= degree, "connectivity",
                    f"fixed with fan_in = {self.fan_in} < {degree} = the target's threshold degree: no unit sees "
                    f"all {degree} relevant inputs, so this network cannot represent {target.name}; use "
                    "connectivity: free (Edelman et al.'s sparse initialisation, all weights trained) or "
                    f"fan_in ≥ {degree}")

    def init_params(self, key: jax.Array, n: int) -> list[dict]:
        """Parameters: one {"w": (fan_in, fan_out), "b": (fan_out,)} per layer; the last
        layer has w (width,) and b () so the output is a vector of shape (m,).
        With `bias=False` the biases are zeros that `apply` ignores. With `routed=True`
        the first layer's w is stored transposed, (width, n)."""
        sizes = [n] + [self.width] * (self.depth - 1) + [1]
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            kw, kb = jax.random.split(jax.random.fold_in(key, i))
            if i == 0 and self.init == "sparse":
                layers.append(self._sparse_first_layer(key, kw, kb, n))
                continue
            if self.parametrization == "ntk":
                w = jax.random.normal(kw, (fan_in, fan_out), jnp.float32)
                b = jax.random.normal(kb, (fan_out,), jnp.float32) if self.bias else jnp.zeros((fan_out,), jnp.float32)
            else:
                w = _xavier_uniform(kw, fan_in, fan_out)
                b = _bias_uniform(kb, fan_in, (fan_out,)) if self.bias else jnp.zeros((fan_out,), jnp.float32)
            layers.append({"w": w, "b": b})
        if self.bias_init is not None:
            layers[:-1] = [{**layer, "b": jnp.full_like(layer["b"], self.bias_init)} for layer in layers[:-1]]
        if self.parametrization == "ntk":
            layers[-1] = {**layers[-1], "b": jnp.zeros_like(layers[-1]["b"])}
        layers[-1] = {"w": layers[-1]["w"][:, 0], "b": layers[-1]["b"][0]}
        if self.routed:
            layers[0] = {"w": layers[0]["w"].T, "b": layers[0]["b"]}
        return layers

    def _sparse_first_layer(self, key, kw, kb, n: int) -> dict:
        if self.fan_in > n:
            raise ConfigError(f"must be ≤ n = {n} (inputs), got {self.fan_in}", key="fan_in")
        mask = random_fan_in_mask(jax.random.fold_in(key, _MASK_STREAM), n, self.width, self.fan_in)
        c = math.sqrt(6.0 / (self.fan_in + self.width))  # Xavier with the unit's true fan-in
        w = jax.random.uniform(kw, (n, self.width), jnp.float32, -c, c)
        # The pattern is read back as w != 0, so a kept weight must not be drawn as exactly 0.
        w = jnp.where(w == 0, jnp.finfo(jnp.float32).tiny, w)
        w = jnp.where(mask, w, 0.0)
        b = _bias_uniform(kb, self.fan_in, (self.width,)) if self.bias else jnp.zeros((self.width,), jnp.float32)
        return {"w": w, "b": b}

    @property
    def _masked(self) -> bool:
        """Whether the first layer's zero weights are held at zero."""
        return self.init == "sparse" and self.connectivity == "fixed"

    def first_layer(self, params: list[dict]) -> jax.Array:
        """The first layer's weights (n, width), one hidden unit per column, whose drift the
        training curves record (a routed layer keeps them as (width, n) for its gather)."""
        return params[0]["w"].T if self.routed else params[0]["w"]

    def apply(self, params: list[dict], x: jax.Array) -> jax.Array:
        """Network output for x (m, n): shape (m,)."""
        if self.activation == "relu" and not self._masked:
            return self._apply_dense(params, x)
        if self.routed and self.depth == 2:
            out = routed_mlp(x, *self._routed_first_layer(params[0]), params[-1]["w"], self.k)
            return out + params[-1]["b"] if self.bias else out
        h, active = x, None  # active: (values, idx) of the previous top-k layer
        for i, layer in enumerate(params[:-1]):
            if i == 0 and self.routed:
                z, idx = routed_layer(x, *self._routed_first_layer(layer), self.k)
                active = (jax.nn.relu(z), idx)
                continue
            w = layer["w"]
            if active is not None:
                z = gather_matmul(*active, w)
            elif i == 0 and self._masked:
                z = masked_matmul(h, w, w != 0)
            else:
                z = h @ w
            if self.bias:
                z = z + layer["b"]
            if self.activation == "topk":
                values, idx = topk_indices(z, self.k)
                active = (jax.nn.relu(values), idx)
            else:
                h = jax.nn.relu(z)
        out = gather_matmul(*active, params[-1]["w"]) if active is not None else h @ params[-1]["w"]
        return out + params[-1]["b"] if self.bias else out

    def _apply_dense(self, params: list[dict], x: jax.Array) -> jax.Array:
        if self.parametrization == "ntk":
            return self._apply_ntk(params, x)
        h = x
        for layer in params[:-1]:
            h = h @ layer["w"] + layer["b"] if self.bias else h @ layer["w"]
            h = jax.nn.relu(h)
        out = h @ params[-1]["w"]
        return out + params[-1]["b"] if self.bias else out

    def _apply_ntk(self, params: list[dict], x: jax.Array) -> jax.Array:
        h = x
        for layer in params[:-1]:
            z = h @ layer["w"] * (1.0 / math.sqrt(h.shape[-1]))
            h = jax.nn.relu(z + layer["b"] if self.bias else z)
        return h @ params[-1]["w"] * (1.0 / math.sqrt(h.shape[-1]))

    def _routed_first_layer(self, first: dict) -> tuple:
        """(router, w1 (width, n), b1 (width,)): the arguments of the routed kernels."""
        w1 = first["w"]
        if self._masked:
            w1 = jnp.where(w1 != 0, w1, 0.0)  # same values; the gradient is masked (an O(width·n) pass)
        b1 = first["b"] if self.bias else jnp.zeros_like(first["b"])
        return router_from_weights(w1, self.router_rank, seed=_ROUTER_SKETCH_SEED), w1, b1
