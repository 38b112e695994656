"""`sparselearn plot --kind …`: pick a figure's axes from the stored grid of a results directory.

Example:
    >>> plot_results("results/sign_sgd_parity", kind="scaling")   # steps_to_eps vs target.n  # doctest: +SKIP
    >>> plot_results("results/compare_parity")     # all its stores, one line per learner  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sparselearn.errors import PlotError
from sparselearn.plotting.curves import grid_frame, grid_keys, learnability, series_labels
from sparselearn.plotting.phase import is_number_axis, phase_diagram
from sparselearn.plotting.scaling import scaling_plot
from sparselearn.plotting.stores import default_out, load_stores
from sparselearn.plotting.style import save

KINDS = ("curve", "scaling", "phase")
#: grid keys preferred as the x axis of a scaling plot, then of a phase diagram
SCALING_X = ("target.n", "target.d", "target.k", "target.s", "learner.width", "data.m")
PHASE_AXES = ("data.m", "learner.width", "train.weight_decay", "target.n", "target.k", "train.lr")


def varying_axes(frame: pd.DataFrame) -> list[str]:
    """Grid keys that take more than one value in `frame` (a `grid_frame`): the swept settings,
    and those that tell pooled stores apart (`load_stores`), `experiment` among them."""
    return [c for c in grid_keys(frame) if c in frame and frame[c].nunique(dropna=True) > 1]


def _ordered(axes: list[str], preferred: tuple[str, ...]) -> list[str]:
    return [a for a in preferred if a in axes] + [a for a in axes if a not in preferred]


def plot_results(path: str | Path, kind: str = "curve", out: str | Path | None = None) -> list[Path]:
    """Draw one figure of every store under `path` (see `load_stores`); returns the written .png
    and .pdf paths (default: <store>/figures/<kind>, or <path>/figures/<kind> for several stores).
    Raises PlotError (a ValueError) when the stored runs cannot make that kind of figure."""
    if kind not in KINDS:
        raise PlotError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "curve":
        return learnability(path, out)
    stores, runs, _ = load_stores(path)
    store = stores[0] if len(stores) == 1 else Path(path)
    runs = grid_frame(runs)
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        raise PlotError(f"{store}: no successful runs to plot")
    axes = varying_axes(runs)
    experiments = ", ".join(dict.fromkeys(runs["experiment"].astype(str)))
    if kind == "scaling":
        numeric = [a for a in axes if is_number_axis(runs[a])]
        if not numeric:
            raise PlotError(f"{store}: a scaling plot needs a numeric grid axis (e.g. target.n); grid varies "
                            f"{', '.join(axes) or 'nothing'}")
        x = _ordered(numeric, SCALING_X)[0]
        others = [a for a in axes if a != x]
        by = others[0] if len(others) == 1 else None
        # steps only when every run trained (a fitted learner's steps_to_eps is always null) and
        # some reached eps; else the error, which every learner has
        trained = runs["steps"].notna().all() if "steps" in runs else True
        y = "steps_to_eps" if trained and ok["steps_to_eps"].notna().any() else "test_error"
        # scaling_plot counts a diverged run as unreached by its status (its steps_to_eps may be
        # finite: it reached eps before it diverged) and leaves failed ones out; the legend counts both
        ok = runs
        if len(others) > 1:  # one series per combination of the other axes, none pooled
            ok = ok.assign(series=series_labels(ok, exclude=(x,)))
            by = "series"
        fig, _, _ = scaling_plot(ok, x, y, by=by, title=f"{experiments}: {y} vs {x}")
    else:
        if len(axes) < 2:
            raise PlotError(f"{store}: a phase diagram needs two grid axes with several values; grid varies "
                            f"{', '.join(axes) or 'nothing'}")
        x, y = _ordered(axes, PHASE_AXES)[:2]
        if len(axes) > 2:
            raise PlotError(f"{store}: a phase diagram has two axes ({x}, {y}), but the grid also varies "
                            f"{', '.join(a for a in axes if a not in (x, y))}, which it would average over; "
                            "draw it with sparselearn.plotting.phase_diagram on the runs of one value of those")
        fig, _ = phase_diagram(runs, x, y, title=experiments)
    return save(fig, out or default_out(path, stores, kind))
