"""The run contract: which values of an experiment are vmapped run axes, and the split of an
experiment into its static part (one compiled program) and each run's values.

Every row of `AXES` is one value that runs of one compiled group may differ in: its name
(the key in `hps` dicts and the column of runs.parquet), its config path, the numpy dtype of
its (R,) array, the neutral value it takes in the static part, and how an experiment's
value is read. Grid expansion and grouping (`sweeps.grid`), the training loop
(`train.loop`), the search and the store's run rows ask this module; adding a vmapped value
is one row here plus its use in the loop.

Example:
    >>> exp = sparselearn.config.load("configs/quickstart.yaml")     # data.m: 4096
    >>> run_values(exp, seed=3)
    {'seed': 3, 'm': 4096, 'lr': 0.1, 'weight_decay': 0.0, 'init_seed': None, 'noise': 0.0}
    >>> hp_arrays(exp, {"seed": [0, 1], "lr": [0.1, 0.2]})["m"]      # defaults from exp
    array([4096, 4096], dtype=int32)
    >>> a = sparselearn.config.override(exp, train={"lr": 0.05})
    >>> b = sparselearn.config.override(exp, data={"m": 256})
    >>> static_part(a) == static_part(exp), group_key(b) == group_key(exp)   # one program; one group
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from sparselearn.contracts import kind_of, noise_is_vmapped
from sparselearn.errors import ConfigError

if TYPE_CHECKING:
    from sparselearn.config import Experiment


def _always(exp) -> bool:
    return True


@dataclass(frozen=True)
class Axis:
    """One vmapped run value.

    name: key in hps dicts and run rows. path: "section.field" in the config ("" for the seed,
    which is not a config value). dtype: of its (R,) array. neutral: its value in the static
    part. read: the experiment's value (None allowed, e.g. init_seed unset). to_array: the
    config value as the array holds it (None → a sentinel). vmapped(exp): False where the
    value is a static choice for this experiment (it then stays in the static part). largest:
    the group's program is built at the largest value of its runs (data.m: datasets drawn at
    the largest m, each run indexing below its own).
    """

    name: str
    path: str
    dtype: type
    neutral: Any
    read: Callable[[Experiment], Any]
    to_array: Callable[[Any], Any] = lambda v: v
    vmapped: Callable[[Experiment], bool] = _always
    largest: bool = False


AXES: tuple[Axis, ...] = (
    Axis("seed", "", np.int32, None, lambda exp: None),
    # a fitted learner's compiled solve grows with its rows, so there m is a shape (a host
    # learner fits each run's own m rows in numpy: its runs share one draw at the largest m)
    Axis("m", "data.m", np.int32, 1, lambda exp: exp.data.m,
         vmapped=lambda exp: kind_of(exp.learner).trained or not kind_of(exp.learner).compiled, largest=True),
    Axis("lr", "train.lr", np.float32, 1.0, lambda exp: exp.train.lr),
    Axis("weight_decay", "train.weight_decay", np.float32, 0.0, lambda exp: exp.train.weight_decay),
    # unset (None) means "the run seed", −1 in the array
    Axis("init_seed", "train.init_seed", np.int32, None, lambda exp: exp.train.init_seed,
         to_array=lambda v: -1 if v is None else v),
    # vmapped where the target declares its noise model (`add_noise`), else a static choice
    Axis("noise", "target.noise", np.float32, 0.0, lambda exp: exp.target.noise,
         vmapped=lambda exp: noise_is_vmapped(exp.target)),
)
BY_NAME: dict[str, Axis] = {a.name: a for a in AXES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
PATHS: dict[str, str] = {a.path: a.name for a in AXES if a.path}  # config path → axis name

#: what `sparselearn search` can vary: the sample size (an axis: every candidate m of a round
#: shares a group) and the step budget (one training at the largest budget gives
#: steps_to_eps for every smaller one)
SEARCHABLE: tuple[str, ...] = ("data.m", "train.steps")


def _set(exp: Experiment, path: str, value) -> Experiment:
    section, _, name = path.partition(".")
    return replace(exp, **{section: replace(getattr(exp, section), **{name: value})})


def run_values(exp: Experiment, seed: int) -> dict[str, Any]:
    """The vmapped values of the run (`exp`, seed) as config values (init_seed may be None)."""
    return {a.name: seed if a.name == "seed" else a.read(exp) for a in AXES}


def static_part(exp: Experiment) -> Experiment:
    """`exp` with its vmapped values neutralised (and name, sweep and executor reset): equal
    static parts ⇒ one compiled program. Values built at the group's largest (data.m) stay."""
    for a in AXES:
        if a.path and not a.largest and a.vmapped(exp):
            exp = _set(exp, a.path, a.neutral)
    return replace(exp, experiment="", sweep=type(exp.sweep)(), executor=type(exp.executor)())


