"""Sample complexity, measured: the smallest m (or number of steps) at which a learner
reaches test error ≤ ε with probability ≥ 1 − δ over seeds.

For `data.m` the search brackets m* by doubling from a start value, then bisects on log m
until the bracket is within a factor 1 + rtol; every candidate m trains all seeds as one
vmapped group, and the candidates of every grid point (e.g. several n) of a round are
trained side by side; a run succeeds when its final test error is ≤ ε. For `train.steps`
a run of budget t succeeds when it reaches test error ≤ ε at an evaluated step ≤ t
(`steps_to_eps` ≤ t: the budget of a run that stops at its first evaluated step within ε,
as `stop_at_eps` does; the t_c of the figures), so one training at the largest budget
answers every smaller one, and no retraining is needed unless the budget is too small
(then it doubles, for the points that have not reached the target). A run whose error
rises again after reaching ε still counts as having reached it.

Every run is stored like a sweep's, under results/<experiment>/search-<param>-<hash>/, with
run ids that depend neither on the candidates tried nor on the start value (the searched key
is left out of the hash), so an interrupted or repeated search, or one started elsewhere,
reuses what is stored. A run that fails (status failed) or diverges counts as a seed that did
not reach ε.

Both searches assume success is monotone in the searched value (more samples or steps never
hurt): they bracket and bisect, so where success comes, goes and comes back (sample-wise double
descent) the answer is the edge of the bracket they found, not the smallest successful value;
a dense `sparselearn run` over the values shows the whole curve.

Example:
    >>> cfg = sparselearn.config.load("configs/quickstart.yaml")
    >>> res = sample_complexity(cfg, eps=0.05, delta=0.1)      # doctest: +SKIP
    >>> res.table()          # one row per grid point: m*, its confidence bracket, tries  # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sparselearn.config import Experiment, config_hash, grid_points, with_point
from sparselearn.contracts import kind_of
from sparselearn.errors import ConfigError
from sparselearn.sweeps.grid import Run, run_id
from sparselearn.sweeps.runner import execute
from sparselearn.schema import within_eps
from sparselearn.train.spec import SEARCHABLE as PARAMS
from sparselearn.store import Store


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for a success probability."""
    alpha = 1 - confidence
    lo = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    hi = 1.0 if successes == trials else stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
    return float(lo), float(hi)


def _needed(trials: int, target: float) -> int:
    """The fewest successes of `trials` with a success rate ≥ `target`."""
    # a small tolerance: 1 − 0.7 is 0.30000000000000004, yet 3 of 10 reach it
    return math.ceil(target * trials - 1e-9)


@dataclass
class PointSearch:
    """The search state of one grid point: success counts per tried value."""

    point: tuple[tuple[str, Any], ...]
    tried: dict[int, tuple[int, int]] = field(default_factory=dict)  # value → (successes, trials)
    censored: bool = False  # no success up to the largest allowed value
    failed: int = 0  # runs counted in `tried` whose status is failed (trials without success)
    diverged: int = 0  # runs counted in `tried` that diverged (train.steps: some may have reached eps first)
    floor: int | None = None  # the smallest value the search may try here (data.m), or evaluated (train.steps)

    def succeeds(self, value: int, target: float) -> bool:
        s, n = self.tried[value]
        return n > 0 and s >= _needed(n, target)

    def bracket(self, target: float) -> tuple[int | None, int | None]:
        """(largest failing value below the smallest success, smallest success)."""
        ok = sorted(v for v in self.tried if self.succeeds(v, target))
        hi = ok[0] if ok else None
        fails = [v for v in self.tried if not self.succeeds(v, target) and (hi is None or v < hi)]
        return (max(fails) if fails else None), hi


