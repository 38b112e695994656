"""Experiment configs: YAML (safe_load only) and `--set` overrides → a frozen dataclass tree.

    experiment: quickstart
    target:  {name: sparse_parity, n: 30, k: 3}
    learner: {name: mlp, width: 256, depth: 2}
    train:   {optimizer: sgd, lr: 0.1, batch: 32, steps: 2000, loss: hinge}
    data:    {m: 4096, test_m: 2048}
    sweep:   {seeds: 8, grid: {data.m: [256, 1024, 4096]}}

Every problem — unknown key, wrong type, impossible value, in the file, an override
or any grid point — is one `ConfigError` naming the file and the dotted key.

Example:
    >>> cfg = load("configs/quickstart.yaml", overrides=["train.steps=500"])
    >>> cfg.train.steps, config_hash(cfg)
    (500, 'c038a5c916f4')
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml

from sparselearn import learners, targets
from sparselearn.contracts import check_traced, kind_of, learner_check
from sparselearn.errors import ConfigError, require
from sparselearn.fields import MAX_INT, OMIT_DEFAULT, build, coerce, suggest, to_dict
from sparselearn.train import losses, optimizers, record, rewind

# the choices, read from their registries (one definition each)
OptimizerName = Literal[optimizers.NAMES]
LossName = Literal[losses.NAMES]


@dataclass(frozen=True)
class TrainConfig:
    """Gradient training. `weight_decay` is coupled (added to the gradient) for sgd and
    sign-sgd and decoupled (AdamW) for adam; `sign_threshold` is ρ of the thresholded
    sign (sign-sgd: coordinates with |g| ≤ ρ do not move). `init_seed` seeds the teacher, the
    test set and the initialisation (default: the run seed); the training data and batches
    always follow the run seed, so a grid over `train.init_seed` × seeds separates the luck of
    the initialisation from the luck of the batches (it is vmapped: no extra compiles). A
    fitted learner's own random draws (random features' first layer) follow the run seed.
    `record`: recorders (names in `sparselearn.train.record.RECORDERS`, e.g. first_layer) whose
    arrays every curve point stores in the traces table.
    `rewind: K`: a lottery-ticket run — keep K hidden units (`rewind_pick`: those with the largest
    trained weights, or random ones), rewound to their initial weights, and train them alone
    (see `sparselearn.train.rewind`).
    `stop_at_eps`: a run stops training at its first curve point whose test error is ≤ `eps`
    (the quantity `steps_to_eps` reads: the 0-1 test error for classification, the test mean
    squared error for regression); its curves end there, its final metrics are that point's,
    and its steps_to_eps equals a full-length run's. A run whose test error is NaN (a NaN
    output: its weights have diverged, and stay NaN) stops there too, never reaching `eps`. A
    group stops once all its runs have; on CPU a large group (`train.loop.run_block`) spends no
    steps on its runs that have stopped."""

    optimizer: OptimizerName = "sgd"
    lr: float = 0.1
    batch: int = 32
    steps: int = 2000
    loss: LossName = "hinge"
    weight_decay: float = 0.0
    momentum: float = 0.0
    sign_threshold: float = 0.0
    eval_every: int = 100
    eps: float = 0.05
    precision: Literal["highest", "high", "default"] = "highest"
    init_seed: int | None = None
    record: tuple[str, ...] = field(default=(), metadata=OMIT_DEFAULT)
    rewind: int | None = field(default=None, metadata=OMIT_DEFAULT)
    rewind_pick: Literal["largest", "random"] = field(default="largest", metadata=OMIT_DEFAULT)
    stop_at_eps: bool = field(default=False, metadata=OMIT_DEFAULT)

    def __post_init__(self):
        require(math.isfinite(self.lr) and self.lr > 0, "lr", f"must be a finite number > 0, got {self.lr}")
        require(1 <= self.batch <= MAX_INT, "batch", f"must be ≥ 1, got {self.batch}")
        require(1 <= self.steps <= 10**9, "steps", f"must be in [1, 1e9], got {self.steps}")
        require(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
                f"must be a finite number ≥ 0, got {self.weight_decay}")
        require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")
        require(math.isfinite(self.sign_threshold) and self.sign_threshold >= 0, "sign_threshold",
                f"must be ≥ 0, got {self.sign_threshold}")
        require(1 <= self.eval_every <= self.steps, "eval_every",
                f"must be in [1, steps = {self.steps}], got {self.eval_every}")
        require(0 <= self.eps <= 1, "eps", f"must be in [0, 1], got {self.eps}")
        require(isinstance(self.stop_at_eps, bool), "stop_at_eps", f"must be true or false, got {self.stop_at_eps!r}")
        require(self.init_seed is None or 0 <= self.init_seed < 2**31, "init_seed",
                f"must be null or in [0, 2^31), got {self.init_seed}")
        for name in self.record:  # what every curve point also stores (sparselearn.train.record)
            require(name in record.NAMES, "record", f"unknown recorder {name!r}; choose from {', '.join(record.NAMES)}"
                    f"{suggest(name, record.NAMES)}")
        require(len(set(self.record)) == len(self.record), "record", f"lists a recorder twice: {list(self.record)}")
        require(self.rewind is None or self.rewind >= 1, "rewind", f"must be null or ≥ 1 units, got {self.rewind}")
        require(self.rewind is not None or self.rewind_pick == "largest", "rewind_pick", "is used only with rewind")
        uses = optimizers.OPTIMIZERS[self.optimizer].uses
        for name in optimizers.HYPERPARAMETERS:  # a value the optimizer would silently ignore
            require(name in uses or getattr(self, name) == 0, name,
                    f"is not used by optimizer {self.optimizer} (it reads lr, weight_decay"
                    f"{''.join(', ' + u for u in uses)}); got {getattr(self, name)}")


@dataclass(frozen=True)
class DataConfig:
    """Sample sizes. `online: true` draws a fresh mini-batch every step (m unused)."""

    m: int = 4096
    test_m: int = 2048
    online: bool = False

    def __post_init__(self):
        require(1 <= self.m <= MAX_INT, "m", f"must be in [1, {MAX_INT}], got {self.m}")
        require(1 <= self.test_m <= MAX_INT, "test_m", f"must be in [1, {MAX_INT}], got {self.test_m}")


@dataclass(frozen=True)
class SweepConfig:
    """`seeds`: a count (seeds 0..seeds−1) or an explicit list; `grid`: dotted key →
    values, expanded as a Cartesian product (stored as a tuple of pairs)."""

    seeds: tuple[int, ...] = (0,)
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()


@dataclass(frozen=True)
class ExecutorConfig:
    """Where groups run: `local` (this process, each group's run axis sharded over
    jax.devices()), `devices` (another name for `local`), `ray` (one Ray task per group; `address` of an existing cluster, else a
    local one), `slurm` (one submitit job per group; `cluster: local` runs the jobs as local
    processes). `max_group_runs` caps the runs in one compiled call (below it, as many as the
    machine's memory holds). `compile_cache`: keep compiled programs on disk across processes
    (see `sparselearn.runtime`). `folder`: the slurm jobs' logs and pickles (default:
    .submitit in the results directory the sweep writes to)."""

    name: str = "local"
    max_group_runs: int = 1024
    compile_cache: bool = True
    address: str | None = None
    cpus: int = 1
    gpus: int = 0
    partition: str | None = None
    time_min: int = 60
    mem_gb: float | None = None
    folder: str | None = None
    cluster: Literal["slurm", "local", "debug"] = "slurm"

    def __post_init__(self):
        from sparselearn.sweeps.executors import NAMES  # imported here: sweeps imports this module

        require(self.name in NAMES, "name", f"expected one of {', '.join(map(repr, NAMES))}, got {self.name!r}"
                f"{suggest(self.name, NAMES)}")
        require(1 <= self.max_group_runs <= 10**6, "max_group_runs",
                f"must be in [1, 1000000], got {self.max_group_runs}")
        require(self.cpus >= 1, "cpus", f"must be ≥ 1, got {self.cpus}")
        require(self.gpus >= 0, "gpus", f"must be ≥ 0, got {self.gpus}")
        require(self.time_min >= 1, "time_min", f"must be ≥ 1 minute, got {self.time_min}")
        require(self.mem_gb is None or self.mem_gb > 0, "mem_gb", f"must be > 0, got {self.mem_gb}")


@dataclass(frozen=True)
class Experiment:
    """One resolved experiment: the tree `config.load` returns."""

    experiment: str
    target: Any
    learner: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


SECTIONS = {"train": TrainConfig, "data": DataConfig, "executor": ExecutorConfig}
TOP_KEYS = ("experiment", "target", "learner", "train", "data", "sweep", "executor")
GRID_SECTIONS = ("target", "learner", "train", "data")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ---------------------------------------------------------------- dict ↔ dataclasses

def _named(section: str, registry, raw) -> Any:
    """The target or learner of a config section: `name` is a registered name or
    `package.module:ClassName` (imported and checked against its contract)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping with a `name`, got {raw!r}", key=section)
    if "name" not in raw:
        raise ConfigError(f"missing `name`; known: {', '.join(registry.names())}", key=f"{section}.name")
    if not isinstance(raw["name"], str):
        raise ConfigError(f"expected a string, got {raw['name']!r}", key=f"{section}.name")
    try:
        return build(registry.lookup(raw["name"]), raw, skip=("name",))
    except ConfigError as e:
        raise e.within(section) from None


