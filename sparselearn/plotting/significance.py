"""Two-sample tests for runs that reach a criterion within a step cap or do not.

Each run gives the step at which it first reached the criterion (t_c, `steps_to_eps`) or NaN
when it did not within the cap: a right-censored time, censored at the cap. `compare_reach`
tests two arms of such runs two ways: Fisher's exact test on the 2×2 table reached / not
reached (ignores how fast), and the log-rank test on the censored times (uses how fast, and
counts every unreached run as still waiting at the cap). Both are two-sided.

Example:
    >>> c = compare_reach([500, 800, np.nan], [np.nan, np.nan, 2000], cap=3000)
    >>> c.reached, c.runs, round(c.fisher_p, 2)
    ((2, 1), (3, 3), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class ReachComparison:
    """Arms a and b: runs and reached counts, the Fisher exact and log-rank p-values (two-sided;
    NaN where a test is undefined, e.g. log-rank when no run of either arm reached)."""

    reached: tuple[int, int]
    runs: tuple[int, int]
    fisher_p: float
    logrank_p: float

    def label(self, a: str = "a", b: str = "b") -> str:
        """One line for a panel, e.g. 'a 21/30 vs b 6/30: Fisher p = 2.1e-04, log-rank p = 5.0e-05'."""
        return (f"{a} {self.reached[0]}/{self.runs[0]} vs {b} {self.reached[1]}/{self.runs[1]}: "
                f"Fisher p = {_p(self.fisher_p)}, log-rank p = {_p(self.logrank_p)}")


def _p(p: float) -> str:
    return "n/a" if p != p else f"{p:.2g}" if p >= 0.01 else f"{p:.1e}"


def _censored(steps, cap: float) -> stats.CensoredData:
    t = np.asarray(steps, dtype=float)
    # NaN and +inf are both "not reached": censored at the cap, as Fisher's table counts them
    return stats.CensoredData(uncensored=t[np.isfinite(t)], right=np.full(int((~np.isfinite(t)).sum()), float(cap)))


def compare_reach(steps_a, steps_b, cap: float) -> ReachComparison:
    """Compare two arms of runs by their steps to reach a criterion (1-D arrays of steps in
    [0, cap], NaN or +inf = not reached within `cap` steps, the common step cap of both arms; a
    negative step, such as the training loop's raw -1 for not reached, is refused).

    Example:
        >>> round(compare_reach([1, 2, 3, 4], [np.nan] * 4, cap=10).fisher_p, 4)    # 4/4 vs 0/4: 2/70
        0.0286
    """
    a, b = (np.asarray(s, dtype=float).ravel() for s in (steps_a, steps_b))
    if a.size == 0 or b.size == 0:
        raise ValueError("each arm needs at least one run")
    if not np.isfinite(cap):
        raise ValueError(f"the cap must be a finite number of steps, got {cap}")
    for name, t in (("a", a), ("b", b)):
        if np.any(t < 0) or np.any(t[np.isfinite(t)] > cap):
            raise ValueError(f"arm {name}: a reach step exceeds the cap {cap} or is negative "
                             "(NaN or +inf mean not reached)")
    hits = (int(np.isfinite(a).sum()), int(np.isfinite(b).sum()))
    table = [[hits[0], a.size - hits[0]], [hits[1], b.size - hits[1]]]
    fisher = float(stats.fisher_exact(table).pvalue)
    if sum(hits) == 0:
        logrank = float("nan")
    else:
        with np.errstate(invalid="ignore", divide="ignore"):  # no variance (all tied): NaN
            logrank = float(stats.logrank(_censored(a, cap), _censored(b, cap)).pvalue)
    return ReachComparison(hits, (a.size, b.size), fisher, logrank)


__all__ = ["ReachComparison", "compare_reach"]
