r"""Generative models of results tables, fitted on pilot tables.

``PilotModel`` keeps what a pilot table says about noise and moves only what a scenario
specifies: the cell means of the claim's estimand.

Model. A table has cells c (its rows of one replicate, in the table's order) and seeds s. For
the modelled columns v (on the log scale for risks and gaps, as they are positive), the pilot
gives the cell means mu_{c,v} over its S0 seeds and each seed's residual vector
r_s = y_s - mu (over every cell and column at once). A simulated table of S seeds is

    y_s = m + (1 / sqrt(S0 - 1)) sum_j z_{s,j} r_j,   z_{s,j} ~ N(0, 1) independent,

Gaussian seeds whose covariance is exactly the pilot's sample covariance of whole seeds: the
correlation between cells of one seed (common random numbers, one shared evaluation set), the
seed-to-seed variation of whole curves (slopes and floors, not just points) and the evaluation
noise all carry over. ``m`` is the pilot's mean moved by the scenario: ``tilted`` adds a slope
along an axis (keeping the pilot's curvature), ``shifted`` moves a set of cells by a constant.

Limits: the covariance has rank S0 - 1, so directions of seed-to-seed variation the pilot did
not see are absent; tails are Gaussian on the modelled scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PilotModel"]


@dataclass(frozen=True, eq=False)
class PilotModel:
    """A seed-level Gaussian model of a results table (module docstring).

    Attributes:
        template: one row per cell (the pilot's first replicate), the table's other columns.
        values: the modelled columns. log: whether they are modelled on the log scale.
        mean: (cells, values) pilot cell means, on the modelled scale.
        residuals: (S0, cells, values) per-seed deviations from ``mean``.
    """

    template: pd.DataFrame
    values: tuple[str, ...]
    log: bool
    mean: np.ndarray
    residuals: np.ndarray
    columns: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls, table: pd.DataFrame, values: Sequence[str], *, log: bool, keys: Sequence[str]
    ) -> PilotModel:
        """Fit on a pilot table whose replicates all hold the same cells in the same order.

        Args:
            table: the pilot results table (a ``replicate`` column, one row per cell and seed).
            values: columns to model (risk, psnr, gap, ...).
            log: model log(values) (they must be positive).
            keys: columns that identify a cell within a replicate (the kind's key columns
                without ``replicate``).
        """
        values, keys = tuple(values), list(keys)
        missing = [c for c in (*values, *keys, "replicate") if c not in table]
        if missing:
            raise ValueError(f"table has no columns {missing}")
        reps = sorted(table.replicate.unique())
        if len(reps) < 2:
            raise ValueError(f"a pilot needs >= 2 replicates, got {len(reps)}")
        parts = [table[table.replicate == r].reset_index(drop=True) for r in reps]
        first = parts[0][keys].astype(str)
        for r, part in zip(reps, parts, strict=True):
            if len(part) != len(first) or not part[keys].astype(str).equals(first):
                raise ValueError(
                    f"replicate {r} does not hold replicate {reps[0]}'s cells in order"
                )
        y = np.stack([part[list(values)].to_numpy(float) for part in parts])  # (S0, cells, v)
        if log:
            if (y <= 0).any() or not np.isfinite(y).all():
                raise ValueError(f"log model needs positive finite {values}")
            y = np.log(y)
        elif not np.isfinite(y).all():
            raise ValueError(f"{values} must be finite")
        mean = y.mean(0)
        template = parts[0].drop(columns=list(values))
        return cls(template, values, log, mean, y - mean, tuple(table.columns))

    @property
    def pilot_seeds(self) -> int:
        return self.residuals.shape[0]

    def cells(self, **eq) -> np.ndarray:
        """Boolean mask of the cells whose template columns equal the given values."""
        mask = np.ones(len(self.template), dtype=bool)
        for column, value in eq.items():
            col = self.template[column]
            mask &= (col.isna() if value is None else (col == value).fillna(False)).to_numpy(bool)
        if not mask.any():
            raise ValueError(f"no cells with {eq}")
        return mask

    def column(self, name: str) -> int:
        return self.values.index(name)

    def tilted(self, mean: np.ndarray, mask, value: str, axis: str, delta: float) -> np.ndarray:
        """``mean`` with ``delta * (log x - mean log x)`` added to column ``value`` on the
        masked cells, x the template's ``axis`` column: the log-log slope (or, for a model on
        the natural scale, the slope in log x) of those cells changes by exactly ``delta``."""
        out = mean.copy()
        lx = np.log(self.template[axis].to_numpy(float)[mask])
        out[mask, self.column(value)] += delta * (lx - lx.mean())
        return out

    def shifted(self, mean: np.ndarray, mask, value: str, delta: float) -> np.ndarray:
        """``mean`` with ``delta`` added to column ``value`` on the masked cells."""
        out = mean.copy()
        out[mask, self.column(value)] += delta
        return out

    def simulate(
        self, rng: np.random.Generator, seeds: int, mean: np.ndarray | None = None
    ) -> pd.DataFrame:
        """A table of ``seeds`` replicates (rows replicate-major, like the engine's)."""
        mean = self.mean if mean is None else mean
        z = rng.standard_normal((seeds, self.pilot_seeds))
        y = mean[None] + np.einsum("sj,jcv->scv", z, self.residuals) / np.sqrt(self.pilot_seeds - 1)
        if self.log:
            y = np.exp(y)
        parts = []
        for s in range(seeds):
            part = self.template.copy()
            part["replicate"] = s
            for k, name in enumerate(self.values):
                part[name] = y[s, :, k]
            parts.append(part)
        table = pd.concat(parts, ignore_index=True)
        return table[list(self.columns)] if self.columns else table
