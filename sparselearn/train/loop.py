"""One training run as a pure function, and a group of runs as one compiled program.

`make_run(exp)` returns `run(hp) -> outputs` where `hp` holds the run's vmapped values —
seed, m, lr, weight_decay, init_seed, noise: the axes of `sparselearn.train.spec` — as
scalars. Everything else in `exp` (n, width, batch, steps, …) is a shape or a static choice, so

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
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sparselearn.config import Experiment
from sparselearn.contracts import first_layer, kind_of, sampler
from sparselearn.errors import FitFailed
from sparselearn.rng import key_for
from sparselearn.schema import CURVES
from sparselearn.train import optimizers, spec
from sparselearn.train.losses import LOSSES
from sparselearn.train.metrics import pointwise_error, weighted_mean
from sparselearn.train.spec import static_part


def curve_steps(exp: Experiment) -> np.ndarray:
    """Steps at which curves are evaluated: 0, E, 2E, …, and `steps` (E = eval_every).
    Fitted learners have one point, step 0."""
    if not kind_of(exp.learner).trained:
        return np.zeros(1, dtype=np.int64)
    steps, every = exp.train.steps, exp.train.eval_every
    points = list(range(0, steps + 1, every))
    if points[-1] != steps:
        points.append(steps)
    return np.asarray(points, dtype=np.int64)


def draw_dataset(target, params, key: jax.Array, m: int, noise=None) -> tuple[jax.Array, jax.Array]:
    """m examples, row i drawn from fold_in(key, i): the first rows of a larger draw equal
    a smaller draw, so a run's data do not depend on the group it runs in. `noise`: the
    label-noise level (a traced scalar under vmap; default target.noise), see
    `contracts.sampler`."""
    sample, level = sampler(target), target.noise if noise is None else noise
    rows = jax.vmap(lambda i: sample(params, jax.random.fold_in(key, i), 1, level))(jnp.arange(m))
    x, y = rows
    return x[:, 0, :], y[:, 0]


def instance_seed(hp) -> jax.Array:
    """The seed of a run's teacher, test set and initialisation: `init_seed` when set (≥ 0),
    else the run seed."""
    init_seed = hp.get("init_seed", -1)
    return jnp.where(jnp.asarray(init_seed) >= 0, init_seed, hp["seed"])


def make_data(exp: Experiment):
    """(seed, instance, noise) → (teacher params, x_train (M, n), y_train (M,), x_test,
    y_test), M = data.m; the teacher and test set come from `instance` (see
    `instance_seed`), the training set from `seed` with label noise `noise`. The test labels
    are noiseless. Online experiments get no training set (None)."""
    target, data = exp.target, exp.data
    clean = replace(target, noise=0.0) if target.noise else target

    def draw(seed, instance, noise):
        teacher = target.init(key_for(instance, "teacher"))
        x_test, y_test = clean.sample(teacher, key_for(instance, "test_data"), data.test_m)
        if data.online:
            return teacher, None, None, x_test, y_test
        x_train, y_train = draw_dataset(target, teacher, key_for(seed, "train_data"), data.m, noise)
        return teacher, x_train, y_train, x_test, y_test

    return draw


def _metrics(f, y, task, loss_of, weights=None):
    return (weighted_mean(pointwise_error(f, y, task), weights), weighted_mean(loss_of(f, y), weights))


def _fitted_outputs(test, train):
    """Outputs of a run without steps: final metrics and one-point curves."""
    (test_error, test_loss), (train_error, train_loss) = test, train
    one = lambda v: jnp.reshape(v, (1,))  # noqa: E731
    return {"test_error": test_error, "test_loss": test_loss, "train_error": train_error,
            "train_loss": train_loss, "steps_to_eps": jnp.int32(-1),
            "finite": jnp.isfinite(test_loss) & jnp.isfinite(train_loss),
            "curve_train_loss": one(train_loss), "curve_train_error": one(train_error),
            "curve_test_error": one(test_error), "curve_test_loss": one(test_loss),
            "curve_drift": jnp.full((1,), jnp.nan, jnp.float32)}


def make_fit_run(exp: Experiment):
    """hp → outputs for a fitted learner: `fit(key, x, y, weights)` on the group's dataset
    with weight 1 on the run's first m rows and 0 elsewhere, then evaluate."""
    learner, task, loss_of = exp.learner, exp.target.task, LOSSES[exp.train.loss]
    data = make_data(exp)

    def run(hp):
        with jax.default_matmul_precision(exp.train.precision):
            _, x_train, y_train, x_test, y_test = data(hp["seed"], instance_seed(hp), hp["noise"])
            weights = (jnp.arange(exp.data.m) < hp["m"]).astype(jnp.float32)
            params = learner.fit(key_for(hp["seed"], "fit"), x_train, y_train, weights)
            return _fitted_outputs(_metrics(learner.apply(params, x_test), y_test, task, loss_of),
                                   _metrics(learner.apply(params, x_train), y_train, task, loss_of, weights))

    return run


