"""One training run as a pure function, and a group of runs as one compiled program.

`make_run(exp)` returns `run(hp) -> outputs` where `hp` holds the run's non-shape
values — seed, m, lr, weight_decay — as scalars. Everything else in `exp` (n, width,
batch, steps, …) is a shape or a static choice, so

    run_group = jit(vmap(make_run(exp)))

trains any number of runs of one shape group in one compiled program: datasets drawn at
the group's largest m (row i from its own key, so the first m rows do not depend on the
group), mini-batches indexed below each run's own m, `lax.scan` over steps with the
evaluation every `eval_every` steps inside the scan.

Example:
    >>> out = run_group(cfg, {"seed": [0, 1], "m": [256, 1024], "lr": [.1, .1], "weight_decay": [0., 0.]})
    >>> out["test_error"].shape
    (2,)
"""

from __future__ import annotations

import functools
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparselearn.config import Experiment
from sparselearn.rng import key_for
from sparselearn.train import optimizers
from sparselearn.train.losses import LOSSES
from sparselearn.train.metrics import pointwise_error, weighted_mean

HP_FIELDS = ("seed", "m", "lr", "weight_decay")
HP_DTYPES = {"seed": np.int32, "m": np.int32, "lr": np.float32, "weight_decay": np.float32}


def curve_steps(exp: Experiment) -> np.ndarray:
    """Steps at which curves are evaluated: 0, E, 2E, …, and `steps` (E = eval_every)."""
    steps, every = exp.train.steps, exp.train.eval_every
    points = list(range(0, steps + 1, every))
    if points[-1] != steps:
        points.append(steps)
    return np.asarray(points, dtype=np.int64)