def _seeds(raw) -> tuple[int, ...]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        require(1 <= raw <= 100_000, "sweep.seeds", f"a count must be in [1, 100000], got {raw}")
        return tuple(range(raw))
    if isinstance(raw, list) and raw and all(isinstance(s, int) and not isinstance(s, bool) for s in raw):
        require(all(0 <= s <= MAX_INT for s in raw), "sweep.seeds", f"seeds must be in [0, {MAX_INT}], got {raw}")
        require(len(set(raw)) == len(raw), "sweep.seeds", f"seeds must be distinct, got {raw}")
        return tuple(raw)
    raise ConfigError(f"expected a count ≥ 1 or a non-empty list of integer seeds, got {raw!r}", key="sweep.seeds")


def _grid_key_ok(key: str, base: dict) -> None:
    section, _, rest = key.partition(".")
    if section not in GRID_SECTIONS or not rest or "." in rest:
        raise ConfigError(f"grid keys are `section.field` with section one of {', '.join(GRID_SECTIONS)}"
                          f"{suggest(key, _leaf_keys(base))}", key=f"sweep.grid.{key}")
    if rest == "name":
        raise ConfigError("sweeping over target/learner names is not supported: use one config per name",
                          key=f"sweep.grid.{key}")
    if rest not in base[section]:
        raise ConfigError(f"no such key{suggest(key, _leaf_keys(base))}", key=f"sweep.grid.{key}")