def group_key(exp: Experiment) -> Experiment:
    """The static part with the `largest` values neutralised too: runs with equal keys share a
    group (its program then built at their largest data.m)."""
    for a in AXES:
        if a.path and a.largest and a.vmapped(exp):
            exp = _set(exp, a.path, a.neutral)
    return static_part(exp)


def hp_arrays(exp: Experiment, hps: dict) -> dict[str, np.ndarray]:
    """The vmapped values of R runs as typed (R,) arrays, every axis present: those missing
    from `hps` (all but "seed") are the experiment's. Keys of `hps` that are not axes are
    left out. ValueError for an axis without one value per seed, for values of an axis that
    is a static choice here (`Axis.vmapped`) other than the experiment's, and for a run's m
    below 1 (no training examples) or above data.m (its mini-batches would index past the
    group's data); ConfigError, as the config's, for a value its key refuses (a trained run's
    m below train.batch included)."""
    if "seed" not in hps:
        raise ValueError(f"hps holds no 'seed' (one value per run); got keys {sorted(hps)}")
    size = len(hps["seed"])
    out = {}
    for a in AXES:
        given = np.asarray(hps[a.name], dtype=object).reshape(-1) if a.name in hps else [a.read(exp)] * size
        values = np.asarray([a.to_array(v) for v in given], dtype=a.dtype)
        if values.size != size:
            raise ValueError(f"hps[{a.name!r}] holds {values.size} values; expected {size}, one per seed")
        out[a.name] = values
        if a.name in hps and a.path and not a.largest:
            _check_values(exp, a, values)
        # a static choice (e.g. the noise of a target without `add_noise`) is the config's:
        # another value here would be ignored
        static = a.path and not a.largest and not a.vmapped(exp)
        if static and a.name in hps and (out[a.name] != np.asarray(a.to_array(a.read(exp)), a.dtype)).any():
            raise ValueError(f"hps[{a.name!r}] differs from {a.path} = {a.read(exp)}, which is not vmapped for "
                             f"this experiment (one value per compiled group): set it in the config")
    if not exp.data.online and size and int(out["m"].max()) > exp.data.m:
        raise ValueError(f"a run's m = {int(out['m'].max())} exceeds the group's data.m = {exp.data.m}")
    if not exp.data.online and size and int(out["m"].min()) < 1:
        raise ValueError(f"a run's m = {int(out['m'].min())} is below 1: it has no training examples")
    if not exp.data.online and size and kind_of(exp.learner).trained and int(out["m"].min()) < exp.train.batch:
        m = int(out["m"].min())   # as the config refuses it: mini-batches larger than the sample
        raise ConfigError(f"hps['m'] holds {m}: batch = {exp.train.batch} exceeds the sample size data.m = {m}",
                          key="train.batch")
    return out


def _check_values(exp: Experiment, a: Axis, values: np.ndarray) -> None:
    """ConfigError, as the config would raise it, for a value of axis `a` that its config key
    refuses (e.g. lr ≤ 0, a label-flip probability above 0.5); the array's sentinel for an
    unset value (`to_array(None)`) is accepted."""
    unset, section = a.to_array(None), a.path.partition(".")[0]
    for v in np.unique(values):
        if unset is not None and v == unset:
            value = None
        else:  # float32's shortest repr reads as typed (0.9, not 0.8999999761581421)
            value = float(str(v)) if np.issubdtype(v.dtype, np.floating) else v.item()
        try:
            _set(exp, a.path, value)
        except ConfigError as e:
            raise ConfigError(f"hps[{a.name!r}] holds {value}: {e.message}", key=e.within(section).key) from None


def hp_lists(values: list[dict[str, Any]]) -> dict[str, list]:
    """Per-run values (from `run_values`) → {axis: [value per run]} as the arrays hold them."""
    return {a.name: [a.to_array(v[a.name]) for v in values] for a in AXES}


__all__ = ["Axis", "AXES", "BY_NAME", "NAMES", "PATHS", "SEARCHABLE", "run_values", "static_part", "group_key", "hp_arrays",
           "hp_lists"]
