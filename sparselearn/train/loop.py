"""One training run as a pure function, and a group of runs as one compiled program.

`make_run(exp)` returns `run(hp) -> outputs` where `hp` holds the run's vmapped values —
seed, m, lr, weight_decay, init_seed, noise: the axes of `sparselearn.train.spec` — as
scalars. Everything else in `exp` (n, width, batch, steps, …) is a shape or a static choice, so

    run_group = jit(vmap(make_run(exp)))

trains any number of runs of one shape group in one compiled program: datasets drawn at
the group's largest m (row i from its own key, so the first m rows do not depend on the
group, except in the last bits of a float teacher's labels, which XLA computes for the group
in batched products), mini-batches indexed below each run's own m, a `lax.while_loop` over
the curve points, each one traced body: the steps since the last point, then one evaluation (see
`TrainedRun`). With `train.stop_at_eps` runs stop at their first point with test error ≤ eps
and the loop ends when all have. On CPU a long group advances a block of its runs at a time
(`run_block`), with `stop_at_eps` only the runs still training; a block steps exactly as a group
of its own runs would. How much XLA optimises a group follows its work (`compile_tier`), so
groups of different sizes may round differently in the last bits (which training can amplify:
a run near a threshold may reach eps one curve point apart in groups of different sizes); a
group that stops at eps rounds exactly as its full-length twin. On CPU the loop of a group above the tiny tier
compiles as a program of its own, beside its draws and final metrics. `run_group(...,
progress=...)` runs the same pieces point by point from the host to report progress.

Example:
    >>> cfg = sparselearn.config.load("configs/quickstart.yaml", overrides=["train.steps=100", "learner.width=32"])
    >>> out = run_group(cfg, {"seed": [0, 1], "m": [256, 1024], "lr": [.1, .1], "weight_decay": [0., 0.]})
    >>> out["test_error"].shape, out["curve_test_error"].shape     # (R,), (R, P)
    ((2,), (2, 2))
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sparselearn import runtime
from sparselearn.config import Experiment
from sparselearn.contracts import first_layer, kind_of, sampler
from sparselearn.errors import FitFailed
from sparselearn.runtime import FULL_COMPILE, QUICK_COMPILE, TINY_COMPILE
from sparselearn.rng import PURPOSES, abstract_key, key_for, seed_key
from sparselearn.schema import CURVES, eps_bound
from sparselearn.train import optimizers, spec, threefry
from sparselearn.train.losses import LOSSES
from sparselearn.train.metrics import max_abs, pointwise_error, weighted_mean
from sparselearn.train.spec import static_part


threefry.use_straight_line_lowering()

#: below this many FLOPs of work a program compiles with TINY_COMPILE, where the slower code costs
#: less than the compile it saves in a cold run: 2 runs of a width-256 parity net, 2,000 steps
#: (6.7·10⁹ FLOPs, one core of a 2-core AMD EPYC): tiny compiles 1.4 s faster than quick but
#: trains at 5.7·10⁹ FLOP/s against 3.9·10¹⁰ (1.18 s against 0.17 s), so a cold run is 0.4 s
#: shorter (3.73 against 4.14 s) and a warm one, which loads the kept program, 1.0 s longer; the
#: cold runs break even near 10¹⁰
TINY_FLOPS = 1e10
#: from this many FLOPs (`group_flops`) a group's training loop compiles with XLA's fusion
#: emitters ("mid"). The classic emitters write an elementwise result that takes over its
#: operand's buffer (a ReLU, its gradient, an SGD update) one float at a time: LLVM cannot rule
#: out the overlap, so its vector loop falls back to the scalar one, 3–7× slower. Parity groups
#: of 16 runs (benchmarks/bench_tiers.py, 2-core AMD EPYC), quick → mid: at 4.9·10¹⁰ FLOPs
#: training 0.66 → 0.44 s on one core, 0.36 → 0.24 s on two, a cold run (compile and train)
#: 0.2 s longer (2.40 → 2.57 s, 1.54 → 1.79 s; on a Xeon as long within the noise); at 2.5·10¹⁰
#: the compile's extra 0.1–0.4 s is about what training gains
MID_FLOPS = 4e10
#: from this many FLOPs a group compiles at the full tier: its loop also advances its runs in
#: blocks (`run_block`; from STOP_FLOPS below it), which lengthens the compile and pays back
#: over long training
FULL_FLOPS = 5e11
#: from this many FLOPs a group advances in blocks (`run_block`) below the full tier too, whether
#: it stops at eps or not (blocks and one step of every run round differently, and a run must
#: stop exactly where the full-length group reaches eps); a group that stops steps only its runs
#: still training at each curve point. 3-parities of width 200 (benchmarks/bench_stop.py, 2-core
#: AMD EPYC), whole → blocks, stopping at eps, training on one core: 16 runs (4.9·10¹⁰ FLOPs)
#: 0.45 → 0.26 s, 32 runs 0.93 → 0.52 s, 64 runs 2.06 → 1.10 s (two cores: 0.27 → 0.16, 0.51 →
#: 0.29, 1.15 → 0.60 s); the blocks compile longer, which the first run earns back at 64 runs
#: (cold 4.81 → 4.56 s on one core, 3.05 → 2.65 s on two) and not yet at 32 (3.43 → 3.66 s,
#: 1.89 → 2.14 s); later runs load kept programs and gain the training time. At 16 runs the
#: cold run is 0.2–0.7 s longer (3.00 → 3.68 s, 2.02 → 2.23 s) for 0.1–0.2 s per warm run, so
#: they advance whole. Training all
#: 3,000 steps (a 2-core Xeon), blocks gain less: 32 runs 0.93 → 0.83 s, 64 runs 1.87 → 1.61 s
STOP_FLOPS = 8e10
#: compile tier → XLA options on CPU; "fitted": TINY or QUICK by the lowered program's FLOPs
TIERS = {"full": FULL_COMPILE, "mid": FULL_COMPILE, "quick": QUICK_COMPILE, "tiny": TINY_COMPILE}
#: tiers whose training loop compiles as a program of its own on CPU, start and finish at the
#: quick tier, each piece compiling while the next is traced (`runtime.compile_pool`): on two
#: cores a group traces and compiles in 0.25–0.4 s less than as one program (bench_tiers; 0.4–1.1
#: s on a Xeon), and with the fusion emitters the quickstart group's draws alone would take
#: 1.8–2.2 s, not 1.0–1.5
LOOPED_TIERS = frozenset({"quick", "mid", "full"})
#: on CPU, a group in blocks (`run_block`) advances its runs a block at a time, each device's
#: share of a block taking at most this many bytes of step state (`step_bytes`): a share that
#: stays in a core's L2 cache. 256 runs of a width-200 net, 1,000 steps on one core: 7.9 → 5.5 s
BLOCK_BYTES = 1 << 20


def param_count(exp: Experiment) -> int:
    """How many numbers the learner's parameters hold (traced abstractly, nothing runs)."""
    shapes = jax.eval_shape(lambda key: exp.learner.init_params(key, exp.target.n), abstract_key())
    return sum(math.prod(a.shape) for a in jax.tree.leaves(shapes))