def make_run(exp: Experiment, observe=None, init=None):
    """The pure function hp → outputs of one run of `exp` (data.m = the largest m it serves).

    Outputs: final metrics (scalars), `steps_to_eps`, `finite`, and curves at
    `curve_steps(exp)` (P,): `curve_<name>` for name in CURVES, where `drift` is
    ‖W_t − W_0‖_∞ over the learner's first layer (the hidden-progress measure ρ).

    Hooks for diagnostics: `observe(params, params0, teacher, x_test) -> {name: array}` is
    evaluated at every curve point and returned as `trace_<name>` (P, ...); by default it is
    the recorders of `exp.train.record` (`sparselearn.train.record`), which the runner stores
    as traces. `init(key, hp)` replaces `learner.init_params(key, n)` (e.g. to rewind a
    pruned network); by default, with `exp.train.rewind`, the run is a lottery ticket's
    (`sparselearn.train.rewind`).
    """
    if init is None and exp.train.rewind is not None:  # a lottery-ticket run: train the kept units
        from sparselearn.train.rewind import rewound

        exp, init = rewound(exp, make_run)
    if observe is None and exp.train.record:
        from sparselearn.train.record import observer

        observe = observer(exp)
    return RUN_BUILDERS[kind_of(exp.learner).name](exp, observe, init)


def make_train_run(exp: Experiment, observe=None, init=None):
    """hp → outputs for a gradient-trained learner (see `make_run`)."""
    target, learner, tr, data = exp.target, exp.learner, exp.train, exp.data
    sample = sampler(target)
    draw_data = make_data(exp)
    loss_of = LOSSES[tr.loss]
    task = target.task
    every, n_chunks = tr.eval_every, tr.steps // tr.eval_every
    rest = tr.steps - n_chunks * every
    points = curve_steps(exp)

    def evaluate(params, x, y, weights=None):
        return _metrics(learner.apply(params, x), y, task, loss_of, weights)

    def run(hp):
        with jax.default_matmul_precision(tr.precision):
            return _run(hp)

    def _run(hp):
        seed, instance = hp["seed"], instance_seed(hp)
        teacher, x_train, y_train, x_test, y_test = draw_data(seed, instance, hp["noise"])
        batch_key = key_for(seed, "batches")

        def batch_at(step):  # online: a fresh mini-batch from the teacher
            return sample(teacher, jax.random.fold_in(batch_key, step), tr.batch, hp["noise"])

        def rows_at(step):  # the mini-batch indices of one step
            return jax.random.randint(jax.random.fold_in(batch_key, step), (tr.batch,), 0, hp["m"])

        init_key = key_for(instance, "init")
        params0 = learner.init_params(init_key, target.n) if init is None else init(init_key, hp)
        w0 = first_layer(learner, params0)
        opt = optimizers.for_config(tr, hp["lr"], hp["weight_decay"])

        def snapshot(params):  # what every curve point records besides the losses
            drift = jnp.max(jnp.abs(first_layer(learner, params) - w0))
            return drift, ({} if observe is None else observe(params, params0, teacher, x_test))

        def objective(p, xb, yb):
            f = learner.apply(p, xb)
            return jnp.mean(loss_of(f, yb)), f

        def step(carry, t_idx):
            params, opt_state, finite = carry
            t, idx = t_idx
            xb, yb = batch_at(t) if data.online else (x_train[idx], y_train[idx])
            (loss, f), grads = jax.value_and_grad(objective, has_aux=True)(params, xb, yb)
            updates, opt_state = opt.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            err = jnp.mean(pointwise_error(f, yb, task))
            return (params, opt_state, finite & jnp.isfinite(loss)), (loss, err)

        def chunk(carry, start, length):
            ts = start + jnp.arange(length)
            # all of a chunk's batch indices in one vectorised draw (the same stream as per step)
            idx = None if data.online else jax.vmap(rows_at)(ts)
            carry, (losses, errs) = jax.lax.scan(step, carry, (ts, idx))
            test_err, test_loss = evaluate(carry[0], x_test, y_test)
            drift, seen = snapshot(carry[0])
            return carry, ((jnp.mean(losses), jnp.mean(errs), test_err, test_loss, drift), seen)

        # step 0: the untrained network (train loss on the first mini-batch)
        if data.online:
            xb0, yb0 = batch_at(0)
        else:
            rows0 = rows_at(0)
            xb0, yb0 = x_train[rows0], y_train[rows0]
        train_err0, train_loss0 = evaluate(params0, xb0, yb0)
        drift0, seen0 = snapshot(params0)
        first = ((train_loss0, train_err0, *evaluate(params0, x_test, y_test), drift0), seen0)
        carry = (params0, opt.init(params0), jnp.bool_(True))
        carry, rows = jax.lax.scan(lambda c, s: chunk(c, s, every), carry, jnp.arange(n_chunks) * every)
        pieces = [jax.tree.map(lambda a: a[None], first), rows]
        if rest:
            carry, tail = chunk(carry, n_chunks * every, rest)
            pieces.append(jax.tree.map(lambda a: a[None], tail))
        (train_loss_c, train_err_c, test_err_c, test_loss_c, drift_c), seen = jax.tree.map(
            lambda *a: jnp.concatenate(a), *pieces)
        params, _, finite = carry

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
            "curve_test_error": test_err_c, "curve_test_loss": test_loss_c, "curve_drift": drift_c,
            **{f"trace_{name}": v for name, v in seen.items()},
        }

    return run


