"""A group's memory is estimated before compiling: sizes that cannot fit fail fast with exit 2,
and the estimate sets how many runs share one compiled call."""

from __future__ import annotations

import dataclasses
import time

import pytest

from sparselearn import config
from sparselearn.cli import main
from sparselearn.sweeps import memory
from sparselearn.sweeps.grid import expand, group
from sparselearn.train.loop import compile_at, compile_tier, compiled_group
from sparselearn.train.spec import hp_arrays, static_part

SIZED = """
experiment: sized
target:  {name: sparse_parity, n: %d, k: 2}
learner: {name: %s}
train:   {optimizer: %s, batch: %d, steps: 40, eval_every: 20}
data:    {m: %d, test_m: %d}
sweep:   {seeds: 4}
"""


@pytest.mark.parametrize("n, learner, optimizer, batch, m, test_m", [
    (10, "mlp, width: 32", "sgd", 16, 256, 128),
    (50, "mlp, width: 512", "adam", 64, 4096, 1024),       # parameters and activations
    (200, "mlp, width: 64", "sgd", 32, 20000, 2048),       # data
    (30, "mlp, width: 1024, depth: 3", "sgd", 128, 2048, 4096),
    (12, "lowdegree, degree: 2", "sgd", 32, 2000, 512),    # a fitted learner
])
def test_estimate_is_within_a_small_factor_of_the_compiled_group(n, learner, optimizer, batch, m, test_m):
    _check_estimate(_sized(n, learner, optimizer, batch, m, test_m))


def _sized(n, learner, optimizer, batch, m, test_m):
    """SIZED, without step settings for a fitted learner (which would not read them)."""
    text = SIZED % (n, learner, optimizer, batch, m, test_m)
    if learner.startswith("lowdegree"):
        text = "\n".join(line for line in text.splitlines() if not line.startswith("train:"))
    return config.loads(text)


def test_estimate_counts_a_wide_teachers_activations_while_it_draws_and_builds():
    """A Gaussian sparse_mlp of s = 1,024 units draws its labels through (rows, s) activations
    and builds its bias from 2^14 reference inputs times its units: estimated at 0 from 1 and 2
    rows, the data part was 24× below the measured peak at s = 4,096."""
    text = ("target: {name: sparse_mlp, n: 64, s: 1024, k: 4, construction: random, inputs: gaussian}\n"
            "learner: {name: mlp, width: 16}\ntrain: {loss: square, steps: 40, eval_every: 20}\n"
            "data: {m: 4096, test_m: 4096}\n")
    est = memory.estimate(group(expand(config.loads(text)))[0].exp)
    assert est.data >= (4096 + 4096) * 1024 * 4 + 2**14 * 1024 * 4
    _check_estimate(config.loads(text))


def test_estimate_counts_the_batch_indices_drawn_between_curve_points():
    """4,000 steps of batch 1,024 between curve points: their indices, drawn at once, are most of
    the memory of a small net (the estimate was 1/100 of it)."""
    text = SIZED.replace("steps: 40, eval_every: 20", "steps: 8000, eval_every: 4000")
    _check_estimate(config.loads(text % (10, "mlp, width: 8", "sgd", 1024, 2048, 256)))


def _check_estimate(exp):
    """The estimate of exp's first group is within a small factor of what XLA allocates for it."""
    g = group(expand(exp))[0]
    estimated = len(g.runs) * memory.estimate(g.exp).total
    static = static_part(g.exp)
    # compiled as `run_group` compiles it: at the group's tier
    compiled = compile_at(compiled_group(static), compile_tier(static, len(g.runs)), hp_arrays(g.exp, g.hps()))
    stats = compiled.memory_analysis()
    actual = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
    assert actual / 2.5 <= estimated <= 3 * actual, (estimated, actual)


