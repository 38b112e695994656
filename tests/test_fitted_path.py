"""Fitted and host learners run through the same groups, store and metrics as gradient ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn import config, learners
from sparselearn.errors import ConfigError, FitFailed
from sparselearn.sweeps import run
from sparselearn.train import run_group, run_one
from sparselearn.train.loop import make_data


@dataclass(frozen=True)
class LinearLS:
    """Weighted ridge least squares on (1, x): a minimal fitted learner."""

    ridge: float = 1e-3
    name: ClassVar[str] = "test_linear"
    kind: ClassVar[str] = "fitted"

    def fit(self, key, x, y, weights):
        feats = jnp.concatenate([jnp.ones((x.shape[0], 1)), x], axis=1) * weights[:, None]
        gram = feats.T @ feats + self.ridge * jnp.eye(feats.shape[1])
        return jnp.linalg.solve(gram, feats.T @ (y * weights))

    def apply(self, params, x):
        return params[0] + x @ params[1:]


@dataclass(frozen=True)
class Refuses:
    """A host learner that refuses odd seeds' data, to exercise the failure path."""

    name: ClassVar[str] = "test_refuses"
    kind: ClassVar[str] = "host"

    def fit(self, key, x, y):
        if y.sum() > 0:
            raise FitFailed("labels inconsistent with any parity")
        return np.zeros(x.shape[1])

    def apply(self, params, x):
        return np.asarray(x) @ params + 1.0


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(learners.REGISTRY, LinearLS.name, LinearLS)
    monkeypatch.setitem(learners.REGISTRY, Refuses.name, Refuses)


CFG = """
experiment: fitted
target: {name: sparse_parity, n: 6, k: 1}
learner: {name: test_linear}
train: {loss: square}
data: {m: 256, test_m: 256}
sweep: {seeds: 2, grid: {data.m: [8, 256]}}
"""


def test_fitted_learner_learns_a_dictator_and_group_equals_alone(registered):
    exp = config.loads(CFG)
    group = run_group(exp, {"seed": [0, 1, 0], "m": [8, 256, 256]})
    assert group["test_error"][1] == 0 and group["curve_test_error"].shape == (3, 1)
    alone = run_one(config.override(exp, data={"m": 8}), seed=0, m=8)
    np.testing.assert_allclose(group["test_loss"][0], alone["test_loss"], atol=1e-6)
    assert group["train_loss"][0] < group["test_loss"][0]  # 8 points, 7 parameters: overfits


def test_fitted_learners_go_through_the_store(registered, tmp_path):
    df = run(config.loads(CFG), tmp_path, progress=False)
    assert len(df) == 4 and set(df["status"]) == {"ok"} and df["steps_to_eps"].isna().all()
    assert df.loc[df["m"] == 256, "test_error"].max() == 0
    # the SGD settings do not apply to a fit in closed form: null, as DESIGN.md's schema says
    assert df[["lr", "weight_decay", "steps", "batch", "optimizer"]].isna().all().all()
    assert df["loss"].notna().all() and df["eps"].notna().all()     # these do: test loss, steps_to_eps


def test_host_learner_failure_is_stored_with_its_reason(registered, tmp_path):
    exp = config.loads(CFG.replace("test_linear", "test_refuses"))
    df = run(exp, tmp_path, progress=False)
    # a FitFailed fails that run alone: exactly the runs whose training labels sum above 0
    refused = [float(make_data(exp)(seed, seed, 0.0)[2][:m].sum()) > 0 for seed, m in zip(df["seed"], df["m"])]
    failed = df["status"] == "failed"
    assert failed.tolist() == refused and 0 < sum(refused) < len(df)
    assert df.loc[failed, "error"].str.contains("inconsistent").all() and df.loc[failed, "test_error"].isna().all()
    assert df.loc[~failed, "error"].isna().all() and df.loc[~failed, "test_error"].between(0, 1).all()


def test_fitted_learners_reject_online_data(registered):
    with pytest.raises(ConfigError, match="data.online"):
        config.loads(CFG.replace("data: {m: 256, test_m: 256}", "data: {online: true}").replace(
            "sweep: {seeds: 2, grid: {data.m: [8, 256]}}", ""))