def group_flops(exp: Experiment, runs: int) -> float:
    """Rough FLOPs of training `runs` runs of `exp`: 6 per parameter per training example
    and 2 per parameter per evaluated example (0 for learners without steps)."""
    if not kind_of(exp.learner).trained:
        return 0.0
    params = param_count(exp)
    evaluated = len(curve_steps(exp)) * exp.data.test_m + (0 if exp.data.online else exp.data.m)
    return float(runs) * params * (6 * exp.train.steps * exp.train.batch + 2 * evaluated)


def compile_tier(exp: Experiment, runs: int) -> str:
    """How a group of `runs` runs of `exp` compiles (a key of TIERS): by `group_flops` for
    trained learners (tiny, quick, mid, full: more compile for faster steps); "fitted" for
    the others, whose work is read off the lowered program."""
    if not kind_of(exp.learner).trained:
        return "fitted"
    flops = group_flops(exp, runs)
    return ("tiny" if flops < TINY_FLOPS else "quick" if flops < MID_FLOPS
            else "mid" if flops < FULL_FLOPS else "full")


def tier_options(tier: str, lowered) -> dict:
    """XLA compile options for a program of `tier` (see `compile_tier`), given its lowering;
    none off CPU."""
    if not runtime.tiers_apply():
        return {}
    if tier == "fitted":  # without a cost model: the safe middle tier
        flops = runtime.lowered_flops(lowered)
        tier = "tiny" if flops is not None and flops < TINY_FLOPS else "quick"
    return runtime.known_options(TIERS[tier])


def compile_at(jitted, tier: str, *args):
    """`jitted` lowered for `args` and compiled with the options of `tier`."""
    return compile_lowered(jitted.lower(*args), tier)


def compile_lowered(lowered, tier: str):
    """A lowered program compiled with the options of `tier`."""
    return lowered.compile(tier_options(tier, lowered))


