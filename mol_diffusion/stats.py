r"""Scaling-law fits and tests on results tables (statsmodels), as frozen result dataclasses.

Conventions: a results table has one row per fit (a seed of a cell). Fits use *seed means* per
x-value (so each x counts once), log-log OLS with heteroskedasticity-consistent HC3 errors
(MacKinnon & White, 1985), and a bootstrap that resamples whole seeds (replicates) with
replacement, recomputing the seed means and the fit. Every result reports the number of seeds.

- ``fit_power_law``: log y = log a + b log x  (slope b, HC3 CI, p-value for b = 0, bootstrap CI).
- ``fit_power_law_with_floor``: y = a x^b + c by non-linear least squares on log y, compared
  with the pure power law (c = 0) by AIC.
- ``interaction_test``: log y ~ log x * group in one OLS model (HC3): does the slope differ
  between two groups (e.g. methods)?
- ``paired_log_ratio_test``: paired across seeds, one-sided t-test that group A is below B.
- ``holm``: Holm's step-down adjustment of a family of p-values.
- ``x_to_reach``: the x at which a fitted power law reaches a target y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

__all__ = [
    "FloorFit",
    "InsufficientDataError",
    "InteractionTest",
    "LogSlopeFit",
    "PairedTest",
    "PowerLawFit",
    "fit_log_slope",
    "fit_power_law",
    "fit_power_law_with_floor",
    "holm",
    "interaction_test",
    "paired_difference_test",
    "paired_log_ratio_test",
    "x_to_reach",
]


class InsufficientDataError(ValueError):
    """The data cannot support the requested fit (too few points, a non-positive mean on a log
    scale). Claims report this as "not evaluable", never as a pass."""


def _frame(obj) -> pd.DataFrame:
    return pd.DataFrame([{k: v for k, v in asdict(obj).items() if np.isscalar(v) or v is None}])


def _check_xy(x, y, seeds, *, log_y: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate rows for a fit in log x (and, with ``log_y``, of log seed-mean y)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    seeds = np.zeros(len(x), dtype=int) if seeds is None else np.asarray(seeds)
    if x.ndim != 1 or x.shape != y.shape or seeds.shape != x.shape:
        raise ValueError(
            f"x, y and seeds must be 1-d of equal length, got {x.shape}, {y.shape}, {seeds.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    kind = "power-law fit" if log_y else "slope in log x"
    if (x <= 0).any():
        raise ValueError(f"x must be positive for a {'log-log fit' if log_y else kind}")
    if len(np.unique(x)) < 3:
        raise InsufficientDataError(
            f"a {kind} needs at least 3 distinct x values, got {len(np.unique(x))}"
        )
    if not log_y:
        return x, y, seeds
    # Rows may have y <= 0 (a difference of two risks for one seed); the seed means that enter
    # the log-log fit must be positive.
    mx, my = _seed_means(x, y)
    if (my <= 0).any():
        raise InsufficientDataError(
            f"the seed-mean y must be positive for a log-log fit; "
            f"got {my.min():.3g} at x={mx[my.argmin()]:g}"
        )
    return x, y, seeds


def _seed_means(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    table = pd.DataFrame({"x": x, "y": y}).groupby("x", sort=True)["y"].mean()
    return table.index.to_numpy(float), table.to_numpy(float)


def _bootstrap_slopes(x, y, seeds, units, n_boot: int, seed: int, log_y: bool = True) -> np.ndarray:
    """Slopes of the seed-mean fit of log y (or y, ``log_y=False``) on log x over whole-seed
    resamples, vectorized.

    Per (seed, x) sums and counts are resampled as rows, so a resample's mean at x is
    sum / count over the picked seeds, exactly the seed mean of the resampled rows. Resamples
    with fewer than 2 observed x values (or, on the log scale, a non-positive mean) are dropped.
    """
    xs = np.unique(x)
    u_idx = np.searchsorted(units, seeds)
    x_idx = np.searchsorted(xs, x)
    sums = np.zeros((len(units), len(xs)))
    counts = np.zeros((len(units), len(xs)))
    np.add.at(sums, (u_idx, x_idx), y)
    np.add.at(counts, (u_idx, x_idx), 1.0)
    picks = np.random.default_rng(seed).integers(0, len(units), size=(n_boot, len(units)))
    total, count = sums[picks].sum(1), counts[picks].sum(1)  # (n_boot, len(xs))
    observed = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        means = total / count
    keep = observed.sum(1) >= 2
    lx = np.broadcast_to(np.log(xs), means.shape)
    if log_y:
        keep &= ~((means <= 0) & observed).any(1)
        ly = np.where(observed & (means > 0), np.log(np.where(means > 0, means, 1.0)), 0.0)
    else:
        ly = np.where(observed, means, 0.0)
    w = observed.astype(float)
    mx = (w * lx).sum(1) / w.sum(1)
    my = (w * ly).sum(1) / w.sum(1)
    cov = (w * (lx - mx[:, None]) * (ly - my[:, None])).sum(1)
    var = (w * (lx - mx[:, None]) ** 2).sum(1)
    return (cov / var)[keep & (var > 0)]


def _ols_slope(lx: np.ndarray, ly: np.ndarray):
    return sm.OLS(ly, sm.add_constant(lx)).fit(cov_type="HC3", use_t=True)


@dataclass(frozen=True)
class PowerLawFit:
    """y ~ a x^b fitted on seed means.

    Attributes:
        slope: b. intercept: log a.
        ci_low, ci_high: 95% HC3 confidence interval of b.
        p_value: two-sided HC3 test of b = 0.
        boot_low, boot_high: 95% percentile interval of b from the seed bootstrap (NaN with
            fewer than 2 seeds). boot_dropped: fraction of resamples dropped because a seed
            mean was not positive.
        n_points: distinct x values. n_seeds: replicates.
    """

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    p_value: float
    boot_low: float
    boot_high: float
    boot_dropped: float
    n_points: int
    n_seeds: int

    def predict(self, x) -> np.ndarray:
        return np.exp(self.intercept) * np.asarray(x, dtype=float) ** self.slope

    def summary_frame(self) -> pd.DataFrame:
        return _frame(self)


def _seed_mean_slope(x, y, seeds, n_boot: int, seed: int, *, log_y: bool) -> dict:
    """The fields of ``PowerLawFit``: OLS of (log) seed-mean y on log x with HC3 errors, and
    the whole-seed bootstrap interval of the slope (with the share of dropped resamples)."""
    x, y, seeds = _check_xy(x, y, seeds, log_y=log_y)
    mx, my = _seed_means(x, y)
    res = _ols_slope(np.log(mx), np.log(my) if log_y else my)
    low, high = res.conf_int(alpha=0.05)[1]
    units = np.unique(seeds)
    boot_low = boot_high = math.nan
    dropped = 0.0
    if len(units) >= 2 and n_boot > 0:
        slopes = _bootstrap_slopes(x, y, seeds, units, n_boot, seed, log_y=log_y)
        dropped = 1 - len(slopes) / n_boot
        if len(slopes):
            boot_low, boot_high = np.percentile(slopes, [2.5, 97.5])
    return dict(
        slope=float(res.params[1]),
        intercept=float(res.params[0]),
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(res.pvalues[1]),
        boot_low=float(boot_low),
        boot_high=float(boot_high),
        boot_dropped=float(dropped),
        n_points=len(mx),
        n_seeds=len(units),
    )


def fit_power_law(x, y, seeds=None, *, n_boot: int = 2000, seed: int = 0) -> PowerLawFit:
    """Fit log(mean_seeds y) = log a + b log x with HC3 errors and a whole-seed bootstrap.

    Args:
        x: positive x per row (e.g. n or num_params).
        y: positive y per row (e.g. excess risk).
        seeds: replicate id per row; rows with the same seed form one bootstrap unit.
        n_boot: bootstrap resamples.
        seed: seeds the bootstrap.
    """
    return PowerLawFit(**_seed_mean_slope(x, y, seeds, n_boot, seed, log_y=True))


@dataclass(frozen=True)
class LogSlopeFit:
    """y ~ a + b log x fitted on seed means (y on its own scale, e.g. a PSNR difference in dB).

    Attributes:
        slope: b (change of y per e-fold of x). intercept: a.
        ci_low, ci_high: 95% HC3 confidence interval of b. p_value: two-sided HC3 test of b = 0.
        boot_low, boot_high: 95% percentile interval of b from the whole-seed bootstrap (NaN
            with fewer than 2 seeds).
        n_points: distinct x values. n_seeds: replicates.
    """

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    p_value: float
    boot_low: float
    boot_high: float
    n_points: int
    n_seeds: int

    def predict(self, x) -> np.ndarray:
        return self.intercept + self.slope * np.log(np.asarray(x, dtype=float))

    def summary_frame(self) -> pd.DataFrame:
        return _frame(self)


def fit_log_slope(x, y, seeds=None, *, n_boot: int = 2000, seed: int = 0) -> LogSlopeFit:
    """Fit mean_seeds y = a + b log x with HC3 errors and a whole-seed bootstrap.

    With y the paired difference of two methods per seed (method A - method B at each x), b is
    the interaction coefficient of log x and method in y ~ log x * method.

    Args:
        x: positive x per row (e.g. n). y: finite y per row, any sign.
        seeds: replicate id per row; rows with the same seed form one bootstrap unit.
        n_boot: bootstrap resamples. seed: seeds the bootstrap.
    """
    fit = _seed_mean_slope(x, y, seeds, n_boot, seed, log_y=False)
    fit.pop("boot_dropped")
    return LogSlopeFit(**fit)


@dataclass(frozen=True)
class FloorFit:
    """y ~ a x^b + c on seed means (least squares on log y).

    Attributes:
        a, b, c: fitted parameters (b < 0 for a decay; c >= 0 is the floor).
        c_low, c_high: approximate 95% CI of c, c +/- t se(c), t the 0.975 quantile with P - 3
            degrees of freedom, se(c) = c se(log c) from the Jacobian covariance (delta method,
            linear scale: it can include 0).
        aic_floor, aic_power: AIC of the floor model and of the pure power law.
        prefers_floor: AIC favours the floor by more than 2.
        n_points, n_seeds.
    """

    a: float
    b: float
    c: float
    c_low: float
    c_high: float
    aic_floor: float
    aic_power: float
    prefers_floor: bool
    n_points: int
    n_seeds: int

    def predict(self, x) -> np.ndarray:
        return self.a * np.asarray(x, dtype=float) ** self.b + self.c

    def summary_frame(self) -> pd.DataFrame:
        return _frame(self)


def _aic(resid: np.ndarray, k: int) -> float:
    n = len(resid)
    rss = max(float(resid @ resid), 1e-300)
    return n * math.log(rss / n) + 2 * k


def fit_power_law_with_floor(x, y, seeds=None) -> FloorFit:
    """Fit y = a x^b + c (c >= 0); compare with y = a x^b by AIC (Gaussian errors on log y)."""
    x, y, seeds = _check_xy(x, y, seeds)
    mx, my = _seed_means(x, y)
    if len(mx) < 4:
        raise InsufficientDataError(
            f"a power law with a floor needs at least 4 distinct x values, got {len(mx)}"
        )
    lx, ly = np.log(mx), np.log(my)
    power = np.polyfit(lx, ly, 1)
    aic_power = _aic(ly - np.polyval(power, lx), 2)

    def resid(theta):
        log_a, b, log_c = theta
        return np.logaddexp(log_a + b * lx, log_c) - ly

    best = None
    for frac in (0.01, 0.3, 0.9):  # floors starting at 1%, 30%, 90% of the smallest mean
        start = np.array([power[1], min(power[0], -0.1), math.log(frac * my.min())])
        sol = optimize.least_squares(resid, start, method="lm", max_nfev=5000)
        if best is None or sol.cost < best.cost:
            best = sol
    log_a, b, log_c = best.x
    dof = max(len(mx) - 3, 1)
    s2 = 2 * best.cost / dof
    try:
        cov = np.linalg.inv(best.jac.T @ best.jac) * s2
        se_log_c = math.sqrt(max(cov[2, 2], 0.0))
    except np.linalg.LinAlgError:
        se_log_c = math.inf
    c = math.exp(log_c)
    q = float(sps.t.ppf(0.975, dof))  # t quantile: a handful of seed means, 3 fitted parameters
    aic_floor = _aic(resid(best.x), 3)
    return FloorFit(
        a=float(math.exp(log_a)),
        b=float(b),
        c=float(c),
        c_low=float(c - q * c * se_log_c) if math.isfinite(se_log_c) else -math.inf,
        c_high=float(c + q * c * se_log_c) if math.isfinite(se_log_c) else math.inf,
        aic_floor=float(aic_floor),
        aic_power=float(aic_power),
        prefers_floor=bool(aic_floor < aic_power - 2),
        n_points=len(mx),
        n_seeds=len(np.unique(seeds)),
    )


@dataclass(frozen=True)
class InteractionTest:
    """Slope difference between two groups in log y ~ log x * group (HC3).

    Attributes:
        slope_a, slope_b: slopes of the two groups.
        difference: slope_b - slope_a (the interaction coefficient).
        ci_low, ci_high: its 95% CI. p_value: two-sided test of no difference.
        n_seeds.
    """

    slope_a: float
    slope_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_seeds: int

    def summary_frame(self) -> pd.DataFrame:
        return _frame(self)


def interaction_test(x, y, group, levels: Sequence[str], seeds=None) -> InteractionTest:
    """One OLS model on seed means: log y = a + b log x + c [g = B] + d log x [g = B].

    Args:
        x, y: positive values per row. group: label per row. levels: (A, B), A the baseline.
        seeds: replicate per row (reported only; seed means are taken within (group, x)).
    """
    if len(levels) != 2:
        raise ValueError(f"levels must name exactly two groups, got {levels!r}")
    group = np.asarray(group)
    keep = np.isin(group, levels)
    parts = []
    for level in levels:
        sel = keep & (group == level)
        if not sel.any():
            raise ValueError(f"group {level!r} has no rows")
        gx, gy, _ = _check_xy(np.asarray(x)[sel], np.asarray(y)[sel], None)
        mx, my = _seed_means(gx, gy)
        parts.append(
            pd.DataFrame({"lx": np.log(mx), "ly": np.log(my), "b": float(level == levels[1])})
        )
    df = pd.concat(parts, ignore_index=True)
    design = np.column_stack([np.ones(len(df)), df.lx, df.b, df.lx * df.b])
    res = sm.OLS(df.ly.to_numpy(), design).fit(cov_type="HC3", use_t=True)
    low, high = res.conf_int(alpha=0.05)[3]
    n_seeds = len(np.unique(np.asarray(seeds)[keep])) if seeds is not None else 1
    return InteractionTest(
        slope_a=float(res.params[1]),
        slope_b=float(res.params[1] + res.params[3]),
        difference=float(res.params[3]),
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(res.pvalues[3]),
        n_seeds=n_seeds,
    )


@dataclass(frozen=True)
class PairedTest:
    """One-sided paired t-test that per-seed differences d are above 0 on average.

    Attributes:
        mean_difference: mean of d (for ``paired_log_ratio_test``, d = log(B / A), > 0 when A is
            smaller).
        ci_low, ci_high: 95% t-interval of the mean difference.
        p_value: one-sided t-test p-value for mean d > 0.
        n_seeds.
    """

    mean_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_seeds: int

    def summary_frame(self) -> pd.DataFrame:
        return _frame(self)


def paired_log_ratio_test(a, b) -> PairedTest:
    """Paired across seeds: is A below B? ``a``, ``b``: one positive value per seed, aligned."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"a and b must be aligned 1-d arrays with >= 2 seeds, got {a.shape} and {b.shape}"
        )
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError("a and b must be positive")
    return paired_difference_test(np.log(b) - np.log(a))


