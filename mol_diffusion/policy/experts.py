r"""Scripted experts: a planner that picks a way around the obstacle plus a feedback controller.

Point navigation (``PointNavExpert``): whenever the goal changes, the planner picks the side
on which to pass the obstacle, west with probability ``p_left`` of the environment (0.5 where
both ways are equally long: the expert is *multimodal*), and places two via-points on that
side, radius + ``margin`` from the obstacle's centre, one before and one after it along the
direction of travel. It steers to the next waypoint (via, via, goal), skipping ahead as soon as
the straight line to the waypoint after it clears the obstacle's edge by ``clearance``.
The feedback law tracks a desired velocity and inverts the (privileged) dynamics:

    v_des = speed * unit(target - p)   (the mass drives through each goal, which then switches)
    a     = clip((k (v_des - v) + drag v) / gain, -1, 1).

Experts read the environment's hidden parameters and state (they are scripted, not learned);
their side choices come from their own ``numpy`` generator seeded by the episode's seed, so an
episode is reproducible from its seed alone.
"""

from __future__ import annotations

import numpy as np

from mol_diffusion._validation import check_positive_float
from mol_diffusion.policy.envs import GOALS, PointNavEnv

__all__ = ["PointNavExpert", "make_expert"]


def _clearance(start: np.ndarray, end: np.ndarray, center: np.ndarray) -> float:
    """Distance from ``center`` to the segment start -> end."""
    seg = end - start
    u = np.clip((center - start) @ seg / max(seg @ seg, 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(start + u * seg - center))


class PointNavExpert:
    """Planner + feedback controller for ``PointNavEnv``; see the module docstring.

    Args:
        speed: cruising speed.
        k: velocity-tracking gain (1 / s).
        margin: distance of the via-point from the obstacle's edge.
        clearance: how far the straight line to the goal must stay from the obstacle's edge
            before the expert heads for the goal.
    """

    def __init__(
        self,
        speed: float = 0.8,
        k: float = 4.0,
        margin: float = 0.25,
        clearance: float = 0.1,
    ):
        self.speed, self.k = check_positive_float(speed, "speed"), check_positive_float(k, "k")
        self.margin = check_positive_float(margin, "margin", allow_zero=True)
        self.clearance = check_positive_float(clearance, "clearance", allow_zero=True)
        self._rng = np.random.default_rng(0)
        self._planned_for: int | None = None
        self._waypoints: list[np.ndarray] = []
        self._next = 0

    def reset(self, env: PointNavEnv, seed: int) -> None:
        self._rng = np.random.default_rng((int(seed), 0x5EED))
        self._planned_for = None

    def act(self, env: PointNavEnv) -> np.ndarray:
        p = env.params
        center = np.asarray(p.obstacle)
        if self._planned_for != env.goal_index:  # a new goal: choose the way around
            self._planned_for = env.goal_index
            side = -1.0 if self._rng.random() < p.p_left else 1.0
            travel = env.goal - GOALS[1 - env.goal_index]
            travel = travel / np.linalg.norm(travel)
            beside = center + side * (p.radius + self.margin) * np.array([1.0, 0.0])
            reach = 0.6 * (p.radius + self.margin) * travel
            self._waypoints = [beside - reach, beside + reach, env.goal.copy()]
            self._next = 0
        # skip ahead while the following waypoint is in plain view (or this one is reached)
        while self._next < 2 and (
            np.linalg.norm(self._waypoints[self._next] - env.position) < 0.15
            or _clearance(env.position, self._waypoints[self._next + 1], center)
            >= p.radius + self.clearance
        ):
            self._next += 1
        target = self._waypoints[self._next]
        offset = target - env.position
        dist = float(np.linalg.norm(offset))
        v_des = self.speed * offset / max(dist, 1e-9)
        accel = self.k * (v_des - env.velocity)
        return np.clip((accel + p.drag * env.velocity) / p.gain, -1.0, 1.0)


def make_expert(env):
    """The scripted expert for ``env`` (an unwrapped environment of a registered family)."""
    if isinstance(env, PointNavEnv):
        return PointNavExpert()
    from mol_diffusion.policy.arm import ArmReachEnv, ArmReachExpert

    if isinstance(env, ArmReachEnv):
        return ArmReachExpert()
    from mol_diffusion.policy.reacher import ReacherExpert, ReacherVariantEnv

    if isinstance(env, ReacherVariantEnv):
        return ReacherExpert()
    raise ValueError(f"no scripted expert for environment {type(env).__name__}")
