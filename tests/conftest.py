"""Shared fixtures: tiny configs that compile and train in about a second."""

from __future__ import annotations

import pytest

from sparselearn import config

TINY = """
experiment: tiny
target:  {name: sparse_parity, n: 10, k: 2}
learner: {name: mlp, width: 32, depth: 2}
train:   {optimizer: sgd, lr: 0.1, batch: 16, steps: 50, loss: hinge, eval_every: 20, eps: 0.05}
data:    {m: 256, test_m: 128}
sweep:   {seeds: 2, grid: {data.m: [64, 256]}}
"""


@pytest.fixture
def tiny_text() -> str:
    return TINY


@pytest.fixture
def tiny() -> config.Experiment:
    return config.loads(TINY)


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path
