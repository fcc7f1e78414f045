r"""Evaluation of policies against the expert on fixed evaluation seeds.

For every environment and evaluation horizon H the rows report the mean return J_H over the
episodes, the success rate with its Wilson score interval (Wilson, 1927; via statsmodels),
and the sub-optimality gap J_H(expert) - J_H(policy), paired over episodes: the expert and
the policy start from the same reset seeds. Returns over H are the first H steps of one
rollout of length max(H): an episode's first H steps do not depend on what comes after, so
this equals a separate rollout with horizon H.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from statsmodels.stats.proportion import proportion_confint

from mol_diffusion.policy.data import Trajectories
from mol_diffusion.policy.diffusion_policy import DiffusionPolicy

__all__ = ["evaluation_rows", "latency_ms_per_action", "wilson_interval"]


def wilson_interval(successes: int, trials: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a success probability."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    low, high = proportion_confint(successes, trials, alpha=alpha, method="wilson")
    return float(low), float(high)


def _se(values: np.ndarray) -> float:
    """Standard error of the mean (NaN for a single value)."""
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def evaluation_rows(
    policy: Trajectories, expert: Trajectories, horizons: Sequence[int]
) -> list[dict]:
    """One row per (environment, H): return, success with Wilson interval, paired gap.

    ``policy`` and ``expert`` must hold the same episodes (env_index and seeds, in order).
    """
    if not (
        np.array_equal(policy.env_index, expert.env_index)
        and np.array_equal(policy.seeds, expert.seeds)
    ):
        raise ValueError("policy and expert trajectories must share env_index and seeds")
    if any(not 0 < h <= policy.horizon for h in horizons):
        raise ValueError(f"horizons must lie in [1, {policy.horizon}], got {list(horizons)}")
    rows = []
    for k in np.unique(policy.env_index):
        sel = policy.env_index == k
        mine, theirs = policy.select(sel), expert.select(sel)
        episodes = int(sel.sum())
        for h in horizons:
            j, j_exp = mine.returns(h), theirs.returns(h)
            gap = j_exp - j
            wins = int(mine.success[:, h - 1].sum())
            low, high = wilson_interval(wins, episodes)
            rows.append(
                {
                    "env": int(k),
                    "horizon": int(h),
                    "episodes": episodes,
                    "return_mean": float(j.mean()),
                    "return_se": _se(j),
                    "expert_return": float(j_exp.mean()),
                    "gap": float(gap.mean()),
                    "gap_se": _se(gap),
                    "successes": wins,
                    "success_rate": wins / episodes,
                    "success_low": low,
                    "success_high": high,
                }
            )
    return rows


def latency_ms_per_action(
    policy: DiffusionPolicy, obs: np.ndarray, *, generator: torch.Generator, repeats: int = 10
) -> float:
    """Median wall time of one single-observation ``act`` call divided by Ta, in ms.

    Args:
        obs: one observation history, (1, To, O).
    """
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        policy.act(obs, generator=generator)
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times)) / policy.config.action_horizon