def step_bytes(exp: Experiment) -> int:
    """Rough bytes one run touches in a training step: its parameters four times over (values,
    gradients, updates, optimiser state) and a mini-batch of activations of the first layer's
    width, four times over (forward, backward), in float32."""
    params = param_count(exp)
    return 16 * params + 16 * exp.train.batch * max(1, params // max(1, exp.target.n))


def run_block(exp: Experiment, runs: int, shards: int = 1) -> int:
    """How many of a group's `runs` runs (split evenly over `shards` devices) advance side by
    side, the group stepping through its runs a block at a time at every curve point; `runs`
    when the group advances all at once. Blocks apply on CPU to full-tier groups (see
    `compile_tier`), and to groups from `STOP_FLOPS`: they cost compile time, which long
    programs earn back, and a group that stops at eps steps only its runs still training. Whether
    it stops does not change the choice, so a stopping run rounds as the full-length one does.
    A device's share of a block is the largest divisor of its runs within `BLOCK_BYTES`
    (`step_bytes`); where one run alone exceeds it, blocks gain nothing and the group advances
    all at once (128 runs of width 1,024: 8.9–11.1 s all at once, 9.5–11.6 s one run at a time).

    Example:
        >>> exp = sparselearn.config.load("configs/quickstart.yaml", overrides=["learner.width=200"])
        >>> run_block(exp, 256)            # a width-200 parity group on one device
        4
    """
    if not runtime.tiers_apply() or runs % shards:
        return runs
    if compile_tier(exp, runs) != "full" and group_flops(exp, runs) < STOP_FLOPS:
        return runs
    local, fit = runs // shards, BLOCK_BYTES // step_bytes(exp)
    if fit < 2:
        return runs
    return shards * max(d for d in range(1, min(local, fit) + 1) if local % d == 0)


def _in_blocks(advance, block: int, shards: int, stop: bool):
    """`advance(hps, data, state, c)` over a leading run axis (R,), applied to `block` runs at a
    time; block R: `advance` itself. Each block takes `block / shards` runs of every device's
    share of the axis (so no run moves between devices). With `stop` the blocks take each
    device's runs that are still `active` first and end when those have all advanced: runs
    that have stopped cost nothing (a block they fill up, `advance` keeps as they are)."""
    def blocked(hps, data, state, c):
        runs = jax.tree.leaves(hps)[0].shape[0]
        if block >= runs:
            return advance(hps, data, state, c)
        local, share = runs // shards, block // shards

        def per_device(a):  # (R, ...) → (S, R / S, ...)
            return a.reshape((shards, local) + a.shape[1:])

        def merged(a):  # (S, b, ...) → (S·b, ...)
            return a.reshape((-1,) + a.shape[2:])

        fixed, moving = jax.tree.map(per_device, (hps, data)), jax.tree.map(per_device, state)
        if stop:  # each device's running runs first, in order
            order = jnp.argsort(~moving["active"], axis=1, stable=True)
            trips = (jnp.max(jnp.sum(moving["active"], axis=1)) + share - 1) // share
        else:
            order, trips = jnp.broadcast_to(jnp.arange(local), (shards, local)), local // share

        def take(tree, rows):  # each device's rows (S, b) of (S, R / S, ...) leaves
            return jax.tree.map(lambda a: jax.vmap(lambda ad, rd: ad[rd])(a, rows), tree)

        def one(j, moving):
            rows = jax.lax.dynamic_slice_in_dim(order, j * share, share, axis=1)
            new = advance(*(jax.tree.map(merged, take(t, rows)) for t in (*fixed, moving)), c)
            new = jax.tree.map(lambda a: a.reshape((shards, share) + a.shape[1:]), new)
            return jax.tree.map(lambda a, v: jax.vmap(lambda ad, rd, vd: ad.at[rd].set(vd))(a, rows, v), moving, new)

        moving = jax.lax.fori_loop(0, trips, one, moving)
        return jax.tree.map(lambda a: a.reshape((runs,) + a.shape[2:]), moving)

    return blocked


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


def instance_keys(seed, instance) -> dict[str, jax.Array]:
    """The keys a run draws from: name → `key_for(seed or instance, name)`, the run seed's for
    its training data and batches, the instance's (see `instance_seed`) for the teacher, the
    test set and the initialisation. Hashed in two batched calls rather than ten: on CPU every
    threefry call site adds compile time, and batching leaves the bits unchanged.

    Example:
        >>> keys = instance_keys(3, 7)
        >>> bool((jax.random.key_data(keys["init"]) == jax.random.key_data(key_for(7, "init"))).all())
        True
    """
    owner = {"train_data": 0, "batches": 0, "teacher": 1, "test_data": 1, "init": 1}
    roots = jax.vmap(seed_key)(jnp.stack([jnp.asarray(seed, jnp.int32), jnp.asarray(instance, jnp.int32)]))
    keys = jax.vmap(jax.random.fold_in)(roots[np.asarray(list(owner.values()))],
                                        jnp.asarray([PURPOSES[name] for name in owner], jnp.uint32))
    return {name: keys[i] for i, name in enumerate(owner)}


def _draw(exp: Experiment, keys: dict, noise):
    """(teacher, x_train, y_train, x_test, y_test) from a run's `instance_keys` (see `make_data`)."""
    target, data = exp.target, exp.data
    clean = replace(target, noise=0.0) if target.noise else target
    teacher = target.init(keys["teacher"])
    x_test, y_test = clean.sample(teacher, keys["test_data"], data.test_m)
    if data.online:
        return teacher, None, None, x_test, y_test
    x_train, y_train = draw_dataset(target, teacher, keys["train_data"], data.m, noise)
    return teacher, x_train, y_train, x_test, y_test


def make_data(exp: Experiment):
    """(seed, instance, noise) → (teacher params, x_train (M, n), y_train (M,), x_test,
    y_test), M = data.m; the teacher and test set come from `instance` (see
    `instance_seed`), the training set from `seed` with label noise `noise`. The test labels
    are noiseless. Online experiments get no training set (None)."""
    return lambda seed, instance, noise: _draw(exp, instance_keys(seed, instance), noise)


def _metrics(f, y, task, loss_of, weights=None):
    return (weighted_mean(pointwise_error(f, y, task), weights), weighted_mean(loss_of(f, y), weights))


def _fitted_outputs(test, train):
    """Outputs of a run without steps: final metrics and one-point curves."""
    (test_error, test_loss), (train_error, train_loss) = test, train
    one = lambda v: jnp.reshape(v, (1,))  # noqa: E731
    return {"test_error": test_error, "test_loss": test_loss, "train_error": train_error,
            "train_loss": train_loss, "steps_to_eps": jnp.int32(-1),
            "finite": jnp.isfinite(test_loss) & jnp.isfinite(train_loss), "evaluated": jnp.int32(1),
            "curve_train_loss": one(train_loss), "curve_train_error": one(train_error),
            "curve_test_error": one(test_error), "curve_test_loss": one(test_loss),
            "curve_drift": jnp.full((1,), jnp.nan, jnp.float32)}


def make_fit(exp: Experiment):
    """hp → (params, teacher, (x_train, y_train, weights), (x_test, y_test)) of a fitted
    learner's run: `fit(key, x, y, weights)` on the group's dataset with weight 1 on the run's
    first m rows and 0 elsewhere, at the run's matmul precision."""
    learner, data = exp.learner, make_data(exp)

    def fit(hp):
        with jax.default_matmul_precision(exp.train.precision):
            teacher, x_train, y_train, x_test, y_test = data(hp["seed"], instance_seed(hp), hp["noise"])
            weights = (jnp.arange(exp.data.m) < hp["m"]).astype(jnp.float32)
            params = learner.fit(key_for(hp["seed"], "fit"), x_train, y_train, weights)
            return params, teacher, (x_train, y_train, weights), (x_test, y_test)

    return fit


def make_fit_run(exp: Experiment):
    """hp → outputs for a fitted learner: `make_fit`, then evaluate."""
    learner, task, loss_of = exp.learner, exp.target.task, LOSSES[exp.train.loss]
    fit = make_fit(exp)

    def run(hp):
        params, _, (x_train, y_train, weights), (x_test, y_test) = fit(hp)
        with jax.default_matmul_precision(exp.train.precision):
            return _fitted_outputs(_metrics(learner.apply(params, x_test), y_test, task, loss_of),
                                   _metrics(learner.apply(params, x_train), y_train, task, loss_of, weights))

    return run


def make_run(exp: Experiment, observe=None, init=None, shards: int = 1):
    """The pure function hp → outputs of one run of `exp` (data.m = the largest m it serves).

    Outputs: final metrics (scalars), `steps_to_eps`, `finite`, and curves at
    `curve_steps(exp)` (P,): `curve_<name>` for name in CURVES, where `drift` is
    ‖W_t − W_0‖_∞ over the learner's first layer (the hidden-progress measure ρ).

    Hooks for diagnostics: `observe(params, params0, teacher, x_test) -> {name: array}` is
    evaluated at every curve point and returned as `trace_<name>` (P, ...); by default it is
    the recorders of `exp.train.record` (`sparselearn.train.record`), which the runner stores
    as traces. `init(key, hp)` replaces `learner.init_params(key, n)` (e.g. to rewind a
    pruned network); by default, with `exp.train.rewind`, the run is a lottery ticket's
    (`sparselearn.train.rewind`). `shards`: the devices a group's run axis is split over,
    which sets the group's blocks of runs (`run_block`).
    """
    if init is None and exp.train.rewind is not None:  # a lottery-ticket run: train the kept units
        from sparselearn.train.rewind import rewound

        exp, init = rewound(exp, make_run)
    if observe is None and exp.train.record:
        from sparselearn.train.record import observer

        observe = observer(exp)
    return RUN_BUILDERS[kind_of(exp.learner).name](exp, observe, init, shards)


def _precise(precision: str, fn):
    """`fn` traced under `jax.default_matmul_precision(precision)`."""
    @functools.wraps(fn)
    def wrapped(*args):
        with jax.default_matmul_precision(precision):
            return fn(*args)
    return wrapped


@dataclass(frozen=True)
class TrainedRun:
    """Gradient-trained runs as three pieces over a leading run axis (R runs):

        data, state = start(hps)                     # draw the data, initialise
        state, more = advance(hps, data, state, c)   # the steps up to curve point c, then evaluate it
        outputs = finish(hps, data, state)           # final metrics, curves, steps_to_eps

    `train(hps, data, state)` is a `lax.while_loop` of `advance` over the `points` curve
    points and `group(hps)` chains start, train and finish in one program; a host loop may
    call advance one point at a time instead (`run_group` with `progress`), with the same
    results. Called on one run's hp (scalars), it is that run's pure function hp → outputs.

    With `stop` (train.stop_at_eps) a run stops at its first curve point with test error ≤ eps
    (its state frozen from then on, so its results do not depend on its group), and `more`
    is False, ending the loop, once no run of the group is still training.
    """

    start: Callable
    advance: Callable
    finish: Callable
    points: int
    stop: bool

    def train(self, hps: dict, data: dict, state: dict) -> dict:
        """Every curve point from `state` (as `start` returns it) on: the final state."""
        def body(carry):
            c, state, _ = carry
            state, more = self.advance(hps, data, state, c)
            return c + 1, state, more

        return jax.lax.while_loop(lambda carry: (carry[0] < self.points) & carry[2], body,
                                  (jnp.int32(0), state, jnp.bool_(True)))[1]

    def group(self, hps: dict) -> dict:
        data, state = self.start(hps)
        return self.finish(hps, data, self.train(hps, data, state))

    def __call__(self, hp: dict) -> dict:
        out = self.group(jax.tree.map(lambda a: jnp.asarray(a)[None], hp))
        return jax.tree.map(lambda a: a[0], out)


def make_train_run(exp: Experiment, observe=None, init=None, shards: int = 1) -> TrainedRun:
    """hp → outputs for a gradient-trained learner (see `make_run`), as a `TrainedRun`.

    Curve point c (step `curve_steps(exp)[c]`) takes the steps since point c − 1, then
    evaluates: the mean training loss and error of those steps' mini-batches, test error and
    loss (one forward pass over the test set), drift and `observe`. Point 0 takes the first
    step without applying it: its training loss is the untrained network's on the first
    mini-batch. Every point is one traced body, so the program compiles one step and one
    evaluation. The final train_error and train_loss are the final network's over the run's
    first m training rows (noisy labels, as trained on); online, the last point's mini-batch
    means. Test metrics are against the noiseless labels. A large group advances its runs in
    blocks (`run_block`; `shards` devices); with `stop_at_eps`, blocks of the runs still
    training only.
    """
    target, learner, tr, data_cfg = exp.target, exp.learner, exp.train, exp.data
    sample = sampler(target)
    loss_of = LOSSES[tr.loss]
    task, every, online = target.task, tr.eval_every, data_cfg.online
    reached_at = eps_bound(tr.eps)   # the largest float32 test error that is ≤ eps
    points = curve_steps(exp)
    # the steps [lo, hi) of curve point c: point 0 measures step 0 (its update is discarded)
    lows = np.concatenate([[0], points[:-1]]).astype(np.int32)
    highs = np.concatenate([[1], points[1:]]).astype(np.int32)

    def evaluate(params, x, y, weights=None):
        return _metrics(learner.apply(params, x), y, task, loss_of, weights)

    def optimizer(hp):
        return optimizers.for_config(tr, hp["lr"], hp["weight_decay"])

    def start(hp):
        keys = instance_keys(hp["seed"], instance_seed(hp))
        teacher, x_train, y_train, x_test, y_test = _draw(exp, keys, hp["noise"])
        params0 = learner.init_params(keys["init"], target.n) if init is None else init(keys["init"], hp)
        data = {"teacher": teacher, "x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
                "params0": params0, "batches": keys["batches"]}
        seen = {} if observe is None else jax.eval_shape(observe, params0, params0, teacher, x_test)
        state = {"params": params0, "opt": optimizer(hp).init(params0), "finite": jnp.bool_(True),
                 "active": jnp.bool_(True), "evaluated": jnp.int32(0),
                 "curves": {name: jnp.full(len(points), jnp.nan, jnp.float32) for name in CURVES},
                 "traces": {name: jnp.full((len(points), *v.shape), jnp.nan if jnp.issubdtype(v.dtype, jnp.floating)
                                           else 0, v.dtype) for name, v in seen.items()}}
        return data, state

    def advance(hp, data, state, c):
        x_train, y_train, params0 = data["x_train"], data["y_train"], data["params0"]
        opt = optimizer(hp)
        lo, hi = jnp.asarray(lows)[c], jnp.asarray(highs)[c]

        def batch_at(t):  # online: a fresh mini-batch from the teacher
            return sample(data["teacher"], jax.random.fold_in(data["batches"], t), tr.batch, hp["noise"])

        def rows_at(t):  # the mini-batch indices of one step
            return jax.random.randint(jax.random.fold_in(data["batches"], t), (tr.batch,), 0, hp["m"])

        # all of the chunk's batch indices in one vectorised draw (the same stream as per step)
        rows = None if online else jax.vmap(rows_at)(lo + jnp.arange(every))

        def objective(p, xb, yb):
            f = learner.apply(p, xb)
            return jnp.mean(loss_of(f, yb)), f

        def step(t, carry):
            params, opt_state, finite, losses, errs = carry
            xb, yb = batch_at(t) if online else (x_train[rows[t - lo]], y_train[rows[t - lo]])
            (loss, f), grads = jax.value_and_grad(objective, has_aux=True)(params, xb, yb)
            updates, opt_state = opt.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            err = jnp.mean(pointwise_error(f, yb, task))
            return (params, opt_state, finite & jnp.isfinite(loss),
                    losses.at[t - lo].set(loss), errs.at[t - lo].set(err))

        before = (state["params"], state["opt"], state["finite"])
        *after, losses, errs = jax.lax.fori_loop(lo, hi, step, (*before, jnp.zeros(every), jnp.zeros(every)))
        params, opt_state, finite = jax.tree.map(lambda new, old: jnp.where(c > 0, new, old), tuple(after), before)
        taken = jnp.arange(every) < hi - lo
        test_error, test_loss = evaluate(params, data["x_test"], data["y_test"])
        now = {"train_loss": jnp.sum(jnp.where(taken, losses, 0.0)) / (hi - lo),
               "train_error": jnp.sum(jnp.where(taken, errs, 0.0)) / (hi - lo),
               "test_error": test_error, "test_loss": test_loss,
               "drift": max_abs(first_layer(learner, params) - first_layer(learner, params0))}
        seen = {} if observe is None else observe(params, params0, data["teacher"], data["x_test"])
        return {"params": params, "opt": opt_state, "finite": finite,
                # a NaN test error (NaN weights, for good) can never reach eps: that run stops too
                "active": ~(test_error <= reached_at) & ~jnp.isnan(test_error) if tr.stop_at_eps
                else jnp.bool_(True),
                "evaluated": c + 1,
                "curves": {name: state["curves"][name].at[c].set(now[name]) for name in CURVES},
                "traces": {name: state["traces"][name].at[c].set(v) for name, v in seen.items()}}

    def finish(hp, data, state):
        curves, evaluated = state["curves"], state["evaluated"]
        last = evaluated - 1
        if online:  # no fixed training set: the last evaluation window's mini-batches
            train_error, train_loss = curves["train_error"][last], curves["train_loss"][last]
        else:
            weights = (jnp.arange(data_cfg.m) < hp["m"]).astype(jnp.float32)
            train_error, train_loss = evaluate(state["params"], data["x_train"], data["y_train"], weights)
        recorded = jnp.arange(len(points)) < evaluated
        reached = curves["test_error"] <= reached_at
        steps_to_eps = jnp.where(jnp.any(reached), jnp.asarray(points)[jnp.argmax(reached)], -1)
        return {
            "test_error": curves["test_error"][last], "test_loss": curves["test_loss"][last],
            "train_error": train_error, "train_loss": train_loss, "steps_to_eps": steps_to_eps,
            # the last steps' updates show only in the final losses
            "finite": (state["finite"] & jnp.all(jnp.isfinite(curves["train_loss"]) | ~recorded)
                       & jnp.isfinite(curves["test_loss"][last]) & jnp.isfinite(train_loss)),
            "evaluated": evaluated,
            **{f"curve_{name}": curves[name] for name in CURVES},
            **{f"trace_{name}": v for name, v in state["traces"].items()},
        }

    start, advance, finish = (_precise(tr.precision, fn) for fn in (start, advance, finish))

    def start_group(hps):
        return jax.vmap(start)(hps)

    # the draws of data, teacher and init as a few hashes rather than dozens: the tests' tiny group
    # compiles in 0.51 s instead of 0.78 s; at the quick tier the compile takes as long, but the
    # kept program is half the size (the 16-seed parity of bench_overhead: 391 KB instead of
    # 788 KB), and a warm run loads it in 0.04 s instead of 0.09 s
    start_group = threefry.merged_draws(start_group)

    def advance_runs(hps, data, state, c):
        new = jax.vmap(advance, in_axes=(0, 0, 0, None))(hps, data, state, c)
        if not tr.stop_at_eps:
            return new
        going = state["active"]  # runs that have stopped keep their state
        return jax.tree.map(lambda a, b: jnp.where(going.reshape(going.shape + (1,) * (a.ndim - 1)), a, b),
                            new, state)

    def advance_group(hps, data, state, c):
        block = run_block(exp, len(hps["seed"]), shards)
        new = _in_blocks(advance_runs, block, shards, tr.stop_at_eps)(hps, data, state, c)
        return new, jnp.any(new["active"]) if tr.stop_at_eps else jnp.bool_(True)

    def finish_group(hps, data, state):
        return jax.vmap(finish)(hps, data, state)

    return TrainedRun(start_group, advance_group, finish_group, len(points), tr.stop_at_eps)


def _fit_run(exp: Experiment, observe=None, init=None, shards: int = 1):
    if observe is not None or init is not None:
        raise ValueError(f"learner {exp.learner.name} is fitted, not trained: no observe/init hooks")
    return make_fit_run(exp)


#: learner kind → the builder of its pure run function (host learners run outside jit)
RUN_BUILDERS = {"gradient": make_train_run, "fitted": _fit_run}


def _program(run) -> Callable:
    """hps (R, ...) → outputs (R, ...) for a run function: a `TrainedRun`'s own group program,
    else vmap(run) with its random draws merged (`threefry.merged_draws`)."""
    return run.group if isinstance(run, TrainedRun) else threefry.merged_draws(jax.vmap(run))


def trajectory(exp: Experiment, hps: dict, observe=None, init=None) -> dict[str, np.ndarray]:
    """Train the runs `hps` of `exp` in one program with the diagnostics hooks of `make_run`,
    outside the results store (for weight trajectories, pruning and rewinding).

    hps: "seed" (R,) and optionally the other axes of `spec.AXES` (defaults from `exp`) plus
    any extra per-run arrays (R, ...) that `init` reads from its `hp`. Returns the outputs of
    `make_run` as numpy arrays with a leading run axis, and "steps" (P,).

    Example:
        >>> exp = sparselearn.config.load("configs/quickstart.yaml")
        >>> out = trajectory(exp, {"seed": [0, 1]}, observe=lambda p, p0: {"w": p[0]["w"][:, :4]})  # doctest: +SKIP
        >>> out["trace_w"].shape          # (runs, curve points, n, 4)  # doctest: +SKIP
        (2, 21, 30, 4)
    """
    arrays = spec.hp_arrays(exp, hps)
    arrays.update({k: np.asarray(v) for k, v in hps.items() if k not in spec.BY_NAME})
    look = None if observe is None else (lambda p, p0, teacher, x_test: observe(p, p0))
    program = jax.jit(_program(make_run(static_part(exp), look, init)))
    out = compile_at(program, compile_tier(exp, len(arrays["seed"])), arrays)(arrays)
    return {"steps": curve_steps(exp), **{k: np.asarray(v) for k, v in out.items()}}


@functools.lru_cache(maxsize=64)
def compiled_group(static: Experiment, shards: int = 1):
    """The group program hps → outputs, jitted, for one static experiment whose run axis is
    split over `shards` devices; cached so a shape group traces once (`kept_program` compiles
    it at its tier)."""
    program = _program(make_run(static, shards=shards))

    def run_group(hps):
        return program(hps)

    return jax.jit(run_group)


@functools.lru_cache(maxsize=64)
def group_pieces(static: Experiment, shards: int = 1) -> tuple[Callable, Callable, Callable, Callable] | None:
    """The pieces of a trained group (`TrainedRun` start, advance, train, finish), jitted:
    for a host loop that reports progress at every curve point (advance), or for a group
    whose loop compiles apart (train, `LOOPED_TIERS`); None for learners without steps. The
    advanced state is donated (updated in place)."""
    run = make_run(static, shards=shards)
    if not isinstance(run, TrainedRun):
        return None
    return (jax.jit(run.start), jax.jit(run.advance, donate_argnums=2), jax.jit(run.train, donate_argnums=2),
            jax.jit(run.finish))


def _shard(arrays: dict, devices) -> tuple[dict, int]:
    """Pad the run axis to a multiple of len(devices) (repeating run 0) and place it
    split across them. Returns the placed arrays and the padding added."""
    size = len(next(iter(arrays.values())))
    pad = -size % len(devices)
    arrays = {k: np.concatenate([v, np.repeat(v[:1], pad)]) for k, v in arrays.items()}
    sharding = NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))
    return {k: jax.device_put(v, sharding) for k, v in arrays.items()}, pad


