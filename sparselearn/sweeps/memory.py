"""How much memory a group needs, checked against the machine before anything compiles.

`estimate(exp)` is the memory of one run of a compiled group (the group's config, data.m =
its largest m), in three parts, each found by abstract evaluation (no compile, no data):

- data:        the training and test sets, (m + test_m) × bytes of one drawn example, the curves
               and the traces of `train.record` (every recorder's output at every curve point);
- parameters:  parameters, their copy at initialisation, gradients and optimizer state;
- activations: the largest of one training step (batch × forward intermediates per example,
               kept for the backward pass) and an evaluation over test_m or m examples; for a
               fitted learner, a few times the largest array its fit and evaluations compute.

A lottery-ticket run (`train.rewind`) counts the full network it trains first and the width-K
network it then trains. A vmapped group of R runs needs about R times that. `plan(groups,
executor)` turns this into the number of runs per compiled call: on accelerators each device
holds its share of the run axis in its own memory; host devices share the host's, and a call
split over D of them holds a multiple of D runs (the run axis is padded to one), or fewer runs
than D on as many devices. It raises ConfigError when one run alone cannot fit.

Example:
    >>> from sparselearn.sweeps.grid import expand, group
    >>> group_exp = group(expand(sparselearn.config.load("configs/quickstart.yaml")))[0].exp
    >>> est = estimate(group_exp)
    >>> round(est.total / 1e9, 2)         # GB for one run
    0.01
    >>> runs_per_call(group_exp, 24, host_available())     # as many as fit, at most 24
    24
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from sparselearn.errors import ConfigError

HEADROOM = 0.7  # the share of available memory a group may take (the rest: Python, XLA, compiling)
BACKWARD = 2    # a training step keeps the forward intermediates and about as much for the gradients
#: a fitted run holds several arrays the size of its largest (a Gram or feature matrix): the
#: fit's, the evaluations', the solve's system, factor and eigenvectors. The solve goes one run
#: at a time, so a call of one run needs the most per run (XLA: 7.3× the largest for kernel
#: ridge, 4.2× for random features; 2.7× at 8 runs)
FITTED = 5


@dataclass(frozen=True)
class Estimate:
    """Bytes one run of a group needs, by part, with the config keys that drive each."""

    data: int
    parameters: int
    activations: int
    data_keys: tuple[str, ...] = ("data.m", "target.n")
    activation_keys: tuple[str, ...] = ("learner", "train.batch")
    parameter_keys: tuple[str, ...] = ("learner", "target.n")

    @property
    def total(self) -> int:
        return self.data + self.parameters + self.activations

    def parts(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        """name → (bytes, the config keys that drive it, the largest first)."""
        return {"data": (self.data, self.data_keys),
                "parameters and optimizer state": (self.parameters, self.parameter_keys),
                "activations": (self.activations, self.activation_keys)}


def _itemsize(dtype) -> int:
    import jax

    if jax.dtypes.issubdtype(dtype, jax.dtypes.extended):  # PRNG keys: two uint32 words
        return 8
    return jax.numpy.dtype(dtype).itemsize


def _bytes(tree) -> int:
    import jax

    return sum(math.prod(a.shape) * _itemsize(a.dtype) for a in jax.tree.leaves(tree))


def _intermediates(closed) -> tuple[int, int]:
    """(sum, largest) bytes of every value a jaxpr computes, nested jaxprs included."""
    total = largest = 0
    stack = [closed.jaxpr if hasattr(closed, "jaxpr") else closed]
    while stack:
        jaxpr = stack.pop()
        for eqn in jaxpr.eqns:
            for v in eqn.outvars:
                aval = v.aval
                if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                    size = math.prod(aval.shape) * _itemsize(aval.dtype)
                    total, largest = total + size, max(largest, size)
            for p in eqn.params.values():
                for sub in p if isinstance(p, (tuple, list)) else (p,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        stack.append(inner)
    return total, largest


def _size_key(learner) -> str:
    """The config key that sizes the learner: learner.width where it has one, else its section."""
    return "learner.width" if hasattr(learner, "width") else "learner"


def _grow(trace, which: int, rows: int = 1) -> int:
    """Bytes per row of the (sum, largest) intermediates of `trace(rows)`: its growth from `rows`
    to 2·rows, per row."""
    return -(-max(_intermediates(trace(2 * rows))[which] - _intermediates(trace(rows))[which], 0) // rows)


@functools.lru_cache(maxsize=256)
def estimate(exp) -> Estimate:
    """Memory of one run of the group `exp` (its data.m the group's largest m), traced once per
    machine and kept beside the compiled programs (`runtime.kept_value`): a warm run of the
    16-seed parity of bench_overhead starts 0.03 s sooner."""
    from sparselearn import runtime

    parts = ("memory estimate", exp.target, exp.learner, exp.train, exp.data)  # what it traces
    kept = runtime.kept_value(parts, runtime.code_files(exp.target, exp.learner),
                              lambda: vars(_traced(exp)))
    return Estimate(**{name: tuple(v) if isinstance(v, list) else v for name, v in kept.items()})


def _traced(exp) -> Estimate:
    """`estimate`, found by abstract evaluation."""
    import jax

    from sparselearn.contracts import kind_of
    from sparselearn.rng import abstract_key
    from sparselearn.schema import CURVES
    from sparselearn.train import optimizers

    target, learner, tr, data = exp.target, exp.learner, exp.train, exp.data
    if tr.rewind is not None:  # the full network, then the kept units
        plain = replace(tr, rewind=None, rewind_pick="largest")
        full = estimate(replace(exp, train=replace(plain, record=())))
        kept = estimate(replace(exp, learner=replace(learner, width=tr.rewind), train=plain))
        return Estimate(full.data + kept.data, full.parameters + kept.parameters,
                        max(full.activations, kept.activations), full.data_keys, full.activation_keys,
                        full.parameter_keys)
    kind = kind_of(learner)
    key = abstract_key()  # traced abstractly: nothing runs
    teacher = jax.eval_shape(target.init, key)
    x_one, y_one = jax.eval_shape(lambda p, k: target.sample(p, k, 1), teacher, key)
    train_rows = 0 if data.online else data.m

    def draw(rows):
        return jax.make_jaxpr(lambda p, k: target.sample(p, k, rows))(teacher, key)

    # drawing a row keeps its temporaries (random bits, a wide teacher's (rows, s) activations)
    # alongside the stored example: their growth at 1 row and at the group's own row count, where
    # such an array outgrows the teacher's fixed weights, the largest at 1 or 2 rows (n = 256,
    # s = 4096: 16 KB a row, estimated at 0 from 1 and 2 rows, 24× below the measured peak)
    per_row = _bytes((x_one, y_one)) + 2 * max(_grow(draw, 1), _grow(draw, 1, max(train_rows, data.test_m)))
    # and building the teacher: the largest array of its init twice (a reference set of inputs
    # times its units: 268 MB at s = 4096), held before the data is drawn
    building = 2 * _intermediates(jax.make_jaxpr(target.init)(key))[1]
    rows_key = "data.m" if train_rows >= data.test_m else "data.test_m"
    # and the outputs: a curve of every metric at each evaluation point
    curve_points = tr.steps // tr.eval_every + 2 if kind.trained else 1
    data_bytes = (train_rows + data.test_m) * per_row + _bytes(teacher) + building + curve_points * len(CURVES) * 4
    data_keys = (rows_key, "target.n")
    if kind.trained:
        # a curve point's steps draw their batch indices at once (int32) and keep a loss and an
        # error each: 40,000 steps of batch 1,024 between points held 83 MB per run in XLA's temporaries
        window = min(tr.eval_every, tr.steps) * ((0 if data.online else 4 * tr.batch) + 8)
        data_bytes += window
        data_keys = ("train.eval_every", "train.batch") if window > data_bytes / 2 else data_keys

    if kind.trained:
        params = jax.eval_shape(lambda k: learner.init_params(k, target.n), key)
        opt = optimizers.make(tr.optimizer, 0.1, 0.0, tr.momentum, tr.sign_threshold)
        param_bytes = 3 * _bytes(params) + _bytes(jax.eval_shape(opt.init, params))
        if tr.record:
            from sparselearn.train.record import observer

            x_test = jax.ShapeDtypeStruct((data.test_m, target.n), x_one.dtype)
            data_bytes += curve_points * _bytes(jax.eval_shape(observer(exp), params, params, teacher, x_test))

        def forward(rows):
            return jax.make_jaxpr(learner.apply)(params, jax.ShapeDtypeStruct((rows, target.n), x_one.dtype))

        # a training step keeps every forward intermediate for the backward pass; an evaluation
        # streams through them, holding about the two largest at a time
        step = BACKWARD * tr.batch * _grow(forward, 0)
        evaluation = 2 * max(data.test_m, train_rows) * _grow(forward, 1)
        activations = max(step, evaluation)
        act_keys = ("train.batch" if step >= evaluation else rows_key, _size_key(learner))
        param_keys = (_size_key(learner), "target.n")
    else:
        # fitted/host learners: the parameters and FITTED × the largest array a run computes (a
        # feature or Gram matrix, of the fit or an evaluation) at the group's own m
        x = jax.ShapeDtypeStruct((data.m, target.n), x_one.dtype)
        y = jax.ShapeDtypeStruct((data.m,), jax.numpy.float32)
        if kind.compiled:
            x_test = jax.ShapeDtypeStruct((data.test_m, target.n), x_one.dtype)

            def fitted(k, x, y, x_test):  # as the run: fit, then evaluate on the test and training sets
                params = learner.fit(k, x, y, y)
                return params, learner.apply(params, x_test), learner.apply(params, x)

            run = jax.make_jaxpr(fitted)(key, x, y, x_test)
            param_bytes = _bytes(run.out_avals[:-2])
            activations = FITTED * _intermediates(run)[1]
        else:  # host: numpy copies of the run's data
            param_bytes, activations = 0, data.m * _bytes((x_one, y_one))
        act_keys = ("data.m", _size_key(learner))
        param_keys = (_size_key(learner), "target.n")
    return Estimate(int(data_bytes), int(param_bytes), int(activations), data_keys, act_keys, param_keys)


def available(devices=None) -> tuple[int | None, bool]:
    """(bytes free, per_device). On accelerators (every one of `devices` reporting its memory)
    the least free memory of any of them, per_device True: a run lives on one device, and the
    run axis is split evenly. Else the host's available memory (the cgroup's limit if lower),
    which all host devices share, per_device False. Bytes None if unknown."""
    if devices:
        free = []
        for d in devices:
            stats = d.memory_stats() if d.platform != "cpu" else None
            if not stats or "bytes_limit" not in stats:
                break
            free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        else:
            return min(free), True
    return host_available(), False


def host_available() -> int | None:
    """MemAvailable of /proc/meminfo (bounded by a cgroup v2 limit), else sysconf's free pages."""
    found = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
    except OSError:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found = min(found, int(limit) - used) if found is not None else int(limit) - used
    except (OSError, ValueError):
        pass
    return found