def draw_dataset(target, params, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """m examples, row i drawn from fold_in(key, i): the first rows of a larger draw equal
    a smaller draw, so a run's data do not depend on the group it runs in."""
    rows = jax.vmap(lambda i: target.sample(params, jax.random.fold_in(key, i), 1))(jnp.arange(m))
    x, y = rows
    return x[:, 0, :], y[:, 0]


def make_run(exp: Experiment):
    """The pure function hp → outputs of one run of `exp` (data.m = the largest m it serves)."""
    target, learner, tr, data = exp.target, exp.learner, exp.train, exp.data
    clean = replace(target, noise=0.0) if getattr(target, "noise", 0.0) else target
    loss_of = LOSSES[tr.loss]
    task = target.task
    every, n_chunks = tr.eval_every, tr.steps // tr.eval_every
    rest = tr.steps - n_chunks * every
    points = curve_steps(exp)

    def evaluate(params, x, y, weights=None):
        f = learner.apply(params, x)
        return (weighted_mean(pointwise_error(f, y, task), weights),
                weighted_mean(loss_of(f, y), weights))

    def run(hp):
        with jax.default_matmul_precision(tr.precision):
            return _run(hp)

    def _run(hp):
        seed = hp["seed"]
        teacher = target.init(key_for(seed, "teacher"))
        x_test, y_test = clean.sample(teacher, key_for(seed, "test_data"), data.test_m)
        if not data.online:
            x_train, y_train = draw_dataset(target, teacher, key_for(seed, "train_data"), data.m)
        batch_key = key_for(seed, "batches")

        def batch_at(step):
            key = jax.random.fold_in(batch_key, step)
            if data.online:
                return target.sample(teacher, key, tr.batch)
            idx = jax.random.randint(key, (tr.batch,), 0, hp["m"])
            return x_train[idx], y_train[idx]

        params = learner.init_params(key_for(seed, "init"), target.n)
        opt = optimizers.make(tr.optimizer, hp["lr"], hp["weight_decay"], tr.momentum, tr.sign_threshold)
        opt_state = opt.init(params)

        def objective(p, xb, yb):
            f = learner.apply(p, xb)
            return jnp.mean(loss_of(f, yb)), f

        def step(carry, t):
            params, opt_state, finite = carry
            xb, yb = batch_at(t)
            (loss, f), grads = jax.value_and_grad(objective, has_aux=True)(params, xb, yb)
            updates, opt_state = opt.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            err = jnp.mean(pointwise_error(f, yb, task))
            return (params, opt_state, finite & jnp.isfinite(loss)), (loss, err)

        def chunk(carry, start, length):
            carry, (losses, errs) = jax.lax.scan(step, carry, start + jnp.arange(length))
            test_err, test_loss = evaluate(carry[0], x_test, y_test)
            return carry, (jnp.mean(losses), jnp.mean(errs), test_err, test_loss)

        # step 0: the untrained network (train loss on the first mini-batch)
        train_err0, train_loss0 = evaluate(params, *batch_at(0))
        first = (train_loss0, train_err0, *evaluate(params, x_test, y_test))
        carry = (params, opt_state, jnp.bool_(True))
        carry, curve = jax.lax.scan(lambda c, s: chunk(c, s, every), carry, jnp.arange(n_chunks) * every)
        curve = [jnp.concatenate([jnp.atleast_1d(a), b]) for a, b in zip(first, curve)]
        if rest:
            carry, tail = chunk(carry, n_chunks * every, rest)
            curve = [jnp.concatenate([c, jnp.atleast_1d(t)]) for c, t in zip(curve, tail)]
        params, _, finite = carry
        train_loss_c, train_err_c, test_err_c, test_loss_c = curve

        if data.online:  # no fixed training set: the last evaluation window's mini-batches
            train_error, train_loss = train_err_c[-1], train_loss_c[-1]
        else:
            weights = (jnp.arange(data.m) < hp["m"]).astype(jnp.float32)
            train_error, train_loss = evaluate(params, x_train, y_train, weights)

        reached = test_err_c <= tr.eps
        steps_to_eps = jnp.where(jnp.any(reached), jnp.asarray(points)[jnp.argmax(reached)], -1)
        return {
            "test_error": test_err_c[-1], "test_loss": test_loss_c[-1],
            "train_error": train_error, "train_loss": train_loss,
            "steps_to_eps": steps_to_eps, "finite": finite & jnp.all(jnp.isfinite(train_loss_c)),
            "curve_train_loss": train_loss_c, "curve_train_error": train_err_c,
            "curve_test_error": test_err_c, "curve_test_loss": test_loss_c,
        }

    return run


def static_part(exp: Experiment) -> Experiment:
    """`exp` with the vmapped values neutralised: equal static parts ⇒ one compile group.
    (data.m stays: the group sets it to its largest m.)"""
    return replace(exp, experiment="", train=replace(exp.train, lr=1.0, weight_decay=0.0),
                   sweep=type(exp.sweep)(), executor=type(exp.executor)())


@functools.lru_cache(maxsize=64)
def compiled_group(static: Experiment):
    """jit(vmap(run)) for one static experiment, cached so a shape group compiles once."""
    run = make_run(static)

    def run_group(hps):
        return jax.vmap(run)(hps)

    return jax.jit(run_group)


def run_group(exp: Experiment, hps: dict) -> dict[str, np.ndarray]:
    """Train every run of one shape group in one compiled program.

    hps: {"seed", "m", "lr", "weight_decay"} → equal-length 1-D sequences (R,). Missing
    m/lr/weight_decay default to the config's. Returns numpy arrays: (R,) metrics and
    (R, P) curves at `curve_steps(exp)`.
    """
    size = len(hps["seed"])
    defaults = {"m": exp.data.m, "lr": exp.train.lr, "weight_decay": exp.train.weight_decay}
    arrays = {}
    for name in HP_FIELDS:
        values = hps.get(name, [defaults.get(name)] * size)
        arrays[name] = np.asarray(values, dtype=HP_DTYPES[name]).reshape(size)
    if not exp.data.online and int(arrays["m"].max()) > exp.data.m:
        raise ValueError(f"a run's m = {int(arrays['m'].max())} exceeds the group's data.m = {exp.data.m}")
    static = static_part(exp)
    out = compiled_group(static)(arrays)
    return {k: np.asarray(v) for k, v in out.items()}


def run_one(exp: Experiment, seed: int = 0, **hp) -> dict[str, np.ndarray]:
    """One run alone (a group of one): metrics as 0-d arrays, curves as (P,)."""
    out = run_group(exp, {"seed": [seed], **{k: [v] for k, v in hp.items()}})
    return {k: v[0] for k, v in out.items()}
