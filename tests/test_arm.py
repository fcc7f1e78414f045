"""The MuJoCo planar-arm family: gymnasium API, determinism, input checks, the scripted expert."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mol_diffusion.policy.arm import (
    ARM_REACH_IDS,
    ARM_VARIANTS,
    ArmReachEnv,
    ArmReachExpert,
    register_arm_envs,
)

register_arm_envs()


@pytest.mark.parametrize("env_id", ARM_REACH_IDS)
def test_passes_the_gymnasium_env_checker(env_id):
    check_env(gym.make(env_id, horizon=50).unwrapped)


def test_registration_is_idempotent_and_maps_ids_to_variants():
    register_arm_envs()
    for variant, env_id in zip(ARM_VARIANTS, ARM_REACH_IDS, strict=True):
        env = gym.make(env_id, horizon=10).unwrapped
        assert isinstance(env, ArmReachEnv)
        assert env.variant == variant and env.params == ARM_VARIANTS[variant]
        assert env.model.actuator_gear[0, 0] == pytest.approx(env.params.gear)
        assert env.model.dof_damping[1] == pytest.approx(env.params.damping)


@pytest.mark.parametrize("env_id", ARM_REACH_IDS)
def test_same_seed_gives_identical_observations(env_id):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 2)).astype(np.float32)

    def run() -> np.ndarray:
        env = gym.make(env_id, horizon=100).unwrapped
        obs = [env.reset(seed=7)[0]]
        obs += [env.step(a)[0] for a in actions]
        return np.stack(obs)

    first, second = run(), run()
    assert first.shape == (31, 10) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[0], gym.make(env_id).unwrapped.reset(seed=8)[0])


@pytest.mark.parametrize("env_id", ARM_REACH_IDS)
def test_truncates_exactly_at_the_horizon_and_never_terminates(env_id):
    env = gym.make(env_id, horizon=7).unwrapped
    obs, info = env.reset(seed=0)
    assert set(info) >= {"targets_reached", "success"} and not info["success"]
    for t in range(1, 8):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == 7)
        assert isinstance(reward, float) and env.observation_space.contains(obs)


def test_bad_arguments_raise_value_errors_naming_them():
    for variant in ("d", {"a"}):
        with pytest.raises(ValueError, match="variant must be one of"):
            ArmReachEnv(variant=variant)
    for name, value in (("kp", -2.0), ("kd", "1"), ("p_elbow", -0.1)):
        with pytest.raises(ValueError, match=name):
            ArmReachExpert(**{name: value})
    for horizon in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="horizon"):
            ArmReachEnv(horizon=horizon)
    env = ArmReachEnv()
    env.reset(seed=0)
    for action in (np.zeros(3), np.zeros((2, 1)), np.array([0.0, np.nan]), [np.inf, 0.0]):
        with pytest.raises(ValueError, match="action"):
            env.step(action)


@pytest.mark.parametrize("env_id", ARM_REACH_IDS)
def test_expert_reaches_its_targets(env_id):
    seeds = [10**6 + i for i in range(20)]
    successes, reached = [], []
    for seed in seeds:
        env = gym.make(env_id, horizon=200).unwrapped
        obs, info = env.reset(seed=seed)
        expert = ArmReachExpert()
        expert.reset(env, seed)
        for _ in range(200):
            action = expert.act(env)
            assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
            obs, reward, terminated, truncated, info = env.step(action)
            assert not terminated and np.isfinite(reward) and np.all(np.isfinite(obs))
        assert truncated
        successes.append(info["success"])
        reached.append(info["targets_reached"])
    assert np.mean(successes) >= 0.95
    assert np.mean(reached) >= 5  # several targets per episode


def test_expert_is_multimodal_in_the_elbow():
    env = gym.make(ARM_REACH_IDS[0], horizon=200).unwrapped
    choices = []
    for seed in range(10):
        env.reset(seed=seed)
        expert = ArmReachExpert()
        expert.reset(env, seed)
        planned = -1
        while len(choices) < 40 and env.steps < env.horizon:
            action = expert.act(env)
            if env.targets_reached != planned:
                planned = env.targets_reached
                choices.append(expert.elbow)
            env.step(action)
    assert len(choices) == 40
    assert set(choices) == {-1, 1}
    assert 0.2 <= np.mean(np.array(choices) == 1) <= 0.8
