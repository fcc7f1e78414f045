r"""Batched rollouts: many episodes, in several environments, stepped together.

An *agent* sees the last To observations of every running episode at once and returns a chunk
of Ta actions per episode, which are executed before it is asked again (Ta = 1 for the
step-by-step experts). Batching the agent's call across all episodes (and all environments of
a family) is what makes policy rollouts cheap: one network call per chunk for the whole batch.

Episodes run for exactly H steps (the environments never terminate; they truncate at H).
``action_noise`` adds N(0, sigma^2) to the executed actions (clipped to [-1, 1]) while the
agent's own, clean actions are recorded: demonstrations with injected noise visit the states a
slightly wrong learner would reach and label them with the expert's correction (Laskey et al.,
2017, "DART"). Each episode's noise comes from a generator seeded by its own seed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch

from mol_diffusion._validation import check_generator, check_positive_int
from mol_diffusion.policy.data import Trajectories
from mol_diffusion.policy.experts import make_expert

__all__ = [
    "POOL_LIMIT",
    "ExpertAgent",
    "PolicyAgent",
    "RandomAgent",
    "clear_env_pool",
    "make_envs",
    "rollout",
]


# Idle environments of this process by (id, H). Building one costs about 6 ms (the MuJoCo
# ones compile their model), which a policy cell would pay ~1700 times; every ``reset(seed=)``
# restores the whole episode state (tested: a reused environment replays a fresh one's
# episode exactly), so ``rollout`` borrows environments here and returns them. At most
# POOL_LIMIT stay idle per (id, H) (more are closed); ``clear_env_pool`` closes them all. The
# lock makes borrowing safe from several threads (processes each have their own pool).
POOL_LIMIT = 256
_IDLE: dict[tuple[str, int], list] = {}
_LOCK = threading.Lock()


def make_envs(env_ids: Sequence[str], env_index, horizon: int) -> list:
    """One unwrapped environment per episode: ``env_ids[env_index[b]]`` with horizon H (new
    ones; ``rollout`` reuses idle ones instead)."""
    return [gym.make(env_ids[int(k)], horizon=horizon).unwrapped for k in env_index]


def clear_env_pool() -> int:
    """Close every idle environment ``rollout`` keeps for reuse; returns how many it closed."""
    with _LOCK:
        idle = [env for envs in _IDLE.values() for env in envs]
        _IDLE.clear()
    for env in idle:
        env.close()
    return len(idle)


def _borrow(env_ids: Sequence[str], env_index, horizon: int) -> list:
    """Like ``make_envs``, taking idle environments first; give them back with ``_give_back``."""
    envs, missing = [], []
    with _LOCK:
        for b, k in enumerate(env_index):
            idle = _IDLE.get((env_ids[int(k)], horizon))
            envs.append(idle.pop() if idle else None)
            if envs[-1] is None:
                missing.append(b)
    for b in missing:  # built outside the lock
        envs[b] = make_envs(env_ids, [env_index[b]], horizon)[0]
    return envs


def _give_back(envs: list, env_ids: Sequence[str], env_index, horizon: int) -> None:
    surplus = []
    with _LOCK:
        for env, k in zip(envs, env_index, strict=True):
            idle = _IDLE.setdefault((env_ids[int(k)], horizon), [])
            (idle if len(idle) < POOL_LIMIT else surplus).append(env)
    for env in surplus:
        env.close()


class ExpertAgent:
    """The scripted expert of every episode's environment (To = 1, Ta = 1)."""

    obs_horizon = 1
    action_horizon = 1

    def reset(self, envs: list, seeds: np.ndarray) -> None:
        self.experts = [make_expert(env) for env in envs]
        for expert, env, seed in zip(self.experts, envs, seeds, strict=True):
            expert.reset(env, int(seed))

    def act(self, obs: np.ndarray, envs: list) -> np.ndarray:
        return np.stack([e.act(env) for e, env in zip(self.experts, envs, strict=True)])[:, None]


class RandomAgent:
    """Uniform random actions in [-1, 1] (To = 1, Ta = 1): the normalized score's zero.

    Each episode draws from a generator seeded by its own reset seed, so the random reference
    of an evaluation episode is the same in every run, worker and batch composition.
    """

    obs_horizon = 1
    action_horizon = 1

    def reset(self, envs: list, seeds: np.ndarray) -> None:
        self.rngs = [np.random.default_rng((int(s), 0x5A4D)) for s in seeds]

    def act(self, obs: np.ndarray, envs: list) -> np.ndarray:
        return np.stack(
            [
                rng.uniform(-1, 1, env.action_space.shape)
                for rng, env in zip(self.rngs, envs, strict=True)
            ]
        )[:, None]


