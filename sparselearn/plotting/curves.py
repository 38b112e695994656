"""Learnability curves from the results store: test error vs m or vs steps, median and
interquartile band over seeds, one line per value of the other grid axes.

Example:
    >>> runs, curves = sl.load_results("results/quickstart", curves=True)    # doctest: +SKIP
    >>> fig, ax = error_vs_m(runs)              # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sparselearn.errors import PlotError
from sparselearn.plotting.style import PALETTE, figure, save
from sparselearn.schema import within_eps


def series_labels(runs: pd.DataFrame, exclude: tuple[str, ...] = ()) -> pd.Series:
    """One label per run from its grid point without the keys in `exclude` ('' if none): each
    key by its last part ("k=3"), or in full ("target.k=3") where two grid keys share that part
    (one of them excluded, too: it is drawn on an axis)."""
    keys = grid_keys(runs)
    last = pd.Series([k.split(".")[-1] for k in keys], dtype=object)
    name = {k: (k if shared else short) for k, short, shared in zip(keys, last, last.duplicated(keep=False))}

    def label(text):
        point = json.loads(text) if isinstance(text, str) and text else {}
        return ", ".join(f"{name[k]}={v}" for k, v in sorted(point.items()) if k not in exclude)
    return runs["grid"].map(label)


def _by_value(label: str) -> tuple:
    """Sort key of a `series_labels` label: its values as numbers where they are ("m=512"
    before "m=2048"), else as text."""
    def value(v):
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)
    return tuple((k, value(v)) for k, _, v in (part.partition("=") for part in label.split(", ")))


def _series(frame: pd.DataFrame, by_value: bool) -> list[tuple[str, pd.DataFrame]]:
    """`frame` grouped by its "series" column, in the order of the grid values (`by_value`,
    for `series_labels` labels) or of the names."""
    groups = list(frame.groupby("series", sort=True))
    return sorted(groups, key=lambda g: _by_value(g[0])) if by_value else groups


def grid_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with one column per grid key (e.g. "target.n"), parsed from the JSON `grid` column."""
    points = [json.loads(t) if isinstance(t, str) and t else {} for t in runs["grid"]]
    extra = pd.DataFrame(points, index=runs.index)
    return pd.concat([runs, extra.drop(columns=[c for c in extra if c in runs])], axis=1)


def grid_keys(runs: pd.DataFrame) -> list[str]:
    """The keys of the runs' grid points, in order of first appearance."""
    points = (json.loads(t) for t in runs.get("grid", ()) if isinstance(t, str) and t)
    return list(dict.fromkeys(k for point in points for k in point))


def first_step(curves: pd.DataFrame, eps: float = 0.0, column: str = "test_error") -> pd.Series:
    """Per run_id, the first evaluated step with `column` ≤ eps (NaN if never). With eps = 0 on
    test_error this is t_c, the step of 100% held-out accuracy (Barak et al.)."""
    hit = curves[within_eps(curves[column], eps)]
    first = hit.groupby("run_id")["step"].min()
    return first.reindex(curves["run_id"].unique()).astype(float)


def _band(ax, x, values: pd.DataFrame, label: str, color):
    """Median line and interquartile band of `values` (x × run) over its runs; a series with no
    finite value keeps its legend entry (its runs all diverged), with nothing drawn."""
    if not values.notna().any().any():
        ax.plot([], [], "o-", color=color, label=f"{label}, not drawn", ms=3)
        return
    q = values.quantile([0.25, 0.5, 0.75], axis=1).T
    ax.plot(x, q[0.5], "o-", color=color, label=label, ms=3)
    ax.fill_between(x, q[0.25], q[0.75], color=color, alpha=0.2, lw=0)