def run_group(exp: Experiment, hps: dict, devices=None, progress=None) -> dict[str, np.ndarray]:
    """Train every run of one shape group in one compiled program.

    hps: the axes of `spec.AXES` ("seed", "m", "lr", "weight_decay", "init_seed", "noise") →
    equal-length 1-D sequences (R,). Missing ones default to the config's (init_seed −1: the
    run seed). With `devices` (more than one) the run axis is sharded across them; with
    `train.stop_at_eps` the whole group stops when its last run has stopped (all devices
    together). Returns numpy arrays: (R,) metrics, `evaluated` (R,) the number of curve points
    each run reached (P unless it stopped early) and (R, P) curves at `curve_steps(exp)`, NaN
    past a run's `evaluated` points.

    `progress(step, steps)`, if given, is called in this thread after each curve point of a
    trained group (and once with step = steps at its end): the group then runs as three
    compiled pieces driven point by point from here (`group_pieces`), with the same results.
    A callback inside the compiled program would do the same, but JAX never keeps programs
    with host callbacks in its persistent compilation cache.

    Example:
        >>> exp = sparselearn.config.load("configs/quickstart.yaml", overrides=["train.steps=200"])
        >>> out = run_group(exp, {"seed": [0, 1]}, progress=lambda s, total: print(f"{s}/{total}"))  # doctest: +SKIP
        0/200
        100/200
        200/200
    """
    arrays = _group_arrays(exp, hps)
    return GROUP_RUNNERS[kind_of(exp.learner).name](static_part(exp), arrays, devices, progress)


