"""Polynomial networks for parities: PolyNet (a product of linear forms) and MLPs with the
activation z^power. Both are gradient learners (`init_params` / `apply`).

- `PolyNet` (``polynet``): f(x) = Π_{i=1}^{factors} ⟨w_i, x⟩, configuration (xv) of Barak et
  al., "Hidden progress in deep learning"; with `disjoint: true` factor i sees only the i-th
  block of n/factors coordinates (the disjoint-PolyNet of their Theorems 6–7).
- `PolyMLP` (``polymlp``): hidden layers z ↦ z^power, then a linear scalar readout, trained
  or fixed at random signs. One hidden layer of power k is Barak et al. (iv)–(vi); 2^{k+2}
  units with power k, a fixed ±1 readout and sign initialisation is the network of Kou et
  al., "Matching the SQ lower bound for k-sparse parities with sign SGD"; hidden (2, 1) or
  (10, 10, 1) with power 2 is the quadratic depth counterexample of Barak et al. App. C.7.

Initialisation, shared by both (and by `neuron`): `init: xavier` draws U[±scale·√(6/(fan_in +
fan_out))], `gaussian` draws N(0, scale²/fan_in), `sign` draws ±scale with equal probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.errors import require
from sparselearn.fields import OMIT_DEFAULT

Init = Literal["xavier", "gaussian", "sign"]

_READOUT_STREAM = 0x72656164  # fold_in label of the readout draw, apart from the layers' keys


def draw_weights(key: jax.Array, init: str, scale: float, shape: tuple[int, ...], fan_in: int,
                 fan_out: int) -> jax.Array:
    """Weights of one affine map (fan_in → fan_out) of the given shape, as in the module doc."""
    if init == "sign":
        return scale * jax.random.rademacher(key, shape, jnp.float32)
    if init == "gaussian":
        return (scale / math.sqrt(fan_in)) * jax.random.normal(key, shape, jnp.float32)
    c = scale * math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -c, c)


def check_scale(scale: float) -> None:
    require(math.isfinite(scale) and scale > 0, "scale", f"must be a finite number > 0, got {scale}")


@dataclass(frozen=True)
class PolyNet:
    """f(x) = Π_{i=1}^{factors} ⟨w_i, x⟩, a degree-`factors` polynomial of x.

    Parameters: {"w": (factors, n)}; with `disjoint=True`, {"w": (factors, n // factors)},
    row i acting on coordinates [i·n/factors, (i+1)·n/factors). `first_layer` is wᵀ.

    With w_i = e_{s_i} (the unit vector of the i-th coordinate of S) the output is exactly
    χ_S(x), so a `factors`-sparse parity is representable; for the disjoint variant this
    needs one coordinate of S in each block.

    Example:
        >>> net = PolyNet(factors=3)
        >>> params = net.init_params(jax.random.key(0), 30)
        >>> params["w"].shape, net.apply(params, jnp.ones((8, 30))).shape
        ((3, 30), (8,))
    """

    factors: int = 3
    disjoint: bool = False
    init: Init = "xavier"
    scale: float = 1.0

    name: ClassVar[str] = "polynet"
    kind: ClassVar[str] = "gradient"

    def __post_init__(self):
        require(self.factors >= 1, "factors", f"must be ≥ 1, got {self.factors}")
        check_scale(self.scale)

    def check(self, target, data) -> None:
        """factors ≤ n, and n divisible by factors when disjoint."""
        n = target.n
        require(self.factors <= n, "factors", f"must be ≤ n = {n} (inputs), got {self.factors}")
        if self.disjoint:
            require(n % self.factors == 0, "factors",
                    f"disjoint: true needs n = {n} divisible by factors = {self.factors}")

    def init_params(self, key: jax.Array, n: int) -> dict:
        """{"w": (factors, n)} or, disjoint, {"w": (factors, n // factors)}."""
        self.check(_Inputs(n), None)
        fan_in = n // self.factors if self.disjoint else n
        return {"w": draw_weights(key, self.init, self.scale, (self.factors, fan_in), fan_in, 1)}

    def first_layer(self, params: dict) -> jax.Array:
        """w as (fan_in, factors): one factor's incoming weights per column."""
        return params["w"].T

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        """Output for x (m, n): shape (m,)."""
        w = params["w"]
        if self.disjoint:
            blocks = x.reshape(x.shape[0], self.factors, w.shape[1])
            forms = jnp.einsum("mfb,fb->mf", blocks, w)
        else:
            forms = x @ w.T
        return jnp.prod(forms, axis=1)


@dataclass(frozen=True)
class PolyMLP:
    """Hidden layers h ↦ (h W + b)^power of widths `hidden`, then a scalar readout h·a + c.

    Parameters: {"layers": [{"w": (fan_in, fan_out), "b": (fan_out,)}, …] one per hidden
    layer, "readout": {"a": (hidden[-1],), "c": ()}}; `first_layer(params)` is
    params["layers"][0]["w"], shape (n, hidden[0]), column j the weights of unit j. With
    `bias=False` the b entries are zeros that `apply` ignores; the readout offset c is used
    only with `bias=True` and a trained readout.

    `readout: fixed`: a_j = ±1, drawn from the init key and never trained (Kou et al.). The
    signs stay in params["readout"]["a"] but `apply` uses only their sign bits behind a
    stop_gradient, so the gradient is zero and weight decay — which shrinks every leaf —
    cannot change the function (a decayed entry keeps its sign, even when it underflows to ±0).
    The stored readout is initialised like the layers (`init`, `scale`: ±scale under `init: sign`),
    but only its signs enter the output, so its scale has no effect.

    `trained_layers`: the layers of weights training updates, numbered 0 … L − 1 from the input
    (L − 1 is the readout); None (default) trains all. The others keep their initial values:
    `apply` reads them behind a stop_gradient (zero gradient: no optimizer moves them; weight
    decay, which shrinks every leaf, would, so a config with both is refused). Training one layer
    alone is the layerwise arm of Barak et al. App. C.7.

    The output is a polynomial of degree power^len(hidden). A k-sparse parity needs
    k ≤ power^len(hidden) and enough units (one unit of power 3 cannot give x1x2x3): e.g.
    hidden (2, 1), power 2, with biases: the first layer computes (x1 + x2)²/2 = 1 + x1x2 and
    (x3 + x4)²/2 = 1 + x3x4, the second (h1 + h2 − 2)² = 2 + 2·x1x2x3x4, and the readout
    ½h − 1 = x1x2x3x4.

    Example:
        >>> net = PolyMLP(hidden=(16,), power=3, readout="fixed", init="sign")
        >>> params = net.init_params(jax.random.key(0), 20)
        >>> params["layers"][0]["w"].shape, net.apply(params, jnp.ones((8, 20))).shape
        ((20, 16), (8,))
    """

    hidden: tuple[int, ...] = (64,)
    power: int = 2
    readout: Literal["trained", "fixed"] = "trained"
    init: Init = "xavier"
    scale: float = 1.0
    bias: bool = True
    trained_layers: tuple[int, ...] | None = field(default=None, metadata=OMIT_DEFAULT)

    name: ClassVar[str] = "polymlp"
    kind: ClassVar[str] = "gradient"

    def __post_init__(self):
        require(len(self.hidden) >= 1, "hidden", "needs at least one hidden layer, e.g. [64]")
        for i, r in enumerate(self.hidden):
            require(r >= 1, f"hidden[{i}]", f"a width must be ≥ 1, got {r}")
        require(self.power >= 1, "power", f"must be an integer ≥ 1, got {self.power}")
        check_scale(self.scale)
        if self.trained_layers is not None:
            depth = len(self.hidden) + 1
            require(len(self.trained_layers) >= 1 and all(0 <= i < depth for i in self.trained_layers),
                    "trained_layers", f"layers are numbered 0 … {depth - 1} (the readout is {depth - 1}), "
                    f"got {list(self.trained_layers)}")
            require(not (self.readout == "fixed" and set(self.trained_layers) == {depth - 1}), "trained_layers",
                    f"only the readout ({depth - 1}) is trained, and readout: fixed freezes it: nothing would "
                    "train; add a hidden layer or set readout: trained")

    @property
    def width(self) -> int:
        """The first hidden layer's width (what the results table records as `width`)."""
        return self.hidden[0]

    @property
    def depth(self) -> int:
        """Layers of weights, L = len(hidden) + 1 (recorded as `depth` in the results table)."""
        return len(self.hidden) + 1

    @property
    def degree(self) -> int:
        """Degree of the output as a polynomial of x."""
        return self.power ** len(self.hidden)

    def init_params(self, key: jax.Array, n: int) -> dict:
        sizes = (n, *self.hidden)
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            kw, kb = jax.random.split(jax.random.fold_in(key, i))
            w = draw_weights(kw, self.init, self.scale, (fan_in, fan_out), fan_in, fan_out)
            b = (jax.random.uniform(kb, (fan_out,), jnp.float32, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
                 if self.bias else jnp.zeros((fan_out,), jnp.float32))
            layers.append({"w": w, "b": b})
        ka = jax.random.fold_in(key, _READOUT_STREAM)
        a = draw_weights(ka, self.init, self.scale, (self.hidden[-1],), self.hidden[-1], 1)
        if self.readout == "fixed":
            a = jnp.where(jax.random.bernoulli(ka, 0.5, a.shape), 1.0, -1.0)
        return {"layers": layers, "readout": {"a": a, "c": jnp.zeros((), jnp.float32)}}

    def first_layer(self, params: dict) -> jax.Array:
        return params["layers"][0]["w"]

    def _held(self, params: dict) -> dict:
        """`params` with the layers outside `trained_layers` behind a stop_gradient."""
        if self.trained_layers is None:
            return params
        hold = [i not in self.trained_layers for i in range(self.depth)]
        layers = [jax.lax.stop_gradient(p) if h else p for p, h in zip(params["layers"], hold)]
        readout = jax.lax.stop_gradient(params["readout"]) if hold[-1] else params["readout"]
        return {**params, "layers": layers, "readout": readout}

    def readout_weights(self, params: dict) -> jax.Array:
        """The readout a as `apply` uses it: ±1 from the sign bits when fixed."""
        a = params["readout"]["a"]
        if self.readout == "fixed":
            return jax.lax.stop_gradient(jnp.where(jnp.signbit(a), -1.0, 1.0))
        return a

    def hidden_output(self, params: dict, x: jax.Array) -> jax.Array:
        """The last hidden layer for x (m, n): shape (m, hidden[-1])."""
        h = x
        for layer in self._held(params)["layers"]:
            z = h @ layer["w"]
            if self.bias:
                z = z + layer["b"]
            h = z ** self.power
        return h

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        """Output for x (m, n): shape (m,)."""
        held = self._held(params)
        out = self.hidden_output(held, x) @ self.readout_weights(held)
        if self.bias and self.readout == "trained":
            out = out + held["readout"]["c"]
        return out


@dataclass(frozen=True)
class _Inputs:
    """Stands in for a target in `check` when only n is known."""

    n: int