def _fit_run(exp: Experiment, observe=None, init=None):
    if observe is not None or init is not None:
        raise ValueError(f"learner {exp.learner.name} is fitted, not trained: no observe/init hooks")
    return make_fit_run(exp)


#: learner kind → the builder of its pure run function (host learners run outside jit)
RUN_BUILDERS = {"gradient": make_train_run, "fitted": _fit_run}


def trajectory(exp: Experiment, hps: dict, observe=None, init=None) -> dict[str, np.ndarray]:
    """Train the runs `hps` of `exp` in one program with the diagnostics hooks of `make_run`,
    outside the results store (for weight trajectories, pruning and rewinding).

    hps: "seed" (R,) and optionally the other axes of `spec.AXES` (defaults from `exp`) plus
    any extra per-run arrays (R, ...) that `init` reads from its `hp`. Returns the outputs of
    `make_run` as numpy arrays with a leading run axis, and "steps" (P,).

    Example:
        >>> out = trajectory(exp, {"seed": [0, 1]}, observe=lambda p, p0: {"w": p[0]["w"][:, :4]})
        >>> out["trace_w"].shape          # (runs, curve points, n, 4)
    """
    arrays = spec.hp_arrays(exp, hps)
    arrays.update({k: np.asarray(v) for k, v in hps.items() if k not in spec.BY_NAME})
    look = None if observe is None else (lambda p, p0, teacher, x_test: observe(p, p0))
    out = jax.jit(jax.vmap(make_run(static_part(exp), look, init)))(arrays)
    return {"steps": curve_steps(exp), **{k: np.asarray(v) for k, v in out.items()}}


@functools.lru_cache(maxsize=64)
def compiled_group(static: Experiment):
    """jit(vmap(run)) for one static experiment, cached so a shape group compiles once."""
    run = make_run(static)

    def run_group(hps):
        return jax.vmap(run)(hps)

    return jax.jit(run_group)