def _group_arrays(exp: Experiment, hps: dict) -> dict[str, np.ndarray]:
    """`spec.hp_arrays` of a group's `hps`, whose keys must all be run axes: a misspelt one
    would leave its runs at the config's value."""
    unknown = [k for k in hps if k not in spec.BY_NAME]
    if unknown:
        raise ValueError(f"hps keys {unknown} are not run axes; known: {', '.join(spec.NAMES)}")
    return spec.hp_arrays(exp, hps)


def kept_program(static: Experiment, name: str, tier: str, jitted, *args):
    """The compiled program of `jitted` (the group or one of its pieces, `name`) for `args`,
    compiled at `tier` (see `compile_tier`) and kept across processes (`runtime.prepare`):
    a group seen before starts without tracing."""
    return runtime.compiled([_prepared(static, name, tier, jitted, *args)])[0]


def _prepared(static: Experiment, name: str, tier: str, jitted, *args, pool=None) -> runtime.Prepared:
    """`kept_program`, lowered and compiling in `pool` (or not yet compiled, without one) where it
    is not kept (`runtime.prepare`)."""
    return runtime.prepare(jitted, args, (name, tier, static), runtime.code_files(static.target, static.learner),
                           compile=lambda lowered: compile_lowered(lowered, tier), pool=pool)