def paired_difference_test(d) -> PairedTest:
    """One-sided paired t-test that the mean of the per-seed differences ``d`` is above 0.

    ``mean_difference`` is in d's own units (e.g. dB of PSNR gain).
    """
    d = np.asarray(d, dtype=float)
    if d.ndim != 1 or len(d) < 2 or not np.isfinite(d).all():
        raise ValueError(f"d must be a finite 1-d array with >= 2 seeds, got shape {d.shape}")
    n = len(d)
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    if se == 0:
        p = 0.0 if mean > 0 else 1.0
        half = 0.0
    else:
        p = float(sps.t.sf(mean / se, df=n - 1))
        half = float(sps.t.ppf(0.975, df=n - 1) * se)
    return PairedTest(mean, mean - half, mean + half, p, n)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, 1979), via statsmodels."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or len(p) == 0 or ((p < 0) | (p > 1)).any():
        raise ValueError(f"p_values must be a non-empty 1-d sequence in [0, 1], got {p_values!r}")
    return multipletests(p, method="holm")[1]


def x_to_reach(fit: PowerLawFit, target: float) -> float:
    """The x at which the fitted law a x^b equals ``target`` (needs a decaying fit, b < 0)."""
    if not target > 0:
        raise ValueError(f"target must be > 0, got {target}")
    if fit.slope >= 0:
        raise ValueError(
            f"the fitted slope {fit.slope:.3g} does not decay; no x reaches the target"
        )
    return float(math.exp((math.log(target) - fit.intercept) / fit.slope))
