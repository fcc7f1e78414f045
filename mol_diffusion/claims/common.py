"""Helpers shared by the claim rules of several experiment kinds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mol_diffusion import stats

__all__ = ["holm_family", "holm_parts", "select_rows", "union_ci"]


def select_rows(table: pd.DataFrame, **eq) -> pd.DataFrame:
    out = table
    for key, value in eq.items():
        out = out[out[key] == value]
    if out.empty:
        raise ValueError(f"no rows with {eq}")
    return out


def union_ci(fit: stats.PowerLawFit | stats.LogSlopeFit) -> tuple[float, float]:
    lows = [fit.ci_low] + ([fit.boot_low] if math.isfinite(fit.boot_low) else [])
    highs = [fit.ci_high] + ([fit.boot_high] if math.isfinite(fit.boot_high) else [])
    return min(lows), max(highs)


def holm_family(tests: list[stats.PairedTest], alpha: float) -> tuple[dict, np.ndarray, int]:
    """Verdict fields for "every one-sided paired test passes after Holm's correction": the
    statistic and CI are the weakest test's (smallest mean difference). Also returns the
    adjusted p-values and the index of the weakest test."""
    adjusted = stats.holm([t.p_value for t in tests])
    worst = int(np.argmin([t.mean_difference for t in tests]))
    t = tests[worst]
    fields = dict(
        statistic=t.mean_difference,
        ci_low=t.ci_low,
        ci_high=t.ci_high,
        p_value=float(adjusted.max()),
        passed=bool((adjusted < alpha).all()),
        n_seeds=t.n_seeds,
    )
    return fields, adjusted, worst


def holm_parts(tests: list[stats.PairedTest], adjusted, label: str, unit: str = "") -> str:
    """ "<label> k: +d<unit> (p_Holm p), ..." for tests indexed 0..K-1."""
    return ", ".join(
        f"{label} {k}: {tt.mean_difference:+.2f}{unit} (p_Holm {p:.2g})"
        for k, (tt, p) in enumerate(zip(tests, adjusted, strict=True))
    )
