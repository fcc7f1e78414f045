"""Claim rules of the policy kind: diffusion_policy (tables of ``kinds.policy``: rollout
returns and sub-optimality gaps per environment and horizon)."""

from __future__ import annotations

import pandas as pd

from mol_diffusion import stats
from mol_diffusion.claims.common import holm_family, holm_parts, union_ci
from mol_diffusion.claims.registry import register

__all__ = ["POLICY_HEADLINE", "policy_gap"]

# ---------------------------------------------------------------- thresholds (fixed in advance)
POLICY_ALPHA = 0.05  # Holm-adjusted one-sided paired tests of the gap reduction, every environment
POLICY_HORIZON_MAX_DIFFERENCE = 0.0  # CI of (on-policy - offline) d log gap / d log H below this
POLICY_N_MAX_SLOPE = 0.0  # CI of d gap / d log n (two-stage on-policy) entirely below this


# ---------------------------------------------------------------- diffusion policy
POLICY_HEADLINE = "two_stage_on_policy"


def policy_gap(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """The lambda-weighted sub-optimality gap sum_k lambda_k (J_H(expert) - J_H(policy)) of one
    method per (n, replicate, horizon), with the per-environment gaps as gap_env<k>."""
    rows = table[table.method == method]
    if rows.empty:
        raise ValueError(f"no rows for method {method!r}")
    key = ["n", "replicate", "horizon"]
    weighted = (rows.gap * rows.weight).groupby([rows[k] for k in key]).sum().rename("gap")
    per_env = rows.pivot_table(index=key, columns="env", values="gap")
    per_env.columns = [f"gap_env{int(k)}" for k in per_env.columns]
    return pd.concat([weighted, per_env], axis=1).reset_index()


def _policy_advantage(table: pd.DataFrame, results: dict) -> dict:
    h = int(table.horizon.max())
    n = int(table.n.min())

    def pick(method: str) -> pd.DataFrame:
        gap = policy_gap(table, method)
        return gap[(gap.n == n) & (gap.horizon == h)].set_index("replicate").sort_index()

    ts, lo = pick(POLICY_HEADLINE), pick("labeled_only")
    if not ts.index.equals(lo.index):
        raise ValueError("two-stage and labeled-only rows differ in their replicates")
    envs = sorted(c for c in ts.columns if c.startswith("gap_env"))
    tests = [stats.paired_difference_test((lo[c] - ts[c]).to_numpy()) for c in envs]
    fields, adjusted, worst = holm_family(tests, POLICY_ALPHA)
    parts = holm_parts(tests, adjusted, "env")
    return dict(
        **fields,
        detail=f"n = {n}, H = {h}; gap of labeled-only minus gap of two-stage (on-policy) per "
        f"environment: {parts}; lambda-weighted gaps {lo.gap.mean():.2f} (labeled-only) vs "
        f"{ts.gap.mean():.2f} (two-stage); statistic is the smallest reduction (env {worst})",
    )


def _policy_horizon(table: pd.DataFrame, results: dict) -> dict:
    parts = []
    for method in ("two_stage_offline", POLICY_HEADLINE):
        gap = policy_gap(table, method).groupby(["replicate", "horizon"]).gap.mean().reset_index()
        parts.append(gap.assign(method=method))
    both = pd.concat(parts, ignore_index=True)
    if (both.gap <= 0).any():
        bad = both[both.gap <= 0].iloc[0]
        return dict(
            passed=False,
            detail=f"log gap undefined: the {bad.method} gap (mean over n) is {bad.gap:.3g} at "
            f"H = {int(bad.horizon)}, replicate {int(bad.replicate)}",
        )
    test = stats.interaction_test(
        both.horizon.astype(float),
        both.gap,
        both.method,
        ("two_stage_offline", POLICY_HEADLINE),
        both.replicate,
    )
    return dict(
        statistic=test.difference,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        p_value=test.p_value,
        passed=bool(test.ci_high < POLICY_HORIZON_MAX_DIFFERENCE),
        n_seeds=test.n_seeds,
        detail=f"log gap ~ log H x source on seed means of the lambda-weighted gap averaged "
        f"over n; slope in log H: offline {test.slope_a:.3f}, on-policy {test.slope_b:.3f}",
    )


def _policy_n(table: pd.DataFrame, results: dict) -> dict:
    h = int(table.horizon.max())
    gap = policy_gap(table, POLICY_HEADLINE)
    gap = gap[gap.horizon == h]
    fit = stats.fit_log_slope(gap.n.astype(float), gap.gap, gap.replicate)
    low, high = union_ci(fit)
    means = gap.groupby("n").gap.mean()
    return dict(
        statistic=fit.slope,
        ci_low=low,
        ci_high=high,
        p_value=None,
        passed=bool(high < POLICY_N_MAX_SLOPE),
        n_seeds=fit.n_seeds,
        detail=f"H = {h}; HC3 CI [{fit.ci_low:.3f}, {fit.ci_high:.3f}], seed-bootstrap CI "
        f"[{fit.boot_low:.3f}, {fit.boot_high:.3f}]; mean gap "
        + ", ".join(f"{v:.2f} at n = {int(k)}" for k, v in means.items()),
    )


register(
    "policy_scarce_label_advantage",
    "diffusion_policy",
    "At the smallest n, the two-stage generalist (on-policy pseudo-labels) has a smaller"
    " sub-optimality gap than labeled-only behaviour cloning in every environment.",
    "smallest mean gap reduction over environments (labeled-only - two-stage)",
    f"every Holm-adjusted one-sided paired p < {POLICY_ALPHA}",
)(_policy_advantage)
register(
    "policy_on_policy_horizon",
    "diffusion_policy",
    "The gap grows more slowly in H with on-policy than with offline pseudo-labels"
    " (interaction of log H and source).",
    "on-policy minus offline slope of log gap in log H",
    f"CI high < {POLICY_HORIZON_MAX_DIFFERENCE}",
)(_policy_horizon)
register(
    "policy_gap_falls_with_n",
    "diffusion_policy",
    "The two-stage (on-policy) gap falls as the number of demonstrations n grows.",
    "slope of the lambda-weighted gap in log n, per e-fold",
    f"CI high < {POLICY_N_MAX_SLOPE}",
)(_policy_n)
