"""Diffusion-policy extension: environments, scripted experts, the policy, rollouts and the
two-stage procedure for imitation (specialists per environment, one generalist).

Importing the package registers the environments under the gymnasium namespace
``mol_diffusion/``: ``gymnasium.make("mol_diffusion/PointNavOpen-v0", horizon=200)``, and the
MuJoCo family ``mol_diffusion/ArmReach{A,B,C}-v0`` (module ``policy.arm``, which imports mujoco
only when one of its environments is made).
"""

from mol_diffusion.policy.data import Trajectories, action_windows, observation_windows
from mol_diffusion.policy.diffusion_policy import (
    DiffusionPolicy,
    DiffusionPolicyConfig,
    RangeNormalizer,
)
from mol_diffusion.policy.envs import (
    ARM_REACH_IDS,
    POINT_NAV_IDS,
    VARIANTS,
    PointNavEnv,
    register_envs,
)
from mol_diffusion.policy.experts import PointNavExpert, make_expert
from mol_diffusion.policy.rollout import ExpertAgent, PolicyAgent, rollout

register_envs()

__all__ = [
    "ARM_REACH_IDS",
    "POINT_NAV_IDS",
    "VARIANTS",
    "DiffusionPolicy",
    "DiffusionPolicyConfig",
    "ExpertAgent",
    "PointNavEnv",
    "PointNavExpert",
    "PolicyAgent",
    "RangeNormalizer",
    "Trajectories",
    "action_windows",
    "make_expert",
    "observation_windows",
    "register_envs",
    "rollout",
]
