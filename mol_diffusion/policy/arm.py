r"""Planar arm reaching on MuJoCo: three environments that look the same and behave differently.

A two-link arm (links of ``LINK`` = 0.1 m and 0.5 kg, hinge joints about z with a rotor inertia
of 0.005 kg m^2, no gravity, links that do not collide) moves its fingertip to target points in
the plane. Every environment shares the observation and action spaces; what differs is what the
observation does not show (the hidden parameters of ``ARM_VARIANTS``):

    a   gear 1.0, damping 0.05, targets on the right  (polar angle within 90 deg of 0)
    b   gear 0.5, damping 0.2,  targets on the right  (weak, sluggish actuation)
    c   gear 1.5, damping 0.05, targets mostly on the left  (within 108 deg of 180 deg)

so one policy without the environment's identity must trade off between them (the
multi-objective problem of the paper with K = 3 environments).

Dynamics: MuJoCo integrates the rigid-body equations M(q) q'' + c(q, q') = gear a - damping q'
with a time step of 0.01 s; one environment step holds the action a in [-1, 1]^2 (the joint
torques before the gear) for ``FRAME_SKIP`` = 5 steps, i.e. 0.05 s. Targets are drawn from the
environment's ``np_random``, uniformly in area over the variant's sector of the annulus
``TARGET_RADII`` = [0.07, 0.18] m around the shoulder, at least ``MIN_JUMP`` from the
fingertip. When the fingertip comes within ``REACH_RADIUS`` = 0.02 m of its target, a new
target is drawn (the task is continuing).

Observation (10,): cos q1, sin q1, cos q2, sin q2, q1', q2' (clipped to +-``QDOT_MAX``),
fingertip xy (2), target xy (2). Reward per step: progress of the fingertip towards the current
target, d_{t-1} - d_t. An episode never terminates; it is truncated after ``horizon`` (H)
steps. ``info`` carries ``targets_reached``, ``clean_goals`` (the same count: the arm has no
contacts) and ``success`` (at least one target reached).

``ArmReachExpert`` is the scripted expert: a planner that solves the inverse kinematics of each
new target and picks one of its two solutions (elbow +1 or -1) at random, plus a computed-torque
feedback law that tracks the chosen joint angles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from mol_diffusion._validation import check_positive_float, check_positive_int
from mol_diffusion.policy._checks import check_choice, check_probability
from mol_diffusion.policy.envs import ARM_REACH_IDS, ARM_VARIANT_NAMES, register_envs

__all__ = [
    "ARM_REACH_IDS",
    "ARM_VARIANTS",
    "ArmParams",
    "ArmReachEnv",
    "ArmReachExpert",
    "register_arm_envs",
]

LINK = 0.1  # length of each link (m)
TIMESTEP = 0.01  # MuJoCo time step (s)
FRAME_SKIP = 5  # MuJoCo steps per environment step: 0.05 s
QDOT_MAX = 20.0  # joint speeds are clipped to +-QDOT_MAX (rad/s) in the observation
REACH_RADIUS = 0.02  # a target is reached within this distance (m)
TARGET_RADII = (0.07, 0.18)  # targets lie in this annulus around the shoulder (m)
MIN_JUMP = 0.05  # a new target is at least this far from the fingertip (m)
POS_BOUND = 0.25  # bound of fingertip and target coordinates in the observation space (m)

_MJCF = f"""
<mujoco model="planar_arm">
  <option timestep="{TIMESTEP}" gravity="0 0 0"/>
  <default>
    <joint type="hinge" axis="0 0 1" damping="0.05" armature="0.005"/>
    <geom type="capsule" size="0.01" mass="0.5" contype="0" conaffinity="0"/>
  </default>
  <worldbody>
    <body name="upper_arm" pos="0 0 0">
      <joint name="shoulder"/>
      <geom name="upper_arm" fromto="0 0 0 {LINK} 0 0"/>
      <body name="forearm" pos="{LINK} 0 0">
        <joint name="elbow"/>
        <geom name="forearm" fromto="0 0 0 {LINK} 0 0"/>
        <site name="fingertip" pos="{LINK} 0 0" size="0.005"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="shoulder" joint="shoulder" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
    <motor name="elbow" joint="elbow" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


