"""runtime.tiered_jit: eager calls compile per shape at a tier chosen by size, traced calls are
jax.jit's, and the stated option sets compile as XLA's own whatever XLA_FLAGS say."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparselearn as sl
from sparselearn import runtime

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def chosen(monkeypatch):
    """The options each eager compile of a tiered function gets, in order."""
    seen, real = [], runtime.eager_options
    monkeypatch.setattr(runtime, "eager_options", lambda lowered: seen.append(real(lowered)) or seen[-1])
    return seen


def _scaled(a, x, m: int):
    return a * jnp.tile(x, m)


def test_a_shape_compiles_once_at_the_tier_its_size_picks(chosen, monkeypatch):
    f = runtime.tiered_jit(_scaled, static_argnums=2)
    x = jnp.arange(4.0)
    first = f(2.0, x, 3)
    np.testing.assert_array_equal(first, 2.0 * np.tile(np.arange(4.0), 3))
    np.testing.assert_array_equal(f(2.0, x, 3), first)  # the same program, the same bits
    f(3.0, x + 1, 3)  # other values of the same shapes: no compile
    assert chosen == [runtime.TINY_COMPILE]
    f(2.0, x, 5)  # a new static argument
    f(2.0, jnp.arange(6.0), 3)  # a new shape
    f(2, x.astype(jnp.int32), 3)  # a new dtype
    assert len(chosen) == 4
    monkeypatch.setattr(runtime, "EAGER_TINY_FLOPS", 0.0)  # every program is large
    f(2.0, jnp.arange(8.0), 3)
    assert chosen[-1] == runtime.FULL_COMPILE


def test_traced_calls_keyword_calls_and_disabled_jit_are_plain_jax_jit(chosen):
    f = runtime.tiered_jit(_scaled, static_argnums=2)
    x = jnp.arange(3.0)
    assert jax.jit(lambda a: f(a, x, 2))(2.0).shape == (6,)
    assert jax.vmap(lambda a: f(a, x, 2))(jnp.arange(2.0)).shape == (2, 6)
    assert float(jax.grad(lambda a: f(a, x, 2).sum())(1.0)) == pytest.approx(2 * x.sum())
    np.testing.assert_array_equal(f(2.0, x=x, m=2), 2.0 * np.tile(np.arange(3.0), 2))
    with jax.disable_jit():
        np.testing.assert_array_equal(f(2.0, x, 2), 2.0 * np.tile(np.arange(3.0), 2))
    assert chosen == []


def test_kept_programs_are_bounded(chosen, monkeypatch):
    monkeypatch.setattr(runtime, "_TIERED_MAX", 2)
    f = runtime.tiered_jit(_scaled, static_argnums=2)
    for m in (1, 2, 3):
        f(1.0, jnp.ones(2), m)
    assert len(f._programs) == 2
    f(1.0, jnp.ones(2), 1)  # dropped: compiled again
    assert len(chosen) == 4


@pytest.mark.parametrize("name, kwargs", [("sparse_parity", {"n": 12, "k": 3}),
                                          ("sparse_mlp", {"n": 10, "s": 6, "k": 2}),
                                          ("hierarchical", {"n": 8})])
def test_a_teachers_eager_draws_equal_its_draws_inside_a_program(chosen, name, kwargs, monkeypatch):
    target = sl.targets.get(name, **kwargs)
    for method in (type(target).init, type(target).sample):  # nothing kept from earlier tests
        monkeypatch.setattr(method, "_programs", OrderedDict())
    key = jax.random.key(3)
    params = target.init(key)
    x, y = target.sample(params, key, 256)
    assert chosen == [runtime.TINY_COMPILE] * 2
    params_in, (x_in, y_in) = jax.jit(lambda k: (target.init(k), target.sample(target.init(k), k, 256)))(key)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params_in)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x, x_in, rtol=1e-6, atol=1e-6)
    if target.task == "classification":  # labels are signs: no rounding can move them here
        np.testing.assert_array_equal(y, y_in)
    else:
        np.testing.assert_allclose(y, y_in, rtol=1e-5, atol=1e-5)
    assert type(target).sample.__doc__ and type(target).sample.__name__ == "sample"
    assert target.sample == target.sample and hash(target.sample) == hash(target.sample)  # a static argument


STATED = """
import hashlib, json, jax
from sparselearn import runtime
lowered = jax.jit(lambda k: jax.random.normal(k, (64,))).lower(jax.random.key(0))  # fusion emitters show
def text(options):
    lines = lowered.compile(options).as_text().splitlines()
    return hashlib.sha256("\\n".join(l for l in lines if "HloModule" not in l).encode()).hexdigest()
print(json.dumps({"default": text({}), "full": text(runtime.FULL_COMPILE), "quick": text(runtime.QUICK_COMPILE)}))
"""


def test_stated_option_sets_compile_as_xla_defaults_whatever_xla_flags_say():
    import json

    if "xla_cpu_use_fusion_emitters" not in runtime._known_option_names():
        pytest.skip("this XLA has no fusion emitters switch (jaxlib ≥ 0.11): QUICK_COMPILE compiles as FULL_COMPILE")

    def texts(flags: str) -> dict:
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags,
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        done = subprocess.run([sys.executable, "-c", STATED], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    plain, cheap = texts(""), texts("--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false")
    assert plain["full"] == plain["default"] != plain["quick"]
    assert cheap["full"] == plain["full"] and cheap["quick"] == plain["quick"]
    assert cheap["default"] == plain["quick"]  # the flags did change what unstated options compile


def test_option_sets_leave_out_the_options_this_xla_does_not_know_and_keep_the_rest():
    """An option set naming an option XLA does not know (as jax 0.11's XLA does not know the
    fusion emitters switch) compiles as the set without it; a plain compile with it fails."""
    lowered = jax.jit(lambda x: jnp.sin(x) * 2).lower(jnp.ones(8))
    unknown = {**runtime.TINY_COMPILE, "xla_cpu_no_such_option": True}
    with pytest.raises(Exception, match="xla_cpu_no_such_option"):
        lowered.compile(unknown)
    assert runtime.known_options(unknown) == runtime.known_options(runtime.TINY_COMPILE)
    assert runtime.known_options(runtime.TINY_COMPILE)["xla_backend_optimization_level"] == 0
    program = lowered.compile(runtime.known_options(unknown))
    np.testing.assert_allclose(program(jnp.ones(8)), np.sin(np.ones(8)) * 2, rtol=1e-6)
    if runtime._known_option_names() == frozenset(runtime.TINY_COMPILE):   # jaxlib < 0.11: all known, all kept
        assert runtime.known_options(runtime.QUICK_COMPILE) == runtime.QUICK_COMPILE
