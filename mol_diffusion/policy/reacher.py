r"""Gymnasium's MuJoCo Reacher (v5) in three physics variants, with a scripted IK + PD expert.

The arm, its target, observation (10,) and reward are those of gymnasium's ``Reacher-v5``
(``gymnasium.envs.mujoco.reacher_v5.ReacherEnv``): a two-link planar arm (links of 0.1 m and
0.11 m to the fingertip) with one target per episode, drawn uniformly in the disc of radius
0.2 m around the shoulder; observation cos q (2), sin q (2), target xy (2), q' (2), fingertip
minus target xy (2); reward per step -||fingertip - target|| - ``CONTROL_WEIGHT`` ||a||^2. What
the variants change is what the observation does not show: the model's actuator gear, joint
damping and rotor inertia (armature) of both arm joints (``REACHER_VARIANTS``):

    nominal   gear 200, damping 1, armature 1    (Reacher-v5's own model)
    weak      gear 80,  damping 2, armature 1    (weak, sluggish actuation)
    heavy     gear 200, damping 0.5, armature 3  (three times the rotor inertia)

The links' own inertia (at most about 1e-3 kg m^2) is negligible beside the armature, so each joint
obeys nearly armature q'' = gear a - damping q' and the same observation calls for actions of
different size in each variant: one policy without the variant's identity has to trade off
between them (the multi-objective problem of the paper with K = 3 environments).

The variants' values are written into the compiled model (``actuator_gear``, ``dof_damping``,
``dof_armature``) after gymnasium builds it from reacher.xml, without recomputing the
constants MuJoCo derives at compile time: ``dof_invweight0``, which scales the softness of the
elbow's joint-limit constraint, stays the one of armature 1 in the heavy variant. Away from
the limit (|q2| < 3) the dynamics are those of a model compiled with the variant's values;
when the elbow hits the limit, the heavy variant's limit is scaled as in the nominal model (a
random policy's mean return moves by 7e-4 if it is recomputed; the expert never reaches the
limit). This is part of the registered environment; recomputing it would change the heavy
environment and needs a new confirmatory run.

Changed from Reacher-v5, and why: the control cost weight is 0.1 instead of 1, because at
weight 1 a uniformly random policy (the normalized score's zero, E||a||^2 = 2/3 per step) is
dominated by its control cost, so that a policy that never moves scores 0.83 / 1.04 / 1.15 of
the expert (nominal / weak / heavy, normalized, on the experiment's evaluation seeds): above
the expert in two variants; the episode is truncated after ``horizon`` (H) steps by the environment
itself, as in this package's other families (50 in Reacher-v5). ``info`` adds
``targets_reached`` and ``clean_goals`` (1 once the fingertip has come within
``REACH_RADIUS`` of the target: the per-goal success the evaluation counts; the arm has no
contacts) and ``success`` (the same, as a flag).

``ReacherExpert``: inverse kinematics of the target with one of its two elbow solutions picked
at random (so the expert is *multimodal*), then computed-torque PD in joint space that reads
the privileged MuJoCo state and the variant's hidden gear and damping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv

from mol_diffusion._validation import check_positive_float, check_positive_int
from mol_diffusion.policy._checks import check_choice, check_probability
from mol_diffusion.policy.envs import REACHER_IDS, REACHER_VARIANT_NAMES, register_envs

__all__ = [
    "REACHER_IDS",
    "REACHER_VARIANTS",
    "ReacherExpert",
    "ReacherParams",
    "ReacherVariantEnv",
]

LINKS = (0.1, 0.11)  # shoulder to elbow, elbow to fingertip (m), from Reacher-v5's reacher.xml
JOINT1_LIMIT = 3.0  # |q2| <= 3 rad (reacher.xml)
CONTROL_WEIGHT = 0.1
REACH_RADIUS = 0.02  # a target counts as reached within this distance (m)


@dataclass(frozen=True)
class ReacherParams:
    """Hidden physics of one variant, for both arm joints (none of it is observed).

    Attributes:
        gear: actuator gear, torque = gear * action (N m per unit action).
        damping: viscous joint damping (N m s / rad).
        armature: rotor inertia added to each joint (kg m^2).
    """

    gear: float
    damping: float
    armature: float


REACHER_VARIANTS = {
    "nominal": ReacherParams(gear=200.0, damping=1.0, armature=1.0),
    "weak": ReacherParams(gear=80.0, damping=2.0, armature=1.0),
    "heavy": ReacherParams(gear=200.0, damping=0.5, armature=3.0),
}
if tuple(REACHER_VARIANTS) != REACHER_VARIANT_NAMES:  # the ids are registered without mujoco
    raise ImportError("REACHER_VARIANTS and envs.REACHER_VARIANT_NAMES disagree")


class ReacherVariantEnv(ReacherEnv):
    """Reacher-v5 with a variant's physics and horizon; see the module docstring.

    Args:
        variant: a key of ``REACHER_VARIANTS``.
        horizon: H, the number of steps after which an episode is truncated.
        render_mode: Reacher-v5's (``None``, ``"rgb_array"``, ...; rendering needs OpenGL).
    Attributes:
        params: the variant's ``ReacherParams``.
        targets_reached: 1 once the fingertip came within ``REACH_RADIUS`` of the target.
    """

    def __init__(self, variant: str = "nominal", horizon: int = 50, render_mode: str | None = None):
        self.variant = check_choice(variant, REACHER_VARIANTS, "variant")
        self.params = REACHER_VARIANTS[variant]
        self.horizon = check_positive_int(horizon, "horizon")
        super().__init__(reward_control_weight=CONTROL_WEIGHT, render_mode=render_mode)
        # Reacher-v5 records its own arguments for pickling; record this class's instead
        utils.EzPickle.__init__(self, variant, horizon, render_mode)
        p = self.params
        self.model.actuator_gear[:, 0] = p.gear
        self.model.dof_damping[:2] = p.damping
        self.model.dof_armature[:2] = p.armature
        self.steps = 0
        self.targets_reached = 0

    @property
    def target(self) -> np.ndarray:
        """(2,) xy of the target (m)."""
        return self.data.qpos[2:4].copy()

    def _distance(self) -> float:
        vec = self.get_body_com("fingertip") - self.get_body_com("target")
        return float(np.linalg.norm(vec[:2]))

    def _info(self) -> dict:
        return {
            "targets_reached": self.targets_reached,
            "clean_goals": self.targets_reached,
            "success": self.targets_reached >= 1,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, _ = super().reset(seed=seed, options=options)
        self.steps = self.targets_reached = 0
        return obs, self._info()

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 2 finite numbers, got {action!r}")
        obs, reward, _, _, info = super().step(np.clip(a, -1.0, 1.0))
        if self._distance() < REACH_RADIUS:
            self.targets_reached = 1
        self.steps += 1
        return obs, reward, False, self.steps >= self.horizon, {**info, **self._info()}


def _inverse_kinematics(target: np.ndarray) -> list[tuple[float, float]]:
    """Joint angles (q1, q2) that put the fingertip on ``target`` (2,): two solutions (q2 > 0
    and q2 < 0) inside the annulus of reach, one (the nearest reachable point) outside it."""
    l1, l2 = LINKS
    x, y = float(target[0]), float(target[1])
    cos_q2 = (x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if abs(cos_q2) >= 1.0:
        q2 = 0.0 if cos_q2 >= 1.0 else JOINT1_LIMIT
        return [(math.atan2(y, x), q2)]
    solutions = []
    for elbow in (1, -1):
        q2 = elbow * min(math.acos(cos_q2), JOINT1_LIMIT)
        q1 = math.atan2(y, x) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
        solutions.append((q1, q2))
    return solutions


class ReacherExpert:
    """Planner + feedback controller for ``ReacherVariantEnv``; see the module docstring.

    At the first step of an episode the planner solves the inverse kinematics of the target
    and picks the elbow q2 > 0 solution with probability ``p_elbow``, from the expert's own
    generator seeded by the episode's seed. The feedback law is computed-torque PD in joint
    space, with the shoulder's angle error wrapped to [-pi, pi] (the elbow is limited to
    |q2| <= 3, so its error is not wrapped):

        q''_des = kp (q* - q) - kd q'
        a       = clip((M(q) q''_des + c(q, q') + damping q') / gear, -1, 1).

    Args:
        kp: stiffness of the joint-space PD (1 / s^2).
        kd: damping of the joint-space PD (1 / s).
        p_elbow: probability of the q2 > 0 solution.
    Attributes:
        q_goal: (2,) the joint angles of the plan.
    """

    def __init__(self, kp: float = 150.0, kd: float = 25.0, p_elbow: float = 0.5):
        self.kp = check_positive_float(kp, "kp")
        self.kd = check_positive_float(kd, "kd", allow_zero=True)
        self.p_elbow = check_probability(p_elbow, "p_elbow")
        self._rng = np.random.default_rng(0)
        self.q_goal: np.ndarray | None = None

    def reset(self, env: ReacherVariantEnv, seed: int) -> None:
        self._rng = np.random.default_rng((int(seed), 0x5EED))
        self.q_goal = None

    def act(self, env: ReacherVariantEnv) -> np.ndarray:
        """The action (2,) in [-1, 1] for the environment's current state."""
        if self.q_goal is None:
            solutions = _inverse_kinematics(env.target)
            choice = solutions[0]
            if len(solutions) == 2 and self._rng.random() >= self.p_elbow:
                choice = solutions[1]
            self.q_goal = np.array(choice)
        model, data, p = env.model, env.data, env.params
        q, qdot = data.qpos[:2], data.qvel[:2]
        error = self.q_goal - q
        error[0] = (error[0] + math.pi) % (2 * math.pi) - math.pi
        accel = np.zeros(model.nv)
        accel[:2] = self.kp * error - self.kd * qdot
        torque = np.zeros(model.nv)
        mujoco.mj_mulM(model, data, torque, accel)
        torque = torque[:2] + data.qfrc_bias[:2] + p.damping * qdot
        return np.clip(torque / p.gear, -1.0, 1.0)


def register_reacher_envs() -> None:
    """Register the Reacher variants under ``mol_diffusion/`` (idempotent; the package does it
    on import, through ``envs.register_envs``, without importing mujoco)."""
    register_envs()
