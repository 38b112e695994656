"""The contracts and registries defined once: learner kinds, the run axes, choices."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, get_args, get_type_hints

import numpy as np
import pytest

from sparselearn import config, contracts, learners, targets
from sparselearn.errors import ConfigError
from sparselearn.sweeps.executors import EXECUTORS, NAMES as EXECUTOR_NAMES
from sparselearn.train import losses, optimizers, spec
from sparselearn.train.loop import GROUP_RUNNERS, RUN_BUILDERS

ROOT = Path(__file__).resolve().parents[1]


def test_every_kind_has_one_way_to_run():
    assert set(GROUP_RUNNERS) == set(contracts.KINDS)
    assert set(RUN_BUILDERS) == {name for name, kind in contracts.KINDS.items() if kind.compiled}


def test_builtin_classes_meet_their_contracts():
    for name in targets.names():
        cls = targets.lookup(name)
        assert contracts.validate_target(cls) is cls
        assert contracts.noise_is_vmapped(cls), name  # every built-in declares its noise model
        assert isinstance(targets.get(name), contracts.Target)
    for name in learners.names():
        cls = learners.lookup(name)
        assert contracts.validate_learner(cls) is cls
        assert isinstance(learners.get(name), contracts.kind_of(cls).protocol), name


def test_kind_comparisons_live_in_contracts_only():
    """No layer compares kind strings or probes optional hooks itself."""
    offenders = []
    for path in (ROOT / "sparselearn").rglob("*.py"):
        if path.name == "contracts.py":
            continue
        text = path.read_text()
        if re.search(r"\.kind\s*[!=]=", text) or re.search(r"(hasattr|getattr)\([^)]*\"(check|first_layer)\"", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_optional_hooks_have_defaults():
    @dataclass(frozen=True)
    class Bare:
        name: ClassVar[str] = "bare"
        kind: ClassVar[str] = "gradient"

    contracts.learner_check(Bare(), None, None)  # no check: nothing to do
    params = {"a": np.ones((2, 3)), "b": np.zeros(4)}
    assert contracts.first_layer(Bare(), params).shape == (10,)
    assert contracts.threshold_degree(targets.get("sparse_parity", n=10, k=4)) == 4
    assert contracts.threshold_degree(targets.get("staircase", n=10, k=4)) is None
    assert contracts.input_distribution(targets.get("hierarchical")) == "gaussian"


def test_mlp_fan_in_limit_follows_the_threshold_degree_not_the_name():
    text = ("target: {name: %s, n: 10, k: 4}\nlearner: {name: mlp, width: 16, init: sparse, fan_in: 2}\n"
            "train: {loss: %s}")
    with pytest.raises(ConfigError, match="threshold degree"):
        config.loads(text % ("sparse_parity", "hinge"))
    assert config.loads(text % ("staircase", "square")).learner.fan_in == 2  # no degree: no limit


# ---------------------------------------------------------------- the run contract

def test_axes_are_config_keys_and_hp_arrays_fill_defaults(tiny):
    plain = config.to_plain(tiny)
    for axis in spec.AXES:
        if axis.path:
            section, _, field = axis.path.partition(".")
            assert field in plain[section], axis.path
    exp = config.override(tiny, train={"lr": 0.3, "init_seed": 7}, target={"noise": 0.1})
    arrays = spec.hp_arrays(exp, {"seed": [0, 1], "lr": [0.5, 0.25]})
    assert set(arrays) == set(spec.NAMES)
    assert arrays["lr"].tolist() == [0.5, 0.25] and arrays["m"].tolist() == [256, 256]
    assert arrays["init_seed"].tolist() == [7, 7] and arrays["noise"].dtype == np.float32
    assert spec.hp_arrays(tiny, {"seed": [3]})["init_seed"].tolist() == [-1]  # unset: the run seed
    values = spec.run_values(exp, seed=4)
    assert values == {"seed": 4, "m": 256, "lr": 0.3, "weight_decay": 0.0, "init_seed": 7, "noise": 0.1}


def test_static_part_ignores_exactly_the_vmapped_values(tiny):
    base = spec.static_part(tiny)
    for change in ({"train": {"lr": 0.7}}, {"train": {"weight_decay": 0.01}}, {"train": {"init_seed": 3}},
                   {"target": {"noise": 0.2}}, {"experiment": "other"}):
        assert spec.static_part(config.override(tiny, **change)) == base, change
    for change in ({"train": {"steps": 60}}, {"target": {"n": 12}}, {"learner": {"width": 8}}):
        assert spec.static_part(config.override(tiny, **change)) != base, change
    # data.m: the group's program is built at its largest m, runs of any m share a group
    other_m = config.override(tiny, data={"m": 64})
    assert spec.static_part(other_m) != base and spec.group_key(other_m) == spec.group_key(tiny)


def test_fitted_learners_keep_m_as_a_shape():
    exp = config.loads("target: {name: sparse_parity, n: 6, k: 1}\nlearner: {name: lowdegree, degree: 1}\n"
                       "train: {loss: square}\ndata: {m: 128}")
    assert spec.group_key(exp) != spec.group_key(config.override(exp, data={"m": 64}))


# ---------------------------------------------------------------- one registry per choice

def test_config_choices_are_the_registries():
    hints = get_type_hints(config.TrainConfig)
    assert get_args(hints["optimizer"]) == optimizers.NAMES
    assert get_args(hints["loss"]) == losses.NAMES
    for name in EXECUTOR_NAMES:
        assert config.ExecutorConfig(name=name).name == name
    with pytest.raises(ConfigError, match="'local', 'devices'"):
        config.ExecutorConfig(name="lcoal")


def test_an_optimizer_rejects_hyperparameters_it_does_not_read(tiny):
    with pytest.raises(ConfigError, match="not used by optimizer adam") as info:
        config.override(tiny, train={"optimizer": "adam", "momentum": 0.9})
    assert info.value.key == "train.momentum"
    assert config.override(tiny, train={"optimizer": "sign-sgd", "sign_threshold": 0.5}).train.sign_threshold == 0.5
    assert set(optimizers.HYPERPARAMETERS) <= set(get_type_hints(config.TrainConfig))


def test_a_loss_must_fit_the_task(tiny):
    with pytest.raises(ConfigError, match="use loss square") as info:
        config.override(tiny, target={"name": "staircase", "n": 10, "k": 2})
    assert info.value.key == "train.loss"


def test_executor_names_import_no_executor_or_jax():
    code = ("import sys; from sparselearn.sweeps.executors import NAMES, EXECUTORS; "
            "assert list(EXECUTORS) == list(NAMES); "
            "assert not any(m in sys.modules for m in ('ray', 'submitit', 'jax')), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert callable(EXECUTORS["local"])


def test_plugin_kinds_are_checked_once_by_the_registry(monkeypatch):
    @dataclass(frozen=True)
    class Host:
        name: ClassVar[str] = "host_test"
        kind: ClassVar[str] = "host"

        def fit(self, key, x, y):
            return None

        def apply(self, params, x):
            return x[:, 0]

    monkeypatch.setattr(learners._registry, "classes", dict(learners.REGISTRY))
    assert learners.register(Host) is Host and learners.lookup("host_test") is Host
    assert learners.spelled(Host()) == "host_test"
    unregistered = type("Unregistered", (Host,), {"name": "unregistered"})
    assert learners.spelled(unregistered) == f"{__name__}:Unregistered"  # not registered: module:Class

    @dataclass(frozen=True)
    class NoFit:   # a host learner must fit: refused when registered, and not filed
        name: ClassVar[str] = "host_nofit"
        kind: ClassVar[str] = "host"

        def apply(self, params, x):
            return x[:, 0]

    with pytest.raises(ConfigError, match=r"no method `fit` \(needed by kind host\)"):
        learners.register(NoFit)
    assert "host_nofit" not in learners.names()


def test_listing_reads_the_builtin_classes_as_they_are_declared():
    """`sparselearn list` describes classes from their source; that must agree with the
    imported dataclasses (fields, defaults, task or kind, name)."""
    import dataclasses

    for registry, attr in ((targets._registry, "task"), (learners._registry, "kind")):
        for name in registry.names():
            cls = registry.lookup(name)
            attrs, fields = contracts.declared(f"{cls.__module__}:{cls.__qualname__}")
            assert attrs["name"] == cls.name == name
            assert attrs[attr] == getattr(cls, attr)
            real = [(f.name, "…" if f.default is dataclasses.MISSING else repr(f.default))
                    for f in dataclasses.fields(cls)]
            assert fields == real, name


def test_list_and_help_answer_without_jax():
    code = ("import sys; from sparselearn.cli import main; main(['list']); main(['list', 'learners']); "
            "assert not any(m in sys.modules for m in ('jax', 'optax', 'pandas', 'matplotlib')), "
            "[m for m in ('jax', 'optax', 'pandas', 'matplotlib') if m in sys.modules]")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True).stdout
    assert "sparse_parity    (classification) n=30, k=3" in out and "mlp              (gradient)" in out
