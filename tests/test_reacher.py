"""The Reacher family (gymnasium's Reacher-v5 in physics variants): gymnasium API, agreement
with Reacher-v5, determinism, input checks, the scripted expert."""

import pickle
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.envs.mujoco import reacher_v5
from gymnasium.utils.env_checker import check_env

from mol_diffusion.policy.reacher import (
    CONTROL_WEIGHT,
    REACHER_IDS,
    REACHER_VARIANTS,
    ReacherExpert,
    ReacherVariantEnv,
    register_reacher_envs,
)

register_reacher_envs()


@pytest.mark.parametrize("env_id", REACHER_IDS)
def test_passes_the_gymnasium_env_checker(env_id):
    # rendering needs OpenGL, which the CI machines lack: every other check runs
    check_env(gym.make(env_id, horizon=50).unwrapped, skip_render_check=True)


def test_ids_map_to_variants_whose_physics_is_in_the_model():
    for variant, env_id in zip(REACHER_VARIANTS, REACHER_IDS, strict=True):
        env = gym.make(env_id, horizon=10).unwrapped
        assert isinstance(env, ReacherVariantEnv)
        p = REACHER_VARIANTS[variant]
        assert env.variant == variant and env.params == p
        np.testing.assert_allclose(env.model.actuator_gear[:, 0], p.gear)
        np.testing.assert_allclose(env.model.dof_damping[:2], p.damping)
        np.testing.assert_allclose(env.model.dof_armature[:2], p.armature)
        np.testing.assert_allclose(env.model.dof_armature[2:], 0.0)  # the target's slides


def test_nominal_variant_is_reacher_v5_with_a_lighter_control_cost():
    """Same observations as gymnasium's own Reacher-v5 for the same seed and actions (the
    nominal physics is reacher.xml's); reward -||tip - target|| - 0.1 ||a||^2 where Reacher-v5
    has weight 1 (gymnasium.envs.mujoco.reacher_v5.ReacherEnv._get_rew)."""
    actions = np.random.default_rng(1).uniform(-1, 1, size=(40, 2))
    ours = gym.make(REACHER_IDS[0], horizon=40).unwrapped
    theirs = gym.make("Reacher-v5").unwrapped
    np.testing.assert_array_equal(ours.reset(seed=3)[0], theirs.reset(seed=3)[0])
    for a in actions:
        obs, reward, *_ = ours.step(a)
        ref, ref_reward, _, _, info = theirs.step(a)
        np.testing.assert_array_equal(obs, ref)
        assert ref_reward == pytest.approx(info["reward_dist"] + info["reward_ctrl"])
        assert reward == pytest.approx(info["reward_dist"] + CONTROL_WEIGHT * info["reward_ctrl"])
        assert reward == pytest.approx(-np.linalg.norm(obs[8:10]) - 0.1 * np.sum(a**2))


@pytest.mark.parametrize("variant", list(REACHER_VARIANTS))
def test_variant_dynamics_are_those_of_reacher_xml_compiled_with_its_values(variant):
    """Away from the elbow's limit, stepping the variant equals stepping a model compiled from
    gymnasium's reacher.xml with the variant's gear, damping and armature written into it."""
    xml = (Path(reacher_v5.__file__).parent / "assets" / "reacher.xml").read_text()
    p = REACHER_VARIANTS[variant]
    xml = xml.replace('armature="1" damping="1"', f'armature="{p.armature}" damping="{p.damping}"')
    xml = xml.replace('gear="200.0"', f'gear="{p.gear}"')
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    env = gym.make(REACHER_IDS[list(REACHER_VARIANTS).index(variant)], horizon=30).unwrapped
    env.reset(seed=5)
    data.qpos[:], data.qvel[:] = env.data.qpos, env.data.qvel
    actions = 0.05 * np.random.default_rng(2).uniform(-1, 1, size=(30, 2))
    for a in actions:
        env.step(a)
        data.ctrl[:] = a
        mujoco.mj_step(model, data, nstep=env.frame_skip)
        assert np.abs(env.data.qpos[1]) < 3.0  # never at the limit
    np.testing.assert_allclose(env.data.qpos, data.qpos, rtol=0, atol=1e-12)
    np.testing.assert_allclose(env.data.qvel, data.qvel, rtol=0, atol=1e-10)


