"""Recorders: per-run arrays stored at every curve point, chosen by `train.record`.

A recorder reads one `State` of a run — the learner, the target, the current and the initial
parameters, the teacher parameters and the test inputs — and returns an array. The training
loop evaluates the recorders named in `train.record` where it evaluates its curves (step 0,
every `eval_every` steps, the last step), and the runner stores them in the results store's
traces table (`sparselearn.store.load_traces`), one row per (run, step, recorder).

Hidden units are the slices of the learner's first layer (`contracts.first_layer`, shape
(n, units…), inputs first) along axis 0: the columns of an mlp's (n, width), the (E, width)
units of a moe's (n, E, width); a single neuron's (n,) is one unit.

`RECORDERS` is the one list of names: config validation, `sparselearn list` and the docs read
it. Reading the names imports no jax; a recorder imports it when it runs.

Example:
    >>> from sparselearn.store import load_traces, trace_array
    >>> exp = sl.config.load("configs/quickstart.yaml", overrides=["train.record=[first_layer, influence]"])
    >>> sl.run(exp, "results")                                    # doctest: +SKIP
    >>> traces = load_traces("results/quickstart")                # doctest: +SKIP
    >>> run_ids, steps, w = trace_array(traces, "first_layer")    # w: (runs, points, n, width)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from sparselearn.contracts import first_layer as _first_layer

#: test inputs on which `active_fraction` and `influence` are measured (the first ones)
PROBE_INPUTS = 1024
#: inputs whose per-example gradients are held in memory at once (`active_fraction`)
PROBE_BATCH = 16


class State(NamedTuple):
    """What a recorder sees at one curve point of one run (arrays are traced under jit)."""

    learner: Any
    target: Any
    params: Any       # the learner's parameters now
    params0: Any      # … at step 0
    teacher: Any      # the target's parameters
    x_test: Any       # (test_m, n) test inputs


@dataclass(frozen=True)
class Recorder:
    """One recorder: `fn(state) -> array` (float32, the same shape at every point) and what it
    measures (its docstring's first line is what `list` shows)."""

    name: str
    fn: Callable[[State], Any]

    @property
    def summary(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]


def first_layer(s: State):
    """The learner's first-layer weights (`contracts.first_layer`), e.g. (n, width) for an mlp."""
    return _first_layer(s.learner, s.params)


def unit_norms(s: State):
    """The ℓ2 norm of each first-layer unit's incoming weights, shaped as the units: (width,)
    for a first layer (n, width), (E, width) for a moe's (n, E, width), () for a neuron's (n,)."""
    import jax.numpy as jnp

    return jnp.linalg.norm(_first_layer(s.learner, s.params), axis=0)


def active_fraction(s: State):
    """Mean fraction of first-layer units active per test input: unit j is active on x when
    the output depends on its incoming weights there (∂f(x)/∂w_j ≠ 0); a ReLU unit with a
    positive pre-activation, a kept top-k unit, a unit of a chosen expert that fires. Over the
    units of `unit_norms` and the first PROBE_INPUTS test inputs; (). This is the count of
    positive pre-activations that defines the class H_{n,s,k} wherever every unit reaches the
    output; a unit whose value is dropped further on (an output weight of exactly 0, a second
    layer dead on x) reads as inactive, as one that does not fire."""
    import jax
    import jax.numpy as jnp

    def active(x):  # 0/1 per unit for one input, units flattened
        grads = jax.grad(lambda p: s.learner.apply(p, x[None])[0])(s.params)
        g = _first_layer(s.learner, grads)
        return (jnp.abs(g).reshape(g.shape[0], -1).max(axis=0) > 0).astype(jnp.float32)

    x = s.x_test[:PROBE_INPUTS]
    return jnp.mean(jax.lax.map(active, x, batch_size=min(PROBE_BATCH, x.shape[0])))


def influence(s: State):
    """The teacher's influence of each input coordinate, (n,): the mean of
    |f*(x) − f*(x with x_i negated)| / 2 over the first PROBE_INPUTS test inputs, where f* is
    the noiseless label (for ±1 labels, the probability that negating x_i flips the label:
    1 on a parity's support, 0 off it)."""
    import jax
    import jax.numpy as jnp

    x = s.x_test[:PROBE_INPUTS]
    y = s.target.labels(s.teacher, x)

    def one(i):
        flipped = x.at[:, i].multiply(-1.0)
        return jnp.mean(jnp.abs(s.target.labels(s.teacher, flipped) - y)) / 2

    return jax.lax.map(one, jnp.arange(x.shape[1]))


def feature_correlation(s: State):
    """Pearson correlation of the learner's learned scalar feature with the target's inner
    feature on the test inputs, (): corr(learner.feature(params, x), target.feature(teacher, x))
    (e.g. `wnl_net` on a `hierarchical` target, whose feature is p); 0 for a constant feature."""
    from sparselearn.train.metrics import pearson

    _check_features(s.learner, s.target)
    return pearson(s.learner.feature(s.params, s.x_test), s.target.feature(s.teacher, s.x_test))


def _check_features(learner, target) -> None:
    """ConfigError (key train.record) naming those of `learner` and `target` without a `feature`
    method, which `feature_correlation` needs."""
    from sparselearn.errors import ConfigError

    missing = [f"{part} {obj.name}" for part, obj in (("learner", learner), ("target", target))
               if not callable(getattr(obj, "feature", None))]
    if missing:
        raise ConfigError(f"feature_correlation needs a learner and a target with a `feature` method; "
                          f"{' and '.join(missing)} have none", key="train.record")


def check(exp) -> None:
    """ConfigError (key train.record) for a recorder `exp`'s learner or target cannot feed."""
    if "feature_correlation" in exp.train.record:
        _check_features(exp.learner, exp.target)


RECORDERS: dict[str, Recorder] = {r.__name__: Recorder(r.__name__, r)
                                  for r in (first_layer, unit_norms, active_fraction, influence,
                                            feature_correlation)}
NAMES: tuple[str, ...] = tuple(RECORDERS)


def observer(exp) -> Callable:
    """The loop's `observe(params, params0, teacher, x_test) -> {name: array}` for the
    recorders of `exp.train.record`, in that order."""
    import jax.numpy as jnp

    names, learner, target = exp.train.record, exp.learner, exp.target

    def observe(params, params0, teacher, x_test):
        state = State(learner, target, params, params0, teacher, x_test)
        return {name: jnp.asarray(RECORDERS[name].fn(state), jnp.float32) for name in names}

    return observe


__all__ = ["State", "Recorder", "RECORDERS", "NAMES", "PROBE_INPUTS", "check", "observer", *NAMES]