def _piece_programs(static: Experiment, pieces, arrays: dict, tier: str, stepped: bool):
    """The compiled start, loop and finish of a trained group for `arrays`, kept (see
    `kept_program`); the loop is advance (one curve point) if `stepped`, else train (every
    point). Each piece is lowered for what the one before returns, while that one compiles
    (`runtime.compile_pool`), so nothing runs here. start and finish compile quick (tiny
    for a tiny group), the loop at `tier`. Returns them and the run axis's sharding (None on
    one device)."""
    start, advance, train, finish = pieces
    once = "tiny" if tier == "tiny" else "quick"
    runs = arrays["seed"].sharding if isinstance(getattr(arrays["seed"], "sharding", None), NamedSharding) else None

    def shaped(info):  # what a piece returns, as the next piece's arguments: split along the run axis
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=runs), info)

    with runtime.compile_pool() as pool:
        start = _prepared(static, "start", once, start, arrays, pool=pool)
        data, state = shaped(start.out_info)
        if stepped:
            middle = _prepared(static, "advance", tier, advance, arrays, data, state, np.int32(0), pool=pool)
            state = shaped(middle.out_info[0])
        else:
            middle = _prepared(static, "train", tier, train, arrays, data, state, pool=pool)
            state = shaped(middle.out_info)
        finish = _prepared(static, "finish", once, finish, arrays, data, state, pool=pool)
        start, middle, finish = runtime.compiled([start, middle, finish])
    return start, middle, finish, runs