@pytest.mark.parametrize("env_id", REACHER_IDS[1:])
def test_variants_move_differently_under_the_same_actions(env_id):
    actions = np.full((10, 2), 0.3)
    runs = []
    for i in (REACHER_IDS[0], env_id):
        env = gym.make(i, horizon=10).unwrapped
        env.reset(seed=0)
        runs.append(np.stack([env.step(a)[0] for a in actions]))
    assert np.abs(runs[0][-1, 6:8] - runs[1][-1, 6:8]).min() > 0.1  # joint speeds differ


@pytest.mark.parametrize("env_id", REACHER_IDS)
def test_same_seed_gives_identical_observations(env_id):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 2)).astype(np.float32)

    def run() -> np.ndarray:
        env = gym.make(env_id, horizon=30).unwrapped
        obs = [env.reset(seed=7)[0]]
        obs += [env.step(a)[0] for a in actions]
        return np.stack(obs)

    first, second = run(), run()
    assert first.shape == (31, 10)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[0], gym.make(env_id).unwrapped.reset(seed=8)[0])


@pytest.mark.parametrize("env_id", REACHER_IDS)
def test_truncates_exactly_at_the_horizon_and_never_terminates(env_id):
    env = gym.make(env_id, horizon=7).unwrapped
    obs, info = env.reset(seed=0)
    assert set(info) >= {"targets_reached", "clean_goals", "success"} and not info["success"]
    for t in range(1, 8):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == 7)
        assert isinstance(reward, float) and env.observation_space.contains(obs)


def test_bad_arguments_raise_value_errors_naming_them():
    for variant in ("light", ["nominal"], None):
        with pytest.raises(ValueError, match="variant must be one of"):
            ReacherVariantEnv(variant=variant)
    for name, value in (("kp", 0), ("kp", "1"), ("kd", -1.0), ("kd", np.nan), ("p_elbow", 1.5)):
        with pytest.raises(ValueError, match=name):
            ReacherExpert(**{name: value})
    for horizon in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="horizon"):
            ReacherVariantEnv(horizon=horizon)
    env = ReacherVariantEnv()
    env.reset(seed=0)
    for action in (np.zeros(3), np.zeros((2, 1)), np.array([0.0, np.nan]), [np.inf, 0.0]):
        with pytest.raises(ValueError, match="action"):
            env.step(action)


def test_pickling_rebuilds_the_same_variant():
    env = ReacherVariantEnv("heavy", horizon=7)
    copy = pickle.loads(pickle.dumps(env))
    assert (copy.variant, copy.horizon) == ("heavy", 7)
    assert np.array_equal(copy.model.dof_armature, env.model.dof_armature)
    first, _ = env.reset(seed=4)
    again, _ = copy.reset(seed=4)
    assert np.array_equal(first, again)


def _expert_episode(env_id: str, seed: int, horizon: int = 50):
    env = gym.make(env_id, horizon=horizon).unwrapped
    env.reset(seed=seed)
    expert = ReacherExpert()
    expert.reset(env, seed)
    total = 0.0
    for _ in range(horizon):
        action = expert.act(env)
        assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
    assert truncated and not terminated
    return env, expert, total, info, obs


@pytest.mark.parametrize("env_id", REACHER_IDS)
def test_expert_reaches_and_holds_the_target(env_id):
    seeds = [10**6 + i for i in range(20)]
    results = [_expert_episode(env_id, seed) for seed in seeds]
    assert all(info["success"] and info["clean_goals"] == 1 for *_, info, _ in results)
    final = [np.linalg.norm(obs[8:10]) for *_, obs in results]
    assert np.median(final) < 0.01  # it stays on the target
    # against an arm that never moves, from the same resets: better on every episode, and by
    # most of the distance cost (the still arm's return is about -11.3, the expert's -2 to -4)
    still = []
    for seed in seeds:
        env = gym.make(env_id, horizon=50).unwrapped
        env.reset(seed=seed)
        still.append(sum(env.step(np.zeros(2))[1] for _ in range(50)))
    expert = np.array([total for _, _, total, _, _ in results])
    assert np.all(expert > np.array(still))
    assert np.mean(expert - np.array(still)) > 5.0


def test_expert_is_multimodal_in_the_elbow():
    elbows = [np.sign(_expert_episode(REACHER_IDS[0], s, 2)[1].q_goal[1]) for s in range(40)]
    assert set(elbows) == {-1.0, 1.0}
    assert 0.2 <= np.mean(np.array(elbows) == 1) <= 0.8
