"""A researcher's own plug-ins (a target with its own label rule and noise model, a 2-layer net
with a custom activation, a closed-form fitted learner) through `sweeps.run`, in fresh processes
sharing one compile cache; and the contract errors a broken plug-in gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from sparselearn import config, learners
from sparselearn.errors import ConfigError

PLUGIN = '''
from dataclasses import dataclass
from typing import ClassVar
import jax, jax.numpy as jnp

SHARPNESS = 1.0


@dataclass(frozen=True)
class Wedge:
    """y = sign(x_a x_b + x_c + 1/2) for three random coordinates a, b, c of x in {±1}^n."""
    n: int = 8
    noise: float = 0.0
    name: ClassVar[str] = "wedge"
    task: ClassVar[str] = "classification"

    def init(self, key):
        return {"support": jax.random.permutation(key, self.n)[:3]}

    def labels(self, params, x):
        z = jnp.take(x, params["support"], axis=1)
        return jnp.sign(z[:, 0] * z[:, 1] + z[:, 2] + 0.5)

    def sample(self, params, key, m):
        kx, ky = jax.random.split(key)
        x = jnp.where(jax.random.bernoulli(kx, 0.5, (m, self.n)), 1.0, -1.0)
        return x, self.add_noise(self.labels(params, x), key, self.noise)

    def add_noise(self, y, key, noise):
        return jnp.where(jax.random.bernoulli(jax.random.split(key)[1], noise, y.shape), -y, y)


def swish(z):
    return z * jax.nn.sigmoid(SHARPNESS * z)


@dataclass(frozen=True)
class SwishNet:
    width: int = 16
    name: ClassVar[str] = "swishnet"
    kind: ClassVar[str] = "gradient"

    def init_params(self, key, n):
        k1, k2 = jax.random.split(key)
        return {"w": jax.random.normal(k1, (n, self.width)) / jnp.sqrt(n),
                "a": jax.random.normal(k2, (self.width,)) / jnp.sqrt(self.width)}

    def apply(self, params, x):
        return swish(x @ params["w"]) @ params["a"]

    def first_layer(self, params):
        return params["w"]


@dataclass(frozen=True)
class QuadRidge:
    """Ridge regression on (1, x, x xᵀ), solved in closed form on the weighted rows."""
    ridge: float = 1e-2
    name: ClassVar[str] = "quadridge"
    kind: ClassVar[str] = "fitted"

    def features(self, x):
        pairs = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
        return jnp.concatenate([jnp.ones((x.shape[0], 1)), x, pairs], axis=1)

    def fit(self, key, x, y, weights):
        f = self.features(x) * weights[:, None]
        return jnp.linalg.solve(f.T @ f + self.ridge * jnp.eye(f.shape[1]), f.T @ (y * weights))

    def apply(self, params, x):
        return self.features(x) @ params
'''

BROKEN = '''
import numpy as np
from plug_review import *


@dataclass(frozen=True)
class ApplyWithoutParams(SwishNet):
    def apply(self, x):
        return x[:, 0]


@dataclass(frozen=True)
class FitWithoutWeights(QuadRidge):
    def fit(self, key, x, y):
        return super().fit(key, x, y, jnp.ones(x.shape[0]))


@dataclass(frozen=True)
class ColumnOutput(SwishNet):
    def apply(self, params, x):
        return super().apply(params, x)[:, None]


@dataclass(frozen=True)
class ColumnLabels(Wedge):
    def sample(self, params, key, m):
        x, y = super().sample(params, key, m)
        return x, y[:, None]


@dataclass(frozen=True)
class IntegerLabels(Wedge):
    def sample(self, params, key, m):
        x, y = super().sample(params, key, m)
        return x, y.astype(jnp.int32)


@dataclass(frozen=True)
class NumpyNet(SwishNet):
    def apply(self, params, x):
        return np.tanh(np.asarray(x @ params["w"])) @ params["a"]


@dataclass(frozen=True)
class BranchingLabels(Wedge):
    def labels(self, params, x):
        return jnp.ones(x.shape[0]) if x[0, 0] > 0 else -jnp.ones(x.shape[0])
'''

DRIVER = '''
import json, sys
from sparselearn import config, runtime
from sparselearn.sweeps import run

NET = """
experiment: net
target:  {name: "plug_review:Wedge", n: 8}
learner: {name: "plug_review:SwishNet", width: 16}
train:   {lr: 0.2, batch: 16, steps: 40, eval_every: 20, loss: hinge}
data:    {m: 64, test_m: 64}
sweep:   {seeds: 2, grid: {target.noise: [0.0, 0.1]}}
"""
FIT = """
experiment: fit
target:  {name: "plug_review:Wedge", n: 8}
learner: {name: "plug_review:QuadRidge"}
train:   {loss: square}
data:    {m: 64, test_m: 64}
sweep:   {seeds: 2}
"""
out = {}
for name, text in (("net", NET), ("fit", FIT)):
    df = run(config.loads(text), sys.argv[1], progress=False).sort_values("run_id")
    out[name] = {"status": sorted(set(df["status"])), "test_loss": df["test_loss"].tolist()}
out["programs"] = sorted(p.name for p in runtime.programs_dir().glob("*.bin"))
out["estimates"] = sorted(p.name for p in runtime.programs_dir().glob("*.json"))
print(json.dumps(out))
'''


def _sweep(folder: Path, out: Path, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", DRIVER, str(out)], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_edited_plugin_recompiles_in_a_fresh_process_sharing_the_compile_cache(tmp_path):
    """Two processes, one SPARSELEARN_CACHE_DIR; between them the net's activation is edited in
    the plug-in's file. The second process must not take the first one's kept programs."""
    (tmp_path / "plug_review.py").write_text(PLUGIN)
    env = {**os.environ, "SPARSELEARN_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path),
           "PYTHONDONTWRITEBYTECODE": "1"}
    first = _sweep(tmp_path, tmp_path / "first", env)
    assert first["net"]["status"] == first["fit"]["status"] == ["ok"]
    assert len(first["programs"]) == 2  # a noise grid of a target with add_noise: one group per learner
    (tmp_path / "plug_review.py").write_text(PLUGIN.replace("SHARPNESS = 1.0", "SHARPNESS = 4.0"))
    second = _sweep(tmp_path, tmp_path / "second", env)
    assert second["net"]["status"] == ["ok"]
    assert len(set(second["programs"]) - set(first["programs"])) == 2  # both recompiled: the module changed
    assert len(first["estimates"]) == 2 and len(set(second["estimates"]) - set(first["estimates"])) == 2
    assert all(abs(a - b) > 1e-4 for a, b in zip(first["net"]["test_loss"], second["net"]["test_loss"]))
    assert second["fit"]["test_loss"] == pytest.approx(first["fit"]["test_loss"], rel=1e-5)  # same maths


@pytest.fixture
def broken(tmp_path, monkeypatch):
    (tmp_path / "plug_review.py").write_text(PLUGIN)
    (tmp_path / "plug_review_broken.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("plug_review", "plug_review_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ("plug_review", "plug_review_broken"):
        sys.modules.pop(name, None)


CFG = """
target:  {{name: "{target}", n: 8}}
learner: {{name: "{learner}"}}
train:   {{loss: {loss}, steps: 20, batch: 8, eval_every: 10}}
data:    {{m: 32, test_m: 32}}
"""


@pytest.mark.parametrize("target, learner, fragments", [
    ("Wedge", "ApplyWithoutParams", ["ApplyWithoutParams is not a learner", "`apply(self, x)`",
                                     "cannot be called as `apply(params, x)`"]),
    ("Wedge", "FitWithoutWeights", ["FitWithoutWeights is not a learner", "`fit(key, x, y, weights)`"]),
    ("Wedge", "ColumnOutput", ["ColumnOutput.apply returns shape (11, 1)", "expected shape (11,)"]),
    ("ColumnLabels", "SwishNet", ["ColumnLabels.sample returns y of shape (11, 1)", "expected shape (11,)"]),
    ("IntegerLabels", "SwishNet", ["IntegerLabels.sample returns y of", "dtype int32", "a float dtype"]),
    ("Wedge", "NumpyNet", ["NumpyNet.apply", "jax.jit and jax.vmap", "TracerArrayConversionError"]),
    ("BranchingLabels", "SwishNet", ["BranchingLabels.sample", "jax.jit and jax.vmap", "TracerBoolConversionError"]),
])
def test_a_broken_plugin_is_a_config_error_naming_the_class_and_what_is_expected(broken, target, learner,
                                                                                   fragments):
    loss = "square" if "Fit" in learner else "hinge"
    module = lambda cls: f"plug_review{'_broken' if cls not in ('Wedge', 'SwishNet') else ''}:{cls}"  # noqa: E731
    with pytest.raises(ConfigError) as info:
        config.loads(CFG.format(target=module(target), learner=module(learner), loss=loss))
    assert all(f in str(info.value) for f in fragments), str(info.value)
    # the section of the broken class: a broken target's error is not the learner's
    assert info.value.key == ("learner.name" if fragments[0].startswith(learner) else "target.name"), info.value.key


def test_good_plugins_pass_the_traced_check_and_the_real_shapes_are_unchanged(broken):
    exp = config.loads(CFG.format(target="plug_review:Wedge", learner="plug_review:QuadRidge", loss="square")
                       .replace(", steps: 20, batch: 8, eval_every: 10", ""))   # a fitted learner takes no steps
    assert type(exp.learner).__name__ == "QuadRidge" and exp.data.m == 32


def test_a_taken_name_names_both_classes(monkeypatch, broken):
    import plug_review

    monkeypatch.setattr(learners._registry, "classes", dict(learners.REGISTRY))

    @dataclass(frozen=True)
    class Mine(plug_review.SwishNet):
        name: ClassVar[str] = "mlp"

    with pytest.raises(ConfigError, match=rf"{__name__}:.*Mine cannot be registered as 'mlp': the name is "
                                          r"taken by sparselearn.learners.mlp:MLP"):
        learners.register(Mine)
    assert learners.lookup("mlp").__name__ == "MLP"