def _split(tree, runs):
    """`tree` split along the run axis on `runs` (None: one device, as it is): every piece is
    compiled for its arguments placed so (see `_piece_programs`), whatever placement XLA chose
    for the piece that returned them (a count equal in every run comes back replicated)."""
    return tree if runs is None else jax.device_put(tree, runs)


def _looped(pieces, arrays: dict) -> dict:
    """A trained group with its compiled `pieces` (`_piece_programs`, not stepped)."""
    start, train, finish, runs = pieces
    data, state = _split(start(arrays), runs)
    return finish(arrays, data, _split(train(arrays, data, state), runs))


def _stepped(static: Experiment, pieces, arrays: dict, progress) -> dict:
    """A trained group point by point, with its compiled `pieces` (see `_piece_programs`):
    while point c runs, wait for point c − 1 and report it."""
    start, advance, finish, runs = pieces
    points, steps = curve_steps(static), static.train.steps
    data, state = _split(start(arrays), runs)
    waiting = None  # (point, its `more` flag)
    for c in range(len(points)):
        state, more = advance(arrays, data, _split(state, runs), np.int32(c))
        if waiting is not None:
            progress(int(points[waiting[0]]), steps)
            if not bool(waiting[1]):  # every run stopped at that point: this one changes nothing
                break
        waiting = (c, more)
    out = finish(arrays, data, _split(state, runs))
    progress(steps, steps)
    return out


