"""Scaling plots: a measured complexity (m*, steps_to_eps, t_c) against n or d on log-log axes, with
a fitted power law whose exponent carries a bootstrap confidence interval, and theory overlays.

Example:
    >>> fit = fit_exponent(n, t_c)                 # one point per run; repeated n are seeds
    >>> fit.alpha, fit.ci                          # (1.83, (1.61, 2.04))
    >>> fig, ax, fits = scaling_plot(table, x="n", y="t_c", by="k")
    >>> overlay(ax, n, theory.parity_sgd_samples(n, 3), "BEGKMZ: n^{k-1}", anchor=(20, 600))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparselearn.plotting.style import PALETTE, figure


@dataclass(frozen=True)
class PowerLaw:
    """y ≈ c·x^alpha, with a bootstrap interval (ci_low, ci_high) on alpha at `level`."""

    alpha: float
    c: float
    ci_low: float
    ci_high: float
    level: float
    points: int

    @property
    def ci(self) -> tuple[float, float]:
        return self.ci_low, self.ci_high

    def __call__(self, x) -> np.ndarray:
        return self.c * np.asarray(x, dtype=float) ** self.alpha

    def label(self) -> str:
        return f"α = {self.alpha:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]"


def _loglog_slope(logx: np.ndarray, logy: np.ndarray) -> tuple[float, float]:
    xm = logx.mean()
    dx = logx - xm
    slope = float((dx * (logy - logy.mean())).sum() / (dx * dx).sum())
    return slope, float(logy.mean() - slope * xm)


def _medians(xs: np.ndarray, groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    med = np.array([np.median(g) for g in groups])
    return np.log(xs), np.log(med)


def fit_exponent(x, y, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> PowerLaw:
    """Fit y ≈ c·x^α by least squares on log median(y) against log x.

    Repeated x values are treated as seeds of one point: the fit uses the median per x and the
    bootstrap resamples seeds within each x (a stratified bootstrap). With one observation per x
    the bootstrap resamples (x, y) pairs instead. Non-positive or non-finite observations (a run
    that never reached the target) are dropped. The interval is the percentile interval of the
    bootstrapped slopes.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    xs = np.unique(x)
    if xs.size < 2:
        raise ValueError(f"need positive values at two or more distinct x to fit a power law, got {xs.size}")
    groups = [y[x == v] for v in xs]
    alpha, logc = _loglog_slope(*_medians(xs, groups))
    rng = np.random.default_rng(seed)
    slopes = np.empty(n_boot)
    if max(len(g) for g in groups) > 1:
        for b in range(n_boot):
            resampled = [g[rng.integers(0, len(g), len(g))] for g in groups]
            slopes[b] = _loglog_slope(*_medians(xs, resampled))[0]
    else:
        lx, ly = np.log(x), np.log(y)
        b = 0
        while b < n_boot:
            idx = rng.integers(0, x.size, x.size)
            if np.unique(lx[idx]).size < 2:
                continue
            slopes[b] = _loglog_slope(lx[idx], ly[idx])[0]
            b += 1
    tail = (1 - level) / 2
    lo, hi = np.quantile(slopes, [tail, 1 - tail])
    return PowerLaw(alpha, float(np.exp(logc)), float(lo), float(hi), level, int(x.size))


def overlay(ax, x, y, label: str, *, anchor: tuple[float, float] | None = None, color="0.3"):
    """Draw a theory curve dashed, labelled with its theorem. Theory functions fix hidden constants
    to 1, so `anchor=(x0, y0)` rescales the curve to pass through that point (its slope is what
    the theorem says, not its level)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if anchor is not None:
        x0, y0 = anchor
        y = y * (y0 / np.interp(x0, x, y))
        label = f"{label} (scaled)"
    (line,) = ax.plot(x, y, "--", color=color, lw=1.2, label=label)
    return line


def scaling_plot(table: pd.DataFrame, x: str, y: str, by: str | None = None, ax=None, *,
                 xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
                 n_boot: int = 1000):
    """Median and interquartile range of `y` per `x` (one row per run), log-log, one series per
    value of `by`, each with its fitted power law and exponent interval in the legend.

    Returns (fig, ax, {series value: PowerLaw or None})."""
    fig, ax = figure() if ax is None else (ax.figure, ax)
    fits = {}
    series = [(None, table)] if by is None else list(table.groupby(by, sort=True))
    for i, (name, part) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        stats = part.groupby(x)[y].quantile([0.25, 0.5, 0.75]).unstack().dropna()
        stats = stats[stats[0.5] > 0]
        prefix = "" if by is None else f"{by}={name}: "
        try:
            fit = fit_exponent(part[x], part[y], n_boot=n_boot)
        except ValueError:
            fit = None
        fits[name] = fit
        label = prefix + (fit.label() if fit else "too few points to fit")
        xs = stats.index.to_numpy(dtype=float)
        ax.errorbar(xs, stats[0.5], yerr=[stats[0.5] - stats[0.25], stats[0.75] - stats[0.5]], fmt="o",
                    color=color, ms=4, capsize=2, label=label)
        if fit and xs.size:
            grid = np.geomspace(xs.min(), xs.max(), 50)
            ax.plot(grid, fit(grid), "-", color=color, lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return fig, ax, fits
