r"""The two-stage procedure for policies: specialists per environment, one generalist.

Paper symbols -> code: K environments (``len(env_ids)``), n demonstrations per environment
(``demos[k]``), m unlabeled trajectories per environment, lambda (``weights``), H (horizon),
R on-policy rounds (``rounds``).

- ``fit_specialists``: one small diffusion policy per environment on its n demonstrations.
- ``labeled_only``: behaviour cloning of one generalist on the pooled demonstrations, with no
  environment id (the baseline).
- ``two_stage_offline``: the specialists label the observation windows of unlabeled
  trajectories of their own environment with sampled action chunks (pseudo-actions); the
  generalist fits the pooled pseudo-labeled windows.
- ``two_stage_on_policy``: as offline on a first share of the unlabeled trajectories, then for
  R rounds: roll out the current generalist in every environment, let that environment's
  specialist label the states it visited, aggregate with everything labeled so far and refit
  (the data-aggregation scheme of Ross et al., 2011, "DAgger", with specialists as experts).

Pooled windows of environment k get weight lambda_k / N_k (N_k its number of windows), so the
generalist minimises sum_k lambda_k L_k: the objective does the weighting, the loss is per
window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mol_diffusion._validation import check_simplex
from mol_diffusion.policy.data import Trajectories, action_windows, observation_windows
from mol_diffusion.policy.diffusion_policy import (
    DiffusionPolicy,
    DiffusionPolicyConfig,
    fit_batched,
)
from mol_diffusion.policy.rollout import PolicyAgent, rollout

__all__ = [
    "PolicyFit",
    "fit_pooled",
    "fit_specialists",
    "labeled_only",
    "labeled_only_windows",
    "offline_windows",
    "on_policy_rounds",
    "pooled_weights",
    "pseudo_label",
    "two_stage_offline",
    "two_stage_on_policy",
]


@dataclass(frozen=True)
class PolicyFit:
    """A fitted generalist and what it cost.

    Attributes:
        generalist: the fitted policy.
        num_windows: windows in its final training set.
        fit_seconds: wall time of the whole procedure (pseudo-labels and rollouts included).
        rollouts: on-policy trajectories collected per round (empty unless on-policy).
    """

    generalist: DiffusionPolicy
    num_windows: int
    fit_seconds: float
    rollouts: tuple[Trajectories, ...] = ()


def pooled_weights(counts: Sequence[int], weights) -> np.ndarray:
    """Per-window weights lambda_k / N_k for windows pooled in environment order."""
    lam = check_simplex(weights, len(counts)).numpy()
    if any(c <= 0 for c in counts):
        raise ValueError(f"every environment needs at least one window, got counts {counts}")
    return np.concatenate([np.full(c, lam[k] / c) for k, c in enumerate(counts)])


def _pooled(obs, actions, weights) -> tuple:
    """Per-environment windows -> pooled (obs, actions, weights lambda_k / N_k)."""
    counts = [o.shape[0] for o in obs]
    return np.concatenate(obs), np.concatenate(actions), pooled_weights(counts, weights)


def fit_pooled(
    windows: Sequence[tuple],
    weights,
    config: DiffusionPolicyConfig,
    generators: Sequence[torch.Generator],
    *,
    run_names: Sequence[str],
    seconds: Sequence[float] | None = None,
) -> list[PolicyFit]:
    """Several generalists at once (one stacked network, bit-for-bit the single fits).

    Args:
        windows: per generalist, (obs, actions): per-environment lists of windows, as built by
            ``labeled_only_windows`` or ``offline_windows``.
        weights: lambda, length K.
        config: the generalists' config; generators: one per generalist.
        run_names: one per generalist.
        seconds: time already spent building each generalist's windows (added to its
            ``fit_seconds``, with an equal share of the batch's fit time).
    """
    started = time.perf_counter()
    policies = fit_batched(
        [DiffusionPolicy(config) for _ in windows],
        [_pooled(obs, actions, weights) for obs, actions in windows],
        list(generators),
        run_names=list(run_names),
    )
    share = (time.perf_counter() - started) / len(policies)
    before = [0.0] * len(policies) if seconds is None else list(seconds)
    return [
        PolicyFit(policy, sum(len(o) for o in obs), before[i] + share)
        for i, (policy, (obs, _)) in enumerate(zip(policies, windows, strict=True))
    ]


def _fit_timed(build, weights, config, generator, run_name) -> PolicyFit:
    """One generalist on the windows ``build()`` returns; its time includes building them."""
    started = time.perf_counter()
    windows = build()
    seconds = time.perf_counter() - started
    return fit_pooled(
        [windows], weights, config, [generator], run_names=[run_name], seconds=[seconds]
    )[0]


def labeled_only_windows(demos: Sequence[Trajectories], config: DiffusionPolicyConfig) -> tuple:
    """The demonstrations' windows per environment: (obs list, actions list)."""
    to, tp = config.obs_horizon, config.pred_horizon
    obs = [observation_windows(d.observations, to) for d in demos]
    return obs, [action_windows(d.actions, to, tp) for d in demos]


