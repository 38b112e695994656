"""The ResNet-like three-layer network of Wang–Nichani–Lee's experiment (ICLR 2024, arXiv 2311.13774),
trained jointly by the training loop (kind "gradient": every parameter moves under the
loop's optimizer, e.g. Adam), unlike `layerwise`, which fits the same shape in two stages.

    h_j(x)     = ⟨v_j, x⟩/√n                                  j ≤ m1 (≈ N(0, 1) at init)
    feature(x) = (1/m1) Σ_j u_j σ1(h_j(x)) + ⟨w, x⟩/√n          σ1(z) = z³; the linear term is the skip
    f(x)       = (1/m2) Σ_i a_i σ2(c_i·feature(x) + b_i)       σ2 = ReLU

The feature is a scalar: a width-1 bottleneck between the inner random-feature block and the
outer two-layer block. (The skip carries the linear part of the feature: He₃(z) = z³ − 3z, so
p = Σ λ_i He₃(x_i) needs a linear term next to the cubic units. Where exactly the paper puts its
skip is [U]; ours is this linear path from x to the feature.)

µP scaling (maximal-update parametrization for Adam; the paper's exact formula is [U]). Every
parameter is stored with entries of order 1 (N(0, 1) at init; w starts at 0) and multiplied in
the forward pass, so one Adam learning rate moves each layer as µP prescribes:

    layer            multiplier   effective init std   effective Adam step
    v (n × m1)       1/√n         1/√n                 lr/√n       input layer: width-free
    w skip (n)       1/√n         0                    lr/√n       input layer
    u (m1 → 1)       1/m1         1/m1                 lr/m1       output layer of the inner block
    c, b (1 → m2)    1            1                    lr          input layer of the outer block (fan-in 1)
    a (m2 → 1)       1/m2         1/m2                 lr/m2       output layer

So at initialisation the feature and the output are O(1/√width) (they vanish as the widths
grow, as in µP), while the change of the feature and of the output made by one Adam step is
Θ(1) whatever m1 and m2 are: the property the tests check.

Example:
    >>> net = WNLNet(m2=1000)                          # m1 = n² by default
    >>> params = net.init_params(jax.random.key(0), 16)
    >>> params["v"].shape, params["a"].shape
    ((16, 256), (1000,))
    >>> x = jnp.ones((8, 16))
    >>> net.apply(params, x).shape, net.feature(params, x).shape
    ((8,), (8,))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from sparselearn.errors import require

HIGHEST = jax.lax.Precision.HIGHEST


@dataclass(frozen=True)
class WNLNet:
    """Joint-training three-layer net with a scalar bottleneck feature (module docstring).

    Fields (defaults): `m1` (inner width; null: n², the paper's choice), `m2` (1000, outer
    ReLU width), `skip` (true: the linear skip term ⟨w, x⟩/√n in the feature).

    Example:
        >>> WNLNet(m1=64, m2=32).init_params(jax.random.key(0), 8)["v"].shape
        (8, 64)
    """

    m1: int | None = None
    m2: int = 1000
    skip: bool = True

    name: ClassVar[str] = "wnl_net"
    kind: ClassVar[str] = "gradient"

    def __post_init__(self):
        require(self.m1 is None or self.m1 >= 1, "m1", f"must be null (n²) or ≥ 1, got {self.m1}")
        require(self.m2 >= 1, "m2", f"must be ≥ 1, got {self.m2}")
        require(isinstance(self.skip, bool), "skip", f"must be true or false, got {self.skip!r}")

    def inner_width(self, n: int) -> int:
        """m1 for input dimension n (n² unless set)."""
        return n * n if self.m1 is None else self.m1

    def init_params(self, key: jax.Array, n: int) -> dict:
        """{"v": (n, m1), "u": (m1,), "w": (n,), "c", "b", "a": (m2,)}, stored at scale 1."""
        m1 = self.inner_width(n)
        kv, ku, kc, kb, ka = jax.random.split(key, 5)
        normal = lambda k, shape: jax.random.normal(k, shape, jnp.float32)  # noqa: E731
        return {"v": normal(kv, (n, m1)), "u": normal(ku, (m1,)), "w": jnp.zeros((n,), jnp.float32),
                "c": normal(kc, (self.m2,)), "b": normal(kb, (self.m2,)), "a": normal(ka, (self.m2,))}

    def feature(self, params: dict, x: jax.Array) -> jax.Array:
        """The learned scalar feature of x (m, n): shape (m,)."""
        n, m1 = params["v"].shape
        h = jnp.matmul(x, params["v"], precision=HIGHEST) / math.sqrt(n)
        z = jnp.matmul(h ** 3, params["u"], precision=HIGHEST) / m1
        if self.skip:
            z = z + jnp.matmul(x, params["w"], precision=HIGHEST) / math.sqrt(n)
        return z

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        """f(x), shape (m,)."""
        z = self.feature(params, x)
        hidden = jax.nn.relu(z[:, None] * params["c"][None, :] + params["b"][None, :])
        return jnp.matmul(hidden, params["a"], precision=HIGHEST) / params["a"].shape[0]

    def first_layer(self, params: dict) -> jax.Array:
        """The inner block's input weights as applied, v/√n: (n, m1)."""
        return params["v"] / math.sqrt(params["v"].shape[0])


def fitted_feature_correlation(exp, runs):
    """|corr(learner.feature(params, x), target.feature(teacher, x))| on the test inputs of the
    runs of `exp`, whose learner is a fitted one with a `feature` method (e.g. `layerwise`, the
    second arm of WNL-2): each run is refitted on its own rows with its own key and its own
    values of every run axis (seed, m, noise, init_seed, …: the columns of `runs`, a stored
    runs table or a mapping of lists; missing ones are the config's), as the training loop
    fits it, so the fit is the stored run's. (A trained learner's correlation is the
    `feature_correlation` recorder instead; both give 0 for a constant feature.) Returns
    (len(runs["seed"]),) numpy.

    Example:
        >>> fitted_feature_correlation(exp, runs)       # doctest: +SKIP
        array([0.93, ...], dtype=float32)
    """
    import numpy as np
    import pandas as pd

    from sparselearn.train import spec
    from sparselearn.train.loop import make_fit
    from sparselearn.train.metrics import pearson

    learner, target, fit = exp.learner, exp.target, make_fit(exp)

    def one(hp):
        params, teacher, _, (x_test, _) = fit(hp)
        return jnp.abs(pearson(learner.feature(params, x_test), target.feature(teacher, x_test)))

    # a value the store leaves empty is the config's: lr of a fitted run (NaN), an unset init_seed (<NA>)
    given = {a: [None if pd.isna(v) else v for v in runs[a]] for a in spec.NAMES if a in runs}
    hps = spec.hp_arrays(exp, {a: v for a, v in given.items() if any(x is not None for x in v)})
    return np.asarray(jax.jit(jax.vmap(one))(hps))
