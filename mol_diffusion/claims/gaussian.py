"""Claim rules of the Gaussian kind: sample_complexity, capacity_regime, capacity_regime_d4,
capacity_shared, capacity_shared_d4, paired_rate_crn, paired_rate_crn_d4, neural_generalist,
unlabeled_scaling, pareto_front, misspecified (tables of ``kinds.gaussian``: exact excess risks).

Every rule computes its estimand once per seed (replicate) and hands the per-seed values to the
registry, which infers across seeds (``claims.registry``). Capacity and rate claims are about
the estimation cost, so they read the *excess over the oracle* (the same generalist class fitted
on m true samples per task, same replicate): the total risk also holds the class's
approximation error, which falls with p_gen for every method alike.

Paper symbols: n (paired samples per task) = ``n``; m (unlabeled conditions) = ``m``; p_gen =
``num_params`` of the generalist; p_spec = the specialist's parameter count; lambda = the row's
``weights``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mol_diffusion import stats
from mol_diffusion.claims.common import per_seed, seed_slopes, select_rows
from mol_diffusion.claims.registry import Component, Estimate, Region, register
from mol_diffusion.objectives import hypervolume

__all__ = [
    "excess_at_smallest_n",
    "excess_over_limit",
    "excess_over_oracle",
    "specialist_ratios",
]

# ---------------------------------------------------------------- declared design constants
PARETO_REFERENCE_FACTOR = 2.0  # reference point: 2 x the seed's oracle worst per-task risk (log)
MISSPECIFIED_CONTROL = "sample_complexity"  # the well-specified runs the floor is compared with
MISSPECIFIED_CONTROL_D4 = "capacity_regime_d4"  # the same, for the dim = cond_dim = 4 family
LARGE_N_POINTS = 2  # the misspecified floor: mean excess over the largest common grid values of n


def _register_on_both_families(experiment: str, *claims) -> None:
    """Register each ``(claim id, statement, rule, declaration)`` on ``experiment``
    (dim = cond_dim = 2) and, with the id suffix ``_d4``, on ``<experiment>_d4``
    (dim = cond_dim = 4), family by family; ``statement`` names the family as ``{family}``."""
    for suffix, family in (("", "dim = cond_dim = 2"), ("_d4", "dim = cond_dim = 4")):
        for claim_id, statement, rule, declaration in claims:
            register(
                f"{claim_id}{suffix}",
                f"{experiment}{suffix}",
                statement.format(family=family),
                **declaration,
            )(rule)


def excess_over_oracle(
    table: pd.DataFrame, capacity: int, method: str = "two_stage"
) -> pd.DataFrame:
    """method risk - oracle risk, paired by (replicate, m, capacity, weights)."""
    keys = ["replicate", "m", "capacity", "weights_index"]
    if not (table.method == "oracle").any():
        raise stats.InsufficientDataError("the table has no oracle rows to take the excess over")
    base = select_rows(table, method="oracle", capacity=capacity)[[*keys, "risk"]]
    rows = select_rows(table, method=method, capacity=capacity)
    merged = rows.merge(base, on=keys, suffixes=("", "_oracle"))
    return merged.assign(excess=merged.risk - merged.risk_oracle)


def _smallest_n(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """``method`` rows at the smallest n, the largest m and the first lambda, every capacity."""
    rows = table[(table.method == method) & (table.weights_index == 0) & (table.m == table.m.max())]
    if rows.empty:
        raise stats.InsufficientDataError(f"no {method} rows")
    return rows[rows.n == rows.n.min()]


def _excess_at_smallest_n(table: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = _smallest_n(table, method)
    parts = [
        excess_over_oracle(table[table.m == table.m.max()], int(cap), method).merge(
            rows[["replicate", "capacity", "n"]], on=["replicate", "capacity", "n"]
        )
        for cap in sorted(rows.capacity.unique())
    ]
    return pd.concat(parts, ignore_index=True)


def excess_at_smallest_n(
    table: pd.DataFrame, methods=("two_stage", "labeled_only")
) -> pd.DataFrame:
    """The rows the capacity rules read, for several methods at once: each method's excess
    over the oracle (same replicate, m, capacity and lambda) at its smallest n, the largest m
    and the first lambda, every capacity (``_first_lambda_excess``; on a table with one lambda
    these are exactly the rows of the first design's rules, which do not pair on lambda)."""
    return pd.concat([_first_lambda_excess(table, method) for method in methods])


# ---------------------------------------------------------------- capacity (excess over oracle)
def _capacity_slope(table: pd.DataFrame, method: str) -> Estimate:
    ex = _excess_at_smallest_n(table, method)
    slopes = seed_slopes(ex, "num_params", "excess", log_x=True, log_y=True)
    means = ex.groupby("num_params").excess.mean()
    return Estimate(
        (Component("", slopes),),
        f"n = {int(ex.n.iloc[0])}; {ex.num_params.nunique()} capacities (p_gen "
        f"{int(means.index[0])}-{int(means.index[-1])}); mean excess over the oracle "
        f"{means.iloc[0]:.4f} -> {means.iloc[-1]:.4f}; per-seed slopes "
        + ", ".join(f"{s:.2f}" for s in slopes),
    )


def _capacity_free(table: pd.DataFrame, results: dict) -> Estimate:
    return _capacity_slope(table, "two_stage")


def _capacity_cost(table: pd.DataFrame, results: dict) -> Estimate:
    return _capacity_slope(table, "labeled_only")


CAPACITY_FREE = dict(
    estimand="per-seed log-log slope in p_gen of (two-stage - oracle) risk at the smallest n",
    region=Region(high=0.15),
    effect=0.0,
    effect_reason="no growth is what the theory predicts; the region's edge 0.15 is growth by "
    "1.5x over a 16-fold range of p_gen, the least a user choosing the generalist's size "
    "would act on",
)
CAPACITY_COST = dict(
    estimand="per-seed log-log slope in p_gen of (labeled-only - oracle) risk at the smallest n",
    region=Region(low=0.0),
    effect=0.5,
    effect_reason="0.5 doubles the excess over a 4-fold range of p_gen, the least growth that "
    "would make a user prefer a smaller generalist. Not taken from the p_gen / n of least "
    "squares (Proposition 3): that needs p_gen <= nK pairs, and at the smallest n every "
    "generalist here has more parameters than pairs. Changed from region > 0.5, effect 1 after "
    "the pilot verdicts, for that reason (the pilot tables confirm nothing either way)",
)
# The first sample-complexity design (sample_complexity: n = 8..256 pairs per task against
# p_gen = 80..1280, ridge-regularized and over-parameterized at the smallest n) had the capacity,
# scarce-label and paired-rate claims; they were retired as claims when the least-squares and
# scarce-label designs replaced them, and the regime stays in the notebook as a described
# finding. The neural generalist's claims keep the capacity rules above.


def _advantage(table: pd.DataFrame, results: dict) -> Estimate:
    ts, lo = _smallest_n(table, "two_stage"), _smallest_n(table, "labeled_only")
    comps, parts = [], []
    for cap in sorted(ts.capacity.unique()):
        a, b = ts[ts.capacity == cap], lo[lo.capacity == cap]
        seeds = sorted(a.replicate)
        if sorted(b.replicate) != seeds:
            raise ValueError(f"replicates of two_stage and labeled_only differ at capacity {cap}")
        ratio = np.log(per_seed(b, "risk", seeds)) - np.log(per_seed(a, "risk", seeds))
        comps.append(Component(f"capacity {int(cap)}", ratio))
        parts.append(f"G={int(cap)}: {math.exp(ratio.mean()):.2f}")
    return Estimate(
        tuple(comps),
        f"n = {int(ts.n.iloc[0])}; geometric-mean labeled-only / two-stage risk per capacity: "
        + ", ".join(parts),
    )


# scarce_label and scarce_label_d4: the same rule where labels are scarce by design (one small n,
# one feature class for every method, both families)
for _suffix, _experiment, _family, _n in (
    ("", "scarce_label", "dim = cond_dim = 2", 8),
    ("_d4", "scarce_label_d4", "dim = cond_dim = 4", 32),
):
    register(
        f"scarce_advantage{_suffix}",
        _experiment,
        f"With n = {_n} pairs per task ({_family}) and one feature class for every method,"
        " two-stage beats labeled-only for every generalist capacity.",
        estimand="per-seed log(labeled-only / two-stage risk) at n = " + str(_n) + ", each "
        "capacity, one feature class for every method",
        region=Region(low=0.0),
        effect=math.log(1.25),
        effect_reason="a risk 25% lower is the smallest gain worth a second training stage",
    )(_advantage)


# ---------------------------------------------------------------- least-squares regime
# capacity_regime (dim = cond_dim = 2) and capacity_regime_d4 (dim = cond_dim = 4): at the
# smallest n every generalist has at least twice as many regression rows as unknowns per output
# coordinate (the experiments' TOML give the count), where Proposition 3's p_gen / N applies.
def _specialist_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Two-stage rows at the smallest n with ``ratio`` = (two-stage - oracle) / spec_risk."""
    ex = _excess_at_smallest_n(table, "two_stage")
    if "spec_risk" not in ex or not np.isfinite(ex.spec_risk).all() or (ex.spec_risk <= 0).any():
        raise stats.InsufficientDataError(
            "needs a positive spec_risk on every two-stage row (specialist_error = true)"
        )
    return ex.assign(ratio=ex.excess / ex.spec_risk)


specialist_ratios = _specialist_ratios  # public name for the calibration's pilot models


def _specialist_bound(table: pd.DataFrame, results: dict) -> Estimate:
    ex = _specialist_ratios(table)
    seeds = sorted(ex.replicate.unique())
    comps, parts = [], []
    for p_gen, rows in ex.groupby("num_params", sort=True):
        comps.append(Component(f"p_gen {int(p_gen)}", per_seed(rows, "ratio", seeds)))
        parts.append(f"{int(p_gen)}: {rows.ratio.mean():.2f}")
    return Estimate(
        tuple(comps),
        f"n = {int(ex.n.iloc[0])}; mean specialist error {ex.spec_risk.mean():.4f}; mean "
        "(two-stage - oracle) / specialist error per p_gen: " + ", ".join(parts),
    )


def _ratio_slope(table: pd.DataFrame, results: dict) -> Estimate:
    ex = _specialist_ratios(table)
    ex = ex.assign(log2_p_gen=np.log2(ex.num_params.to_numpy(float)))
    slopes = seed_slopes(ex, "log2_p_gen", "ratio", log_x=False, log_y=False)
    return Estimate(
        (Component("", slopes),),
        f"n = {int(ex.n.iloc[0])}; p_gen {int(ex.num_params.min())}-{int(ex.num_params.max())}; "
        "per-seed slopes of (two-stage - oracle) / specialist error per doubling of p_gen: "
        + ", ".join(f"{v:.3f}" for v in slopes),
    )


LS_CAPACITY_COST = dict(
    estimand="per-seed log-log slope in p_gen of (labeled-only - oracle) risk at the smallest n "
    "(least-squares regime)",
    region=Region(0.75, 1.5),
    effect=1.0,
    effect_reason="Proposition 3: a least-squares fit with p unknowns per output coordinate on N "
    "rows has excess tau^2 p d / N, slope 1 in p_gen. The region is asymmetric because a random "
    "design adds the factor N / (N - p) (slope above 1 near p = N; at the largest generalist "
    "the rows are 4.8 and 5.3 times its unknowns, a local slope about 1.25), and 0.75 separates "
    "linear growth from the square-root growth a regularized fit would show",
)
SPECIALIST_BOUND = dict(
    estimand="per-seed (two-stage - oracle) risk / specialist error (spec_risk, Proposition 2's "
    "specialist term) at the smallest n, each p_gen",
    region=Region(high=2.0),
    effect=1.0,
    effect_reason="Proposition 2 bounds the true excess by the fitting term plus twice the "
    "specialist error; at equal m the fitting term is the oracle's, so the excess over the "
    "oracle is at most 2 x the specialist error (the region's edge); a generalist whose class "
    "holds the pseudo-mixture's score reproduces the specialists' error exactly: ratio 1",
)
LS_CAPACITY_FREE = dict(
    estimand="per-seed slope of (two-stage - oracle) risk / specialist error in log2 p_gen at "
    "the smallest n",
    region=Region(-0.1, 0.1),
    effect=0.0,
    effect_reason="no dependence on p_gen is the headline; on the scale of the specialist error "
    "(the excess over the oracle is not positive on every seed at small p_gen, so it has no log "
    "scale) a change of 0.4 specialist errors over the four doublings of p_gen, a fifth of the "
    "bound's allowance of 2, is the least a user choosing the generalist's size would act on",
)
_register_on_both_families(
    "capacity_regime",
    (
        "ls_capacity_cost_labeled_only",
        "In the least-squares regime ({family}), the labeled-only excess over the oracle grows"
        " linearly in the generalist's parameter count.",
        _capacity_cost,
        LS_CAPACITY_COST,
    ),
    (
        "specialist_bound",
        "In the least-squares regime ({family}), the two-stage excess over the oracle is at"
        " most twice the specialists' own error, for every generalist size.",
        _specialist_bound,
        SPECIALIST_BOUND,
    ),
    (
        "ls_capacity_free_two_stage",
        "In the least-squares regime ({family}), the two-stage excess over the oracle, in"
        " units of the specialists' error, does not change with the generalist's size.",
        _ratio_slope,
        LS_CAPACITY_FREE,
    ),
)


# ---------------------------------------------------------------- one feature class
# capacity_shared and capacity_shared_d4: the least-squares design again, with the generalist's
# input scaling fixed to the population (``input_scaling = "population"``), so all methods fit
# one class; n counted by pairs (K n at least twice the unknowns per output coordinate). The
# rules above are left as they were registered (their fingerprints stand); these read their
# rows through ``_first_lambda_excess``, which also pairs on lambda.
def _first_lambda_excess(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """``method``'s excess over the oracle (same replicate, m, capacity and lambda) at its
    smallest n, the largest m and the first lambda (weights_index 0), every capacity."""
    top = table[table.m == table.m.max()]
    caps = sorted(top[top.method == method].capacity.unique())
    if not caps:
        raise stats.InsufficientDataError(f"no {method} rows")
    ex = pd.concat([excess_over_oracle(top, int(cap), method) for cap in caps])
    ex = ex[ex.weights_index == 0]
    return ex[ex.n == ex.n.min()].reset_index(drop=True)


def _slope_estimate(ex: pd.DataFrame) -> Estimate:
    """Per-seed log-log slope in p_gen of the rows' ``excess``."""
    slopes = seed_slopes(ex, "num_params", "excess", log_x=True, log_y=True)
    means = ex.groupby("num_params").excess.mean()
    return Estimate(
        (Component("", slopes),),
        f"n = {int(ex.n.iloc[0])}; mean excess over the oracle per p_gen: "
        + ", ".join(f"{int(p)}: {v:.4f}" for p, v in means.items())
        + "; per-seed slopes "
        + ", ".join(f"{v:.2f}" for v in slopes),
    )


def _ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Two-stage rows of ``_first_lambda_excess`` with ``ratio`` = excess / spec_risk."""
    ex = _first_lambda_excess(table, "two_stage")
    if "spec_risk" not in ex or not np.isfinite(ex.spec_risk).all() or (ex.spec_risk <= 0).any():
        raise stats.InsufficientDataError(
            "needs a positive spec_risk on every two-stage row (specialist_error = true)"
        )
    return ex.assign(ratio=ex.excess / ex.spec_risk)


def _shared_capacity_cost(table: pd.DataFrame, results: dict) -> Estimate:
    return _slope_estimate(_first_lambda_excess(table, "labeled_only"))


def _shared_bound(table: pd.DataFrame, results: dict) -> Estimate:
    ex = _ratios(table)
    seeds = sorted(ex.replicate.unique())
    comps = tuple(
        Component(f"p_gen {int(p_gen)}", per_seed(rows, "ratio", seeds))
        for p_gen, rows in ex.groupby("num_params", sort=True)
    )
    means = ex.groupby("num_params").ratio.mean()
    return Estimate(
        comps,
        f"n = {int(ex.n.iloc[0])}; mean specialist error {ex.spec_risk.mean():.5f}; mean "
        "(two-stage - oracle) / specialist error per p_gen: "
        + ", ".join(f"{int(p)}: {v:.2f}" for p, v in means.items()),
    )


def _shared_ratio_slope(table: pd.DataFrame, results: dict) -> Estimate:
    ex = _ratios(table)
    ex = ex.assign(log2_p_gen=np.log2(ex.num_params.to_numpy(float)))
    slopes = seed_slopes(ex, "log2_p_gen", "ratio", log_x=False, log_y=False)
    return Estimate(
        (Component("", slopes),),
        f"n = {int(ex.n.iloc[0])}; p_gen {int(ex.num_params.min())}-{int(ex.num_params.max())}; "
        "per-seed slopes of (two-stage - oracle) / specialist error per doubling of p_gen: "
        + ", ".join(f"{v:.3f}" for v in slopes),
    )


SHARED_CAPACITY_COST = dict(
    estimand="per-seed log-log slope in p_gen of (labeled-only - oracle) risk at the smallest n, "
    "one feature class for every method",
    region=LS_CAPACITY_COST["region"],
    effect=1.0,
    effect_reason="Proposition 3, as for ls_capacity_cost_labeled_only (the same region): a "
    "least-squares fit with p unknowns per output coordinate on N pairs has excess "
    "tau^2 p d / N, slope 1 in p_gen, and a random design adds N / (N - p) (here the largest "
    "generalist's K n pairs are 2.4 and 2.7 times its unknowns per output coordinate, each pair "
    "giving 4 correlated (t, eps) rows, so the local slope there is between 1.1 and 1.7); 0.75 "
    "separates linear growth from the square-root growth a regularized fit would show",
)
SHARED_BOUND = dict(
    estimand="per-seed (two-stage - oracle) risk / specialist error (spec_risk) at the smallest "
    "n, each p_gen, one feature class for every method",
    region=Region(high=1.25),
    effect=1.0,
    effect_reason="a projection argument (paper, 'The specialist bound with one class'): the "
    "risk's norm is the DSM objective's (sigma^2-weighted L2 over t ~ U[t_min, 1] and the "
    "lambda-mixture), so at m = infinity the oracle fits the projection P s* of the Pareto "
    "score onto the class and two-stage the projection P s^ of the pseudo-mixture's score, and "
    "Pythagoras gives excess = ||P (s^ - s*)||^2 <= ||s^ - s*||^2 = spec_risk: ratio <= 1, the "
    "effect (a class that holds s^ - s*). The margin 0.25 allows for what the argument leaves "
    "out: the pseudo-mixture's norm in two-stage's projection and the two fits' finite-m "
    "estimation terms (at m = 16384 each is about p_gen / (K m) of the noise level, under a "
    "fifth of the specialist error p_spec / n at the largest p_gen). Replaces the edge 2 of "
    "specialist_bound, which does not follow from Proposition 2",
)
SHARED_CAPACITY_FREE = dict(
    estimand="per-seed slope of (two-stage - oracle) risk / specialist error in log2 p_gen at "
    "the smallest n, one feature class for every method",
    region=Region(-0.1, 0.1),
    effect=0.0,
    effect_reason="as for ls_capacity_free_two_stage: a change of 0.4 specialist errors over "
    "the four doublings of p_gen is the least a user choosing the generalist's size would act "
    "on. The projection argument of shared_specialist_bound bounds the ratio by 1 whatever "
    "p_gen but lets it rise towards 1 as the class grows (||P (s^ - s*)||^2 grows with nested "
    "classes), so this tests whether that rise is negligible here, not a consequence of the "
    "theory",
)
_register_on_both_families(
    "capacity_shared",
    (
        "shared_capacity_cost_labeled_only",
        "With one feature class for every method ({family}), the labeled-only excess over the"
        " oracle grows linearly in the generalist's parameter count.",
        _shared_capacity_cost,
        SHARED_CAPACITY_COST,
    ),
    (
        "shared_specialist_bound",
        "With one feature class for every method ({family}), the two-stage excess over the"
        " oracle is at most the specialists' own error (up to a margin of 1/4), for every"
        " generalist size.",
        _shared_bound,
        SHARED_BOUND,
    ),
    (
        "shared_capacity_free_two_stage",
        "With one feature class for every method ({family}), the two-stage excess over the"
        " oracle, in units of the specialists' error, does not change with the generalist's"
        " size.",
        _shared_ratio_slope,
        SHARED_CAPACITY_FREE,
    ),
)


# ---------------------------------------------------------------- the paired rate, isolated
# paired_rate_crn and paired_rate_crn_d4: one feature class and common-noise pseudo-labels, so
# two-stage's excess over the oracle is the specialists' error carried through the fit.
def _crn_paired_rate(table: pd.DataFrame, results: dict) -> Estimate:
    cap = int(table.capacity.max())
    top = table[table.m == table.m.max()]
    ex = excess_over_oracle(top, cap)
    ex = ex[ex.weights_index == 0]
    if ex.n.nunique() < 2:
        raise stats.InsufficientDataError("needs two grid values of n")
    slopes = seed_slopes(ex, "n", "excess", log_x=True, log_y=True)
    means = ex.groupby("n")[["excess", "spec_risk"]].mean()
    return Estimate(
        (Component("", slopes),),
        f"largest capacity G={cap} (p_gen {int(ex.num_params.iloc[0])}); mean excess over the "
        "oracle (specialist error) per n: "
        + ", ".join(f"{int(n)}: {r.excess:.2e} ({r.spec_risk:.2e})" for n, r in means.iterrows()),
    )


CRN_PAIRED_RATE = dict(
    estimand="per-seed log-log slope in n of (two-stage - oracle) risk at the largest capacity, "
    "every n of the grid (10 p_spec to 160 p_spec), one feature class, common-noise "
    "pseudo-labels",
    region=Region(-1.25, -0.75),
    effect=-1.0,
    effect_reason="with common noise, two-stage's excess over the oracle is the specialist error "
    "projected onto the class (Proposition 4) plus what the shared draws leave of the fitting "
    "noise; the specialists' maximum-likelihood error is delta-method O(1/n) from n = 10 p_spec "
    "on, and its projected fraction does not depend on n to first order (the parameter error's "
    "direction has the same law at every n), so the slope is -1; the margin 0.25, as for "
    "paired_rate, separates 1/n from the 1/sqrt(n) of a nonparametric rate and from 1/n^1.5",
)
_register_on_both_families(
    "paired_rate_crn",
    (
        "crn_paired_rate",
        "With the specialist term isolated ({family}), two-stage excess over the oracle decays"
        " in n at the specialists' rate 1/n.",
        _crn_paired_rate,
        CRN_PAIRED_RATE,
    ),
)


# ---------------------------------------------------------------- the unlabeled rate
# unlabeled_rate and unlabeled_rate_d4: fixed large n, m swept; the largest m of the table is
# the stand-in for m = infinity (experiments/unlabeled_rate.toml says why it may be).
def excess_over_limit(table: pd.DataFrame) -> pd.DataFrame:
    """Two-stage rows (largest capacity, first lambda, largest n) below the largest m, with
    ``excess`` = risk - the same seed's risk at the largest m (the large-m limit)."""
    ts = table[(table.method == "two_stage") & (table.weights_index == 0)]
    ts = ts[(ts.capacity == ts.capacity.max()) & (ts.n == ts.n.max())]
    m_limit = ts.m.max()
    if ts.m.nunique() < 3:
        raise stats.InsufficientDataError("needs two values of m below the limit's")
    limit = ts[ts.m == m_limit].set_index("replicate").risk
    rows = ts[ts.m < m_limit]
    return rows.assign(excess=rows.risk.to_numpy() - limit.loc[rows.replicate].to_numpy())


def _unlabeled_rate(table: pd.DataFrame, results: dict) -> Estimate:
    ex = excess_over_limit(table)
    slopes = seed_slopes(ex, "m", "excess", log_x=True, log_y=True)
    means = ex.groupby("m").excess.mean()
    return Estimate(
        (Component("", slopes),),
        f"n = {int(ex.n.iloc[0])}, p_gen {int(ex.num_params.iloc[0])}, limit at m = "
        f"{int(table.m.max())}; mean two-stage excess over the limit per m: "
        + ", ".join(f"{int(m)}: {v:.2e}" for m, v in means.items())
        + "; per-seed slopes "
        + ", ".join(f"{v:.2f}" for v in slopes),
    )


UNLABELED_RATE = dict(
    estimand="per-seed log-log slope in m of (two-stage risk - the same seed's two-stage risk "
    "at the largest m, the large-m limit) at fixed large n, every m below the limit's, one "
    "feature class, common-noise pseudo-labels",
    region=Region(-1.25, -0.75),
    effect=-1.0,
    effect_reason="Proposition 3 with the pseudo-pairs as data: with the specialists fixed, "
    "two-stage is a least-squares fit of a fixed target on K m pairs, whose excess over its "
    "m = infinity fit is p_gen tau^2 / (K m) to first order, slope -1. What moves it: the "
    "random design's N / (N - p) (local slope -1.05 at K m = 19 to 21 f features, the smallest m "
    "here) and the limit taken at M = 16 x the largest m (risk(m) - risk(M) = C (1/m - 1/M), "
    "slope -1.00 to -1.07 over the range); the margin 0.25, as for paired_rate, separates "
    "1/m from 1/sqrt(m) and from 1/m^1.5",
)
_register_on_both_families(
    "unlabeled_rate",
    (
        "unlabeled_rate",
        "At fixed large n ({family}), two-stage excess over its own large-m limit decays in"
        " m at the rate 1/m.",
        _unlabeled_rate,
        UNLABELED_RATE,
    ),
)

# ---------------------------------------------------------------- neural generalist
register(
    "neural_capacity_free_two_stage",
    "neural_generalist",
    "With MLP generalists of growing width, the two-stage excess over the oracle at the"
    " smallest n does not grow with p_gen.",
    **CAPACITY_FREE,
)(_capacity_free)
register(
    "neural_capacity_cost_labeled_only",
    "neural_generalist",
    "With MLP generalists of growing width, the labeled-only excess over the oracle at the"
    " smallest n grows with p_gen.",
    **CAPACITY_COST,
)(_capacity_cost)
register(
    "neural_capacity_free_two_stage_d4",
    "neural_generalist_d4",
    "With MLP generalists of growing width (dim = cond_dim = 4), the two-stage excess over the"
    " oracle at the smallest n does not grow with p_gen.",
    **CAPACITY_FREE,
)(_capacity_free)
register(
    "neural_capacity_cost_labeled_only_d4",
    "neural_generalist_d4",
    "With MLP generalists of growing width (dim = cond_dim = 4), the labeled-only excess over"
    " the oracle at the smallest n grows with p_gen.",
    **CAPACITY_COST,
)(_capacity_cost)


# ---------------------------------------------------------------- unlabeled decay
FLOOR_DECAY = dict(  # the declaration unlabeled_decay[_d4] share (effects per family)
    estimand="per-seed floor c of risk = a m^b + c at the smallest n minus at the largest n",
    region=Region(low=0.0),
)


def _seed_floor(rows: pd.DataFrame, x: str, y: str) -> float:
    """The floor c of y = a x^b + c fitted to one seed's curve
    (``stats.fit_power_law_with_floor``)."""
    return stats.fit_power_law_with_floor(rows[x], rows[y]).c


def _unlabeled_decay(table: pd.DataFrame, results: dict) -> Estimate:
    ts = table[
        (table.method == "two_stage")
        & (table.weights_index == 0)
        & (table.capacity == table.capacity.max())
    ]
    n_values = sorted(int(v) for v in ts.n.unique())
    if len(n_values) < 2:
        raise stats.InsufficientDataError("needs two values of n")
    floors = {
        n: np.array(
            [_seed_floor(rows, "m", "risk") for _, rows in ts[ts.n == n].groupby("replicate")]
        )
        for n in (n_values[0], n_values[-1])
    }
    small, large = floors[n_values[0]], floors[n_values[-1]]
    if len(small) != len(large):
        raise ValueError("the two curves have different replicates")
    return Estimate(
        (Component("", small - large),),
        f"per-seed floors of risk = a m^b + c: n={n_values[0]} "
        + ", ".join(f"{v:.4f}" for v in small)
        + f"; n={n_values[-1]} "
        + ", ".join(f"{v:.4f}" for v in large),
    )


register(
    "unlabeled_decay",
    "unlabeled_scaling",
    "At fixed n, two-stage risk falls in m to a floor, and the floor grows as n shrinks.",
    **FLOOR_DECAY,
    effect=0.01,
    effect_reason="about a seventh of the oracle's risk (0.07 in the pilot): a floor difference "
    "a user would notice against the cost of more paired data",
)(_unlabeled_decay)
register(
    "unlabeled_decay_d4",
    "unlabeled_scaling_d4",
    "At fixed n, two-stage risk falls in m to a floor, and the floor grows as n shrinks"
    " (dim = cond_dim = 4).",
    **FLOOR_DECAY,
    effect=0.027,
    effect_reason="about a seventh of the oracle's risk (0.19 in the pilot), as for "
    "unlabeled_decay: a floor difference a user would notice against the cost of more paired data",
)(_unlabeled_decay)


# ---------------------------------------------------------------- Pareto front
def _front(rows: pd.DataFrame, k: int) -> np.ndarray:
    """(weight vectors, tasks) log per-task risks of one seed, weight vectors in order."""
    cols = [f"risk_task{i}" for i in range(k)]
    return np.log(rows.sort_values("weights_index")[cols].to_numpy(float))


def _pareto(table: pd.DataFrame, results: dict) -> Estimate:
    """Per seed, the log-scale hypervolume of each method's front over the lambda grid divided
    by the oracle's, with the reference point at PARETO_REFERENCE_FACTOR times that seed's
    oracle worst per-task risk (a uniformly 1.25x / 2x worse front scores 0.89 / 0.67)."""
    k = sum(c.startswith("risk_task") for c in table.columns)
    n = int(table[table.method == "two_stage"].n.min())
    weights = table.weights_index.nunique()
    ratios = {"two_stage": [], "labeled_only": []}
    for rep, rows in table.groupby("replicate", sort=True):
        oracle = rows[rows.method == "oracle"]
        if len(oracle) != weights:
            raise stats.InsufficientDataError(f"replicate {rep}: oracle front incomplete")
        o = _front(oracle, k)
        ref = o.max(0) + math.log(PARETO_REFERENCE_FACTOR)
        hv_o = hypervolume(o, ref)
        for method in ratios:
            sel = rows[(rows.method == method) & (rows.n == n)]
            if len(sel) != weights:
                raise stats.InsufficientDataError(f"replicate {rep}: {method} front incomplete")
            ratios[method].append(hypervolume(_front(sel, k), ref) / hv_o)
    ts, lo = np.array(ratios["two_stage"]), np.array(ratios["labeled_only"])
    return Estimate(
        (Component("two_stage", ts), Component("labeled_only", lo)),
        f"n = {n}; {weights} weight vectors; per-seed log-scale hypervolume ratio to the "
        f"oracle: two-stage mean {ts.mean():.3f}, labeled-only mean {lo.mean():.3f}",
    )


register(
    "pareto_front",
    "pareto_front",
    "Over a grid of lambda, two-stage per-task risks stay close to the oracle's front;"
    " labeled-only's do not.",
    estimand="per-seed log-scale hypervolume ratio to the oracle, two-stage and labeled-only",
    region={"two_stage": Region(low=0.9), "labeled_only": Region(high=0.9)},
    effect={"two_stage": 0.95, "labeled_only": 0.8},
    effect_reason="0.9 is a front uniformly about 1.25x worse than the oracle's in every task; "
    "0.95 (about 1.1x worse) is close, 0.8 (about 1.5x worse) is not",
)(_pareto)


# ---------------------------------------------------------------- misspecification
MISSPECIFIED_FLOOR = dict(  # the declaration misspecified_floor[_d4] share
    estimand=f"per-seed mean (two-stage - oracle) risk at the {LARGE_N_POINTS} largest common n,"
    " misspecified minus well-specified (Welch)",
    region=Region(low=0.0),
)


def _large_n_excess(table: pd.DataFrame, n_values: list[int]) -> np.ndarray:
    cap = int(table.capacity.max())
    rows = table[(table.weights_index == 0) & (table.m == table.m.max())]
    ex = excess_over_oracle(rows, cap)
    ex = ex[ex.n.isin(n_values)]
    return ex.groupby("replicate", sort=True).excess.mean().to_numpy(float)


def _misspecified(table: pd.DataFrame, results: dict) -> Estimate:
    control = results.get(MISSPECIFIED_CONTROL)
    if control is None:
        raise stats.InsufficientDataError(
            f"needs the well-specified control {MISSPECIFIED_CONTROL!r}"
        )
    cap, m = int(table.capacity.max()), int(table.m.max())
    ctrl = control[(control.capacity == cap) & (control.m == m)]
    if ctrl.empty:
        raise stats.InsufficientDataError(f"the control has no runs at capacity {cap}, m = {m}")
    common = sorted(
        set(table[table.method == "two_stage"].n.dropna().astype(int))
        & set(ctrl[ctrl.method == "two_stage"].n.dropna().astype(int))
    )
    if len(common) < LARGE_N_POINTS:
        raise stats.InsufficientDataError(f"fewer than {LARGE_N_POINTS} common values of n")
    top = common[-LARGE_N_POINTS:]
    mis, well = _large_n_excess(table, top), _large_n_excess(ctrl, top)
    return Estimate(
        (Component("", mis, control=well),),
        f"mean (two-stage - oracle) risk at n in {top}, capacity G={cap}: misspecified "
        f"{mis.mean():.4f} ({len(mis)} seeds), well-specified {well.mean():.4f} ({len(well)} "
        f"seeds)",
    )


register(
    "misspecified_floor",
    "misspecified",
    "With non-linear tasks and linear specialists, two-stage excess over the oracle stays at a"
    " floor above the well-specified control's at large n.",
    **MISSPECIFIED_FLOOR,
    effect=0.01,
    effect_reason="a tenth of the oracle's risk (about 0.10): a floor that more paired data "
    "cannot remove and a user would notice",
    control=MISSPECIFIED_CONTROL,
)(_misspecified)


def _misspecified_d4(table: pd.DataFrame, results: dict) -> Estimate:
    """``misspecified_floor``'s rule on the dim = cond_dim = 4 family, against its own
    well-specified control ``MISSPECIFIED_CONTROL_D4`` (the same class, m and pseudo-labels)."""
    control = results.get(MISSPECIFIED_CONTROL_D4)
    if control is None:
        raise stats.InsufficientDataError(
            f"needs the well-specified control {MISSPECIFIED_CONTROL_D4!r}"
        )
    return _misspecified(table, {MISSPECIFIED_CONTROL: control})


register(
    "misspecified_floor_d4",
    "misspecified_d4",
    "With non-linear tasks and linear specialists (dim = cond_dim = 4), two-stage excess over"
    " the oracle stays at a floor above the well-specified control's at large n.",
    **MISSPECIFIED_FLOOR,
    effect=0.035,
    effect_reason="a tenth of the oracle's risk (about 0.35 in the pilot), as for "
    "misspecified_floor: a floor that more paired data cannot remove and a user would notice",
    control=MISSPECIFIED_CONTROL_D4,
)(_misspecified_d4)
