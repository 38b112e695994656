"""Expand an experiment into runs (grid × seeds) and group them by shape.

Runs whose configs differ only in vmapped values (the axes of `sparselearn.train.spec`:
seed, data.m, train.lr, train.weight_decay, train.init_seed, target.noise) share a group:
one compiled program trains them all. For fitted learners data.m is a shape too (their
compiled solves grow with the rows).

Example:
    >>> cfg = sparselearn.config.load("configs/quickstart.yaml")    # 3 values of data.m, 8 seeds
    >>> runs = expand(cfg)                  # one Run per (grid point, seed)
    >>> groups = group(runs)                # [Group(group_id, exp, runs), ...]
    >>> len(runs), [len(g.runs) for g in groups]      # data.m is a vmapped value: one group
    (24, [24])
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from sparselearn.config import Experiment, config_hash, grid_points, with_point
from sparselearn.train import spec


@dataclass(frozen=True)
class Run:
    """One training run: its id, the hash of the config it belongs to, grid point, seed and
    resolved config."""

    run_id: str
    config_hash: str
    point: tuple[tuple[str, Any], ...]
    seed: int
    exp: Experiment


@dataclass(frozen=True)
class Group:
    """Runs with equal shapes; `exp` is the config they compile to (data.m = their largest m)."""

    group_id: str
    exp: Experiment
    runs: tuple[Run, ...]

    def hps(self) -> dict[str, list]:
        """The vmapped values of every run, in order ({axis name: [value per run]})."""
        return spec.hp_lists([spec.run_values(r.exp, r.seed) for r in self.runs])


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def run_id(cfg_hash: str, point, seed: int, *, ordered: bool = False) -> str:
    """Stable id of (config hash, grid point, seed), whatever the order of the point's keys
    (as `config_hash` ignores the order of the grid's). `ordered`: hash the point in its
    given order, as ids were made before, to find the runs of stores written then."""
    pairs = [[k, v] for k, v in point]
    return _digest(cfg_hash, pairs if ordered else sorted(pairs, key=lambda kv: kv[0]), seed)


def expand(exp: Experiment, *, ordered: bool = False) -> list[Run]:
    """Every (grid point, seed) of `exp`, grid-major then seed (`ordered`: the run ids of
    stores written when ids hashed the point in the grid's order, see `run_id`)."""
    h = config_hash(exp)
    runs = []
    for point in grid_points(exp):
        resolved = with_point(exp, point)
        for seed in exp.sweep.seeds:
            runs.append(Run(run_id(h, point, seed, ordered=ordered), h, point, seed, resolved))
    return runs


def group(runs: list[Run], round_m: bool = False) -> list[Group]:
    """Runs partitioned into shape groups, in order of first appearance.

    With `round_m` the group's dataset size is rounded up to a power of two (at least 256)
    where m is a vmapped axis (trained and host learners), so callers that try many sample sizes (the
    sample-complexity search) reuse compiled programs; results do not change, since a run
    only reads the first m rows. A fitted learner's m is a shape (its solve grows with the
    rows): there it stays, as rounding would only add memory.
    """
    buckets: dict[Experiment, list[Run]] = {}
    for r in runs:
        buckets.setdefault(spec.group_key(r.exp), []).append(r)
    groups = []
    for members in buckets.values():
        first = members[0].exp
        size = max(r.exp.data.m for r in members)
        if round_m and spec.BY_NAME["m"].vmapped(first):
            size = max(256, 1 << (size - 1).bit_length())
        exp = replace(first, data=replace(first.data, m=size))
        # sorted: the id names the set of runs, whatever the order of the grid's keys
        groups.append(Group(_digest(sorted(r.run_id for r in members)), exp, tuple(members)))
    return groups