class PolicyAgent:
    """Learned policies acting in batch.

    Args:
        policies: one policy for every episode (a generalist), or a list or tuple with one
            policy per environment of the family (specialists), used by each episode's
            ``env_index``. A policy is anything with ``config.obs_horizon``,
            ``config.action_horizon`` and ``act(obs (B, To, O), generator=) -> (B, Ta, A)``:
            a ``DiffusionPolicy`` or a baseline of ``policy.baselines``.
        generator: seeds the policies' sampling noise.
    Attributes:
        seconds: wall time spent in the policies' calls (for latency).
        calls: number of batched calls.
    """

    def __init__(self, policies, *, generator: torch.Generator):
        self.single = not isinstance(policies, list | tuple)
        if not self.single and not policies:
            raise ValueError("policies must be one policy or a non-empty list, got an empty list")
        self.policies = policies
        self.generator = check_generator(generator)
        first = policies if self.single else policies[0]
        self.obs_horizon = first.config.obs_horizon
        self.action_horizon = first.config.action_horizon
        self.seconds = 0.0
        self.calls = 0

    def reset(self, envs: list, seeds: np.ndarray) -> None:
        self.env_index = np.asarray([getattr(env, "family_index", 0) for env in envs])

    def act(self, obs: np.ndarray, envs: list) -> np.ndarray:
        started = time.perf_counter()
        if self.single:
            out = self.policies.act(obs, generator=self.generator).numpy()
        else:
            out = np.zeros((obs.shape[0], self.action_horizon, envs[0].action_space.shape[0]))
            for k, policy in enumerate(self.policies):
                rows = np.flatnonzero(self.env_index == k)
                if rows.size:
                    out[rows] = policy.act(obs[rows], generator=self.generator).numpy()
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return out


def rollout(
    agent,
    env_ids: Sequence[str],
    env_index,
    seeds,
    horizon: int,
    *,
    action_noise: float = 0.0,
) -> Trajectories:
    """Run B episodes for H steps each.

    Args:
        agent: an ``ExpertAgent``, ``RandomAgent``, ``PolicyAgent`` or anything with
            ``obs_horizon``, ``action_horizon``, ``reset(envs, seeds)`` and ``act(obs (B, To,
            O), envs) -> (B, Ta, A)``. The environments it is given are borrowed from a pool
            and lent again once ``rollout`` returns: an agent must not step or keep using
            them after that.
        env_ids: the family's registered ids; ``env_index`` (B,) picks one per episode.
        seeds: (B,) reset seeds (use seeds disjoint from training seeds for evaluation).
        horizon: H.
        action_noise: standard deviation of the noise added to executed actions.
    Returns:
        ``Trajectories`` whose actions are the agent's (clean) actions.
    """
    env_index, seeds = np.asarray(env_index), np.asarray(seeds)
    for name, value in (("env_index", env_index), ("seeds", seeds)):
        if value.size and not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {value.dtype}")
    env_index, seeds = env_index.astype(np.int64), seeds.astype(np.int64)
    if seeds.size and seeds.min() < 0:
        raise ValueError(f"seeds must be integers >= 0, got {seeds.min()}")
    if env_index.ndim != 1 or seeds.shape != env_index.shape:
        raise ValueError(
            f"env_index and seeds must be 1-d of one length, got {env_index.shape}, {seeds.shape}"
        )
    if env_index.size == 0:
        raise ValueError("env_index and seeds must hold at least one episode, got none")
    if env_index.size and (env_index.min() < 0 or env_index.max() >= len(env_ids)):
        raise ValueError(f"env_index must lie in [0, {len(env_ids)}), got {env_index}")
    h = check_positive_int(horizon, "horizon")
    if not (np.isfinite(action_noise) and action_noise >= 0):
        raise ValueError(f"action_noise must be a finite number >= 0, got {action_noise!r}")
    envs = _borrow(env_ids, env_index, h)
    try:
        return _run(agent, envs, env_index, seeds, h, action_noise)
    finally:
        _give_back(envs, env_ids, env_index, h)


def _run(agent, envs, env_index, seeds, h, action_noise) -> Trajectories:
    """``rollout``'s episodes on the (validated) environments ``envs``."""
    for env, k in zip(envs, env_index, strict=True):
        env.family_index = int(k)
    b = len(envs)
    first = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]
    agent.reset(envs, seeds)
    obs = np.zeros((b, h + 1, first[0].shape[0]), dtype=np.float32)
    obs[:, 0] = first
    actions = np.zeros((b, h, envs[0].action_space.shape[0]), dtype=np.float32)
    rewards = np.zeros((b, h))
    success = np.zeros((b, h), dtype=bool)
    goals = np.zeros((b, h), dtype=np.int64)
    noise_rngs = [np.random.default_rng((int(s), 0xA11CE)) for s in seeds]
    to = agent.obs_horizon
    t = 0
    while t < h:
        history = obs[:, np.clip(np.arange(t - to + 1, t + 1), 0, None)]
        chunk = np.asarray(agent.act(history, envs))
        for j in range(min(chunk.shape[1], h - t)):
            actions[:, t] = chunk[:, j]
            for i, env in enumerate(envs):
                a = chunk[i, j]
                if action_noise > 0:
                    a = np.clip(a + action_noise * noise_rngs[i].standard_normal(a.shape), -1, 1)
                o, r, _, _, info = env.step(a)
                obs[i, t + 1], rewards[i, t], success[i, t] = o, r, info["success"]
                goals[i, t] = info["clean_goals"]
            t += 1
    return Trajectories(obs, actions, rewards, success, env_index, seeds, goals)
