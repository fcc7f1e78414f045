r"""Point-mass navigation: three environments that look the same and behave differently.

A point mass patrols between two goals, A = (0, -1) and B = (0, 1), around a disc obstacle
that sits between them. Every environment shares the observation and action spaces; what
differs is what the observation does not show (the hidden parameters of ``VARIANTS``):

    open      gain 1.0, drag 0.5, obstacle at (0, 0) radius 0.35
    heavy     gain 0.6, drag 0.3, obstacle at (0, 0) radius 0.35  (weak, slippery actuation)
    shifted   gain 1.4, drag 0.8, obstacle at (0.3, 0.05) radius 0.45  (the left way is shorter)

so one policy without the environment's identity must trade off between them (the
multi-objective problem of the paper with K = 3 environments).

Dynamics (time step dt = 0.1), with action a in [-1, 1]^2:

    v' = clip(v + dt (gain a - drag v), -v_max, v_max),    p' = p + dt v',

then the position is projected out of the obstacle (the inward normal velocity is removed;
this is a *contact*) and clipped to the arena [-1.5, 1.5]^2. When the mass comes within 0.15
of its current goal, the goal switches to the other one.

Observation (6,): position (2), velocity (2), current goal (2). Reward per step: progress
towards the current goal, d_{t-1} - d_t, minus 0.1 per step in contact. An episode never
terminates; it is truncated after ``horizon`` (H) steps. ``info`` carries ``goals_reached``,
``clean_goals`` (goals reached with no contact on the way from the previous goal or the start:
the per-goal success the evaluation counts), ``contacts`` and ``success`` (at least one goal
reached and no contact so far in the episode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mol_diffusion._validation import check_positive_int
from mol_diffusion.policy._checks import check_choice

__all__ = [
    "ARM_REACH_IDS",
    "POINT_NAV_IDS",
    "REACHER_IDS",
    "VARIANTS",
    "PointNavEnv",
    "PointNavParams",
]

GOALS = np.array([[0.0, -1.0], [0.0, 1.0]])
ARENA = 1.5
V_MAX = 2.0
DT = 0.1
GOAL_RADIUS = 0.2
CONTACT_COST = 0.1


@dataclass(frozen=True)
class PointNavParams:
    """Hidden parameters of one environment (none of them is observed)."""

    gain: float
    drag: float
    obstacle: tuple[float, float]
    radius: float
    p_left: float  # how often the scripted expert goes around the obstacle's left side


VARIANTS = {
    "open": PointNavParams(gain=1.0, drag=0.5, obstacle=(0.0, 0.0), radius=0.35, p_left=0.5),
    "heavy": PointNavParams(gain=0.6, drag=0.3, obstacle=(0.0, 0.0), radius=0.35, p_left=0.5),
    "shifted": PointNavParams(gain=1.4, drag=0.8, obstacle=(0.3, 0.05), radius=0.45, p_left=0.8),
}
POINT_NAV_IDS = tuple(f"mol_diffusion/PointNav{v.capitalize()}-v0" for v in VARIANTS)
# the MuJoCo family lives in ``policy.arm`` (imported only when one of its envs is made)
ARM_VARIANT_NAMES = ("a", "b", "c")
ARM_REACH_IDS = tuple(f"mol_diffusion/ArmReach{v.upper()}-v0" for v in ARM_VARIANT_NAMES)
# gymnasium's Reacher-v5 in three physics variants lives in ``policy.reacher`` (same deferral)
REACHER_VARIANT_NAMES = ("nominal", "weak", "heavy")
REACHER_IDS = tuple(f"mol_diffusion/Reacher{v.capitalize()}-v0" for v in REACHER_VARIANT_NAMES)


class PointNavEnv(gym.Env):
    """One point-navigation environment; see the module docstring.

    Args:
        variant: a key of ``VARIANTS``.
        horizon: H, the number of steps after which an episode is truncated.
    """

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, variant: str = "open", horizon: int = 200):
        self.variant = check_choice(variant, VARIANTS, "variant")
        self.params = VARIANTS[variant]
        self.horizon = check_positive_int(horizon, "horizon")
        high = np.array([ARENA, ARENA, V_MAX, V_MAX, ARENA, ARENA], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._center = np.asarray(self.params.obstacle, dtype=np.float64)
        self.position = np.zeros(2)
        self.velocity = np.zeros(2)
        self.goal_index = 1
        self.steps = 0
        self.goals_reached = 0
        self.clean_goals = 0
        self.contacts = 0
        self.leg_contacts = 0

    @property
    def goal(self) -> np.ndarray:
        return GOALS[self.goal_index]

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.position, self.velocity, self.goal]).astype(np.float32)

    def _info(self) -> dict:
        return {
            "goals_reached": self.goals_reached,
            "clean_goals": self.clean_goals,
            "contacts": self.contacts,
            "success": self.goals_reached >= 1 and self.contacts == 0,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = GOALS[0] + self.np_random.uniform(-0.15, 0.15, size=2)
        self.velocity = np.zeros(2)
        self.goal_index = 1
        self.steps = self.goals_reached = self.clean_goals = 0
        self.contacts = self.leg_contacts = 0
        return self._obs(), self._info()

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 2 finite numbers, got {action!r}")
        a = np.clip(a, -1.0, 1.0)
        p = self.params
        before = float(np.linalg.norm(self.position - self.goal))
        v = np.clip(self.velocity + DT * (p.gain * a - p.drag * self.velocity), -V_MAX, V_MAX)
        x = self.position + DT * v
        offset = x - self._center
        dist = math.hypot(offset[0], offset[1])
        contact = dist < p.radius
        if contact:
            normal = offset / dist if dist > 0 else np.array([1.0, 0.0])
            x = self._center + p.radius * normal
            v = v - min(float(v @ normal), 0.0) * normal
        out = np.abs(x) > ARENA
        x = np.clip(x, -ARENA, ARENA)
        v = np.where(out, 0.0, v)
        self.position, self.velocity = x, v
        after = float(np.linalg.norm(x - self.goal))
        reward = before - after - CONTACT_COST * contact
        self.contacts += int(contact)
        self.leg_contacts += int(contact)
        if after < GOAL_RADIUS:
            self.goals_reached += 1
            self.clean_goals += self.leg_contacts == 0
            self.leg_contacts = 0
            self.goal_index = 1 - self.goal_index
        self.steps += 1
        truncated = self.steps >= self.horizon
        return self._obs(), float(reward), False, truncated, self._info()


def register_envs() -> None:
    """Register every environment under the ``mol_diffusion/`` namespace (idempotent)."""
    families = [
        (VARIANTS, POINT_NAV_IDS, "mol_diffusion.policy.envs:PointNavEnv"),
        (ARM_VARIANT_NAMES, ARM_REACH_IDS, "mol_diffusion.policy.arm:ArmReachEnv"),
        (REACHER_VARIANT_NAMES, REACHER_IDS, "mol_diffusion.policy.reacher:ReacherVariantEnv"),
    ]
    for variants, ids, entry_point in families:
        for variant, env_id in zip(variants, ids, strict=True):
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=entry_point,
                    kwargs={"variant": variant},
                    disable_env_checker=True,
                )
