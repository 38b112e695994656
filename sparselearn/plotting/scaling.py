"""Scaling plots: a measured complexity (m*, steps_to_eps, t_c) against n or d on log-log axes, with
a fitted power law whose exponent carries a bootstrap confidence interval, and theory overlays.

Example:
    >>> n = np.repeat([10, 20, 40, 80], 3)                     # three seeds per n
    >>> t_c = 5.0 * n ** 2 * np.tile([0.9, 1.0, 1.1], 4)
    >>> fit = fit_exponent(n, t_c)                 # one point per run; repeated n are seeds
    >>> round(fit.alpha, 2), [round(c, 2) for c in fit.ci]
    (2.0, [1.91, 2.09])
    >>> table = pd.DataFrame({"n": n, "t_c": t_c, "k": 3})
    >>> fig, ax, fits = scaling_plot(table, x="n", y="t_c", by="k")
    >>> line = overlay(ax, n, sparselearn.theory.parity_sgd_samples(n, 3), "BEGKMZ: n^{k-1}", anchor=(20, 600))
    >>> local_slopes(n, t_c, window=3)["slope"].round(2).tolist()   # d log t_c / d log n, sliding windows of n
    [2.0, 2.0]
    >>> round(upper_half_fit(n, t_c).alpha, 2)     # the exponent over the larger half of n
    2.0
    >>> exponent_verdict(fit, 2.0, local_slopes(n, t_c)).verdict    # 'agrees' | 'pre-asymptotic' | …
    'agrees'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sparselearn.errors import PlotError
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
    #: the x values left out of the fit: at least half of their runs never reached the target
    censored: tuple[float, ...] = ()
    #: the x values left out of the fit because their median y is 0 (no place on a log axis)
    floored: tuple[float, ...] = ()

    @property
    def ci(self) -> tuple[float, float]:
        return self.ci_low, self.ci_high

    def __call__(self, x) -> np.ndarray:
        return self.c * np.asarray(x, dtype=float) ** self.alpha

    def label(self) -> str:
        left = (f"; {len(self.censored)} x with half the runs unreached left out" if self.censored else "") + (
            f"; {len(self.floored)} x with median 0 left out" if self.floored else "")
        if np.isnan(self.ci_low):
            return f"α = {self.alpha:.2f} (two points, no interval{left})"
        return f"α = {self.alpha:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]" + (f" ({left[2:]})" if left else "")


def _loglog_slopes(logx: np.ndarray, logy: np.ndarray) -> np.ndarray:
    """Least-squares slopes of every row of logy (B, X) against logx (X,): (B,)."""
    dx = logx - logx.mean()
    return (dx * (logy - logy.mean(axis=1, keepdims=True))).sum(axis=1) / (dx * dx).sum()


def _loglog_slope(logx: np.ndarray, logy: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (logx, logy)."""
    slope = float(_loglog_slopes(logx, logy[None])[0])
    return slope, float(logy.mean() - slope * logx.mean())