def _every_field(exp: Experiment) -> dict[str, dict[str, Any]]:
    """{section: {field: value}} of the sections a grid may vary, every field included (also
    those `to_plain` leaves out at their defaults)."""
    return {s: {f.name: getattr(getattr(exp, s), f.name) for f in dataclasses.fields(getattr(exp, s))}
            for s in GRID_SECTIONS}


def _leaf_keys(base: dict) -> list[str]:
    return [f"{s}.{k}" for s in GRID_SECTIONS for k in base.get(s, {}) if k != "name"]


def _sweep(raw, base: dict) -> SweepConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {raw!r}", key="sweep")
    for key in raw:
        if key not in ("seeds", "grid"):
            raise ConfigError(f"unknown key{suggest(key, ('seeds', 'grid'))}; expected seeds, grid", key=f"sweep.{key}")
    seeds = _seeds(raw.get("seeds", 1))
    grid_raw = raw.get("grid")
    grid_raw = {} if grid_raw is None else grid_raw
    if not isinstance(grid_raw, dict):
        raise ConfigError(f"expected a mapping of dotted key → list of values, got {grid_raw!r}", key="sweep.grid")
    grid = []
    for key, values in grid_raw.items():
        if not isinstance(key, str):
            raise ConfigError(f"grid keys are strings like data.m, got {key!r}", key="sweep.grid")
        _grid_key_ok(key, base)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"expected a non-empty list of values, got {values!r}", key=f"sweep.grid.{key}")
        if any(isinstance(v, (dict, list)) for v in values):
            raise ConfigError(f"grid values must be scalars, got {values!r}", key=f"sweep.grid.{key}")
        grid.append((key, tuple(values)))
    return SweepConfig(seeds=seeds, grid=tuple(grid))