@dataclass(frozen=True)
class ArmParams:
    """Hidden parameters of one environment (none of them is observed).

    Attributes:
        gear: actuator gear, torque = gear * action (N m per unit action), both joints.
        damping: viscous joint damping (N m s / rad), both joints.
        target_angle: polar angle (rad) of the centre of the targets' sector.
        target_spread: half-width (rad) of the targets' sector.
    """

    gear: float
    damping: float
    target_angle: float
    target_spread: float


ARM_VARIANTS = {
    "a": ArmParams(gear=1.0, damping=0.05, target_angle=0.0, target_spread=math.pi / 2),
    "b": ArmParams(gear=0.5, damping=0.2, target_angle=0.0, target_spread=math.pi / 2),
    "c": ArmParams(gear=1.5, damping=0.05, target_angle=math.pi, target_spread=0.6 * math.pi),
}
if tuple(ARM_VARIANTS) != ARM_VARIANT_NAMES:  # the ids are registered without importing mujoco
    raise ImportError("ARM_VARIANTS and envs.ARM_VARIANT_NAMES disagree")


class ArmReachEnv(gym.Env):
    """One planar-arm reaching environment; see the module docstring.

    Args:
        variant: a key of ``ARM_VARIANTS``.
        horizon: H, the number of steps after which an episode is truncated.
    Attributes:
        model, data: the MuJoCo model (with the variant's gear and damping) and its state.
        target: (2,) the current target.
        targets_reached: targets reached so far in the episode.
    """

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, variant: str = "a", horizon: int = 200):
        self.variant = check_choice(variant, ARM_VARIANTS, "variant")
        self.params = ARM_VARIANTS[variant]
        self.horizon = check_positive_int(horizon, "horizon")
        self.model = mujoco.MjModel.from_xml_string(_MJCF)
        self.model.actuator_gear[:, 0] = self.params.gear
        self.model.dof_damping[:] = self.params.damping
        self.data = mujoco.MjData(self.model)
        self._tip = self.model.site("fingertip").id
        high = np.array(
            [1.0, 1.0, 1.0, 1.0, QDOT_MAX, QDOT_MAX, *[POS_BOUND] * 4], dtype=np.float32
        )
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.target = np.zeros(2)
        self.steps = 0
        self.targets_reached = 0

    @property
    def fingertip(self) -> np.ndarray:
        """(2,) xy of the fingertip (m)."""
        return self.data.site_xpos[self._tip, :2].copy()

    def _draw_target(self) -> np.ndarray:
        """A target in the variant's sector, at least ``MIN_JUMP`` from the fingertip."""
        p = self.params
        tip = self.fingertip
        lo, hi = TARGET_RADII
        for _ in range(100):
            r = math.sqrt(self.np_random.uniform(lo**2, hi**2))
            angle = p.target_angle + self.np_random.uniform(-p.target_spread, p.target_spread)
            target = r * np.array([math.cos(angle), math.sin(angle)])
            if np.linalg.norm(target - tip) >= MIN_JUMP:
                break
        return target

    def _obs(self) -> np.ndarray:
        q, qdot = self.data.qpos, np.clip(self.data.qvel, -QDOT_MAX, QDOT_MAX)
        trig = [math.cos(q[0]), math.sin(q[0]), math.cos(q[1]), math.sin(q[1])]
        return np.concatenate([trig, qdot, self.fingertip, self.target]).astype(np.float32)

    def _info(self) -> dict:
        return {
            "targets_reached": self.targets_reached,
            "clean_goals": self.targets_reached,
            "success": self.targets_reached >= 1,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self.np_random.uniform(-0.1, 0.1, size=2)
        mujoco.mj_forward(self.model, self.data)
        self.target = self._draw_target()
        self.steps = self.targets_reached = 0
        return self._obs(), self._info()

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 2 finite numbers, got {action!r}")
        before = float(np.linalg.norm(self.fingertip - self.target))
        self.data.ctrl[:] = np.clip(a, -1.0, 1.0)
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        mujoco.mj_forward(self.model, self.data)  # kinematics and inertia of the new state
        after = float(np.linalg.norm(self.fingertip - self.target))
        if after < REACH_RADIUS:
            self.targets_reached += 1
            self.target = self._draw_target()
        self.steps += 1
        truncated = self.steps >= self.horizon
        return self._obs(), before - after, False, truncated, self._info()


def _inverse_kinematics(target: np.ndarray) -> list[tuple[float, float, int]]:
    """Joint angles (q1, q2) that put the fingertip on ``target`` (2,), with their elbow sign.

    Two solutions (elbow +1: q2 > 0, elbow -1: q2 < 0) inside the annulus of reach; a single
    one (the nearest reachable point, q2 = 0 or pi) on or outside its edges.
    """
    x, y = float(target[0]), float(target[1])
    cos_q2 = (x * x + y * y - 2 * LINK**2) / (2 * LINK**2)
    if abs(cos_q2) >= 1.0:
        q2 = 0.0 if cos_q2 >= 1.0 else math.pi
        return [(math.atan2(y, x), q2, 1)]
    solutions = []
    for elbow in (1, -1):
        q2 = elbow * math.acos(cos_q2)
        q1 = math.atan2(y, x) - math.atan2(LINK * math.sin(q2), LINK + LINK * math.cos(q2))
        solutions.append((q1, q2, elbow))
    return solutions


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped to [-pi, pi)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


class ArmReachExpert:
    """Planner + feedback controller for ``ArmReachEnv``; see the module docstring.

    Planner: whenever the target changes, solve the inverse kinematics and pick one of its two
    solutions, elbow +1 with probability ``p_elbow`` (0.5: the expert is *multimodal*; the same
    target is reached with either elbow), from the expert's own generator seeded by the
    episode's seed; fall back to the reachable solution when there is only one.

    Feedback: computed-torque PD in joint space towards the chosen angles q*, with the angle
    errors wrapped to [-pi, pi]. It reads the (privileged) MuJoCo state and the hidden gear and
    damping:

        q''_des = kp wrap(q* - q) - kd q'
        a       = clip((M(q) q''_des + c(q, q') + damping q') / gear, -1, 1).

    Args:
        kp: stiffness of the joint-space PD (1 / s^2).
        kd: damping of the joint-space PD (1 / s).
        p_elbow: probability of choosing the elbow +1 solution.
    Attributes:
        elbow: the elbow sign (+1 or -1) of the current plan (0 before the first plan).
        q_goal: (2,) the joint angles of the current plan.
    """

    def __init__(self, kp: float = 100.0, kd: float = 20.0, p_elbow: float = 0.5):
        self.kp = check_positive_float(kp, "kp")
        self.kd = check_positive_float(kd, "kd", allow_zero=True)
        self.p_elbow = check_probability(p_elbow, "p_elbow")
        self._rng = np.random.default_rng(0)
        self._planned_for: int | None = None
        self.elbow = 0
        self.q_goal = np.zeros(2)

    def reset(self, env: ArmReachEnv, seed: int) -> None:
        self._rng = np.random.default_rng((int(seed), 0x5EED))
        self._planned_for = None
        self.elbow = 0

    def act(self, env: ArmReachEnv) -> np.ndarray:
        """The action (2,) in [-1, 1] for the environment's current state."""
        if self._planned_for != env.targets_reached:  # a new target: choose the elbow
            self._planned_for = env.targets_reached
            solutions = _inverse_kinematics(env.target)
            choice = solutions[0]
            if len(solutions) == 2 and self._rng.random() >= self.p_elbow:
                choice = solutions[1]
            self.q_goal = np.array(choice[:2])
            self.elbow = choice[2]
        model, data, p = env.model, env.data, env.params
        qdot = data.qvel.copy()
        accel = self.kp * _wrap(self.q_goal - data.qpos) - self.kd * qdot
        torque = np.zeros(2)
        mujoco.mj_mulM(model, data, torque, accel)
        torque += data.qfrc_bias + p.damping * qdot
        return np.clip(torque / p.gear, -1.0, 1.0)


def register_arm_envs() -> None:
    """Register the arm environments under the ``mol_diffusion/`` namespace (idempotent; the
    package does it on import, through ``envs.register_envs``, without importing mujoco)."""
    register_envs()
