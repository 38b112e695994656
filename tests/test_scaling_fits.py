"""Power-law fits on synthetic data with a known exponent: runs that never reached the target,
intervals open on one side, and what the upper-half fit reports as left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparselearn.plotting import PowerLaw, exponent_verdict, fit_exponent, local_slopes, upper_half_fit
from sparselearn.plotting.scaling import THIN_SEEDS


def test_seeds_with_brackets_keep_an_unreached_run_unreached():
    """t = n² over seeds, each bracketed to a factor 1.2; one run at the largest n never reached.
    The bootstrap draws reached runs within their brackets and keeps the unreached one at +inf."""
    n = np.repeat([10.0, 20.0, 40.0], 5)
    t = n ** 2
    t[-1] = np.nan
    fit = fit_exponent(n, t, low=t / 1.2, high=t * 1.2, n_boot=200)
    assert fit.alpha == 2.0 and fit.censored == ()
    assert 1.5 < fit.ci_low < 2.0 and fit.ci_high == np.inf   # some replicates' median at n = 40 is unreached
    # the same with the bracket columns also missing for that run, as a search writes them (NaN)
    low, high = t / 1.2, t * 1.2
    low[-1] = 1600.0                                # a lower end (the budget), no upper end
    same = fit_exponent(n, t, low=low, high=high, n_boot=200)
    assert same.ci == fit.ci


def test_an_interval_open_below_still_gives_a_verdict():
    """A falling t vs width whose smallest width sometimes never converges: the bootstrap's lower
    end is -inf, an interval that still excludes 0, not a fit without one."""
    rng = np.random.default_rng(3)
    width = np.repeat([1.0, 2, 4, 8, 16, 32], 10)
    t = 1e4 * width ** -0.5 * np.exp(0.3 * rng.standard_normal(width.size))
    t[:4] = np.nan                                  # 4 of the 10 runs at width 1 never reached
    fit = fit_exponent(width, t, n_boot=400)
    assert fit.ci_low == -np.inf and fit.ci_high < 0
    assert exponent_verdict(fit, 0.0).verdict == "disagrees"
    assert exponent_verdict(fit, -0.5).verdict == "agrees"
    # and symmetric with an interval open above
    assert exponent_verdict(PowerLaw(0.9, 1.0, 0.5, np.inf, 0.95, 30), 0.0).verdict == "disagrees"
    assert exponent_verdict(PowerLaw(0.9, 1.0, np.nan, np.nan, 0.95, 2), 0.0).verdict == "not measured"


def test_upper_half_fit_names_the_left_out_x_above_its_cut():
    """t = n² stopped at 4·10⁴: most runs at n = 320 never reach. The upper-half fit's label says
    that x was left out, as the whole fit's does; an x below the cut is not named."""
    rng = np.random.default_rng(1)
    n = np.repeat([10.0, 20, 40, 80, 160, 320], 9)
    t = n ** 2 * np.exp(0.2 * rng.standard_normal(n.size))
    capped = np.where(t <= 4e4, t, np.nan)
    whole, upper = fit_exponent(n, capped, n_boot=100), upper_half_fit(n, capped, n_boot=100)
    assert whole.censored == upper.censored == (320.0,)
    assert "left out" in upper.label()
    early = np.where(n == 10, np.nan, t)            # every run at the smallest n unreached
    assert fit_exponent(n, early, n_boot=100).censored == (10.0,)
    assert upper_half_fit(n, early, n_boot=100).censored == ()


def test_intervals_cover_a_known_exponent_at_about_their_level():
    """y = 3·x² with log-normal noise; each 95% interval covers 2 in 90–99.5% of the repeats:
    5 x values × 5 seeds (stratified bootstrap), 6 x values × 1 (t-interval), and runs too thin
    for the bootstrap alone — 2 seeds per x, or one x with a second run among single runs (the
    bootstrap covered 2 in 73% and 29% of draws before the medians' scatter widened it). The
    first case needs its 300 repeats: its coverage is ≈ 0.978, and 120 repeats passed 0.995 in
    about one seed in ten."""
    rng = np.random.default_rng(11)
    cases = (([5] * 5, 300, 300), ([1] * 6, 200, 0), ([2] * 5, 150, 200), ([1, 1, 1, 1, 2], 150, 200))
    for counts, repeats, n_boot in cases:
        x = np.repeat(10 * 2.0 ** np.arange(len(counts)), counts)
        covered = [fit.ci_low <= 2.0 <= fit.ci_high for fit in
                   (fit_exponent(x, 3 * x ** 2 * np.exp(0.5 * rng.standard_normal(x.size)), n_boot=n_boot, seed=r)
                    for r in range(repeats))]
        assert 0.90 <= np.mean(covered) <= 0.995, (counts, np.mean(covered))


