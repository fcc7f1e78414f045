"""Claim rules of the restoration kind: image_restoration (tables of ``kinds.restoration``:
PSNR in dB on the test split). Estimands are computed per seed (``claims.registry``)."""

from __future__ import annotations

import pandas as pd

from mol_diffusion import stats
from mol_diffusion.claims.common import per_seed, seed_slopes
from mol_diffusion.claims.registry import Component, Estimate, Region, register

__all__ = ["distillation_loss", "psnr_gain"]


def psnr_gain(table: pd.DataFrame) -> pd.DataFrame:
    """Per (n, replicate): two-stage minus labeled-only PSNR, lambda-averaged and per task (dB)."""
    key = ["n", "replicate"]
    sel = table[(table.weights_index == 0) & (table.m == table.m.max())]
    ts = sel[sel.method == "two_stage"].set_index(key).sort_index()
    lo = sel[sel.method == "labeled_only"].set_index(key).sort_index()
    if ts.empty or lo.empty:
        raise stats.InsufficientDataError("needs two_stage and labeled_only rows")
    if not ts.index.equals(lo.index):
        raise ValueError("two_stage and labeled_only rows differ in (n, replicate)")
    cols = ["psnr", *sorted(c for c in table.columns if c.startswith("psnr_task"))]
    return (ts[cols] - lo[cols]).reset_index()


def distillation_loss(table: pd.DataFrame) -> pd.DataFrame:
    """Per (n, replicate) two-stage row at the largest m: the generalist's lambda-averaged PSNR
    minus that of its own specialists (``psnr_specialist``), dB (column ``loss``; negative
    when distillation loses PSNR)."""
    sel = table[
        (table.weights_index == 0) & (table.m == table.m.max()) & (table.method == "two_stage")
    ]
    if sel.empty:
        raise stats.InsufficientDataError("needs two_stage rows")
    if sel.psnr_specialist.isna().any():
        raise ValueError("two_stage rows without the specialists' PSNR (psnr_specialist)")
    out = sel[["n", "replicate"]].copy()
    out["loss"] = (sel.psnr - sel.psnr_specialist).to_numpy()
    return out.sort_values(["n", "replicate"]).reset_index(drop=True)


def _restoration_advantage(table: pd.DataFrame, results: dict) -> Estimate:
    gain = psnr_gain(table)
    n = int(gain.n.min())
    small = gain[gain.n == n]
    tasks = sorted(c for c in gain.columns if c.startswith("psnr_task"))
    comps = tuple(
        Component(f"task {t.removeprefix('psnr_task')}", per_seed(small, t)) for t in tasks
    )
    return Estimate(
        comps,
        f"n = {n}; mean PSNR gain of two-stage over labeled-only per task: "
        + ", ".join(f"{c.label} {c.values.mean():+.2f} dB" for c in comps)
        + f"; lambda-averaged {small.psnr.mean():+.2f} dB",
    )


def _restoration_shrinks(table: pd.DataFrame, results: dict) -> Estimate:
    gain = psnr_gain(table)
    slopes = seed_slopes(gain, "n", "psnr", log_x=True, log_y=False)
    means = gain.groupby("n").psnr.mean()
    crossing = "the mean gain stays positive over the grid"
    if (means < 0).any():
        crossing = f"the mean gain is first negative at n = {int(means.index[means < 0][0])}"
    return Estimate(
        (Component("", slopes),),
        f"{len(means)} values of n; mean gain {means.iloc[0]:+.2f} dB at n = "
        f"{int(means.index[0])} and {means.iloc[-1]:+.2f} dB at n = {int(means.index[-1])}; "
        f"{crossing}",
    )


register(
    "restoration_scarce_label_advantage",
    "image_restoration",
    "At the smallest n, the two-stage generalist restores every degradation better (PSNR)"
    " than the same generalist fitted on the n pairs per task.",
    estimand="per-seed PSNR gain (two-stage - labeled-only) at the smallest n, dB, each task",
    region=Region(low=0.0),
    effect=0.5,
    effect_reason="0.5 dB is about what doubling n buys a ridge-regression restorer at these "
    "sizes, and near the smallest PSNR difference visible on digits",
)(_restoration_advantage)
register(
    "restoration_advantage_shrinks",
    "image_restoration",
    "The two-stage advantage in PSNR shrinks as n grows (interaction of log n and method).",
    estimand="per-seed slope of the lambda-averaged PSNR gain in log n, dB per e-fold",
    region=Region(high=0.0),
    effect=-0.25,
    effect_reason="-0.25 dB per e-fold removes a 0.5 dB advantage within two e-folds of n (a "
    "7-fold increase), small against the 64-fold grid from n = 8 to 512",
)(_restoration_shrinks)


def _distillation_lossless(table: pd.DataFrame, results: dict) -> Estimate:
    loss = distillation_loss(table)
    comps = tuple(
        Component(f"n = {int(n)}", per_seed(rows, "loss")) for n, rows in loss.groupby("n")
    )
    return Estimate(
        comps,
        f"m = {int(table.m.max())}; mean PSNR of two-stage minus its specialists' own: "
        + ", ".join(f"{c.label} {c.values.mean():+.2f} dB" for c in comps),
    )


register(
    "restoration_distillation_lossless",
    "image_restoration",
    "At every n, distilling the specialists into the generalist loses less than 0.5 dB: the"
    " two-stage generalist's PSNR is within 0.5 dB of its own specialists' (non-inferiority).",
    estimand="per-seed lambda-averaged PSNR of two-stage minus its specialists' exact posterior"
    " means, dB, each n (every n: intersection-union)",
    region=Region(low=-0.5),
    effect=0.0,
    effect_reason="lossless distillation (no PSNR lost) is what the power is computed at; the "
    "margin 0.5 dB is the advantage claim's effect: a loss that would cancel the gain two-stage "
    "is meant to bring",
)(_distillation_lossless)