def test_runs_per_call_follows_free_memory_and_the_cap(tiny):
    g = group(expand(tiny))[0]
    one = memory.estimate(g.exp).total
    free = int(10.5 * one / memory.HEADROOM)
    assert memory.runs_per_call(g.exp, 1024, free) == 10
    assert memory.runs_per_call(g.exp, 1024, free, devices=4) == 8  # a multiple of the devices sharing it
    assert memory.runs_per_call(g.exp, 1024, free, devices=4, per_device=True) == 40  # 10 on each device
    assert memory.runs_per_call(g.exp, 3, free) == 3
    assert memory.runs_per_call(g.exp, 1024, None) == 1024  # unknown memory: the cap
    with pytest.raises(config.ConfigError, match="one run needs about"):
        memory.runs_per_call(g.exp, 1024, one // 2)
    assert memory.plan([g], config.override(tiny, executor={"name": "ray"}).executor) == {}


@pytest.mark.parametrize("overrides, keys", [
    (["target.n=1000000", "learner.width=4096"], "target.n"),
    (["sweep.grid.data.m=[1000000000]"], "data.m"),
    (["learner.width=10000000", "target.n=1000"], "learner.width"),
])
def test_sizes_that_cannot_fit_fail_fast_with_exit_2_and_write_nothing(tmp_path, tiny_file, capsys, monkeypatch,
                                                                        overrides, keys):
    monkeypatch.chdir(tmp_path)
    args = ["run", str(tiny_file), "--quiet", "--out", "out"] + [a for o in overrides for a in ("--set", o)]
    start = time.perf_counter()
    assert main(args) == 2
    took = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "one run needs about" in err, err
    assert " GB" in err and keys in err, err
    assert not (tmp_path / "out").exists()
    assert took < 5, took


def test_a_large_group_is_split_into_calls_that_fit(tiny, tmp_path, monkeypatch):
    g = group(expand(tiny))[0]
    one = memory.estimate(g.exp).total
    monkeypatch.setattr(memory, "available", lambda devices=None: (int(2.5 * one / memory.HEADROOM), False))
    calls = []
    import sparselearn.sweeps.runner as runner

    real = runner.run_group

    def counted(exp, hps, devices=None):
        calls.append(len(hps["seed"]))
        return real(exp, hps, devices=devices)

    monkeypatch.setattr(runner, "run_group", counted)
    df = runner.run(tiny, tmp_path, progress=False)
    assert (df["status"] == "ok").all() and len(df) == 4
    assert calls == [2, 2], calls


def test_estimate_counts_recorded_traces_and_the_network_a_ticket_trains_first(tiny):
    plain = memory.estimate(static_part(tiny))
    traced = memory.estimate(static_part(config.override(tiny, train={"record": ("first_layer",)})))
    points = tiny.train.steps // tiny.train.eval_every + 2
    assert traced.data - plain.data == points * tiny.target.n * tiny.learner.width * 4
    for pick in ("largest", "random"):
        ticket = memory.estimate(static_part(config.override(tiny, train={"rewind": 4, "rewind_pick": pick})))
        assert ticket.parameters > plain.parameters and ticket.data == 2 * plain.data


def test_an_estimate_is_traced_once_per_machine_and_kept_beside_the_programs(tiny, tmp_path, monkeypatch):
    from sparselearn import runtime

    traced, real = [], memory._traced
    monkeypatch.setattr(memory, "_traced", lambda exp: traced.append(exp) or real(exp))
    monkeypatch.setattr(runtime, "programs_dir", lambda environ=None: tmp_path)
    exp = static_part(config.override(tiny, train={"rewind": 4}))   # nested: the full network's too
    memory.estimate.cache_clear()
    first = memory.estimate(exp)
    assert len(traced) == 3 and len(list(tmp_path.glob("*.json"))) == 3
    memory.estimate.cache_clear()                 # as a new process
    assert memory.estimate(exp) == first and len(traced) == 3
    # what it does not trace (the experiment's name, its sweep) is the same estimate; a width is not
    memory.estimate.cache_clear()
    assert memory.estimate(dataclasses.replace(tiny, train=exp.train)) == first and len(traced) == 3
    wider = memory.estimate(dataclasses.replace(exp, learner=dataclasses.replace(exp.learner, width=2 * tiny.learner.width)))
    assert wider.parameters > first.parameters and len(traced) == 5  # its ticket's width is the same
    # a damaged file is traced again and rewritten; without a compile cache nothing is kept
    for kept in tmp_path.glob("*.json"):
        kept.write_bytes(kept.read_bytes()[:-3])
    memory.estimate.cache_clear()
    assert memory.estimate(exp) == first and len(traced) == 8
    monkeypatch.setattr(runtime, "programs_dir", lambda environ=None: None)
    memory.estimate.cache_clear()
    assert memory.estimate(exp) == first and len(traced) == 11
    memory.estimate.cache_clear()


class _Device:
    """A stand-in for a JAX device: its platform and memory stats."""

    def __init__(self, platform: str, free: int = 0):
        self.platform, self.free = platform, free

    def memory_stats(self):
        return {"bytes_limit": self.free + 1000, "bytes_in_use": 1000}


def test_plan_compares_one_run_with_one_device_and_counts_the_padding(tiny, monkeypatch):
    import jax

    g = group(expand(tiny))[0]  # 4 runs: on 3 devices the executor uses 2, with 2 runs each
    one = memory.estimate(g.exp).total
    room = int(2.5 * one / memory.HEADROOM)
    assert memory.available([_Device("gpu", room), _Device("gpu", 3 * room)]) == (room, True)
    monkeypatch.setattr(jax, "local_devices", lambda: [_Device("gpu", room)] * 3)
    assert memory.plan([g], tiny.executor) == {g.group_id: 4}  # 2 per device fit, not 7 in all
    # host devices share the host's memory: a call of fewer runs than devices takes one device a run
    monkeypatch.setattr(jax, "local_devices", lambda: [_Device("cpu")] * 4)
    monkeypatch.setattr(memory, "host_available", lambda: room)
    assert memory.plan([g], tiny.executor) == {g.group_id: 2}   # 2 calls of 2 runs, on 2 of the 4 devices
    monkeypatch.setattr(memory, "host_available", lambda: 2 * room)
    assert memory.plan([g], tiny.executor) == {g.group_id: 4}
    assert memory.runs_per_call(g.exp, 1024, int(1.5 * one / memory.HEADROOM), devices=2) == 1
    with pytest.raises(config.ConfigError, match="one run"):
        memory.runs_per_call(g.exp, 1024, int(0.5 * one / memory.HEADROOM), devices=2)


@pytest.mark.parametrize("learner", ["mlp, width: 16", "moe, experts: 2", "lowdegree, degree: 2"])
def test_the_keys_an_estimate_names_exist(learner):
    exp = _sized(10, learner, "sgd", 16, 256, 128)
    for _, keys in memory.estimate(static_part(exp)).parts().values():
        for key in keys:
            section, _, name = key.partition(".")
            assert hasattr(exp, section) and (not name or hasattr(getattr(exp, section), name)), key


@pytest.mark.parametrize("target, learner, m, test_m", [
    ("sparse_parity, n: 20, k: 3", "lowdegree, degree: 3, basis: walsh, ridge: 0.0001", 2000, 512),
    ("sparse_parity, n: 20, k: 3", "lowdegree, degree: 3, basis: auto, ridge: 0.0", 600, 2048),
    ("hierarchical, n: 100, k: 2, r: 4, q: 2", "lowdegree, degree: 1, basis: hermite", 300, 2048),
    ("sparse_parity, n: 20, k: 3", "kernel, kernel: ntk", 300, 4096),
    ("sparse_parity, n: 20, k: 3", "random_features, width: 1024", 2000, 1024),
    ("hierarchical, n: 20, k: 2, r: 4, q: 2", "layerwise, width: 1024, degree: 4, steps: 2", 500, 1024),
])
def test_a_fitted_learners_memory_check_refuses_a_limit_below_what_xla_allocates(target, learner, m, test_m):
    """The config-time check of a fitted learner bounds its run from above: XLA's memory analysis
    of fit + the test and training evaluations, per run, never exceeds the check's estimate."""
    import jax
    import jax.numpy as jnp

    from sparselearn.errors import ConfigError
    from sparselearn.runtime import FULL_COMPILE, known_options

    exp = config.loads(f"target: {{name: {target}}}\nlearner: {{name: {learner}}}\n"
                       f"data: {{m: {m}, test_m: {test_m}}}\ntrain: {{loss: square}}\n")
    fitted = exp.learner

    def run(x, y, w, x_test):
        params = fitted.fit(jax.random.key(0), x, y, w)
        return fitted.apply(params, x_test), fitted.apply(params, x)

    shape = jax.ShapeDtypeStruct
    n = exp.target.n
    lowered = jax.jit(run).lower(shape((m, n), jnp.float32), shape((m,), jnp.float32),
                                 shape((m,), jnp.float32), shape((test_m, n), jnp.float32))
    use = lowered.compile(known_options(FULL_COMPILE)).memory_analysis()   # the tier of large runs, and the most memory
    allocated = use.temp_size_in_bytes + use.argument_size_in_bytes + use.output_size_in_bytes
    below = dataclasses.replace(fitted, max_memory_gb=0.999 * allocated / 2**30)
    with pytest.raises(ConfigError, match="over the limit"):
        below.check(exp.target, exp.data)
    dataclasses.replace(fitted, max_memory_gb=3.0 * allocated / 2**30).check(exp.target, exp.data)  # nor 3× over
