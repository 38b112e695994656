"""Several stores of one results directory read as one figure's table (e.g. configs/compare/
writes one store per learner under results/<experiment>/).

Example:
    >>> stores, runs, _ = load_stores("results/compare_parity")   # runs' grid gains learner.name  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from sparselearn.errors import PlotError
from sparselearn.plotting.curves import grid_keys
from sparselearn.store import load_results, one_per_run, resolve, rows_of_runs

#: config keys tried first to tell the stores of one directory apart, then the rest in config order
STORE_KEYS = ("experiment", "learner.name", "target.name")
#: a store's setting of a key it grids over: each run's grid value overrides it, so only whether
#: the key is gridded can tell the store apart
GRIDDED = "<gridded>"


def _settings(store: Path) -> dict[str, str]:
    """The dotted settings of a store's config.yaml (experiment, target, learner, train, data; not
    the sweep or executor), each as JSON text; {"store": its directory name} without one."""
    path = store / "config.yaml"
    if not path.is_file():
        return {"store": store.name}
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError) as e:   # ValueError: not UTF-8
        raise PlotError(f"{path}: unreadable config ({' '.join(str(e).split())[:200]}); restore it, or copy "
                        "the config this store was run with there") from None
    if not isinstance(cfg, dict):
        raise PlotError(f"{path}: not a config (a mapping of sections), got {type(cfg).__name__}")
    flat = {"experiment": json.dumps(cfg.get("experiment"))}
    for section in ("target", "learner", "train", "data"):
        for key, value in (cfg.get(section) or {}).items():
            flat[f"{section}.{key}"] = json.dumps(value, sort_keys=True)
    return flat


def distinguishing(settings: list[dict[str, str]]) -> list[str]:
    """The fewest settings keys, greedily (STORE_KEYS first, then in order), whose values tell
    apart every pair of stores whose `settings` differ at all; [] when they are all alike."""
    keys = list(dict.fromkeys(k for s in settings for k in s))
    keys = [k for k in STORE_KEYS if k in keys] + [k for k in keys if k not in STORE_KEYS]
    def classes(chosen):
        return len({tuple(s.get(k) for k in chosen) for s in settings})
    chosen, want = [], classes(keys)
    for key in keys:
        if classes(chosen) == want:
            break
        if classes([*chosen, key]) > classes(chosen):
            chosen.append(key)
    return chosen


def load_stores(path: str | Path, curves: bool = False) -> tuple[list[Path], pd.DataFrame, pd.DataFrame | None]:
    """(stores, runs, curves or None) of every store under `path`. With several stores whose
    configs differ (one learner per store, as configs/compare/ writes them), the settings that
    tell them apart (`distinguishing`) join each run's grid point, so the figures draw one series
    per store rather than pooling them; stores alike but for their sweep pool into one grid, each
    run once (`store.one_per_run`), with the curves of the runs kept."""
    stores = resolve(path)
    frames = [load_results(s, curves=True) if curves else (load_results(s), None) for s in stores]
    settings = [_settings(s) | dict.fromkeys(grid_keys(table), GRIDDED) for s, (table, _) in zip(stores, frames)]
    # a key gridded in some store is told apart by the runs' grid points: the other stores give
    # theirs its fixed value, and the stores are told apart by the settings no store grids
    gridded = list(dict.fromkeys(k for s in settings for k, v in s.items() if v == GRIDDED))
    keys = distinguishing([{k: v for k, v in s.items() if k not in gridded} for s in settings]) + gridded
    runs = []
    for (table, _), own in zip(frames, settings):
        own = {k: _scalar(own[k]) for k in keys if own.get(k, "null") not in ("null", GRIDDED)}
        if own and len(table):
            table = table.assign(grid=[json.dumps({**own, **(json.loads(g) if isinstance(g, str) and g else {})})
                                       for g in table["grid"]])
        runs.append(table)
    runs = one_per_run(_stack(runs))
    return stores, runs, (rows_of_runs(_stack([c for _, c in frames]), runs["run_id"], stores=len(stores))
                          if curves else None)


def _scalar(text: str):
    """A setting's JSON text as a grid value: a number, string or bool, else the text itself."""
    value = json.loads(text)
    return text if isinstance(value, (list, dict)) else value


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames one under the other (the first when all are empty)."""
    full = [f for f in frames if len(f)]
    return pd.concat(full, ignore_index=True) if len(full) > 1 else (full or frames)[0]


def default_out(path: str | Path, stores: list[Path], name: str) -> Path:
    """<store>/figures/<name> for one store; <path>/figures/<name> for a figure of several."""
    return (stores[0] if len(stores) == 1 else Path(path)) / "figures" / name
