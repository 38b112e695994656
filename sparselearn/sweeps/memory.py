"""How much memory a group needs, checked against the machine before anything compiles.

`estimate(exp)` is the memory of one run of a compiled group (the group's config, data.m =
its largest m), in three parts, each found by abstract evaluation (no compile, no data):

- data:        the training and test sets, (m + test_m) × bytes of one drawn example, the curves
               and the traces of `train.record` (every recorder's output at every curve point);
- parameters:  parameters, their copy at initialisation, gradients and optimizer state;
- activations: the largest of one training step (batch × forward intermediates per example,
               kept for the backward pass) and an evaluation over test_m or m examples.

A lottery-ticket run (`train.rewind`) counts the full network it trains first and the width-K
network it then trains. A vmapped group of R runs needs about R times that. `plan(groups,
executor)` turns this into the number of runs per compiled call, and raises ConfigError when
one run alone cannot fit.

Example:
    >>> est = estimate(group_exp)
    >>> est.total / 1e9                   # GB for one run
    >>> runs_per_call(group_exp, 1024, host_available())   # as many as fit, at most 1024
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


@dataclass(frozen=True)
class Estimate:
    """Bytes one run of a group needs, by part, with the config keys that drive each."""

    data: int
    parameters: int
    activations: int
    data_keys: tuple[str, ...] = ("data.m", "target.n")
    activation_keys: tuple[str, ...] = ("learner.width", "train.batch")

    @property
    def total(self) -> int:
        return self.data + self.parameters + self.activations

    def parts(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        """name → (bytes, the config keys that drive it, the largest first)."""
        return {"data": (self.data, self.data_keys),
                "parameters and optimizer state": (self.parameters, ("learner.width", "target.n")),
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


def _grow(trace, which: int) -> int:
    """Bytes per row of the (sum, largest) intermediates of `trace(rows)`: its growth from 1 to 2 rows."""
    return max(_intermediates(trace(2))[which] - _intermediates(trace(1))[which], 0)


@functools.lru_cache(maxsize=256)
def estimate(exp) -> Estimate:
    """Memory of one run of the group `exp` (its data.m the group's largest m)."""
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
                        max(full.activations, kept.activations), full.data_keys, full.activation_keys)
    kind = kind_of(learner)
    key = abstract_key()  # traced abstractly: nothing runs
    teacher = jax.eval_shape(target.init, key)
    x_one, y_one = jax.eval_shape(lambda p, k: target.sample(p, k, 1), teacher, key)
    # drawing a row keeps its temporaries (random bits, …) alongside the stored example
    per_row = _bytes((x_one, y_one)) + 2 * _grow(lambda rows: jax.make_jaxpr(
        lambda p, k: target.sample(p, k, rows))(teacher, key), 1)
    train_rows = 0 if data.online else data.m
    rows_key = "data.m" if train_rows >= data.test_m else "data.test_m"
    # and the outputs: a curve of every metric at each evaluation point
    curve_points = tr.steps // tr.eval_every + 2 if kind.trained else 1
    data_bytes = (train_rows + data.test_m) * per_row + _bytes(teacher) + curve_points * len(CURVES) * 4

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
        act_keys = ("train.batch" if step >= evaluation else rows_key, "learner.width")
    else:
        # fitted/host learners: the parameters and the largest array the fit computes (a
        # feature or Gram matrix) at the group's own m
        x = jax.ShapeDtypeStruct((data.m, target.n), x_one.dtype)
        y = jax.ShapeDtypeStruct((data.m,), jax.numpy.float32)
        if kind.compiled:
            fit = jax.make_jaxpr(lambda k, x, y: learner.fit(k, x, y, y))(key, x, y)
            param_bytes = _bytes(fit.out_avals)
            activations = 2 * _intermediates(fit)[1]
        else:  # host: numpy copies of the run's data
            param_bytes, activations = 0, data.m * _bytes((x_one, y_one))
        act_keys = ("data.m", "learner")
    return Estimate(int(data_bytes), int(param_bytes), int(activations), (rows_key, "target.n"), act_keys)


def available(devices=None) -> int | None:
    """Bytes free for a group: the sum over `devices` of their free memory on accelerators,
    else the host's available memory (the cgroup's limit if lower). None if unknown."""
    if devices:
        free = []
        for d in devices:
            stats = d.memory_stats() if d.platform != "cpu" else None
            if not stats or "bytes_limit" not in stats:
                break
            free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        else:
            return sum(free)
    return host_available()


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


def runs_per_call(exp, cap: int, free: int | None, multiple: int = 1) -> int:
    """How many runs of group `exp` one compiled call may take: as many as fit in
    HEADROOM × `free` bytes, at most `cap`, rounded down to a multiple of `multiple` (the
    devices sharing the run axis) when possible. Raises ConfigError if one run cannot fit."""
    est = estimate(exp)
    if free is None:
        return cap
    budget = HEADROOM * free
    if est.total > budget:
        parts = sorted(est.parts().items(), key=lambda kv: -kv[1][0])
        detail = ", ".join(f"{name} {_gb(b)} from {' × '.join(keys)}" for name, (b, keys) in parts)
        worst = parts[0][1][1]
        raise ConfigError(f"one run needs about {_gb(est.total)} of memory ({detail}), more than the "
                          f"{_gb(budget)} a group may use of the {_gb(free)} available; reduce "
                          f"{' or '.join(worst)}", key=worst[0])
    fit = min(cap, int(budget // max(est.total, 1)))
    return fit - fit % multiple if fit >= multiple else fit


#: executors whose groups train in this process, on this machine's memory
HERE = ("local", "devices")


def plan(groups, executor) -> dict[str, int]:
    """group_id → runs per compiled call (see `runs_per_call`) for groups that train in this
    process; {} for executors that train elsewhere (their machines' memory is not known here).
    Raises ConfigError when one run of a group cannot fit."""
    if executor.name not in HERE or not groups:
        return {}
    import jax

    devices = jax.local_devices()
    free = available(devices)
    return {g.group_id: runs_per_call(g.exp, executor.max_group_runs, free, len(devices)) for g in groups}


def sized(train, limits: dict[str, int], group, **kwargs):
    """`train(group, max_runs=limits[group.group_id], **kwargs)` (no max_runs if not planned)."""
    if group.group_id in limits:
        kwargs["max_runs"] = limits[group.group_id]
    return train(group, **kwargs)