def _log_if_wide(ax, values, axis="x"):
    """A log axis when the positive `values` span ≥ 8×; its ticks are then the values
    themselves when there are few of them (grid values read better than 10^k ticks, and log
    minor labels collide), else the decades alone."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    v = np.unique(np.asarray([x for x in values if x > 0], dtype=float))
    if not (v.size and v.max() / v.min() >= 8):
        return
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    scale = ax.xaxis if axis == "x" else ax.yaxis
    scale.set_minor_formatter(NullFormatter())
    if v.size <= 8:
        (ax.set_xticks if axis == "x" else ax.set_yticks)(v)
        scale.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0f}" if x == round(x) else f"{x:g}"))


def _log_steps(ax):
    """A log x axis without minor tick labels (they collide: "3×10¹4×10¹"); where fewer than two
    powers of ten lie within the data, the ticks are 1, 2 and 5 times them, as plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    low, high = ax.dataLim.intervalx
    if low > 0 and np.floor(np.log10(high)) - np.ceil(np.log10(low)) < 1:
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0f}" if x == round(x) else f"{x:g}"))


def _left_out(part: pd.DataFrame, column: str = "test_error", failed: int = 0) -> str:
    """' (f of R runs failed; d of R runs without a finite <column>: diverged)' for a series'
    runs (`part`: those that did not fail; 'all R runs' where that is all of them), '' if none."""
    total = len(part) + failed
    bad = int((~np.isfinite(part[column].astype(float))).sum())
    def runs(count):
        return f"all {count} runs" if count == total else f"{count} of {total} runs"
    notes = ([f"{runs(failed)} failed"] if failed else []) + (
        [f"{runs(bad)} without a finite {column.replace('_', ' ')}: diverged"] if bad else [])
    return f" ({'; '.join(notes)})" if notes else ""


def _finite(table: pd.DataFrame) -> pd.DataFrame:
    """`table` sorted by its index, with inf (a diverged run) as NaN: left out of the quantiles."""
    table = table.sort_index().astype(float)
    return table.where(np.isfinite(table))


def _hold_stopped(table: pd.DataFrame, part: pd.DataFrame, column: str) -> pd.DataFrame:
    """`table` (step × run_id) with every run that stopped at eps (`train.stop_at_eps`: its curve
    ends before its `steps`, at a test error ≤ its `eps`) held at its last `column` value over
    the later steps: it has learned, and the later medians are not of the runs still training."""
    if not {"steps", "eps"} <= set(part):
        return table
    last = part.sort_values("step").groupby("run_id").tail(1).set_index("run_id")
    early = last["step"].astype(float) < last["steps"].astype(float)
    stopped = last.index[early & within_eps(last["test_error"].astype(float), last["eps"].astype(float))]
    table = table.copy()
    for run in stopped.intersection(table.columns):
        table.loc[table.index > last.at[run, "step"], run] = last.at[run, column]
    return table


def _check_drawn(ax, runs: pd.DataFrame) -> None:
    if not any(len(line.get_xdata()) for line in ax.lines):
        raise PlotError(f"none of the {len(runs)} runs has a finite value to plot (all diverged)")


def error_vs_m(runs: pd.DataFrame, ax=None, title: str | None = None):
    """Final test error against the sample size m (median, IQR band over seeds); failed runs
    and runs without a finite error (diverged) are left out, and the legend says how many."""
    runs = runs.assign(series=series_labels(runs, exclude=("data.m",)))
    fig, ax = figure() if ax is None else (ax.figure, ax)
    for i, (name, part) in enumerate(_series(runs, by_value=True)):
        failed = part["status"] == "failed"
        part = part[~failed]
        # one column per run: every run of the series counts, even two with the same seed
        table = _finite(part.pivot_table(index="m", columns="run_id", values="test_error", aggfunc="first"))
        label = (name or "median over seeds (IQR band)") + _left_out(part, failed=int(failed.sum()))
        _band(ax, table.index.to_numpy(dtype=float), table, label, PALETTE[i % len(PALETTE)])
    runs = runs[runs["status"] != "failed"]
    _check_drawn(ax, runs)
    _log_if_wide(ax, runs["m"].dropna())
    ax.set_xlabel("training samples m")
    ax.set_ylabel("test error")
    ax.set_ylim(bottom=0)
    ax.set_title(title or _title(runs))
    ax.legend(frameon=False)
    return fig, ax


