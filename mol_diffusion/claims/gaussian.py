"""Claim rules of the Gaussian kind: sample_complexity, neural_generalist, unlabeled_scaling,
pareto_front, misspecified (tables of ``kinds.gaussian``: exact excess risks).

Confidence intervals of scaling exponents are the *union* of the HC3 interval on seed means and
the whole-seed bootstrap interval (``stats.fit_power_law``): common random numbers make seed
means smooth in n, which can make the HC3 interval alone too narrow.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mol_diffusion import stats
from mol_diffusion.claims.common import holm_family, select_rows, union_ci
from mol_diffusion.claims.registry import register
from mol_diffusion.objectives import hypervolume

__all__ = ["excess_over_oracle"]

# ---------------------------------------------------------------- thresholds (fixed in advance)
CAPACITY_FREE_MAX_SLOPE = 0.15  # two-stage: CI of d log risk / d log p_gen entirely below this
CAPACITY_COST_MIN_SLOPE = 0.5  # labeled-only: CI entirely above this
ADVANTAGE_ALPHA = 0.05  # Holm-adjusted one-sided paired tests, every capacity
PAIRED_RATE_RANGE = (-1.25, -0.75)  # CI of the n-exponent of (two-stage - oracle) inside this
PARETO_CLOSE = 0.9  # hypervolume ratio to the oracle: two-stage CI low >= 0.9 ...
PARETO_FAR = 0.9  # ... and labeled-only CI high < 0.9
FLOOR_AIC_MARGIN = 2.0  # the floor model must beat the pure power law by this much AIC
PARETO_BOOT = 1000
PARETO_REFERENCE_FACTOR = 2.0  # reference point: 2 x the oracle's worst per-task risk (log scale)
MISSPECIFIED_CONTROL = "sample_complexity"  # the well-specified runs the floor is compared with


def _small_n_rows(table: pd.DataFrame, method: str) -> pd.DataFrame:
    sel = table[(table.method == method) & (table.weights_index == 0) & (table.m == table.m.max())]
    return sel[sel.n == sel.n.min()]


def _capacity_slope(table: pd.DataFrame, method: str) -> tuple[stats.PowerLawFit, int]:
    rows = _small_n_rows(table, method)
    fit = stats.fit_power_law(rows.num_params, rows.risk, rows.replicate)
    return fit, int(rows.n.iloc[0])


def excess_over_oracle(
    table: pd.DataFrame, capacity: int, method: str = "two_stage"
) -> pd.DataFrame:
    """method risk - oracle risk, paired by (replicate, m, capacity, weights)."""
    keys = ["replicate", "m", "capacity", "weights_index"]
    base = select_rows(table, method="oracle", capacity=capacity)[[*keys, "risk"]]
    rows = select_rows(table, method=method, capacity=capacity)
    merged = rows.merge(base, on=keys, suffixes=("", "_oracle"))
    return merged.assign(excess=merged.risk - merged.risk_oracle)


# ---------------------------------------------------------------- capacity (random features)
def _excess_slope_detail(table: pd.DataFrame, method: str) -> str:
    """Descriptive: slope in p_gen of (method - oracle) at the smallest n, when an oracle ran.

    The total risk mixes the class's approximation error (falling with p_gen, shared with the
    oracle) with the estimation cost the capacity claims are about; this isolates the latter.
    """
    if not (table.method == "oracle").any():
        return ""
    rows = _small_n_rows(table, method)
    orc = table[
        (table.method == "oracle") & (table.m == table.m.max()) & (table.weights_index == 0)
    ]
    merged = rows.merge(
        orc[["replicate", "capacity", "risk"]], on=["replicate", "capacity"], suffixes=("", "_o")
    )
    gap = merged.assign(gap=merged.risk - merged.risk_o)
    try:
        g = stats.fit_power_law(gap.num_params, gap.gap, gap.replicate)
    except stats.InsufficientDataError as err:
        return f"; descriptive slope of ({method} - oracle) in p_gen not available ({err})"
    low, high = union_ci(g)
    slope = f"{g.slope:.3f} [{low:.3f}, {high:.3f}]"
    return f"; descriptive: slope of ({method} - oracle) in p_gen {slope}"


def _capacity_verdict(table: pd.DataFrame, method: str, passes) -> dict:
    """Slope of risk in p_gen at the smallest n for ``method``; ``passes(low, high)`` decides."""
    fit, n = _capacity_slope(table, method)
    low, high = union_ci(fit)
    return dict(
        statistic=fit.slope,
        ci_low=low,
        ci_high=high,
        p_value=None,  # the rule is on the interval; a test of slope = 0 would not decide it
        passed=bool(passes(low, high)),
        n_seeds=fit.n_seeds,
        detail=f"n = {n}; {fit.n_points} capacities; HC3 CI [{fit.ci_low:.3f}, {fit.ci_high:.3f}], "
        f"seed-bootstrap CI [{fit.boot_low:.3f}, {fit.boot_high:.3f}]"
        f"{_excess_slope_detail(table, method)}",
    )


def _capacity_free(table: pd.DataFrame, results: dict) -> dict:
    return _capacity_verdict(table, "two_stage", lambda low, high: high < CAPACITY_FREE_MAX_SLOPE)


def _capacity_cost(table: pd.DataFrame, results: dict) -> dict:
    return _capacity_verdict(table, "labeled_only", lambda low, high: low > CAPACITY_COST_MIN_SLOPE)


def _advantage(table: pd.DataFrame, results: dict) -> dict:
    ts, lo = _small_n_rows(table, "two_stage"), _small_n_rows(table, "labeled_only")
    n = int(ts.n.iloc[0])
    tests = []
    for cap in sorted(ts.capacity.unique()):
        a = ts[ts.capacity == cap].sort_values("replicate")
        b = lo[lo.capacity == cap].sort_values("replicate")
        if list(a.replicate) != list(b.replicate):
            raise ValueError(f"replicates of two_stage and labeled_only differ at capacity {cap}")
        tests.append((int(cap), stats.paired_log_ratio_test(a.risk.to_numpy(), b.risk.to_numpy())))
    fields, adjusted, worst = holm_family([t for _, t in tests], ADVANTAGE_ALPHA)
    cap = tests[worst][0]
    parts = ", ".join(
        f"G={c}: ratio {math.exp(tt.mean_difference):.2f} (p_Holm {p:.2g})"
        for (c, tt), p in zip(tests, adjusted, strict=True)
    )
    return dict(
        **fields,
        detail=f"n = {n}; labeled-only / two-stage risk per capacity: {parts}; statistic is the "
        f"smallest mean log-ratio (capacity G={cap})",
    )


def _paired_rate(table: pd.DataFrame, results: dict) -> dict:
    cap = int(table.capacity.max())
    ex = excess_over_oracle(table[table.m == table.m.max()], cap)
    ex = ex[ex.weights_index == 0]
    fit = stats.fit_power_law(ex.n.astype(float), ex.excess, ex.replicate)
    low, high = union_ci(fit)
    lo_bound, hi_bound = PAIRED_RATE_RANGE
    local = []  # descriptive: slopes over the lower and upper halves of the n grid
    n_values = sorted(ex.n.unique())
    half = len(n_values) // 2
    for part in (n_values[: half + 1], n_values[half:]):
        sub = ex[ex.n.isin(part)]
        try:
            s = stats.fit_power_law(sub.n.astype(float), sub.excess, sub.replicate, n_boot=0).slope
            local.append(f"n in [{int(part[0])}, {int(part[-1])}]: {s:.2f}")
        except stats.InsufficientDataError:
            pass
    return dict(
        statistic=fit.slope,
        ci_low=low,
        ci_high=high,
        p_value=None,  # the rule is on the interval
        passed=bool(lo_bound <= low and high <= hi_bound),
        n_seeds=fit.n_seeds,
        detail=f"largest capacity G={cap}; {fit.n_points} values of n; HC3 CI "
        f"[{fit.ci_low:.3f}, {fit.ci_high:.3f}], seed-bootstrap CI [{fit.boot_low:.3f}, "
        f"{fit.boot_high:.3f}] ({fit.boot_dropped:.1%} of resamples dropped: non-positive mean); "
        f"descriptive local slopes: {'; '.join(local) or 'n/a'}",
    )


register(
    "capacity_free_two_stage",
    "sample_complexity",
    "At the smallest n, two-stage risk does not grow with the generalist's parameter count.",
    "log-log slope of risk in p_gen (two-stage)",
    f"CI high < {CAPACITY_FREE_MAX_SLOPE}",
)(_capacity_free)
register(
    "capacity_cost_labeled_only",
    "sample_complexity",
    "At the smallest n, labeled-only risk grows with the generalist's parameter count.",
    "log-log slope of risk in p_gen (labeled-only)",
    f"CI low > {CAPACITY_COST_MIN_SLOPE}",
)(_capacity_cost)
register(
    "scarce_label_advantage",
    "sample_complexity",
    "At the smallest n, two-stage beats labeled-only for every generalist capacity.",
    "mean log(labeled-only / two-stage risk), worst capacity",
    f"every Holm-adjusted one-sided paired p < {ADVANTAGE_ALPHA}",
)(_advantage)
register(
    "paired_rate",
    "sample_complexity",
    "Two-stage excess over the oracle (same m) decays in n at the specialists' rate 1/n.",
    "log-log slope of (two-stage - oracle) risk in n",
    f"CI inside [{PAIRED_RATE_RANGE[0]}, {PAIRED_RATE_RANGE[1]}]",
)(_paired_rate)


# ---------------------------------------------------------------- neural generalist


register(
    "neural_capacity_free_two_stage",
    "neural_generalist",
    "With MLP generalists of growing width, two-stage risk at the smallest n does not grow"
    " with p_gen.",
    "log-log slope of risk in p_gen (two-stage, MLP)",
    f"CI high < {CAPACITY_FREE_MAX_SLOPE}",
)(_capacity_free)
register(
    "neural_capacity_cost_labeled_only",
    "neural_generalist",
    "With MLP generalists of growing width, labeled-only risk at the smallest n grows with p_gen.",
    "log-log slope of risk in p_gen (labeled-only, MLP)",
    f"CI low > {CAPACITY_COST_MIN_SLOPE}",
)(_capacity_cost)


# ---------------------------------------------------------------- unlabeled decay
def _unlabeled_decay(table: pd.DataFrame, results: dict) -> dict:
    ts = table[
        (table.method == "two_stage")
        & (table.weights_index == 0)
        & (table.capacity == table.capacity.max())
    ]
    n_values = sorted(int(v) for v in ts.n.unique())
    fits = {
        n: stats.fit_power_law_with_floor(
            ts[ts.n == n].m, ts[ts.n == n].risk, ts[ts.n == n].replicate
        )
        for n in n_values
    }
    small, large = fits[n_values[0]], fits[n_values[-1]]
    floor_present = small.aic_power - small.aic_floor > FLOOR_AIC_MARGIN
    floor_grows = small.c_low > large.c_high
    parts = "; ".join(
        f"n={n}: floor {f.c:.4f} [{f.c_low:.4f}, {f.c_high:.4f}], exponent {f.b:.2f}, "
        f"dAIC {f.aic_power - f.aic_floor:.1f}"
        for n, f in fits.items()
    )
    return dict(
        statistic=small.c - large.c,
        ci_low=small.c_low - large.c_high,  # conservative: > 0 iff the floor intervals separate
        ci_high=small.c_high - large.c_low,
        p_value=None,
        passed=bool(floor_present and floor_grows),
        n_seeds=small.n_seeds,
        detail=f"fits of risk = a m^b + c per n: {parts}",
    )


register(
    "unlabeled_decay",
    "unlabeled_scaling",
    "At fixed n, two-stage risk falls in m to a floor, and the floor grows as n shrinks.",
    "floor(n_min) - floor(n_max) of risk = a m^b + c (conservative interval)",
    f"floor model beats the power law by > {FLOOR_AIC_MARGIN} AIC at n_min, and floor CIs separate",
)(_unlabeled_decay)


# ---------------------------------------------------------------- Pareto front
def _per_replicate(rows: pd.DataFrame, k: int, weights: list[int], reps: np.ndarray) -> np.ndarray:
    """Per-task risks as an array (replicate, weight vector, task), averaged within cells."""
    cols = [f"risk_task{i}" for i in range(k)]
    means = rows.groupby(["replicate", "weights_index"])[cols].mean()
    full = pd.MultiIndex.from_product([reps, weights], names=["replicate", "weights_index"])
    means = means.reindex(full)
    if means.isna().any().any():
        raise ValueError("every (replicate, weight vector) needs a row for every method")
    return means.to_numpy().reshape(len(reps), len(weights), k)


def _pareto(table: pd.DataFrame, results: dict) -> dict:
    """Hypervolume ratios on the log scale, reference point at PARETO_REFERENCE_FACTOR times the
    oracle's worst per-task risk.

    Changed after review (the threshold is unchanged): the first version used a linear-scale
    hypervolume with the reference at 1.1 x the worst per-task risk of any method. Extreme
    weight vectors (a generalist trained on one task has a huge risk on the other) made that
    box so large that the ratio barely moved: the oracle's own front scaled by 5.6 in every
    task still scored 0.90 and passed. On the log scale, relative to the oracle, a front
    uniformly 1.25x / 2x / 5.6x worse scores 0.89 / 0.67 / 0.33.
    """
    k = sum(c.startswith("risk_task") for c in table.columns)
    methods = ("oracle", "two_stage", "labeled_only")
    n = int(table[table.method == "two_stage"].n.min())
    reps = np.array(sorted(table.replicate.unique()))
    weights = sorted(table.weights_index.unique())
    arrays = {}
    for mt in methods:
        rows = table[table.method == mt]
        arrays[mt] = _per_replicate(rows if mt == "oracle" else rows[rows.n == n], k, weights, reps)
    fronts = {mt: np.log(a.mean(0)) for mt, a in arrays.items()}  # (weight vectors, tasks)
    ref = fronts["oracle"].max(0) + math.log(PARETO_REFERENCE_FACTOR)
    hv = {mt: hypervolume(f, ref) for mt, f in fronts.items()}
    picks = np.random.default_rng(0).integers(0, len(reps), size=(PARETO_BOOT, len(reps)))
    boot = {"two_stage": [], "labeled_only": []}
    for pick in picks:  # whole-replicate bootstrap of the hypervolume ratios
        hv_o = hypervolume(np.log(arrays["oracle"][pick].mean(0)), ref)
        for mt in boot:
            boot[mt].append(hypervolume(np.log(arrays[mt][pick].mean(0)), ref) / hv_o)
    ts_ci = np.percentile(boot["two_stage"], [2.5, 97.5])
    lo_ci = np.percentile(boot["labeled_only"], [2.5, 97.5])
    ratio_ts, ratio_lo = hv["two_stage"] / hv["oracle"], hv["labeled_only"] / hv["oracle"]
    return dict(
        statistic=ratio_ts,
        ci_low=float(ts_ci[0]),
        ci_high=float(ts_ci[1]),
        p_value=None,
        passed=bool(ts_ci[0] >= PARETO_CLOSE and lo_ci[1] < PARETO_FAR),
        n_seeds=len(reps),
        detail=f"n = {n}; {len(weights)} weight vectors; log-scale hypervolume ratio to oracle: "
        f"two-stage {ratio_ts:.3f} [{ts_ci[0]:.3f}, {ts_ci[1]:.3f}], labeled-only {ratio_lo:.3f} "
        f"[{lo_ci[0]:.3f}, {lo_ci[1]:.3f}] (reference {PARETO_REFERENCE_FACTOR:g} x the oracle's "
        f"worst per-task risk)",
    )


register(
    "pareto_front",
    "pareto_front",
    "Over a grid of lambda, two-stage per-task risks stay close to the oracle's front;"
    " labeled-only's do not.",
    "log-scale hypervolume(two-stage) / hypervolume(oracle)",
    f"two-stage CI low >= {PARETO_CLOSE} and labeled-only CI high < {PARETO_FAR}",
)(_pareto)


# ---------------------------------------------------------------- misspecification
def _misspecified(table: pd.DataFrame, results: dict) -> dict:
    """The floor of (two-stage - oracle) in n must exceed the well-specified control's floor.

    Changed after review (the AIC margin is unchanged): the first rule (floor preferred by AIC
    and floor CI above 0) also passed on the well-specified sample_complexity runs, whose
    excess levels off at a small floor too, so it could not show that misspecification
    matters. The control is the sample_complexity table at the same capacity and m.
    """
    cap = int(table.capacity.max())
    rows = table[(table.weights_index == 0) & (table.m == table.m.max())]
    ex = excess_over_oracle(rows, cap)
    fit = stats.fit_power_law_with_floor(ex.n.astype(float), ex.excess, ex.replicate)
    d_aic = fit.aic_power - fit.aic_floor
    control = results.get(MISSPECIFIED_CONTROL)
    if control is None:
        raise stats.InsufficientDataError(
            f"needs the well-specified control {MISSPECIFIED_CONTROL!r}"
        )
    ctrl_rows = control[(control.weights_index == 0) & (control.m == rows.m.max())]
    if not (ctrl_rows.capacity == cap).any():
        raise stats.InsufficientDataError(
            f"the control has no runs at capacity {cap} and m = {rows.m.max()}"
        )
    cex = excess_over_oracle(ctrl_rows, cap)
    cfit = stats.fit_power_law_with_floor(cex.n.astype(float), cex.excess, cex.replicate)
    return dict(
        statistic=fit.c,
        ci_low=fit.c_low,
        ci_high=fit.c_high,
        p_value=None,
        passed=bool(d_aic > FLOOR_AIC_MARGIN and fit.c_low > cfit.c_high),
        n_seeds=fit.n_seeds,
        detail=f"(two-stage - oracle) = a n^b + c with a = {fit.a:.3g}, b = {fit.b:.2f}, floor c = "
        f"{fit.c:.4f}; AIC improvement over the pure power law {d_aic:.1f}; well-specified "
        f"control floor {cfit.c:.4f} [{cfit.c_low:.4f}, {cfit.c_high:.4f}]",
    )


register(
    "misspecified_floor",
    "misspecified",
    "With non-linear tasks and linear specialists, two-stage excess over the oracle stops"
    " decaying in n (a floor).",
    "floor c of (two-stage - oracle) = a n^b + c",
    f"floor model beats the power law by > {FLOOR_AIC_MARGIN} AIC and floor CI above the "
    f"well-specified control's",
)(_misspecified)