def offline_windows(
    specialists: Sequence[DiffusionPolicy],
    unlabeled: Sequence[Trajectories],
    generator: torch.Generator,
) -> tuple:
    """Each environment's unlabeled windows with its specialist's pseudo-actions (drawn from
    ``generator``): (obs list, actions list)."""
    labeled = [pseudo_label(s, u, generator) for s, u in zip(specialists, unlabeled, strict=True)]
    return [o for o, _ in labeled], [a for _, a in labeled]


def fit_specialists(
    demos: Sequence[Trajectories],
    config: DiffusionPolicyConfig,
    generators: Sequence[torch.Generator],
    *,
    run_name: str = "specialist",
) -> list[DiffusionPolicy]:
    """One policy per environment, each on its own demonstrations (``demos[k]``), fitted
    together as one stacked network (bit-for-bit the one-at-a-time fits)."""
    to, tp = config.obs_horizon, config.pred_horizon
    data = [
        (observation_windows(d.observations, to), action_windows(d.actions, to, tp), None)
        for d in demos
    ]
    return fit_batched(
        [DiffusionPolicy(config) for _ in data],
        data,
        list(generators),
        run_names=[f"{run_name}[{k}]" for k in range(len(data))],
    )


def pseudo_label(
    specialist: DiffusionPolicy, trajectories: Trajectories, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Every observation window of ``trajectories`` with a chunk sampled by ``specialist``:
    (obs (N, To, O), pseudo-actions (N, Tp, A))."""
    obs = observation_windows(trajectories.observations, specialist.config.obs_horizon)
    return obs, specialist.predict_chunk(obs, generator=generator).numpy()


def labeled_only(
    demos: Sequence[Trajectories],
    weights,
    config: DiffusionPolicyConfig,
    generator: torch.Generator,
    *,
    run_name: str = "labeled_only",
) -> PolicyFit:
    """Behaviour cloning of one generalist on the pooled demonstrations."""
    windows = lambda: labeled_only_windows(demos, config)  # noqa: E731
    return _fit_timed(windows, weights, config, generator, run_name)


def two_stage_offline(
    specialists: Sequence[DiffusionPolicy],
    unlabeled: Sequence[Trajectories],
    weights,
    config: DiffusionPolicyConfig,
    generator: torch.Generator,
    *,
    run_name: str = "two_stage_offline",
) -> PolicyFit:
    """Fit the generalist on specialists' pseudo-actions for offline unlabeled trajectories
    (``unlabeled[k]`` from environment k; their actions are ignored)."""
    windows = lambda: offline_windows(specialists, unlabeled, generator)  # noqa: E731
    return _fit_timed(windows, weights, config, generator, run_name)


def two_stage_on_policy(
    specialists: Sequence[DiffusionPolicy],
    initial: Sequence[Trajectories],
    weights,
    config: DiffusionPolicyConfig,
    generator: torch.Generator,
    *,
    env_ids: Sequence[str],
    rounds: int,
    round_seeds: Callable[[int, int], np.ndarray],
    horizon: int,
    run_name: str = "two_stage_on_policy",
    progress: Callable[[str], None] | None = None,
) -> PolicyFit:
    """Offline two-stage on ``initial``, then R rounds of roll out, pseudo-label, aggregate, refit.

    Args:
        specialists, weights, config, generator: as in ``two_stage_offline``.
        initial: per environment, the offline unlabeled trajectories of round 0.
        env_ids: the family's registered ids (environment k is ``env_ids[k]``).
        rounds: R >= 0 on-policy rounds.
        round_seeds: ``(round, k) -> seeds`` of the generalist's episodes in environment k in
            that round (training seeds, disjoint from the evaluation seeds).
        horizon: H of the on-policy episodes.
        progress: called with a short message after each round.
    """
    check_rounds(rounds)
    started = time.perf_counter()
    windows = offline_windows(specialists, initial, generator)
    (first,) = fit_pooled([windows], weights, config, [generator], run_names=[f"{run_name}/round0"])
    return on_policy_rounds(
        specialists,
        windows,
        first.generalist,
        weights,
        config,
        generator,
        env_ids=env_ids,
        rounds=rounds,
        round_seeds=round_seeds,
        horizon=horizon,
        run_name=run_name,
        progress=progress,
        seconds=time.perf_counter() - started,
    )


def check_rounds(rounds) -> int:
    """R, the on-policy rounds: an integer >= 0."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be an integer >= 0, got {rounds!r}")
    return rounds