def _shard(arrays: dict, devices) -> tuple[dict, int]:
    """Pad the run axis to a multiple of len(devices) (repeating run 0) and place it
    split across them. Returns the placed arrays and the padding added."""
    size = len(next(iter(arrays.values())))
    pad = -size % len(devices)
    arrays = {k: np.concatenate([v, np.repeat(v[:1], pad)]) for k, v in arrays.items()}
    sharding = NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))
    return {k: jax.device_put(v, sharding) for k, v in arrays.items()}, pad


def run_group(exp: Experiment, hps: dict, devices=None) -> dict[str, np.ndarray]:
    """Train every run of one shape group in one compiled program.

    hps: the axes of `spec.AXES` ("seed", "m", "lr", "weight_decay", "init_seed", "noise") →
    equal-length 1-D sequences (R,). Missing ones default to the config's (init_seed −1: the
    run seed). With `devices` (more than one) the run axis is sharded across them. Returns
    numpy arrays: (R,) metrics and (R, P) curves at `curve_steps(exp)`.
    """
    arrays = spec.hp_arrays(exp, hps)
    if not exp.data.online and int(arrays["m"].max()) > exp.data.m:
        raise ValueError(f"a run's m = {int(arrays['m'].max())} exceeds the group's data.m = {exp.data.m}")
    return GROUP_RUNNERS[kind_of(exp.learner).name](static_part(exp), arrays, devices)


def _run_compiled_group(static: Experiment, arrays: dict, devices=None) -> dict[str, np.ndarray]:
    """Every run in one jit(vmap(run)) call (sharded over `devices` when there are several)."""
    if devices is not None and len(devices) > 1:
        placed, pad = _shard(arrays, devices)
        out = compiled_group(static)(placed)
        return {k: np.asarray(v)[:len(arrays["seed"])] for k, v in out.items()}
    out = compiled_group(static)(arrays)
    return {k: np.asarray(v) for k, v in out.items()}


@functools.lru_cache(maxsize=64)
def _compiled_data(static: Experiment):
    def data_group(seeds, instances, noises):
        return jax.vmap(lambda s, i, e: make_data(static)(s, i, e)[1:])(seeds, instances, noises)
    return jax.jit(data_group)


def _run_host_group(exp: Experiment, arrays: dict, devices=None) -> dict[str, np.ndarray]:
    """Learners that run on the host (e.g. GF(2) elimination): data drawn in one compiled
    call for all seeds, then `fit(key, x[:m], y[:m])` per run in numpy. A `FitFailed`
    marks the run failed with its reason."""
    learner, task, loss_of = exp.learner, exp.target.task, LOSSES[exp.train.loss]
    data = _compiled_data(exp)(arrays["seed"], instance_seed(arrays), arrays["noise"])
    x_tr, y_tr, x_te, y_te = (np.asarray(a) for a in data)
    rows = []
    for i, (seed, m) in enumerate(zip(arrays["seed"], arrays["m"])):
        try:
            params = learner.fit(key_for(int(seed), "fit"), x_tr[i, :m], y_tr[i, :m])
            out = _fitted_outputs(_metrics(jnp.asarray(learner.apply(params, x_te[i])), y_te[i], task, loss_of),
                                  _metrics(jnp.asarray(learner.apply(params, x_tr[i, :m])), y_tr[i, :m], task,
                                           loss_of))
            out = {k: np.asarray(v) for k, v in out.items()}
            out["error"] = None
        except FitFailed as e:
            out = {k: np.asarray(np.nan) for k in ("test_error", "test_loss", "train_error", "train_loss")}
            out.update(steps_to_eps=np.asarray(-1), finite=np.asarray(True), error=str(e))
            for name in CURVES:
                out[f"curve_{name}"] = np.full(1, np.nan)
        rows.append(out)
    return {k: np.stack([r[k] for r in rows]) if k != "error" else np.asarray([r[k] for r in rows], dtype=object)
            for k in rows[0]}


#: learner kind → how a group of its runs is executed
GROUP_RUNNERS = {"gradient": _run_compiled_group, "fitted": _run_compiled_group, "host": _run_host_group}


def run_one(exp: Experiment, seed: int = 0, **hp) -> dict[str, np.ndarray]:
    """One run alone (a group of one): metrics as 0-d arrays, curves as (P,)."""
    out = run_group(exp, {"seed": [seed], **{k: [v] for k, v in hp.items()}})
    return {k: v[0] for k, v in out.items()}
