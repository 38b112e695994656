"""Lottery-ticket runs: keep K hidden units of a network, rewound to their initial weights, and
train that width-K network (`train.rewind: K`).

Which units: `train.rewind_pick: largest` trains the full network first — the same run, with the
same keys, as the experiment without `rewind` — and keeps the K units with the largest final
|a_j|·‖w_j‖₂ (output weight times the norm of the incoming weights); `random` keeps K units
drawn uniformly without replacement from the run's initialisation key. Either way the kept units
start from their initial input weights, biases and output weights, and everything the run
stores (curves, final metrics, traces) is the width-K network's. So a lottery-ticket experiment
is a config like any other: its stored runs need nothing from another experiment's store.

Defined for depth-2 `mlp` learners of the standard parametrization (parameters [{"w": (n, width), "b": (width,)},
{"w": (width,), "b": ()}]).

Example:
    >>> parent = sl.config.load("configs/quickstart.yaml", overrides=["learner.width=100"])
    >>> exp = sl.config.override(parent, experiment="ticket", train={"rewind": 5})
    >>> sl.run(exp)      # each run: train width 100, keep its 5 strongest units, rewind, retrain  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace

from sparselearn.errors import ConfigError

#: fold_in label of the key that draws the random units (from the run's initialisation key)
RANDOM_STREAM = 0x7265776E


def check(exp) -> None:
    """ConfigError (key train.rewind) unless `exp` can be rewound: a depth-2 mlp without routing,
    standard parametrization, learner.k (top-k) ≤ K ≤ width."""
    k, learner = exp.train.rewind, exp.learner
    if k is None:
        return
    if learner.name != "mlp" or getattr(learner, "depth", None) != 2 or getattr(learner, "routed", False):
        raise ConfigError(f"is defined for depth-2 mlp learners without routing, got {learner.name}",
                          key="train.rewind")
    if getattr(learner, "parametrization", "standard") != "standard":
        # the width-K ntk net divides by √K, not √width: it would not be the kept units' network
        raise ConfigError(f"is defined for the standard parametrization, got learner.parametrization = "
                          f"{learner.parametrization!r}", key="train.rewind")
    if k > learner.width:
        raise ConfigError(f"keeps {k} units of a network of width {learner.width}: must be ≤ the width",
                          key="train.rewind")
    kept = getattr(learner, "k", None)  # a top-k activation keeps that many units of the width-K net too
    if kept is not None and k < kept:
        raise ConfigError(f"keeps {k} units, fewer than the {kept} the top-k activation keeps (learner.k): "
                          f"must be ≥ {kept}", key="train.rewind")


def unit_weights(params):
    """|a_j|·‖w_j‖₂ of every hidden unit of a depth-2 mlp, (width,)."""
    import jax.numpy as jnp

    return jnp.abs(params[1]["w"]) * jnp.linalg.norm(params[0]["w"], axis=0)


def restrict(params, units):
    """The depth-2 mlp parameters of the hidden units `units` (K,) alone (the output bias kept)."""
    first, last = params
    return [{"w": first["w"][:, units], "b": first["b"][units]}, {"w": last["w"][units], "b": last["b"]}]


def rewound(exp, make_run):
    """(the width-K experiment the run trains, its `init(key, hp)` hook) for an experiment with
    `train.rewind: K`; `make_run` builds the full network's run when the units are picked by
    their trained weights."""
    import jax

    k, learner, n = exp.train.rewind, exp.learner, exp.target.n
    full = replace(exp, train=replace(exp.train, rewind=None, rewind_pick="largest", record=()))
    child = replace(exp, learner=replace(learner, width=k), train=replace(exp.train, rewind=None,
                                                                            rewind_pick="largest"))
    trained = None
    if exp.train.rewind_pick == "largest":
        trained = make_run(full, observe=lambda p, p0, teacher, x_test: {"unit_weights": unit_weights(p)})

    def init(key, hp):
        params0 = learner.init_params(key, n)
        if trained is None:
            units = jax.random.choice(jax.random.fold_in(key, RANDOM_STREAM), learner.width, (k,), replace=False)
        else:
            out = trained(hp)  # its last evaluated point (the run may have stopped at eps)
            units = jax.lax.top_k(out["trace_unit_weights"][out["evaluated"] - 1], k)[1]
        return restrict(params0, units)

    return child, init


__all__ = ["RANDOM_STREAM", "check", "unit_weights", "restrict", "rewound"]
