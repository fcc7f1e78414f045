r"""Evaluation of policies against the expert on fixed evaluation seeds.

For every environment and evaluation horizon H the rows report the mean return J_H over the
episodes, the goal success rate with its Wilson score interval (Wilson, 1927; via statsmodels),
and the sub-optimality gap J_H(expert) - J_H(policy), paired over episodes: the expert and
the policy start from the same reset seeds. Returns over H are the first H steps of one
rollout of length max(H): an episode's first H steps do not depend on what comes after, so
this equals a separate rollout with horizon H.

The goal success rate counts goals (point navigation) or targets (arm) reached without contact
on the way, per goal the expert reaches on the same episode: successes = sum over episodes of
min(clean goals of the policy, goals of the expert) within H steps, trials = the expert's goals.
It is a rate at every H (the expert's is 1), unlike a flag for the whole episode, which says
little at large H; it is NaN (with a NaN interval) when the expert reaches no goal within H.

Given rollouts of ``RandomAgent`` from the same reset seeds, the rows also give the normalized
score of every episode, (J_H - mean J_H(random)) / (mean J_H(expert) - mean J_H(random)), per
environment: 0 is a uniformly random policy and 1 the expert, whatever the sign of the rewards
(the normalization of D4RL; Fu et al., 2020). The reference means are fixed numbers per (env, H),
so the score's standard error is that of the policy's return, rescaled.
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


def _same_episodes(a: Trajectories, b: Trajectories) -> bool:
    return np.array_equal(a.env_index, b.env_index) and np.array_equal(a.seeds, b.seeds)


def evaluation_rows(
    policy: Trajectories,
    expert: Trajectories,
    horizons: Sequence[int],
    random: Trajectories | None = None,
) -> list[dict]:
    """One row per (environment, H): return, success with Wilson interval, paired gap and,
    given ``random``, the normalized score.

    ``policy``, ``expert`` and ``random`` must hold the same episodes (env_index and seeds, in
    order). Raises if the expert's mean return does not exceed the random agent's.
    """
    if not _same_episodes(policy, expert):
        raise ValueError("policy and expert trajectories must share env_index and seeds")
    if random is not None and not _same_episodes(policy, random):
        raise ValueError("random trajectories must share the policy's env_index and seeds")
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
            expert_goals = theirs.goals[:, h - 1]
            trials = int(expert_goals.sum())
            wins = int(np.minimum(mine.goals[:, h - 1], expert_goals).sum())
            low, high = wilson_interval(wins, trials) if trials else (math.nan, math.nan)
            row = {
                "env": int(k),
                "horizon": int(h),
                "episodes": episodes,
                "return_mean": float(j.mean()),
                "return_se": _se(j),
                "expert_return": float(j_exp.mean()),
                "gap": float(gap.mean()),
                "gap_se": _se(gap),
                "successes": wins,
                "success_trials": trials,
                "success_rate": wins / trials if trials else math.nan,
                "success_low": low,
                "success_high": high,
            }
            if random is not None:
                j_rand = float(random.select(sel).returns(h).mean())
                span = float(j_exp.mean()) - j_rand
                if not span > 0:
                    raise ValueError(
                        f"the expert's mean return {j_exp.mean():.4g} does not exceed the random "
                        f"agent's {j_rand:.4g} (env {int(k)}, H = {h}): no normalized score"
                    )
                score = (j - j_rand) / span
                row.update(
                    random_return=j_rand,
                    normalized_score=float(score.mean()),
                    normalized_se=_se(score),
                )
            rows.append(row)
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