def _next_value(ps: PointSearch, target: float, start: int, lo_limit: int, hi_limit: int, rtol: float) -> int | None:
    lo, hi = ps.bracket(target)
    if hi is None:
        if lo is None:
            return start
        if lo >= hi_limit:
            ps.censored = True
            return None
        return min(2 * lo, hi_limit)
    if lo is None:
        return None if hi <= lo_limit else max(hi // 2, lo_limit)
    if hi / lo <= 1 + rtol or hi - lo <= 1:
        return None
    return int(round(math.sqrt(lo * hi)))


@dataclass(frozen=True)
class SearchResult:
    """What `sample_complexity` found, per grid point."""

    param: str
    eps: float
    delta: float
    confidence: float
    points: tuple[PointSearch, ...]
    path: str
    runs: pd.DataFrame = field(repr=False, compare=False)

    def table(self) -> pd.DataFrame:
        """One row per grid point: the estimate, its bracket, the success rate there, tries.

        `estimate` is the smallest tried value whose success rate is ≥ 1 − δ, with the next
        smaller tried value failing (`below`); where it is the smallest value the search may try
        (min_value, the grid point's train.batch, or the first evaluated step) it is only an
        upper bound: `floored` is true, m* ≤ estimate (a search stopped by max_rounds before
        halving to a failure leaves an upper bound too: below null, floored false).
        `ci_low`/`ci_high` bracket m* as ci_low < m* ≤ ci_high,
        using the exact binomial (Clopper–Pearson) interval of each tried value: ci_high is the
        smallest tried value whose interval lies above 1 − δ, ci_low the largest tried value
        below ci_high (any, where ci_high is null) whose interval lies below 1 − δ (each null
        when no tried value is that sure). `seeds` and `success_rate` are those at the
        estimate; `failed` and `diverged` count the point's runs with those statuses, each a
        seed that did not succeed (searching train.steps, a run that reached eps before it
        diverged did; a point whose runs all diverged is censored for its step size, not for
        its sample size).
        """
        target = 1 - self.delta
        rows = []
        for ps in self.points:
            lo, hi = ps.bracket(target)
            cis = {v: clopper_pearson(*ps.tried[v], self.confidence) for v in sorted(ps.tried)}
            sure = [v for v, (lo_ci, _) in cis.items() if lo_ci >= target]
            ci_high = min(sure) if sure else None
            below = [v for v, (_, u) in cis.items() if u < target and (ci_high is None or v < ci_high)]
            s, n = ps.tried[hi] if hi is not None else (None, max((t for _, t in ps.tried.values()), default=0))
            rows.append({**{k: v for k, v in ps.point}, "estimate": hi, "censored": ps.censored,
                         "floored": hi is not None and lo is None and ps.floor is not None and hi <= ps.floor,
                         "below": lo, "ci_low": max(below) if below else None, "ci_high": ci_high,
                         "success_rate": s / n if s is not None and n else None, "seeds": n,
                         "failed": ps.failed, "diverged": ps.diverged, "tried": len(ps.tried),
                         "values": sorted(ps.tried)})
        return pd.DataFrame(rows)

    def estimates(self) -> pd.DataFrame:
        """`table()` as numbers to fit: the grid-point columns, then m_star, ci_low and
        ci_high as floats (NaN where unknown, e.g. m_star of a censored point), censored and
        floored as bool (a floored m_star is an upper bound: leave it out of a fit, as a
        censored one is a lower bound). One row per grid point."""
        t = self.table()
        keys = [k for k, _ in self.points[0].point] if self.points else []
        out = t[keys].copy()
        out["m_star"] = t["estimate"].astype(float)
        for col in ("ci_low", "ci_high"):
            out[col] = t[col].astype(float)
        out["censored"] = t["censored"].astype(bool)
        out["floored"] = t["floored"].astype(bool)
        return out


def _validate(exp: Experiment, param: str, eps: float, delta: float, settings: dict[str, Any]) -> None:
    for key, value in settings.items():   # the command line checks its flags; Python callers too
        if key == "confidence":
            ok, want = 0 < value < 1, "in (0, 1)"
        elif key in ("rtol", "max_rounds"):
            ok, want = value >= 0, "≥ 0"
        else:
            ok, want = value is None or value >= 1, "null or ≥ 1"
        if not ok:   # nan fails every comparison, so it lands here too
            raise ConfigError(f"must be {want}, got {value}", key=key)
    if param not in PARAMS:
        raise ConfigError(f"can search over {', '.join(PARAMS)}, not {param!r}", key="--param")
    if not 0 <= eps <= 1:
        raise ConfigError(f"must be in [0, 1], got {eps}", key="--eps")
    if not 0 < delta < 1:
        raise ConfigError(f"must be in (0, 1), got {delta}", key="--delta")
    grid = dict(exp.sweep.grid)
    if "train.eps" in grid:
        raise ConfigError("a search judges every grid point at one eps (--eps, default train.eps): "
                          "search each eps on its own", key="sweep.grid.train.eps")
    if param == "data.m" and exp.data.online:
        raise ConfigError("searching over data.m needs data.online: false", key="data.online")
    if param == "data.m" and True in grid.get("data.online", ()):
        raise ConfigError("searching over data.m needs data.online: false at every grid point "
                          "(online runs never read m)", key="sweep.grid.data.online")
    if param == "train.steps" and not kind_of(exp.learner).trained:
        raise ConfigError(f"learner {exp.learner.name} has no training steps", key="--param")
    rewinds = {exp.train.rewind, *grid.get("train.rewind", ())} - {None}
    picks = {exp.train.rewind_pick, *grid.get("train.rewind_pick", ())}
    if param == "train.steps" and rewinds and "largest" in picks:
        # the kept units come from the full network trained for the whole budget, so a run's
        # curve at step t is not that of a t-step run
        raise ConfigError("searching over train.steps needs lottery tickets picked without training "
                          "(train.rewind_pick: random)", key="train.rewind")


@dataclass(frozen=True)
class _Store:
    """Where a search's runs live: the store, the hash their ids start from, and whether the
    ids hash the grid point in its given order (stores written before ids sorted it)."""

    store: Store
    hash: str
    ordered: bool = False

    def run_id(self, point, seed: int) -> str:
        return run_id(self.hash, point, seed, ordered=self.ordered)


def _store(out: str | Path, base: Experiment, param: str) -> _Store:
    """The search's store; an existing one written when the searched key's value was part of
    the hash (and so of its run ids) is kept while no store of the present form exists."""
    root = Path(out) / base.experiment
    h = config_hash(base, leave_out=param)  # every run sets the searched key: searches from any start share runs
    earlier = config_hash(base)
    folder, old = root / f"search-{param}-{h}", root / f"search-{param}-{earlier}"
    if not folder.exists() and old.exists():
        return _Store(Store.at(old, base), earlier, ordered=True)
    return _Store(Store.at(folder, base), h)


def sample_complexity(exp: Experiment, eps: float | None = None, delta: float = 0.1, *, param: str = "data.m",
                      out: str | Path = "results", start: int | None = None, min_value: int | None = None,
                      max_value: int | None = None, rtol: float = 0.1, confidence: float = 0.95,
                      progress: bool = True, max_rounds: int = 40, retry_failed: bool = False) -> SearchResult:
    """Smallest m (param "data.m") or number of steps (param "train.steps") with
    P[test error ≤ eps] ≥ 1 − delta over the config's seeds, for every point of its grid
    (the searched key is removed from the grid; a grid over train.eps is refused). eps
    defaults to train.eps. For data.m the test error is the run's final one; for
    train.steps a run of t steps succeeds when it reached eps at an evaluated step ≤ t
    (steps_to_eps ≤ t), also where it diverged later, so the answer does not depend on the
    budget or on train.stop_at_eps. Otherwise a failed or diverged run counts as a seed that
    did not reach eps; stored failed and diverged runs are reused unless `retry_failed`.

    data.m: start (default data.m), doubling/halving within [min_value, max_value]
    (defaults: 1 and 2^18 = 262144 — raise it with care: every seed holds a dataset of that
    many rows), narrowed per grid point to the m its config accepts (at least its train.batch;
    at most what a fitted learner's memory or features allow, with a warning, the point
    censored there if not reached), then bisection on log m to a factor 1 + rtol.
    train.steps: trained once at start (default train.steps; doubling up to max_value, default
    16× the larger of start and min_value, for the points that have not reached the target);
    the evaluated steps from min_value on are tried, resolution train.eval_every. Not for
    lottery tickets picked by their trained weights (train.rewind with rewind_pick largest):
    their curves depend on the budget.
    A search not done after max_rounds rounds of the data.m search stops with a warning.
    The config's value of the searched key sets only the start: runs are shared with searches
    started from other values.
    """
    eps = exp.train.eps if eps is None else eps
    _validate(exp, param, eps, delta, {"confidence": confidence, "rtol": rtol, "max_rounds": max_rounds,
                                       "start": start, "min_value": min_value, "max_value": max_value})
    grid = tuple((k, v) for k, v in exp.sweep.grid if k != param)
    base = replace(exp, sweep=replace(exp.sweep, grid=grid))
    base = replace(base, train=replace(base.train, eps=eps))
    where = _store(out, base, param)
    points = [PointSearch(p) for p in grid_points(base)]
    target = 1 - delta
    if param == "data.m":
        _search_m(base, where, points, target, eps, start, min_value, max_value, rtol, progress, max_rounds,
                  retry_failed)
    else:
        _search_steps(base, where, points, target, start, min_value, max_value, progress, retry_failed)
    runs = where.store.runs()
    return SearchResult(param, eps, delta, confidence, tuple(points), str(where.store.path), runs)


def _train(base: Experiment, where: _Store, candidates, progress: bool,
           retry_failed: bool = False) -> dict[tuple, pd.DataFrame]:
    """Train every (grid point, extra) candidate's seeds not yet stored (or stored as failed or
    diverged, with `retry_failed`); return each candidate's stored rows (one per seed), by
    candidate."""
    runs, ids = [], {}
    for point, extra in candidates:
        full = point + extra
        exp = with_point(base, full)
        mine = [Run(where.run_id(full, seed), where.hash, full, seed, exp) for seed in base.sweep.seeds]
        ids[(point, extra)] = {r.run_id for r in mine}
        runs += mine
    df, _ = execute(where.store, runs, base.executor, progress=progress, desc=f"{base.experiment} search",
                    round_m=True, retry_failed=retry_failed)
    return {c: df[df["run_id"].isin(i)] for c, i in ids.items()}


def _counts(rows: pd.DataFrame, reached: pd.Series) -> tuple[int, int]:
    """(successes, trials) of one candidate's rows: every row is a trial, a success one whose
    status is ok and that `reached` the target (failed or diverged runs never are)."""
    ok = rows["status"] == "ok"
    return int((ok & reached).sum()), len(rows)


def _count(rows: pd.DataFrame, status: str) -> int:
    """How many of `rows` have `status` (failed, diverged): trials without success."""
    return int((rows["status"] == status).sum())


def _refusal(base: Experiment, point, m: int) -> ConfigError | None:
    """The ConfigError of the grid point's config at data.m = m, None if it accepts m."""
    try:
        with_point(base, point + (("data.m", m),))
    except ConfigError as e:
        return e
    return None


def _m_range(base: Experiment, point, lo: int, hi: int) -> tuple[int, int]:
    """The smallest and the largest m in [lo, hi] that the grid point's config accepts: m is at
    least its train.batch, and a fitted learner caps it (learner.max_memory_gb, or its number of
    features); warns when the cap is below `hi`. ConfigError when it accepts none of them."""
    def first(lo_, hi_, ok):  # the smallest m in [lo_, hi_] with ok(m), ok monotone; hi_ + 1 if none
        while lo_ <= hi_:
            mid = (lo_ + hi_) // 2
            lo_, hi_ = (lo_, mid - 1) if ok(mid) else (mid + 1, hi_)
        return lo_
    if (error := _refusal(base, point, lo)) is not None:
        smallest, lo = lo, first(lo + 1, hi, lambda m: _refusal(base, point, m) is None)
        if lo > hi:
            top = _refusal(base, point, hi)
            at_top = "" if top.key == error.key else f"; at data.m = {hi}: {top.message}"
            raise ConfigError(f"no data.m from the search's smallest, {smallest} (min_value), to its largest, "
                              f"{hi} (max_value), is accepted: at data.m = {smallest}: {error.message}{at_top}",
                              key=error.key)
    if (error := _refusal(base, point, hi)) is not None:
        hi = first(lo + 1, hi, lambda m: _refusal(base, point, m) is not None) - 1
        warnings.warn(f"{error.key}: the search stops at data.m = {hi}, the largest this grid point's config "
                      f"accepts ({error.message}); not reached there, the point is censored", stacklevel=4)
    return lo, hi


def _search_m(base, where, points, target, eps, start, min_value, max_value, rtol, progress, max_rounds,
              retry_failed):
    lo_limit, hi_limit = min_value or 1, max_value or 2**18
    _check_limits(lo_limit, hi_limit)
    limits = {}
    for ps in points:  # a loop, not a comprehension: the warnings' stacklevel counts frames
        limits[ps.point] = _m_range(base, ps.point, lo_limit, hi_limit)
        ps.floor = limits[ps.point][0]
    for round_ in range(max_rounds + 1):
        wanted = []
        for ps in points:
            lo, hi = limits[ps.point]
            value = _next_value(ps, target, int(np.clip(start or base.data.m, lo, hi)), lo, hi, rtol)
            if value is not None:
                wanted.append((ps, (("data.m", value),)))
        if not wanted:
            return
        if round_ == max_rounds:
            warnings.warn(f"the search stopped after max_rounds = {max_rounds} rounds with {len(wanted)} grid "
                          f"point(s) not bracketed to rtol = {rtol}", stacklevel=3)
            return
        rows = _train(base, where, [(ps.point, extra) for ps, extra in wanted], progress, retry_failed)
        for ps, extra in wanted:
            got = rows[(ps.point, extra)]
            ps.tried[extra[0][1]] = _counts(got, within_eps(got["test_error"], eps))
            ps.failed += _count(got, "failed")
            ps.diverged += _count(got, "diverged")


def _check_limits(lo_limit: int, hi_limit: int) -> None:
    """ConfigError (key max_value) when the search's limits cross."""
    if lo_limit > hi_limit:
        raise ConfigError(f"max_value {hi_limit} is below the smallest value searched, {lo_limit} (min_value, "
                          "by default 1)", key="max_value")


def _search_steps(base, where, points, target, start, min_value, max_value, progress, retry_failed):
    first = min_value or 1
    limit = max_value or 16 * max(start or base.train.steps, first)
    _check_limits(first, limit)
    steps = int(np.clip(start or base.train.steps, first, limit))
    if steps < base.train.eval_every:   # no step would be evaluated
        cause = "max_value" if steps < (start or base.train.steps) else "start"
        raise ConfigError(f"the search's first budget, {steps} steps ({cause}), is below train.eval_every = "
                          f"{base.train.eval_every}: raise {cause} or lower train.eval_every", key=cause)
    todo = list(points)
    while True:
        extra = (("train.steps", steps),)
        rows = _train(base, where, [(ps.point, extra) for ps in todo], progress, retry_failed)
        curves = where.store.curves()
        for ps in todo:
            got = rows[(ps.point, extra)]
            # a run that reached eps and diverged later has reached it (with train.stop_at_eps it
            # would have stopped there): the step search counts first hitting times, whatever the budget
            reached = got["steps_to_eps"].astype("float64").to_numpy()
            evals = np.sort(curves.loc[curves["run_id"].isin(got["run_id"]), "step"].unique())
            ps.tried = {int(t): (int((reached <= t).sum()), len(got)) for t in evals if t > 0 and t >= first}
            ps.floor = min(ps.tried, default=None)
            ps.failed, ps.diverged = _count(got, "failed"), _count(got, "diverged")
            ps.censored = not any(ps.succeeds(t, target) for t in ps.tried)
        # a point that reached the target keeps its budget; only the others train longer
        todo = [ps for ps in todo if ps.censored]
        if not todo or steps >= limit:
            return
        steps = min(2 * steps, limit)