def _programs(static: Experiment, arrays: dict, devices, progress: bool):
    """What a compiled group runs, compiled and kept: (its arrays placed on `devices`, the
    group program, or None and the pieces of `_piece_programs` when it runs point by point
    or its loop compiles apart, `LOOPED_TIERS`)."""
    shards, pad = 1, 0
    if devices is not None and len(devices) > 1:
        arrays, pad = _shard(arrays, devices)
        shards = len(devices)
    # the tier of the runs asked for, not of the copies that fill the devices: as on one device
    tier = compile_tier(static, len(arrays["seed"]) - pad)
    looped = tier in LOOPED_TIERS and runtime.tiers_apply()
    pieces = group_pieces(static, shards) if progress or looped else None
    if pieces is None:
        return arrays, kept_program(static, "group", tier, compiled_group(static, shards), arrays), None
    return arrays, None, _piece_programs(static, pieces, arrays, tier, stepped=progress)


def _run_compiled_group(static: Experiment, arrays: dict, devices=None, progress=None) -> dict[str, np.ndarray]:
    """Every run in one compiled call (sharded over `devices` when there are several), in
    three (start, train, finish) where the loop compiles apart, or point by point when
    `progress` is asked for."""
    size = len(arrays["seed"])
    arrays, program, pieces = _programs(static, arrays, devices, progress is not None)
    if pieces is None:
        out = program(arrays)
    else:
        out = _looped(pieces, arrays) if progress is None else _stepped(static, pieces, arrays, progress)
    return {k: np.asarray(v)[:size] for k, v in out.items()}


def prepare_group(exp: Experiment, hps: dict, devices=None, progress: bool = False) -> None:
    """Compile what `run_group(exp, hps, devices, progress=...)` runs, and keep it in this
    process, without running anything: a sweep compiles its next group while one trains
    (`sweeps.executors.local`). Nothing to do for learners that run on the host.

    Example:
        >>> exp = sparselearn.config.load("configs/quickstart.yaml", overrides=["train.steps=100", "learner.width=32"])
        >>> prepare_group(exp, {"seed": [0, 1]})   # traces and compiles
        >>> out = run_group(exp, {"seed": [0, 1]})       # takes the kept program
    """
    if GROUP_RUNNERS[kind_of(exp.learner).name] is not _run_compiled_group:
        return
    _programs(static_part(exp), _group_arrays(exp, hps), devices, progress)


@functools.lru_cache(maxsize=64)
def _compiled_data(static: Experiment):
    @threefry.merged_draws
    def data_group(seeds, instances, noises):
        return jax.vmap(lambda s, i, e: make_data(static)(s, i, e)[1:])(seeds, instances, noises)
    return jax.jit(data_group, compiler_options=tier_options("tiny", None))   # random draws only


@functools.lru_cache(maxsize=16)
def _host_metrics(task: str, loss: str):
    """Final metrics of a host group in one compiled program: (f_test, y_test (R, T), f_train,
    y_train, rows (R, M)) → `_fitted_outputs` per run, rows weighing each run's own m rows 1 and
    the padding 0. Eager jnp operations would compile a dozen programs for every new m."""
    loss_of = LOSSES[loss]

    def one(f_test, y_test, f_train, y_train, rows):
        return _fitted_outputs(_metrics(f_test, y_test, task, loss_of),
                               _metrics(f_train, y_train, task, loss_of, rows))
    return jax.jit(jax.vmap(one), compiler_options=tier_options("tiny", None))


def _run_host_group(exp: Experiment, arrays: dict, devices=None, progress=None) -> dict[str, np.ndarray]:
    """Learners that run on the host (e.g. GF(2) elimination): data drawn in one compiled
    call for all seeds at the group's largest m, then `fit(key, x[:m], y[:m])` per run in
    numpy, and the metrics of every run in one compiled call. A `FitFailed` marks the run
    failed with its reason."""
    learner = exp.learner
    data = _compiled_data(static_part(exp))(arrays["seed"], instance_seed(arrays), arrays["noise"])
    x_tr, y_tr, x_te, y_te = (np.asarray(a) for a in data)
    f_te, f_tr = np.zeros(y_te.shape, np.float32), np.zeros(y_tr.shape, np.float32)
    rows = np.zeros(y_tr.shape, np.float32)
    failed = {}
    for i, (seed, m) in enumerate(zip(arrays["seed"], arrays["m"])):
        try:
            params = learner.fit(key_for(int(seed), "fit"), x_tr[i, :m], y_tr[i, :m])
            f_te[i], f_tr[i, :m] = learner.apply(params, x_te[i]), learner.apply(params, x_tr[i, :m])
            rows[i, :m] = 1.0
        except FitFailed as e:
            failed[i] = str(e)
    out = {k: np.array(v) for k, v in _host_metrics(exp.target.task, exp.train.loss)(
        f_te, y_te, f_tr, y_tr, rows).items()}
    for i in failed:   # no fit: NaN metrics and curves
        for k in ("test_error", "test_loss", "train_error", "train_loss", *(f"curve_{c}" for c in CURVES)):
            out[k][i] = np.nan
    out["error"] = np.asarray([failed.get(i) for i in range(len(arrays["seed"]))], dtype=object)
    return out


#: learner kind → how a group of its runs is executed
GROUP_RUNNERS = {"gradient": _run_compiled_group, "fitted": _run_compiled_group, "host": _run_host_group}


def run_one(exp: Experiment, seed: int = 0, **hp) -> dict[str, np.ndarray]:
    """One run alone (a group of one): metrics as 0-d arrays, curves as (P,)."""
    out = run_group(exp, {"seed": [seed], **{k: [v] for k, v in hp.items()}})
    return {k: v[0] for k, v in out.items()}