def _medians(xs: np.ndarray, groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    med = np.array([np.median(g) for g in groups])
    return np.log(xs), np.log(med)


def unreached(y) -> np.ndarray:
    """`y` as floats with a run that never reached the target (NaN, +inf) at +inf: it counts
    above every reached value in a median or quantile, rather than being left out."""
    y = np.asarray(y, dtype=float)
    return np.where(np.isnan(y), np.inf, y)


def quantiles(y, qs) -> np.ndarray:
    """Quantiles `qs` of the observations `y` (1-D, positive; NaN or +inf: never reached, see
    `unreached`), linearly interpolated; one that involves an unreached run is +inf."""
    return _quantiles(unreached(y).ravel(), qs)


def _quantiles(values: np.ndarray, qs) -> np.ndarray:
    """Linearly interpolated quantiles of `values`, which may hold ±inf (an interpolation with an
    infinite neighbour is that infinity)."""
    finite = values[np.isfinite(values)]
    if finite.size == values.size:
        return np.quantile(values, qs)
    big = np.finfo(float).max
    q = np.quantile(np.clip(values, -big, big), qs)
    top, bottom = (finite.max(), finite.min()) if finite.size else (0.0, 0.0)
    return np.where(q > top, np.inf, np.where(q < bottom, -np.inf, q))


def _distinct(x, y, low=None, high=None) -> tuple[np.ndarray, ...]:
    """(x, y, the sorted distinct x values, low, high, censored, floored) of the observations at
    x whose median y is reached (finite) and positive: y NaN or +inf is a run that never reached
    the target and counts above every reached y (`unreached`), a y ≤ 0 counts as 0, below every
    positive one (it is not dropped, which would leave the median of the others); `censored`
    are the x values left out because at least half of their runs never reached, `floored`
    those whose median is 0 (no place on a log axis). `low`/`high`: per-observation bounds on
    y (a missing or non-positive bound is y itself)."""
    x = np.asarray(x, dtype=float).ravel()
    y = unreached(y).ravel()
    y = np.where(y > 0, y, 0.0)
    bounds = []
    for bound, pick in ((low, np.minimum), (high, np.maximum)):
        b = y if bound is None else np.asarray(bound, dtype=float).ravel()
        bounds.append(np.where(np.isfinite(b) & (b > 0) & (y > 0), pick(b, y), y))
    ok = (x > 0) & np.isfinite(x)
    x, y, low, high = x[ok], y[ok], bounds[0][ok], bounds[1][ok]
    values = np.unique(x)
    medians = np.array([np.median(y[x == v]) for v in values])
    # as an x with half its runs unreached is censored, one with half at 0 is floored (the median
    # of [0, 0, 80, 80] would be 40, a value no run had)
    reached = np.isfinite(medians)
    positive = np.array([np.mean(y[x == v] <= 0) < 0.5 for v in values], dtype=bool)
    inside = np.isin(x, values[reached & positive])
    return (x[inside], y[inside], values[reached & positive], low[inside], high[inside],
            tuple(values[~reached].tolist()), tuple(values[reached & ~positive].tolist()))


#: with fewer runs than this at some x, a bootstrap over seeds understates the spread there (none
#: with one run, half of it with two), so `fit_exponent` widens its interval to the t-interval of
#: the per-x medians' scatter about the line where that is wider. Five log-normal points (σ = 0.5,
#: true exponent 2), 200 draws: one x with a second run gave 29% coverage at level 0.95, two runs
#: at every x 73%. Three runs suffice at five x (95–98%) but not at three (87% over 300 draws;
#: 98.7% widened); four runs at 3, 4, 5 x: 93%, 94%, 95%
THIN_SEEDS = 4

#: bootstrap replicates of `fit_exponent` and `local_slopes`: over six seeds the ends of HP-1R's
#: intervals (25 runs at each of 7–12 n) moved by up to 0.005 at 1000 replicates, 0.0023 at
#: 20,000. Where the slopes take few values (two x, t_c on a grid of 100 steps) an end can sit
#: on a jump between them: HP-4L's 55% row ends at 0.00, −0.011 or −0.019 by the seed
BOOTSTRAP_REPLICATES = 20_000


def fit_exponent(x, y, *, low=None, high=None, n_boot: int = BOOTSTRAP_REPLICATES, level: float = 0.95,
                 seed: int = 0, scatter: bool = True) -> PowerLaw:
    """Fit y ≈ c·x^α by least squares on log median(y) against log x.

    Repeated x values are treated as seeds of one point: the fit uses the median per x and the
    interval is the percentile interval of a bootstrap that resamples seeds within each x (a
    stratified bootstrap), widened to the t-interval of the medians' scatter about the line where
    some x has fewer than THIN_SEEDS runs (with `scatter`). With one observation per x the
    interval is the least-squares t-interval (n − 2 degrees of freedom) of the points' scatter
    about the line (`scatter`; False leaves it out); with two such points there is no scatter
    to measure, and the interval is NaN. A y that is NaN or +inf is a run that never reached the target: it counts
    above every reached y in the medians (it is not dropped, which would leave the median of
    the runs that did), an x where at least half the runs never reached is left out of the fit
    (`PowerLaw.censored`), and a bootstrap replicate whose median is unreached somewhere has an
    infinite slope, so the interval may end at ±inf. Non-positive y are left out (no log).

    `low`, `high` (optional, one per observation): an interval that holds each y with high
    confidence, such as the Clopper–Pearson bracket of a searched m* (a missing end is y
    itself). With seeds, each bootstrap replicate also draws every reached y log-uniformly
    within its interval (an unreached one stays +inf). With one observation per x, the
    interval also spans every slope the brackets allow (each point anywhere within its bracket;
    `_bracket_range`): it always holds the estimate, points exactly on a line of the search's
    grid do not give a zero-width interval, and two bracketed points give an interval. That
    interval is conservative: searches simulated with a known exponent (5–7 x, 10 seeds, δ of
    0.1 and 1/3, 200–300 searches each) gave coverage 0.99–1.00 at level 0.95, where the
    t-interval alone gave 0.94–0.995.

    Example: m* bracketed to a factor 1.25 along s = 4 … 128.
        >>> s = np.array([4, 8, 16, 32, 64, 128]); m = 50 * s ** 0.75
        >>> [round(c, 2) for c in fit_exponent(s, m).ci]
        [0.75, 0.75]
        >>> [round(c, 2) for c in fit_exponent(s, m, low=m / 1.25, high=m).ci]
        [0.67, 0.83]
    """
    x, y, xs, low, high, censored, floored = _distinct(x, y, low, high)
    if xs.size < 2:
        raise PlotError(f"need two or more distinct x where at least half the runs reached the target to fit "
                        f"a power law, got {xs.size}")
    members = [np.flatnonzero(x == v) for v in xs]
    groups = [y[i] for i in members]
    log_medians = _medians(xs, groups)
    alpha, logc = _loglog_slope(*log_medians)
    bracketed = bool(np.any((high > low) & np.isfinite(y)))
    log_low, log_high = (np.log(np.where(b > 0, b, 1.0)) for b in (low, high))   # a run at 0 has no bracket
    if max(len(g) for g in groups) == 1:
        down, up = _bracket_range(np.log(x), np.log(y), log_low, log_high)
        spread = _scatter_halfwidth(np.log(x), np.log(y), level) if scatter else np.nan
        if not (bracketed or np.isfinite(spread)):
            return PowerLaw(alpha, float(np.exp(logc)), np.nan, np.nan, level, int(x.size), censored, floored)
        spread = spread if np.isfinite(spread) else 0.0
        return PowerLaw(alpha, float(np.exp(logc)), alpha + down - spread, alpha + up + spread, level, int(x.size),
                        censored, floored)
    rng = np.random.default_rng(seed)
    # an unreached run (+inf) stays unreached: no draw within a bracket that has no upper end
    reached = np.isfinite(y) & (y > 0)   # and a run at 0 stays at 0
    log_low, log_high = np.where(reached, log_low, 0.0), np.where(reached, log_high, 0.0)
    resampled = []   # per x: (replicate, seed), the seeds drawn with replacement
    for i in members:
        pick = rng.integers(0, len(i), (n_boot, len(i)))
        # one draw per run and replicate within its bracket, shared by its copies in the resample
        drawn = (np.exp(rng.uniform(log_low[i], log_high[i], (n_boot, len(i)))) if bracketed
                 else np.broadcast_to(y[i], (n_boot, len(i))))
        drawn = np.where(reached[i], drawn, y[i])
        resampled.append(np.take_along_axis(drawn, pick, axis=1))
    medians = np.stack([np.where(np.mean(r <= 0, axis=1) >= 0.5, 0.0, np.median(r, axis=1)) for r in resampled],
                       axis=1)   # half at 0: a median of 0, as `_distinct` floors such an x
    slopes = _loglog_slopes(np.log(xs), np.log(np.where(np.isinf(medians) | (medians <= 0), 1.0, medians)))
    # a replicate whose median at some x is unreached has no finite slope: +inf where those x lie
    # above the mean of log x (the line could rise without bound), -inf below, undefined if both;
    # a median of 0 pulls the other way
    side = np.sign(np.log(xs) - np.log(xs).mean())
    pulls = np.where(np.isinf(medians), side, np.where(medians <= 0, -side, 0.0))
    up, down = (pulls > 0).any(axis=1), (pulls < 0).any(axis=1)
    slopes = np.where(up & down, np.nan, np.where(up, np.inf, np.where(down, -np.inf, slopes)))
    slopes = slopes[~np.isnan(slopes)]
    tail = (1 - level) / 2
    lo, hi = _quantiles(slopes, [tail, 1 - tail]) if slopes.size else (np.nan, np.nan)
    if scatter and min(len(g) for g in groups) < THIN_SEEDS:
        # the bootstrap sees no spread at an x with one run and half of it with two: the medians'
        # scatter about the line measures the noise there
        spread = _scatter_halfwidth(*log_medians, level)
        if np.isfinite(spread):
            lo, hi = min(lo, alpha - spread), max(hi, alpha + spread)
    return PowerLaw(alpha, float(np.exp(logc)), float(lo), float(hi), level, int(x.size), censored, floored)


def _bracket_range(logx: np.ndarray, logy: np.ndarray, log_low: np.ndarray, log_high: np.ndarray) -> tuple[float, float]:
    """How far the least-squares slope through (logx, logy) moves down and up with every point
    anywhere within its bracket [log_low, log_high]: the slope is linear in logy, so each
    extreme puts every point at one end of its bracket."""
    dx = logx - logx.mean()
    weight = dx / (dx * dx).sum()
    to_low, to_high = weight * (log_low - logy), weight * (log_high - logy)
    return float(np.minimum(to_low, to_high).sum()), float(np.maximum(to_low, to_high).sum())


def _scatter_halfwidth(logx: np.ndarray, logy: np.ndarray, level: float) -> float:
    """Half-width of the t-interval at `level` of the least-squares slope through (logx, logy),
    with n − 2 degrees of freedom (the points' scatter about the line); NaN for two points."""
    if logx.size < 3:
        return np.nan
    from scipy import stats

    dx = logx - logx.mean()
    slope = float((dx * (logy - logy.mean())).sum() / (dx * dx).sum())
    residual = logy - logy.mean() - slope * dx
    se = np.sqrt((residual ** 2).sum() / (logx.size - 2) / (dx * dx).sum())
    return float(stats.t.ppf(0.5 + level / 2, logx.size - 2) * se)


def local_slopes(x, y, *, window: int = 3, low=None, high=None, n_boot: int = BOOTSTRAP_REPLICATES, level: float = 0.95,
                 seed: int = 0) -> pd.DataFrame:
    """The local exponent d log y / d log x: a power law fitted (`fit_exponent`) over every run of
    `window` consecutive distinct x values, sliding by one.

    Repeated x values are seeds; the interval of each local slope is the stratified bootstrap over
    them. A window's few points have too few degrees of freedom for a scatter interval, so where
    that is all there is, ci_low/ci_high are NaN: in a window with one observation per x, unless
    `low`/`high` bound its y (see `fit_exponent`: then the interval is the range of slopes those
    bounds allow), and in a window where some x has fewer than THIN_SEEDS runs, whose bootstrap
    would understate the spread (two runs per x at three x: 65% coverage at level 0.95). Returns one
    row per window: x (geometric mean of the window's x values), x_low, x_high, slope, ci_low,
    ci_high; empty when fewer than two distinct x are usable.

    Example: t = n² at n ≤ 20 and n³ beyond gives local slopes rising from 2 to 3.
        >>> local_slopes([10, 20, 40, 80], [100, 400, 3200, 25600], window=2)["slope"].round(2).tolist()
        [2.0, 3.0, 3.0]
    """
    x, y, xs, low, high, _, _ = _distinct(x, y, low, high)
    rows = []
    width = min(max(window, 2), xs.size)
    for i in range(xs.size - width + 1 if xs.size >= 2 else 0):
        inside = (x >= xs[i]) & (x <= xs[i + width - 1])
        fit = fit_exponent(x[inside], y[inside], low=low[inside], high=high[inside],
                           n_boot=n_boot, level=level, seed=seed, scatter=False)
        runs = np.unique(x[inside], return_counts=True)[1]
        if runs.max() > 1 and runs.min() < THIN_SEEDS:
            fit = replace(fit, ci_low=np.nan, ci_high=np.nan)
        rows.append({"x": float(np.exp(np.log(xs[i:i + width]).mean())), "x_low": xs[i],
                     "x_high": xs[i + width - 1], "slope": fit.alpha, "ci_low": fit.ci_low, "ci_high": fit.ci_high})
    return pd.DataFrame(rows, columns=["x", "x_low", "x_high", "slope", "ci_low", "ci_high"])


def upper_half_fit(x, y, **kwargs) -> PowerLaw:
    """`fit_exponent` over the upper half of the distinct x values (x ≥ the median one; at
    least the two largest), where a rate that is still bending is closest to its asymptote.
    Keyword arguments go to `fit_exponent`. The halves are of the reached x values; `censored`
    lists the left-out x (at least half their runs unreached) above the cut.

    Example: n ∈ {10, …, 60} fits over n ∈ {40, 50, 60}.
    """
    x, y, xs, low, high, censored, floored = _distinct(x, y, kwargs.pop("low", None), kwargs.pop("high", None))
    cut = xs[max(0, min(xs.size // 2, xs.size - 2))] if xs.size else 0.0
    upper = x >= cut
    fit = fit_exponent(x[upper], y[upper], low=low[upper], high=high[upper], **kwargs)
    return replace(fit, censored=tuple(v for v in censored if v >= cut), floored=tuple(v for v in floored if v >= cut))


#: the verdicts of `exponent_verdict`, in the order the exponent table explains them
VERDICTS = ("agrees", "unresolved", "pre-asymptotic", "disagrees", "not measured")


@dataclass(frozen=True)
class Verdict:
    """How a fitted exponent compares with its theorem: `verdict` (one of VERDICTS) and `reason`
    (why, in words; for 'disagrees' the reason the study declares, else a measured one)."""

    verdict: str
    reason: str


def _versus(theory: float, relation: str, fit: PowerLaw) -> str:
    """"theory ∈ [low, high]" with two decimals, or three where two would print an end equal to
    theory on the wrong side of it."""
    digits = 3 if f"{theory:.2f}" in (f"{fit.ci_low:.2f}", f"{fit.ci_high:.2f}") else 2
    return f"{theory:.{digits}f} {relation} [{fit.ci_low:.{digits}f}, {fit.ci_high:.{digits}f}]"


def exponent_verdict(fit: PowerLaw | None, theory: float, slopes: pd.DataFrame | None = None,
                     reason: str | None = None) -> Verdict:
    """Compare a fitted exponent with the theory exponent `theory`.

    - **agrees**: the fit's interval [ci_low, ci_high] covers `theory`, and not 0 (for a
      nonzero `theory`).
    - **unresolved**: the interval covers both `theory` and 0: these data cannot tell the
      theorem's scaling from none at all (too few x, or too much noise).
    - **pre-asymptotic**: it does not, but the local slopes (`local_slopes`, ordered by x) move
      towards `theory` as x grows: the last is closer to `theory` than the first, on the same
      side it moved from (rising towards a larger exponent, falling towards a smaller one), of
      the same sign as `theory` (a quantity still falling is not on its way to a rising rate),
      not past it (a last slope beyond `theory` whose interval excludes it has overshot), and,
      where the local slopes carry seed intervals, the first interval excludes the last slope
      (the change is larger than the seed noise).
    - **disagrees**: neither; the measured local slopes say how.
    - **not measured**: no fit (fewer than two x values reached the target), or a fit without an
      interval (two x values, one observation each, no brackets).

    The reason names the local slopes' range when they do not move monotonically, and ends with
    `reason`, what the study declares for this row, unless the row agrees.

    Example:
        >>> exponent_verdict(PowerLaw(1.6, 1.0, 1.5, 1.8, 0.95, 150), 2.0,
        ...                  pd.DataFrame({"slope": [1.3, 1.9], "ci_low": [1.1, 1.7], "ci_high": [1.5, 2.1]})).reason
        'local slope 1.30 → 1.90 towards 2.00; the last, [1.70, 2.10], covers it'
    """
    if fit is None or not np.isfinite(fit.alpha):
        return Verdict("not measured", reason or "fewer than two x values reached the target")
    if np.isnan(fit.ci_low) or np.isnan(fit.ci_high):    # an infinite end is an interval, open on that side
        measured = f"{fit.alpha:.2f} from two x values, no interval"
        return Verdict("not measured", f"{reason} ({measured})" if reason else measured)
    if fit.ci_low <= theory <= fit.ci_high:
        if theory != 0 and fit.ci_low <= 0 <= fit.ci_high:
            return Verdict("unresolved", _versus(theory, "∈", fit) + ", and so is 0")
        return Verdict("agrees", _versus(theory, "∈", fit))
    trend = ""
    if slopes is not None and len(slopes) >= 2:
        first, last = slopes.iloc[0], slopes.iloc[-1]
        steps = np.diff(slopes["slope"].to_numpy(dtype=float)).round(9)   # equal slopes differ by rounding
        trend = f"local slope {first['slope']:.2f} → {last['slope']:.2f}"
        if not (np.all(steps >= 0) or np.all(steps <= 0)):
            trend += f" (not monotone: {slopes['slope'].min():.2f} to {slopes['slope'].max():.2f})"
        covers = last["ci_low"] <= theory <= last["ci_high"]      # False when there are no intervals
        towards = np.sign(last["slope"] - first["slope"]) == np.sign(theory - first["slope"]) != 0
        closer = abs(last["slope"] - theory) < abs(first["slope"] - theory)
        past = np.sign(last["slope"] - theory) == -np.sign(first["slope"] - theory) != 0 and not covers
        same_sign = theory == 0 or last["slope"] * theory > 0
        noisy = first["ci_low"] <= last["slope"] <= first["ci_high"]      # False without an interval (NaN)
        if towards and past:
            trend += f" passes {theory:.2f}" + (f" (the last, [{last['ci_low']:.2f}, {last['ci_high']:.2f}])"
                                                if np.isfinite(last["ci_low"]) else "")
        elif towards and closer and same_sign and not noisy:
            found = f"{trend} towards {theory:.2f}" + (
                f"; the last, [{last['ci_low']:.2f}, {last['ci_high']:.2f}], covers it" if covers else "")
            return Verdict("pre-asymptotic", f"{found}; {reason}" if reason else found)
        elif towards and closer:
            trend += " (within the seed noise)" if noisy else " (still of the opposite sign)"
    measured = _versus(theory, "∉", fit) + (f"; {trend}" if trend else "")
    return Verdict("disagrees", f"{reason} ({measured})" if reason else measured)


def overlay(ax, x, y, label: str, *, anchor: tuple[float, float] | None = None, color="0.3"):
    """Draw a theory curve dashed, labelled with its theorem. Theory functions fix hidden constants
    to 1, so `anchor=(x0, y0)` rescales the curve to pass through that point (its slope is what
    the theorem says, not its level); x and y positive, x in any order. `y`: the curve's values
    at `x`, or the theory function itself (called on `x`, and on x0 for the anchor). Given
    values, the curve at x0 is interpolated on log-log axes, so x0 must lie within the range of
    `x` (a ValueError otherwise: pass the function to anchor the curve outside it)."""
    x = np.asarray(x, dtype=float)
    curve = y if callable(y) else None
    y = np.asarray(curve(x) if curve else y, dtype=float)
    if anchor is not None:
        x0, y0 = anchor
        if curve:
            at = float(np.asarray(curve(np.asarray([x0], dtype=float)), dtype=float).ravel()[0])
        elif x.min() <= x0 <= x.max():
            order = np.argsort(x)   # interpolated on log-log axes, where the curve is a line between its points
            at = float(np.exp(np.interp(np.log(x0), np.log(x[order]), np.log(y[order]))))
        else:
            raise PlotError(f"overlay anchor x0 = {x0:g} lies outside the curve's x range [{x.min():g}, "
                            f"{x.max():g}], where its values say nothing; anchor within it, or pass the theory "
                            "function as y")
        y = y * (y0 / at)
        label = f"{label} (scaled)"
    (line,) = ax.plot(x, y, "--", color=color, lw=1.2, label=label)
    return line


def scaling_plot(table: pd.DataFrame, x: str, y: str, by: str | None = None, ax=None, *,
                 xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
                 n_boot: int = BOOTSTRAP_REPLICATES):
    """Median and interquartile range of `y` per `x` (one row per run), log-log, one series per
    value of `by`, each with its fitted power law and exponent interval in the legend. A run with
    `y` NaN never reached the target: it counts above every reached run (`quantiles`), an x whose
    median run never reached is drawn as a lower bound (▲, its largest reached value) and left
    out of the fit, and the legend says how many runs never reached (and, given a `status`
    column, how many diverged, and how many failed: those are left out). A diverged run counts
    as never reached whatever its `y`: one that reached eps before it diverged keeps the step
    it did in steps_to_eps, but it did not learn (as `success_table` counts it). Runs at x ≤ 0
    (a noise level of 0, say) have no place on the log axis: left out, and counted in the legend.

    Returns (fig, ax, {series value: PowerLaw or None})."""
    fig, ax = figure() if ax is None else (ax.figure, ax)
    fits = {}
    series = [(None, table)] if by is None else list(table.groupby(by, sort=True))
    for i, (name, part) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        failed = int((part["status"] == "failed").sum()) if "status" in part else 0
        part = part[part["status"] != "failed"] if failed else part
        off_axis = ~(part[x].astype(float) > 0)   # no place on a log axis (nor in the fit)
        part = part[~off_axis]
        values = part[y].astype(float)
        if "status" in part:   # a diverged run did not learn, whatever it reached first
            values = values.where(part["status"] != "diverged", np.nan)
        zeros = int((values <= 0).sum())   # counted below every positive value, as the fit counts them
        values = values.where(~(values <= 0), 0.0)
        stats = pd.DataFrame.from_dict({at: quantiles(v, [0.25, 0.5, 0.75]) for at, v in values.groupby(part[x])},
                                       orient="index", columns=[0.25, 0.5, 0.75], dtype=float)
        low = values.le(0).groupby(part[x]).mean() >= 0.5   # half at 0: floored, as the fit floors it
        stats = stats[(stats[0.5] > 0) & ~low.reindex(stats.index, fill_value=False)]
        prefix = "" if by is None else f"{by}={name}: "
        try:
            fit = fit_exponent(part[x], values, n_boot=n_boot)
        except ValueError:
            fit = None
        fits[name] = fit
        missing = int(np.isinf(unreached(values)).sum())
        diverged = int((part["status"] == "diverged").sum()) if "status" in part else 0
        label = prefix + (fit.label() if fit else "too few points to fit") + (
            f"; {missing}/{len(values)} runs unreached" if missing else "") + (
            f"; {diverged} diverged" if diverged else "") + (
            f"; {failed} failed (left out)" if failed else "") + (
            f"; {int(off_axis.sum())} at {x} ≤ 0 (left out: log axis)" if off_axis.any() else "") + (
            f"; {zeros} runs at {y} = 0" if zeros else "")
        # an x whose median run never reached: a lower bound at its largest reached value (▲)
        above = stats[np.isinf(stats[0.5])].index
        lows = [np.nanmax(np.where(np.isfinite(v), v, np.nan)) if np.isfinite(v).any() else np.nan
                for v in (unreached(values[part.loc[values.index, x] == a]) for a in above)]
        if np.isfinite(lows).any():
            ax.plot(np.asarray(above, dtype=float), lows, "^", color=color, ms=5, mfc="none")
        stats = stats[np.isfinite(stats[0.5])]
        xs = stats.index.to_numpy(dtype=float)
        upper = np.where(np.isfinite(stats[0.75]), stats[0.75] - stats[0.5], 0.0)  # unreached: no upper bar
        ax.errorbar(xs, stats[0.5], yerr=[stats[0.5] - stats[0.25], upper], fmt="o",
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