def _gb(b: float) -> str:
    return f"{b / 1e9:.1f} GB" if b >= 1e8 else f"{b / 1e6:.0f} MB" if b >= 1e6 else "< 1 MB"


def _too_big(est: Estimate, need: int, budget: float, free: int, what: str, advice: str = "") -> ConfigError:
    """The error for `what` (needing `need` bytes of runs of `est`) over `budget` of `free` bytes."""
    parts = sorted(est.parts().items(), key=lambda kv: -kv[1][0])
    detail = ", ".join(f"{name} {_gb(b)} from {' × '.join(keys)}" for name, (b, keys) in parts)
    worst = parts[0][1][1]
    each = "" if need == est.total else "each run: "
    return ConfigError(f"{what} needs about {_gb(need)} of memory ({each}{detail}), more than the "
                       f"{_gb(budget)} a group may use of the {_gb(free)} available; reduce "
                       f"{' or '.join(worst)}{advice}", key=worst[0])


def runs_per_call(exp, cap: int, free: int | None, devices: int = 1, per_device: bool = False) -> int:
    """How many runs of group `exp` one compiled call may take when its run axis is split over
    `devices` devices: at most `cap`, and as many as fit in HEADROOM × `free` bytes, which are
    each device's own (`per_device`, accelerators) or shared by all (host devices). A call
    holds a multiple of `devices` runs (the run axis is padded to one), so the count is one
    where it can be; a call of fewer runs than `devices` is split over that many devices, one
    run each (the runner's `_chunk_devices`). Raises ConfigError if one run cannot fit."""
    est = estimate(exp)
    if free is None:
        return cap
    budget = HEADROOM * free
    if est.total > budget:
        raise _too_big(est, est.total, budget, free, "one run")
    fit = int(budget // max(est.total, 1))  # runs in the budget: per device, or in all
    if per_device:
        most = fit * devices
    elif fit < devices:  # on as many host devices as runs
        most = fit
    else:
        most = fit - fit % devices
    most = min(cap, most)
    return most - most % devices if most >= devices else most


#: executors whose groups train in this process, on this machine's memory
HERE = ("local", "devices")


def plan(groups, executor) -> dict[str, int]:
    """group_id → runs per compiled call (see `runs_per_call`) for groups that train in this
    process, each split over the devices the local executor gives it; {} for executors that
    train elsewhere (their machines' memory is not known here). Raises ConfigError when one run
    of a group cannot fit."""
    if executor.name not in HERE or not groups:
        return {}
    import jax

    from sparselearn.sweeps.executors.local import devices_for

    devices = tuple(jax.local_devices())
    free, per_device = available(devices)
    # split as the local executor splits each group's run axis
    return {g.group_id: runs_per_call(g.exp, executor.max_group_runs, free,
                                      len(devices_for(len(g.runs), devices) or (None,)), per_device)
            for g in groups}


def sized(train, limits: dict[str, int], group, **kwargs):
    """`train(group, max_runs=limits[group.group_id], **kwargs)` (no max_runs if not planned)."""
    if group.group_id in limits:
        kwargs["max_runs"] = limits[group.group_id]
    return train(group, **kwargs)
