"""Claim rules of the restoration kind: image_restoration (tables of ``kinds.restoration``:
PSNR in dB on the test split)."""

from __future__ import annotations

import pandas as pd

from mol_diffusion import stats
from mol_diffusion.claims.common import holm_family, holm_parts, union_ci
from mol_diffusion.claims.registry import register

__all__ = ["psnr_gain"]

# ---------------------------------------------------------------- thresholds (fixed in advance)
RESTORATION_ALPHA = 0.05  # Holm-adjusted one-sided paired t-tests of the PSNR gain, every task
RESTORATION_SHRINK_MAX_SLOPE = 0.0  # CI of d(PSNR gain)/d(log n) entirely below this


# ---------------------------------------------------------------- image restoration
def psnr_gain(table: pd.DataFrame) -> pd.DataFrame:
    """Per (n, replicate): two-stage minus labeled-only PSNR, lambda-averaged and per task (dB)."""
    key = ["n", "replicate"]
    sel = table[(table.weights_index == 0) & (table.m == table.m.max())]
    ts = sel[sel.method == "two_stage"].set_index(key).sort_index()
    lo = sel[sel.method == "labeled_only"].set_index(key).sort_index()
    if not ts.index.equals(lo.index):
        raise ValueError("two_stage and labeled_only rows differ in (n, replicate)")
    cols = ["psnr", *sorted(c for c in table.columns if c.startswith("psnr_task"))]
    return (ts[cols] - lo[cols]).reset_index()


def _restoration_advantage(table: pd.DataFrame, results: dict) -> dict:
    gain = psnr_gain(table)
    n = int(gain.n.min())
    small = gain[gain.n == n].sort_values("replicate")
    tasks = sorted(c for c in gain.columns if c.startswith("psnr_task"))
    tests = [stats.paired_difference_test(small[c].to_numpy()) for c in tasks]
    fields, adjusted, worst = holm_family(tests, RESTORATION_ALPHA)
    parts = holm_parts(tests, adjusted, "task", " dB")
    return dict(
        **fields,
        detail=f"n = {n}; PSNR gain of two-stage over labeled-only per task: {parts}; "
        f"lambda-averaged gain {small.psnr.mean():+.2f} dB; statistic is the smallest gain "
        f"(task {worst})",
    )


def _restoration_shrinks(table: pd.DataFrame, results: dict) -> dict:
    gain = psnr_gain(table)
    fit = stats.fit_log_slope(gain.n.astype(float), gain.psnr, gain.replicate)
    low, high = union_ci(fit)
    means = gain.groupby("n").psnr.mean()
    crossing = "the gain stays positive over the grid"
    if (means < 0).any():
        crossing = f"the mean gain is first negative at n = {int(means.index[means < 0][0])}"
    return dict(
        statistic=fit.slope,
        ci_low=low,
        ci_high=high,
        p_value=None,  # the rule is on the interval
        passed=bool(high < RESTORATION_SHRINK_MAX_SLOPE),
        n_seeds=fit.n_seeds,
        detail=f"{fit.n_points} values of n; HC3 CI [{fit.ci_low:.3f}, {fit.ci_high:.3f}], "
        f"seed-bootstrap CI [{fit.boot_low:.3f}, {fit.boot_high:.3f}]; mean gain "
        f"{means.iloc[0]:+.2f} dB at n = {int(means.index[0])} and {means.iloc[-1]:+.2f} dB at "
        f"n = {int(means.index[-1])}; {crossing}",
    )


register(
    "restoration_scarce_label_advantage",
    "image_restoration",
    "At the smallest n, the two-stage generalist restores every degradation better (PSNR)"
    " than the same generalist fitted on the n pairs per task.",
    "smallest mean PSNR gain over tasks, dB (two-stage - labeled-only)",
    f"every Holm-adjusted one-sided paired p < {RESTORATION_ALPHA}",
)(_restoration_advantage)
register(
    "restoration_advantage_shrinks",
    "image_restoration",
    "The two-stage advantage in PSNR shrinks as n grows (interaction of log n and method).",
    "slope of the lambda-averaged PSNR gain in log n, dB per e-fold",
    f"CI high < {RESTORATION_SHRINK_MAX_SLOPE}",
)(_restoration_shrinks)