#: the train settings of gradient steps, which a fitted learner never reads
STEPPING = ("optimizer", "lr", "batch", "steps", "weight_decay", "momentum", "sign_threshold", "eval_every",
            "stop_at_eps", "rewind", "rewind_pick")


def _unread_when_fitted(learner: str) -> str:
    """Why a STEPPING setting is refused for the fitted learner `learner`."""
    return (f"is not used by learner {learner}, which is fitted, not trained (of train it reads loss, eps, "
            "precision and init_seed): remove it")


def _check_experiment(exp: Experiment) -> None:
    """Constraints between sections."""
    trained = kind_of(exp.learner).trained
    if not exp.data.online and trained:
        require(exp.train.batch <= exp.data.m, "train.batch",
                f"batch = {exp.train.batch} exceeds the sample size data.m = {exp.data.m}")
    try:  # learner-specific limits, e.g. a feature count that must fit in memory
        learner_check(exp.learner, exp.target, exp.data)
    except ConfigError as e:
        raise e.within("learner") from None
    check_traced(exp.target, exp.learner)  # a plug-in's shapes and dtypes, keyed by its section
    rewind.check(exp)
    record.check(exp)
    if getattr(exp.learner, "trained_layers", None) is not None:  # weight decay shrinks every leaf
        decays = [exp.train.weight_decay, *dict(exp.sweep.grid).get("train.weight_decay", ())]
        require(all(d == 0 for d in decays), "train.weight_decay",
                f"learner.trained_layers keeps the other layers at their initial values, which weight "
                f"decay would shrink: set it to 0, got {max(decays)}")
    if not trained:
        require(not exp.train.record, "train.record", f"learner {exp.learner.name} is fitted, not trained: "
                "it has no curve points to record at")
        require(not exp.data.online, "data.online", f"learner {exp.learner.name} fits a fixed sample: "
                "set data.online: false")
        for name in STEPPING:  # settings of the steps a fitted learner does not take
            require(getattr(exp.train, name) == getattr(TrainConfig, name), f"train.{name}",
                    f"{_unread_when_fitted(exp.learner.name)}, got {getattr(exp.train, name)!r}")
    if exp.target.task not in losses.LOSSES[exp.train.loss].tasks:
        fitting = " or ".join(name for name, loss in losses.LOSSES.items() if exp.target.task in loss.tasks)
        raise ConfigError(f"{exp.target.name} has {exp.target.task} labels: use loss {fitting}, not "
                          f"{exp.train.loss}", key="train.loss")