def error_vs_steps(runs: pd.DataFrame, curves: pd.DataFrame, ax=None, title: str | None = None,
                   column: str = "test_error", logx: bool = False, series: str | None = None,
                   colors: dict | None = None):
    """Test error (or another curve `column`) against training steps: median and IQR band over
    seeds, one line per grid point (or per value of the runs column `series`); a run that stopped
    at eps (`train.stop_at_eps`) counts at its last value after it stopped; `logx` for a log
    step axis (a plateau then a drop reads best there); `colors`: series name → colour (default:
    the palette in the series' order: by grid value, m=512 before m=2048, or by name). Failed
    runs are left out, and the legend says how many."""
    runs = runs.assign(series=series_labels(runs) if series is None else runs[series].astype(str))
    names = [name for name, _ in _series(runs, by_value=series is None)]
    failed = runs[runs["status"] == "failed"].groupby("series").size()
    runs = runs[runs["status"] != "failed"]
    merged = curves.merge(runs[["run_id", "series", "seed", *(c for c in ("steps", "eps") if c in runs)]],
                          on="run_id")
    fig, ax = figure() if ax is None else (ax.figure, ax)
    for i, name in enumerate(names):
        part = merged[merged["series"] == name]
        table = part.pivot_table(index="step", columns="run_id", values=column, aggfunc="first", dropna=False)
        table = _finite(_hold_stopped(table, part, column))
        if logx:  # after holding: a run stopped at step 0 still counts at the later steps
            table = table[table.index > 0]
        color = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
        last = part.sort_values("step").groupby("run_id").tail(1)   # each run's last point
        label = (name or "median over seeds (IQR band)") + _left_out(last, column, int(failed.get(name, 0)))
        _band(ax, table.index.to_numpy(dtype=float), table, label, color)
    _check_drawn(ax, runs)
    if logx:
        _log_steps(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel(column.replace("_", " "))
    drawn = merged[column].astype(float)
    if not (drawn < 0).any():   # errors and most losses: from 0; a loss that goes negative as drawn
        ax.set_ylim(bottom=0)
    ax.set_title(title or _title(runs))
    ax.legend(frameon=False)
    return fig, ax


def _title(runs: pd.DataFrame) -> str:
    if runs.empty:
        return ""
    r = runs.iloc[0]
    parts = [str(r["target"])]
    for col in ("n", "k", "s"):
        if col in runs and runs[col].nunique() == 1 and pd.notna(r[col]):
            parts.append(f"{col}={r[col]}")
    return f"{r['learner']} on " + " ".join(parts)


def learnability(path: str | Path, out: str | Path | None = None, pdf: bool = True) -> list[Path]:
    """Draw the learnability curve of the store(s) under `path`: vs m when m varies, else vs
    steps; several stores draw one series per store (`stores.load_stores`).

    Writes <store>/figures/learnability.png and, with `pdf`, .pdf (<path>/figures/… for several
    stores) unless `out` is given; returns the paths, the PNG first.
    """
    from sparselearn.plotting.stores import default_out, load_stores

    stores, runs, curves = load_stores(path, curves=True)
    where = stores[0] if len(stores) == 1 else f"{path} ({len(stores)} stores)"
    ok = runs[runs["status"] != "failed"]
    if ok.empty:
        raise PlotError(f"{where}: no successful runs to plot")
    title = None if len(stores) == 1 else ", ".join(dict.fromkeys(ok["experiment"].astype(str)))
    if ok["m"].nunique(dropna=True) > 1:
        fig, _ = error_vs_m(runs, title=title)
    else:
        if not curves["run_id"].isin(ok["run_id"]).any():
            raise PlotError(f"{where}: no curves stored for its runs, nothing to plot (rerun the same "
                            f"`sparselearn run` command to recompute them)")
        fig, _ = error_vs_steps(runs, curves, title=title)
    return save(fig, out or default_out(path, stores, "learnability"), pdf=pdf)
