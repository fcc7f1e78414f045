"""Per-seed estimators shared by the claim rules of several experiment kinds.

Every function here returns one number per seed (replicate), so that the registry's intervals
(``claims.registry.decide``) carry the seed-to-seed variation of whole curves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mol_diffusion import stats

__all__ = ["per_seed", "seed_slopes", "select_rows"]


def select_rows(table: pd.DataFrame, **eq) -> pd.DataFrame:
    """Rows whose columns equal the given values (ValueError naming them if there are none)."""
    out = table
    for key, value in eq.items():
        out = out[out[key] == value]
    if out.empty:
        raise ValueError(f"no rows with {eq}")
    return out


def per_seed(frame: pd.DataFrame, value: str, seeds: list | None = None) -> np.ndarray:
    """(seeds,) ``value`` of a frame with one row per replicate, in replicate order (or the
    order of ``seeds``); InsufficientDataError if a replicate has no row or several."""
    counts = frame.replicate.value_counts()
    if (counts > 1).any():
        raise ValueError(f"several rows per replicate for {value}: {counts[counts > 1].to_dict()}")
    series = frame.set_index("replicate")[value]
    order = sorted(series.index) if seeds is None else list(seeds)
    missing = [s for s in order if s not in series.index]
    if missing:
        raise stats.InsufficientDataError(f"{value}: no row for replicates {missing}")
    return series.reindex(order).to_numpy(float)


def seed_slopes(frame: pd.DataFrame, x: str, y: str, *, log_x: bool, log_y: bool) -> np.ndarray:
    """(seeds,) least-squares slope of ``y`` on ``x`` within each replicate (log scales as
    asked), in replicate order. InsufficientDataError when a replicate has fewer than two
    distinct x values, or a non-positive value on a log scale."""
    slopes = []
    for rep, rows in frame.groupby("replicate", sort=True):
        xs, ys = rows[x].to_numpy(float), rows[y].to_numpy(float)
        for name, v, logged in ((x, xs, log_x), (y, ys, log_y)):
            if logged and (v <= 0).any():
                raise stats.InsufficientDataError(
                    f"replicate {rep}: {name} has non-positive values {v[v <= 0]} on a log scale"
                )
        if len(np.unique(xs)) < 2:
            raise stats.InsufficientDataError(f"replicate {rep}: fewer than two values of {x}")
        lx = np.log(xs) if log_x else xs
        ly = np.log(ys) if log_y else ys
        slopes.append(float(np.polyfit(lx, ly, 1)[0]))
    return np.asarray(slopes)