def on_policy_rounds(
    specialists: Sequence[DiffusionPolicy],
    windows: tuple,
    policy: DiffusionPolicy,
    weights,
    config: DiffusionPolicyConfig,
    generator: torch.Generator,
    *,
    env_ids: Sequence[str],
    rounds: int,
    round_seeds: Callable[[int, int], np.ndarray],
    horizon: int,
    run_name: str = "two_stage_on_policy",
    progress: Callable[[str], None] | None = None,
    seconds: float = 0.0,
) -> PolicyFit:
    """``two_stage_on_policy`` from its round-0 generalist on: R rounds of roll out,
    pseudo-label, aggregate, refit.

    A caller that fits round 0 in a stack with other generalists (``fit_pooled``) continues
    here; ``generator`` must be the one that drew ``windows`` (``offline_windows``) and then
    fitted ``policy`` on them, in that order, so the result is ``two_stage_on_policy``'s bit
    for bit.

    Args:
        windows: round 0's (obs, actions) per environment, from ``offline_windows``.
        policy: the generalist fitted on ``windows``.
        seconds: time already spent (added to ``fit_seconds``).
        the others: as in ``two_stage_on_policy``.
    """
    check_rounds(rounds)
    started = time.perf_counter() - seconds
    obs, actions = [[o] for o in windows[0]], [[a] for a in windows[1]]

    def refit(r: int) -> DiffusionPolicy:
        pooled = ([np.concatenate(o) for o in obs], [np.concatenate(a) for a in actions])
        fit = fit_pooled([pooled], weights, config, [generator], run_names=[f"{run_name}/round{r}"])
        return fit[0].generalist

    collected = []
    for r in range(1, rounds + 1):
        seeds = [np.asarray(round_seeds(r, k)) for k in range(len(specialists))]
        env_index = np.concatenate([np.full(len(s), k) for k, s in enumerate(seeds)])
        visited = rollout(
            PolicyAgent(policy, generator=generator),
            env_ids,
            env_index,
            np.concatenate(seeds),
            horizon,
        )
        collected.append(visited)
        for k, specialist in enumerate(specialists):
            o, a = pseudo_label(specialist, visited.select(visited.env_index == k), generator)
            obs[k].append(o)
            actions[k].append(a)
        policy = refit(r)
        if progress is not None:
            progress(f"{run_name}: round {r}/{rounds} done")
    total = sum(len(x) for parts in obs for x in parts)
    return PolicyFit(policy, total, time.perf_counter() - started, tuple(collected))