def test_a_first_local_interval_open_below_is_an_interval_for_the_seed_noise_check():
    """A first local slope with interval (-inf, 1.8] that holds the last slope: the drift is within
    the seed noise, as with [0.5, 1.8]; -inf used to read as no interval, giving pre-asymptotic."""
    fit = PowerLaw(1.2, 1.0, 1.0, 1.5, 0.95, 30)
    verdicts = [exponent_verdict(fit, 2.0, pd.DataFrame({"slope": [1.0, 1.4], "ci_low": [low, 1.2],
                                                         "ci_high": [1.8, 1.6]}))
                for low in (0.5, -np.inf)]
    assert [v.verdict for v in verdicts] == ["disagrees"] * 2
    assert all("within the seed noise" in v.reason for v in verdicts)


def test_a_local_window_of_single_runs_has_no_interval_whatever_the_other_windows_have():
    """Seeds at x = 10, 20, 40 only: the first window bootstraps them; the windows with one run at
    some x have no interval (NaN), not a zero-width one at the slope, as a fit of those points alone."""
    x = np.array([10.0] * 5 + [20.0] * 5 + [40.0] * 5 + [80, 160])
    y = 3 * x ** 2 * np.exp(0.3 * np.random.default_rng(0).standard_normal(x.size))
    slopes = local_slopes(x, y, window=3, n_boot=200)
    assert np.isfinite(slopes[["ci_low", "ci_high"]].iloc[0]).all()
    assert slopes.iloc[0]["ci_low"] < slopes.iloc[0]["ci_high"]
    assert slopes[["ci_low", "ci_high"]].iloc[1:].isna().all().all()
    alone = local_slopes(x[-3:], y[-3:], window=3)
    assert alone[["ci_low", "ci_high"]].isna().all().all()
    assert np.isnan(fit_exponent([20, 40, 80], [400, 1700, 6000], scatter=False).ci_low)


def test_local_windows_with_too_few_seeds_have_no_interval():
    """Two or three runs per x: a bootstrap over them covers the slope far below its level (two
    runs at three x: about 65% at 0.95), so such a window has no interval; from THIN_SEEDS runs on
    it has one, and it covers the true slope about as often as its level says."""
    rng = np.random.default_rng(1)
    for seeds in (2, 3):
        x = np.repeat([10.0, 20, 40, 80], seeds)
        slopes = local_slopes(x, 3 * x ** 2 * np.exp(0.3 * rng.standard_normal(x.size)), n_boot=200)
        assert len(slopes) == 2 and slopes[["ci_low", "ci_high"]].isna().all().all()
    x = np.repeat([10.0, 20, 40], THIN_SEEDS)
    covered = 0
    for _ in range(100):
        window = local_slopes(x, 3 * x ** 2 * np.exp(0.3 * rng.standard_normal(x.size)), n_boot=400).iloc[0]
        covered += window["ci_low"] <= 2.0 <= window["ci_high"]
    assert covered >= 85


def test_runs_at_zero_count_below_the_others_in_the_fit_and_the_drawn_medians():
    """A fitted learner's exact recoveries have test error 0: they count in the medians below every
    positive value (dropping them drew the median of the failures alone: 0.53 where 6 of 8 runs
    were at 0), and an x whose median is 0 is left out of the fit, which says so."""
    from sparselearn.plotting.scaling import scaling_plot

    x = np.repeat([10.0, 20.0, 40.0, 80.0], 5)
    y = 2 * x ** 1.5 * np.exp(np.random.default_rng(0).normal(0, 0.1, x.size))
    y[[0, 1]] = 0.0                      # x = 10: 2 of 5 at 0, the median is the third smallest
    y[15:19] = 0.0                       # x = 80: 4 of 5 at 0, the median is 0
    fit = fit_exponent(x, y)
    medians = [np.median(y[x == v]) for v in (10, 20, 40)]
    assert fit.alpha == pytest.approx(np.polyfit(np.log([10, 20, 40]), np.log(medians), 1)[0])
    assert fit.floored == (80.0,) and "1 x with median 0 left out" in fit.label()
    _, ax, _ = scaling_plot(pd.DataFrame({"n": x, "test_error": y}), "n", "test_error", n_boot=50)
    drawn = ax.containers[0].lines[0].get_ydata()
    np.testing.assert_allclose(np.asarray(drawn, dtype=float), medians)
    assert "6 runs at test_error = 0" in ax.get_legend().get_texts()[0].get_text()


def test_an_x_with_half_its_runs_at_zero_is_floored_as_half_unreached_is_censored():
    """[0, 0, 80, 80] has median 40, a value no run had: such an x is left out of the fit."""
    x = np.repeat([8.0, 16.0, 32.0, 64.0], 4)
    y = 10 * x
    y[:2] = 0.0
    fit = fit_exponent(x, y)
    assert fit.floored == (8.0,) and fit.alpha == pytest.approx(1.0) and fit.ci == pytest.approx((1.0, 1.0))
