"""Scaling-law statistics recover known truth; reference values from independent computations."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from mol_diffusion import stats

N = np.array([8, 16, 32, 64, 128, 256, 512], dtype=float)


def synthetic(exponent, scale, noise, seeds=6, floor=0.0, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    x = np.repeat(N, seeds)
    rep = np.tile(np.arange(seeds), len(N))
    y = (scale * x**exponent + floor) * np.exp(rng.normal(0, noise, len(x)))
    return x, y, rep


@given(
    exponent=st.floats(-2.0, 1.0),
    scale=st.floats(1e-3, 1e3),
    noise=st.floats(0.0, 0.3),
    rng_seed=st.integers(0, 1000),
)
def test_power_law_slope_recovers_the_exponent(exponent, scale, noise, rng_seed):
    x, y, rep = synthetic(exponent, scale, noise, rng_seed=rng_seed)
    fit = stats.fit_power_law(x, y, rep, n_boot=200)
    # Seed means of 6 log-normal draws: the slope error is ~ noise / sqrt(6) / sd(log x).
    tol = 6 * noise / math.sqrt(6) / np.log(N).std() + 1e-9
    assert abs(fit.slope - exponent) < tol
    lo, hi = min(fit.ci_low, fit.boot_low), max(fit.ci_high, fit.boot_high)
    assert lo - 1e-9 <= fit.slope <= hi + 1e-9
    assert fit.n_seeds == 6 and fit.n_points == len(N)


def test_power_law_slope_matches_scipy_linregress_without_noise_structure():
    # Reference: scipy.stats.linregress on the same seed means (OLS point estimate).
    x, y, rep = synthetic(-0.7, 3.0, 0.2)
    fit = stats.fit_power_law(x, y, rep, n_boot=10)
    means = np.array([y[x == v].mean() for v in N])
    ref = sps.linregress(np.log(N), np.log(means))
    assert fit.slope == pytest.approx(ref.slope, rel=1e-10)
    assert fit.intercept == pytest.approx(ref.intercept, rel=1e-10)


def test_floor_fit_finds_a_floor_only_when_there_is_one():
    x, y, rep = synthetic(-1.0, 2.0, 0.05, floor=0.01)
    with_floor = stats.fit_power_law_with_floor(x, y, rep)
    assert with_floor.prefers_floor and with_floor.c_low < 0.01 < with_floor.c_high
    assert with_floor.b == pytest.approx(-1.0, abs=0.2)
    x, y, rep = synthetic(-1.0, 2.0, 0.05)
    without = stats.fit_power_law_with_floor(x, y, rep)
    assert not without.prefers_floor


def test_interaction_recovers_the_slope_difference():
    xa, ya, ra = synthetic(-1.0, 2.0, 0.1, rng_seed=1)
    xb, yb, rb = synthetic(-0.4, 2.0, 0.1, rng_seed=2)
    res = stats.interaction_test(
        np.r_[xa, xb], np.r_[ya, yb], ["a"] * len(xa) + ["b"] * len(xb), ("a", "b"), np.r_[ra, rb]
    )
    assert res.ci_low < 0.6 < res.ci_high and res.p_value < 1e-3
    assert res.slope_a == pytest.approx(-1.0, abs=0.15) and res.slope_b == pytest.approx(
        -0.4, abs=0.15
    )


def test_paired_test_and_holm_reference_values():
    # Reference: scipy's one-sample t-test on the log-ratios (one-sided, greater).
    a = np.array([1.0, 1.2, 0.9, 1.1, 1.05])
    b = a * np.array([1.5, 1.3, 1.8, 1.2, 1.6])
    res = stats.paired_log_ratio_test(a, b)
    ref = sps.ttest_1samp(np.log(b / a), 0.0, alternative="greater")
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    # Holm (1979) by hand: sorted p (0.01, 0.03, 0.04) * (3, 2, 1), running max -> 0.03, 0.06, 0.06.
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


@given(slope=st.floats(-3, 3), rng_seed=st.integers(0, 10_000))
def test_log_slope_recovers_the_slope_of_a_signed_quantity(slope, rng_seed):
    # y = 1 + slope log n + noise crosses zero for most slopes: the fit must not need y > 0
    rng = np.random.default_rng(rng_seed)
    n = np.repeat([8, 16, 32, 64, 128, 256], 5)
    reps = np.tile(np.arange(5), 6)
    y = 1 + slope * np.log(n) + rng.normal(0, 0.05, len(n))
    fit = stats.fit_log_slope(n, y, reps, n_boot=200)
    assert fit.slope == pytest.approx(slope, abs=0.05)
    assert fit.ci_low <= fit.slope <= fit.ci_high and fit.boot_low <= fit.boot_high
    # Reference: scipy's linregress of the seed means on log n gives the same point estimate
    means = [y[n == v].mean() for v in np.unique(n)]
    ref = sps.linregress(np.log(np.unique(n)), means)
    assert fit.slope == pytest.approx(ref.slope, abs=1e-10)
    with pytest.raises(stats.InsufficientDataError, match="at least 3 distinct x"):
        stats.fit_log_slope([8, 16, 8], [1.0, 2.0, 0.5])


def test_paired_difference_test_matches_scipy():
    d = np.array([0.4, 1.1, -0.2, 0.9, 0.6])
    res = stats.paired_difference_test(d)
    ref = sps.ttest_1samp(d, 0.0, alternative="greater")
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.mean_difference == pytest.approx(d.mean())
    with pytest.raises(ValueError, match="d must be a finite 1-d array"):
        stats.paired_difference_test([1.0])


def test_x_to_reach_inverts_the_fit():
    x, y, rep = synthetic(-1.0, 2.0, 0.0)
    fit = stats.fit_power_law(x, y, rep, n_boot=0)
    assert stats.x_to_reach(fit, 2.0 / 100) == pytest.approx(100.0, rel=1e-6)
    with pytest.raises(ValueError, match="does not decay"):
        stats.x_to_reach(stats.fit_power_law(x, 1 / y, rep, n_boot=0), 1.0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="at least 3 distinct x"):
        stats.fit_power_law([1, 2], [1, 2])
    with pytest.raises(ValueError, match="x must be positive"):
        stats.fit_power_law([0, 1, 2], [1, 2, 3])
    with pytest.raises(stats.InsufficientDataError, match="seed-mean y must be positive"):
        stats.fit_power_law([1, 2, 3], [1, -2, 3])
    with pytest.raises(ValueError, match="p_values"):
        stats.holm([0.5, 1.5])
