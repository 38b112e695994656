"""Phase diagrams: the success probability over two grid axes as colour, with the 50% contour.

Example:
    >>> runs = sl.load_results("results/frontier")      # doctest: +SKIP
    >>> fig, ax = phase_diagram(runs, x="data.m", y="learner.width", eps=0.1)    # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import patheffects

from sparselearn.errors import PlotError
from sparselearn.plotting.curves import grid_frame
from sparselearn.plotting.style import figure
from sparselearn.schema import within_eps


def success_table(runs: pd.DataFrame, x: str, y: str, eps: float | None = None) -> pd.DataFrame:
    """Fraction of runs with test_error ≤ eps per (y, x) cell (rows y, columns x, both sorted).
    eps defaults to the runs' own `eps` column; diverged runs count as failures to learn, failed
    runs (an error, not training's doing) are left out: a cell of failed runs alone is NaN."""
    return _success(_grid(runs, x, y), x, y, eps)


def _success(frame: pd.DataFrame, x: str, y: str, eps: float | None) -> pd.DataFrame:
    threshold = frame["eps"] if eps is None else eps
    hit = ((frame["status"] == "ok") & within_eps(frame["test_error"], threshold)).astype(float)
    return _fraction(frame, x, y, hit.where(frame["status"] != "failed"))


def _grid(runs: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """`grid_frame(runs)`, a PlotError when x or y is not one of its grid axes."""
    frame = grid_frame(runs)
    missing = [a for a in (x, y) if a not in frame]
    if missing:
        raise PlotError(f"grid axis {', '.join(missing)} not in this sweep; it has {', '.join(_axes(frame)) or 'none'}")
    return frame


def _fraction(frame: pd.DataFrame, x: str, y: str, hit: pd.Series) -> pd.DataFrame:
    frame = frame.assign(hit=hit.astype(float))
    table = frame.pivot_table(index=y, columns=x, values="hit", aggfunc="mean", dropna=False)
    return table.sort_index().sort_index(axis=1)


def is_number_axis(values: pd.Index | pd.Series) -> bool:
    """Whether grid values are numbers, ordered on a line (not text, nor True/False)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _axes(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if "." in c]


def phase_diagram(runs: pd.DataFrame, x: str, y: str, eps: float | None = None, ax=None, title: str | None = None):
    """Colour = success probability per cell of the (x, y) grid, 50% contour drawn in black when
    both axes are numeric (between categories, such as learner.name, a contour would mark a
    threshold that is not there); a cell where runs diverged is marked × (their failures are not
    the sample size's doing), one where runs failed † (left out; a cell of failed runs alone is
    blank). Cells are laid out evenly (the tick labels carry the values), so log-spaced grids
    look even."""
    frame = _grid(runs, x, y)
    table = _success(frame, x, y, eps)
    fig, ax = figure(4.5, 3.6) if ax is None else (ax.figure, ax)
    image = ax.imshow(table.to_numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="P[test error ≤ eps]")
    notes = []
    for status, mark in (("diverged", "×"), ("failed", "†")):
        cells = _fraction(frame, x, y, frame["status"] == status).to_numpy()   # laid out as table
        for i, j in np.argwhere(cells > 0):
            dark = table.iat[i, j] < 0.5   # a halo of the other colour: readable where the contour crosses
            ax.text(j, i, mark, ha="center", va="center", fontsize=11, color="w" if dark else "k",
                    path_effects=[patheffects.withStroke(linewidth=1.5, foreground="k" if dark else "w")])
        if (cells > 0).any():
            notes.append(f"{mark} runs {status}" + (" (left out)" if status == "failed" else ""))
    if notes:
        ax.text(1.0, -0.16, ", ".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=7)
    numeric = all(is_number_axis(values) for values in (table.index, table.columns))
    if numeric and min(table.shape) >= 2 and np.nanmin(table.to_numpy()) < 0.5 < np.nanmax(table.to_numpy()):
        contour = ax.contour(np.arange(table.shape[1]), np.arange(table.shape[0]),
                             np.ma.masked_invalid(table.to_numpy()), levels=[0.5], colors="k", linewidths=1.5)
        ax.clabel(contour, fmt={0.5: "50%"}, fontsize=8)
    ax.set_xticks(range(table.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v) for v in table.columns])
    ax.set_yticks(range(table.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v) for v in table.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title)
    return fig, ax