def from_dict(raw: Any, *, default_name: str = "experiment") -> Experiment:
    """Build and validate an Experiment (every grid point included) from a plain dict."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a config is a mapping of sections ({', '.join(TOP_KEYS)}), got {type(raw).__name__}")
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(f"unknown section{suggest(key, TOP_KEYS)}; expected {', '.join(TOP_KEYS)}", key=str(key))
    for section in ("target", "learner"):
        if section not in raw:
            raise ConfigError(f"missing section `{section}`", key=section)
    try:
        exp = _single(raw, default_name)
    except ConfigError as e:
        exp = _single_at_first_point(raw, default_name, e)
    exp = replace(exp, sweep=_read_grid(exp, _sweep(raw.get("sweep"), _every_field(exp))))
    _check_grid(exp)
    return exp


def _single_at_first_point(raw: dict, default_name: str, error: ConfigError) -> Experiment:
    """The experiment of `raw` whose base is invalid only where the grid sets keys at every
    point (train.steps swept past the base's eval_every, learner.k swept for a top-k net): its
    base with the first grid point's values, which no run reads otherwise. Raises `error` when
    the grid sets nothing or that base fails the same way; else the first point's error, named."""
    grid = (raw.get("sweep") or {}).get("grid") if isinstance(raw.get("sweep"), dict) else None
    first = {}
    for key, values in (grid.items() if isinstance(grid, dict) else ()):
        section, _, name = key.partition(".") if isinstance(key, str) else ("", "", "")
        if section in GRID_SECTIONS and name and isinstance(raw.get(section, {}), (dict, type(None))) \
                and isinstance(values, list) and values:
            first[(section, name)] = values[0]
    if not first:
        raise error
    at = {s: dict(raw.get(s) or {}) for s, _ in first}
    for (section, name), value in first.items():
        at[section][name] = value
    try:
        return _single({**raw, **at}, default_name)
    except ConfigError as e:
        if (e.key, e.message) == (error.key, error.message):   # not a matter of the grid
            raise error from None
        desc = ", ".join(f"{s}.{n}={v!r}" for (s, n), v in first.items())
        raise ConfigError(f"{e.message} (at grid point {desc})", key=e.key) from None


def _read_grid(exp: Experiment, sweep: SweepConfig) -> SweepConfig:
    """`sweep` with every grid value read as its field reads it (lr 1 → 1.0), so that a grid
    point hashes, labels and plots as the same config written without the grid would; a value
    of the wrong type is kept as given, for `_check_grid` to report with its grid point.
    Raises ConfigError for a value listed twice (lr 1 and 1.0 are one value): it would train
    and store the same runs twice."""
    grid = []
    for key, values in sweep.grid:
        section, _, name = key.partition(".")
        hint = get_type_hints(type(getattr(exp, section)))[name]
        read: list[Any] = []
        for value in values:
            try:
                value_read = coerce(value, hint, key)
            except ConfigError:
                value_read = value
            for given, other in zip(values, read):
                # by type too: a value kept as given (512.0 for an integer) is a type error to report
                if type(other) is type(value_read) and other == value_read:
                    same = "" if repr(given) == repr(value) else f" (the same as {given!r})"
                    raise ConfigError(f"repeated value {value!r}{same}: list each grid value once",
                                      key=f"sweep.grid.{key}")
            read.append(value_read)
        grid.append((key, tuple(read)))
    return replace(sweep, grid=tuple(grid))


def _check_grid(exp: Experiment) -> None:
    """Every grid point of `exp` must be a valid experiment, and data.m one some point reads."""
    swept = dict(exp.sweep.grid)
    if not kind_of(exp.learner).trained and "learner.name" not in swept:
        # named before a point is built: a grid over train.steps would fail on eval_every first
        for name in STEPPING:
            require(f"train.{name}" not in swept, f"sweep.grid.train.{name}",
                    f"{_unread_when_fitted(exp.learner.name)}, got {list(swept.get(f'train.{name}', ()))}")
    for point in grid_points(exp):
        with_point(exp, point)
    online = swept.get("data.online", (exp.data.online,))
    if any(online) and not all(online) and "data.m" in swept:
        raise ConfigError(f"is swept together with data.online: {list(online)}; the online points do not read m and "
                          "would train the same runs once per value: sweep data.online in a config of its own",
                          key="sweep.grid.data.m")
    if all(online):  # every run draws a fresh mini-batch each step
        unused = "is not used with data.online: true (every step draws a fresh mini-batch): remove it"
        if "data.m" in swept:
            raise ConfigError(f"{unused}, got {list(swept['data.m'])}", key="sweep.grid.data.m")
        require(exp.data.m == DataConfig.m, "data.m", f"{unused}, got {exp.data.m}")


def _single(raw: dict, default_name: str) -> Experiment:
    name = raw.get("experiment", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        where = "" if "experiment" in raw else " (taken from the file name: set `experiment:` in the config)"
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            where = " (YAML read it as a number: quote it)"
        raise ConfigError(f"must be a name of letters, digits, '_', '-', '.', got {name!r}{where}", key="experiment")
    parts = {"target": _named("target", targets, raw["target"]),
             "learner": _named("learner", learners, raw["learner"])}
    for section, cls in SECTIONS.items():
        value = raw.get(section)
        value = {} if value is None else value  # an empty section; any other non-mapping is an error
        try:
            parts[section] = build(cls, value)
        except ConfigError as e:
            raise e.within(section) from None
    exp = Experiment(experiment=name, **parts)
    _check_experiment(exp)
    return exp


def to_plain(exp: Experiment) -> dict:
    """The resolved config as plain YAML-able data (defaults filled in)."""
    out = {"experiment": exp.experiment,
           "target": {"name": targets.spelled(exp.target), **to_dict(exp.target)},
           "learner": {"name": learners.spelled(exp.learner), **to_dict(exp.learner)},
           "train": to_dict(exp.train), "data": to_dict(exp.data),
           "sweep": {"seeds": list(exp.sweep.seeds), "grid": {k: list(v) for k, v in exp.sweep.grid}},
           "executor": to_dict(exp.executor)}
    return out


# ---------------------------------------------------------------- grid

def grid_points(exp: Experiment) -> list[tuple[tuple[str, Any], ...]]:
    """The Cartesian product of the grid, each point a tuple of (dotted key, value)."""
    keys = [k for k, _ in exp.sweep.grid]
    return [tuple(zip(keys, values)) for values in itertools.product(*(v for _, v in exp.sweep.grid))]


def with_point(exp: Experiment, point) -> Experiment:
    """`exp` with the grid point's values set (the sweep section kept); validated."""
    plain = to_plain(exp)
    for key, value in point:
        section, _, name = key.partition(".")
        plain[section][name] = value
    try:
        return replace(_single(plain, exp.experiment), sweep=exp.sweep, executor=exp.executor)
    except ConfigError as e:
        desc = ", ".join(f"{k}={v!r}" for k, v in point)
        raise ConfigError(f"{e.message} (at grid point {desc})", key=e.key) from None


# ---------------------------------------------------------------- loading

class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader (the same safe types) that reads numbers as YAML 1.2 does and rejects a
    key given twice in one mapping, where plain YAML loading keeps the last silently.

    YAML 1.1 (PyYAML's default) reads 1e-3 as a string, 0100 as 64 (octal) and 1:30 as 90
    (base 60); here they are 0.001, 100 and the string '1:30' (a type error where a number
    is expected)."""

    def construct_document(self, node):
        _no_duplicate_keys(node, (), set())
        return super().construct_document(node)


class _Dumper(yaml.SafeDumper):
    """yaml.SafeDumper that also quotes the strings `_StrictLoader` reads as numbers (1e3, 0o17:
    plain in YAML 1.1), so that `dump` round-trips; those YAML 1.1 reads as numbers stay quoted."""


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
# integers before floats: the float pattern also matches 100
for _cls in (_StrictLoader, _Dumper):
    # 0x and 0o need a digit: 0x_ is text (int() cannot read it)
    _cls.add_implicit_resolver(
        _INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x_*[0-9a-fA-F][0-9a-fA-F_]*|0o_*[0-7][0-7_]*)$"), list("-+0123456789"))
    _cls.add_implicit_resolver(
        _FLOAT, re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?"
                           r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def _yaml_int(loader, node) -> int:
    """A YAML 1.2 integer: decimal (leading zeros allowed), 0x hexadecimal or 0o octal."""
    text = loader.construct_scalar(node).replace("_", "")
    try:
        return int(text, 0) if text[:2] in ("0x", "0o") else int(text, 10)
    except ValueError:   # beyond Python's limit on the digits of a converted integer
        raise yaml.constructor.ConstructorError(None, None, f"an integer of {len(text)} digits, beyond any "
                                                "setting's range", node.start_mark) from None


_StrictLoader.add_constructor(_INT, _yaml_int)


def _no_duplicate_keys(node, path: tuple[str, ...], seen: set[int]) -> None:
    """ConfigError naming the dotted key and both lines for a repeated key anywhere under `node`."""
    if id(node) in seen:  # an alias: checked where it was defined (and no endless recursion)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key, line = str(key_node.value), key_node.start_mark.line + 1
                if key in lines:
                    dotted = ".".join((*path, key))
                    raise ConfigError(f"duplicate key: given at line {lines[key]} and again at line {line} "
                                      "(keep one)", key=dotted)
                lines[key] = line
                _no_duplicate_keys(value_node, (*path, key), seen)
            else:
                _no_duplicate_keys(value_node, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_duplicate_keys(item, (*path[:-1], f"{path[-1]}[{i}]") if path else (f"[{i}]",), seen)


def _safe_load(text: str):
    """yaml.safe_load that also rejects duplicate keys (ConfigError naming the key and lines)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 — a SafeLoader subclass


def _yaml_problem(e: yaml.YAMLError, text: str) -> str:
    """' at line L: what' (one line) of a YAML error of `text`."""
    if isinstance(e, yaml.reader.ReaderError) and isinstance(e.character, int):   # a NUL, a control character
        line = text[: e.position].count("\n") + 1
        return f" at line {line}: character #x{e.character:04x} is not allowed in YAML"
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    return f"{where}: " + " ".join(str(getattr(e, "problem", None) or e).split())


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=value' → ('a.b', value parsed as a YAML scalar or list)."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"overrides look like key=value (e.g. train.steps=500), got {text!r}", key="--set")
    key, _, value = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"bad key in override {text!r}", key="--set")
    try:
        parsed = _safe_load(value) if value.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse the value of {text!r} as YAML{_yaml_problem(e, value)}", key=key) from None
    except RecursionError:
        raise ConfigError("the value nests too deeply", key=key) from None
    if isinstance(parsed, dict):
        raise ConfigError(f"override values are scalars or lists, got a mapping in {text!r}", key=key)
    return key, parsed


def apply_override(raw: dict, key: str, value: Any) -> dict:
    """A copy of `raw` with the dotted `key` set (keys under sweep.grid keep their dots)."""
    raw = copy.deepcopy(raw)
    parts = key.split(".")
    if parts[:2] == ["sweep", "grid"] and len(parts) > 2:
        parts = ["sweep", "grid", ".".join(parts[2:])]
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {key}: {'.'.join(parts[:i + 1])} is not a mapping", key=key)
        node = nxt
    node[parts[-1]] = value
    return raw


def _override_list(overrides) -> list[str]:
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (list, tuple)):
        raise TypeError(f"overrides is a list of strings like ['train.lr=0.5'], got {type(overrides).__name__} "
                        f"{overrides!r}")
    return list(overrides)


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    """Read a YAML config, apply `key=value` overrides, validate. Raises ConfigError (bad
    input) or TypeError (overrides not a list of strings)."""
    overrides = _override_list(overrides)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")  # YAML is UTF-8 whatever the locale
    except FileNotFoundError:
        raise ConfigError("no such config file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config: {e}", file=str(path)) from None
    try:
        return loads(text, overrides, name=path.stem)
    except ConfigError as e:
        raise e.within(file=str(path)) from None


def loads(text: str, overrides=(), name: str = "experiment") -> Experiment:
    """Like `load`, from a YAML string (handy in notebooks and tests)."""
    overrides = _override_list(overrides)
    try:
        raw = _safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML{_yaml_problem(e, text)}") from None
    except RecursionError:
        raise ConfigError("config nests too deeply") from None
    raw = {} if raw is None else raw
    try:
        given: dict[str, str] = {}  # dotted key → the override that set it
        for o in overrides:
            if isinstance(raw, dict):
                key, value = parse_override(o)
                _not_replacing(key, o, given)
                raw = apply_override(raw, key, value)
                given[key] = o
        _not_swept(raw, given)
        return from_dict(raw, default_name=name)
    except ConfigError as e:
        raise _switched(e, given) from None
    except RecursionError:
        raise ConfigError("config nests too deeply (recursive YAML aliases?)") from None


def _switched(error: ConfigError, given: dict[str, str]) -> ConfigError:
    """An unknown key of a section whose name an override changed says where it comes from:
    the file's settings of the section's former target or learner."""
    section = (error.key or "").partition(".")[0]
    if f"{section}.name" in given and error.message.startswith("unknown key"):
        return ConfigError(f"{error.message} (kept from the file's {section} section while "
                           f"{given[section + '.name']} changed its name: pass --set {section}= before "
                           f"--set {section}.name=… to start the section afresh)", key=error.key, file=error.file)
    return error


def _not_replacing(key: str, text: str, given: dict[str, str]) -> None:
    """ConfigError for an override that sets a key set by an earlier one, or a section above
    it (train=… after train.lr=…): the earlier value would be silently unused."""
    for earlier, earlier_text in given.items():
        if earlier == key or earlier.startswith(key + "."):
            raise ConfigError(f"{text!r} replaces {earlier_text!r} given before it: give each key once", key=key)


def _not_swept(raw: Any, keys) -> None:
    """ConfigError for a key of `keys` (dotted, as set by an override) that the grid of `raw`
    sweeps: every grid point sets it again, so the value set would be silently unused. (The
    Python `override` may set them: a grid point's Experiment keeps its sweep, and code that
    trains it directly reads its fields.)"""
    sweep = raw.get("sweep") if isinstance(raw, dict) else None
    grid = sweep.get("grid") if isinstance(sweep, dict) else None
    if not isinstance(grid, dict):
        return
    for key in keys:
        if key in grid:
            raise ConfigError(f"swept by sweep.grid.{key} = {grid[key]!r}, which sets it at every grid point; "
                              f"set the axis instead (--set 'sweep.grid.{key}=[…]') or remove it from the grid",
                              key=key)


def dump(exp: Experiment) -> str:
    """The resolved config as YAML text (round-trips through `loads`)."""
    return yaml.dump(to_plain(exp), Dumper=_Dumper, sort_keys=False)


#: `smoke`'s caps
SMOKE_STEPS = 200
SMOKE_TEST_M = 512


def config_hash(exp: Experiment, *, leave_out: str | None = None) -> str:
    """12 hex digits identifying the resolved config (executor excluded; `leave_out`: a dotted
    key left out too, e.g. the one a search sets in every run)."""
    plain = to_plain(exp)
    plain.pop("executor")
    if leave_out is not None:
        section, _, name = leave_out.partition(".")
        plain[section].pop(name)
    blob = json.dumps(plain, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def smoke(exp: Experiment) -> Experiment:
    """A seconds-long version: ≤ 200 steps, ≤ 2 seeds, ≤ 2 values per grid axis, ≤ 512 test
    points, curve points every ≤ steps / 4 (grid values of those keys capped alike)."""
    swept = dict(exp.sweep.grid)
    steps = min(exp.train.steps, SMOKE_STEPS)
    # curve points every ≤ a quarter of the fewest steps any grid point trains
    fewest = min((min(v, SMOKE_STEPS) for v in swept["train.steps"]), default=steps) if "train.steps" in swept else steps
    caps = {"train.steps": lambda v: min(v, SMOKE_STEPS), "data.test_m": lambda v: min(v, SMOKE_TEST_M),
            "train.eval_every": lambda v: max(1, min(v, fewest // 4))}

    def capped(key, values):  # each value capped, repeats dropped, at most two
        if key in caps and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            values = tuple(dict.fromkeys(caps[key](v) for v in values))
        return values[:2]

    train = replace(exp.train, steps=steps, eval_every=caps["train.eval_every"](exp.train.eval_every)) \
        if kind_of(exp.learner).trained else exp.train   # a fitted learner takes no steps
    data = replace(exp.data, test_m=caps["data.test_m"](exp.data.test_m))
    sweep = replace(exp.sweep, seeds=exp.sweep.seeds[:2], grid=tuple((k, capped(k, v)) for k, v in exp.sweep.grid))
    out = replace(exp, train=train, data=data, sweep=sweep)
    _check_experiment(out)
    _check_grid(out)
    return out


def override(exp: Experiment, **sections) -> Experiment:
    """`exp` with fields replaced, e.g. override(cfg, train={"steps": 500}, experiment="x");
    validated. A section's dict is merged into it (a new `sweep.grid` replaces the old)."""
    plain = to_plain(exp)
    for section, values in sections.items():
        if section not in plain:
            raise ConfigError(f"unknown section{suggest(section, TOP_KEYS)}", key=section)
        if isinstance(plain[section], dict) and isinstance(values, dict):
            plain[section].update(values)
        else:
            plain[section] = values
    return from_dict(plain, default_name=exp.experiment)


__all__ = ["ConfigError", "Experiment", "TrainConfig", "DataConfig", "SweepConfig", "ExecutorConfig",
           "load", "loads", "from_dict", "to_plain", "dump", "config_hash", "grid_points", "with_point",
           "smoke", "override", "parse_override", "apply_override"]
