"""Diffusion-policy extension: environments, experts, windows, the policy, rollouts, evaluation
and the two-stage procedure (small, fast configurations)."""

import importlib
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from mol_diffusion import NotFittedError
from mol_diffusion.policy import (
    POINT_NAV_IDS,
    DiffusionPolicy,
    DiffusionPolicyConfig,
    ExpertAgent,
    PolicyAgent,
    action_windows,
    observation_windows,
    rollout,
)
from mol_diffusion.policy.data import Trajectories
from mol_diffusion.policy.evaluation import evaluation_rows, wilson_interval
from mol_diffusion.policy.experts import PointNavExpert
from mol_diffusion.policy.two_stage import (
    fit_pooled,
    fit_specialists,
    labeled_only,
    offline_windows,
    on_policy_rounds,
    pooled_weights,
    two_stage_offline,
    two_stage_on_policy,
)

TINY = DiffusionPolicyConfig(width=32, depth=2, steps=60, batch_size=64, inference_steps=5)
EVAL = 10**6 + np.arange(20)


# ---------------------------------------------------------------- environments and experts
@pytest.mark.parametrize("env_id", POINT_NAV_IDS)
def test_point_nav_passes_gymnasiums_checker_and_truncates_at_h(env_id):
    env = gym.make(env_id, horizon=7)
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    assert np.array_equal(obs, again)
    for t in range(7):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated and truncated == (t == 6)
        assert env.observation_space.contains(obs) and "success" in info


def test_point_nav_rejects_bad_arguments():
    for variant in ("nope", ["open"]):
        with pytest.raises(ValueError, match="variant must be one of"):
            gym.make("mol_diffusion/PointNavOpen-v0", variant=variant)
    for name, value in (("speed", 0), ("k", -1.0), ("margin", np.inf), ("clearance", "0.1")):
        with pytest.raises(ValueError, match=name):
            PointNavExpert(**{name: value})
    with pytest.raises(ValueError, match="horizon"):
        gym.make("mol_diffusion/PointNavOpen-v0", horizon=0)
    env = gym.make("mol_diffusion/PointNavOpen-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([np.nan, 0.0]))


def test_experts_succeed_on_the_evaluation_seeds_and_are_multimodal():
    k = np.repeat(np.arange(3), len(EVAL))
    runs = rollout(ExpertAgent(), POINT_NAV_IDS, k, np.tile(EVAL, 3), 200)
    for env in range(3):
        assert runs.success[k == env, -1].mean() >= 0.95
    # first leg of the open environment: the expert passes the obstacle on both sides
    open_x = runs.observations[k == 0, :25, 0]
    side = np.sign(open_x[np.arange(len(open_x)), np.abs(open_x).argmax(axis=1)])
    assert (side < 0).any() and (side > 0).any()


# ---------------------------------------------------------------- windows
def test_windows_follow_the_to_tp_timeline():
    # one episode of T = 4 steps; observation t is [t], action t is [10 t]
    obs = np.arange(5, dtype=np.float32).reshape(1, 5, 1)
    act = (10 * np.arange(4, dtype=np.float32)).reshape(1, 4, 1)
    o = observation_windows(obs, 2)[..., 0]
    a = action_windows(act, 2, 4)[..., 0]
    assert o.tolist() == [[0, 0], [0, 1], [1, 2], [2, 3]]  # o[t-1], o[t]; padded at the start
    # a[t-1] ... a[t+2], clipped at both ends: the executed slice a[To-1:] starts at a[t]
    assert a.tolist() == [[0, 0, 10, 20], [0, 10, 20, 30], [10, 20, 30, 30], [20, 30, 30, 30]]


# ---------------------------------------------------------------- the policy
def test_config_validates_the_horizons():
    with pytest.raises(ValueError, match="action_horizon"):
        DiffusionPolicyConfig(obs_horizon=2, pred_horizon=4, action_horizon=4)
    with pytest.raises(ValueError, match="inference"):
        DiffusionPolicyConfig(inference="euler")
    with pytest.raises(ValueError, match="prediction"):
        DiffusionPolicyConfig(prediction="v")
    DiffusionPolicyConfig(obs_horizon=2, pred_horizon=4, action_horizon=3)  # Ta = Tp - To + 1


@pytest.fixture(scope="module")
def demos():
    return [
        rollout(
            ExpertAgent(),
            POINT_NAV_IDS,
            np.full(2, k),
            100 * k + np.arange(2),
            40,
            action_noise=0.2,
        )
        for k in range(3)
    ]


@pytest.fixture(scope="module")
def fitted(demos):
    d = demos[0]
    obs, act = observation_windows(d.observations, 2), action_windows(d.actions, 2, 8)
    return DiffusionPolicy(TINY).fit(obs, act, generator=torch.Generator().manual_seed(0)), obs


def test_policy_is_seeded_saved_and_checked(fitted, tmp_path):
    policy, obs = fitted
    with pytest.raises(NotFittedError):
        DiffusionPolicy(TINY).act(obs[:2], generator=torch.Generator())
    a = policy.act(obs[:5], generator=torch.Generator().manual_seed(1))
    b = policy.act(obs[:5], generator=torch.Generator().manual_seed(1))
    assert a.shape == (5, TINY.action_horizon, 2) and torch.equal(a, b)
    low, high = policy.net.action_normalizer.low, policy.net.action_normalizer.high
    chunk = policy.predict_chunk(obs[:50], generator=torch.Generator().manual_seed(2))
    assert (chunk >= low - 1e-5).all() and (chunk <= high + 1e-5).all()  # clipped to [-1, 1]
    policy.save(tmp_path / "policy.pt")
    loaded = DiffusionPolicy.load(tmp_path / "policy.pt")
    c = loaded.act(obs[:5], generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, c)  # the normalizers travel with the weights
    with pytest.raises(ValueError, match="obs"):
        policy.act(obs[:, :1], generator=torch.Generator())


def test_fit_rejects_mismatched_data(fitted):
    _, obs = fitted
    with pytest.raises(ValueError, match="actions"):
        DiffusionPolicy(TINY).fit(obs, np.zeros((len(obs), 3, 2)), generator=torch.Generator())
    with pytest.raises(ValueError, match="weights"):
        DiffusionPolicy(TINY).fit(
            obs, np.zeros((len(obs), 8, 2)), -np.ones(len(obs)), generator=torch.Generator()
        )


# ---------------------------------------------------------------- rollouts and evaluation
def test_rollouts_are_reproducible_and_evaluation_is_paired(fitted):
    policy, _ = fitted
    k, seeds = np.array([0, 0, 1]), np.array([10**6, 10**6 + 1, 10**6])
    one = rollout(
        PolicyAgent(policy, generator=torch.Generator().manual_seed(0)), POINT_NAV_IDS, k, seeds, 12
    )
    two = rollout(
        PolicyAgent(policy, generator=torch.Generator().manual_seed(0)), POINT_NAV_IDS, k, seeds, 12
    )
    assert np.array_equal(one.observations, two.observations)
    expert = rollout(ExpertAgent(), POINT_NAV_IDS, k, seeds, 12)
    rows = evaluation_rows(one, expert, [6, 12])
    assert [(r["env"], r["horizon"]) for r in rows] == [(0, 6), (0, 12), (1, 6), (1, 12)]
    first = rows[1]
    gap = expert.returns()[:2] - one.returns()[:2]
    assert math.isclose(first["gap"], gap.mean()) and first["episodes"] == 2
    self_rows = evaluation_rows(expert, expert, [12])
    assert all(r["gap"] == 0 for r in self_rows)
    with pytest.raises(ValueError, match="seeds"):
        evaluation_rows(one, rollout(ExpertAgent(), POINT_NAV_IDS, k, seeds + 1, 12), [12])
    with pytest.raises(ValueError, match="env_index"):
        rollout(ExpertAgent(), POINT_NAV_IDS, [5], [0], 10)


@pytest.mark.parametrize("family", ["point_nav", "reacher", "arm_reach"])
def test_reused_environments_replay_fresh_ones_exactly(family, monkeypatch):
    # rollout borrows idle environments of its process; reset(seed=) must restore everything
    from mol_diffusion.policy import envs as registry

    # the package's ``rollout`` attribute is the function, so fetch the module by name
    rollout_module = importlib.import_module("mol_diffusion.policy.rollout")

    ids = {"point_nav": POINT_NAV_IDS, "reacher": registry.REACHER_IDS}.get(
        family, registry.ARM_REACH_IDS
    )
    k, seeds = np.array([0, 1, 2, 0]), np.array([7, 8, 9, 10])
    # long enough for goals and targets to be reached, so forgotten counters would show
    h, kwargs = {"point_nav": 200}.get(family, 50), {"action_noise": 0.3}
    monkeypatch.setattr(rollout_module, "_IDLE", {})
    fresh = rollout(ExpertAgent(), ids, k, seeds, h, **kwargs)
    assert fresh.goals.any() and fresh.success.any()
    assert sum(map(len, rollout_module._IDLE.values())) == 4  # given back
    rollout(ExpertAgent(), ids, k[::-1], seeds + 100, h)  # other episodes in between
    again = rollout(ExpertAgent(), ids, k, seeds, h, **kwargs)
    assert sum(map(len, rollout_module._IDLE.values())) == 4  # reused, none built
    for name in ("observations", "actions", "rewards", "success", "goals"):
        assert np.array_equal(getattr(fresh, name), getattr(again, name)), name


def test_env_pool_keeps_at_most_its_limit_and_clears(monkeypatch):
    rollout_module = importlib.import_module("mol_diffusion.policy.rollout")
    monkeypatch.setattr(rollout_module, "_IDLE", {})
    monkeypatch.setattr(rollout_module, "POOL_LIMIT", 2)
    k = np.array([0, 0, 0, 1])
    rollout(ExpertAgent(), POINT_NAV_IDS, k, np.arange(4), 5)
    idle = {key[0]: len(envs) for key, envs in rollout_module._IDLE.items()}
    assert idle == {POINT_NAV_IDS[0]: 2, POINT_NAV_IDS[1]: 1}  # the third one was closed
    assert rollout_module.clear_env_pool() == 3
    assert rollout_module._IDLE == {}


def test_wilson_interval_matches_the_closed_form():
    # Wilson (1927): centre (x + z^2/2) / (n + z^2), half-width z sqrt(x(n-x)/n + z^2/4) / (n + z^2)
    z = 1.959963984540054
    for x, n in [(0, 10), (7, 20), (20, 20)]:
        centre = (x + z * z / 2) / (n + z * z)
        half = z * math.sqrt(x * (n - x) / n + z * z / 4) / (n + z * z)
        low, high = wilson_interval(x, n)
        assert math.isclose(low, centre - half, abs_tol=1e-12)
        assert math.isclose(high, centre + half, abs_tol=1e-12)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_a_goal_reached_after_a_contact_on_its_leg_is_not_clean():
    env = gym.make(POINT_NAV_IDS[0], horizon=10).unwrapped
    env.reset(seed=0)
    env.position, env.velocity, env.leg_contacts = np.array([0.0, 0.9]), np.zeros(2), 1
    _, _, _, _, info = env.step(np.array([0.0, 1.0]))  # within 0.15 of B: a goal, not clean
    assert (info["goals_reached"], info["clean_goals"]) == (1, 0)
    env.position, env.velocity = np.array([0.0, -0.9]), np.zeros(2)  # the next leg: no contact
    _, _, _, _, info = env.step(np.array([0.0, -1.0]))
    assert (info["goals_reached"], info["clean_goals"]) == (2, 1)


def test_goal_success_rate_counts_clean_goals_per_expert_goal():
    def runs(goals):  # episodes of 4 steps that end with these clean-goal counts
        b, t = len(goals), 4
        return Trajectories(
            np.zeros((b, t + 1, 6), np.float32),
            np.zeros((b, t, 2), np.float32),
            np.zeros((b, t)),
            np.zeros((b, t), bool),
            np.zeros(b, int),
            np.arange(b),
            np.repeat(np.asarray(goals)[:, None], t, axis=1),
        )

    # a policy ahead of the expert on one episode cannot make up for the other: 3 of 4
    (row,) = evaluation_rows(runs([3, 1]), runs([2, 2]), [4])
    assert (row["successes"], row["success_trials"], row["success_rate"]) == (3, 4, 0.75)
    assert (row["success_low"], row["success_high"]) == wilson_interval(3, 4)
    (none,) = evaluation_rows(runs([1, 0]), runs([0, 0]), [4])  # no expert goal: no rate
    assert math.isnan(none["success_rate"]) and math.isnan(none["success_low"])


# ---------------------------------------------------------------- two-stage
def test_pooled_weights_give_each_environment_its_lambda():
    w = pooled_weights([2, 3, 5], [0.5, 0.3, 0.2])
    assert np.isclose(w[:2].sum(), 0.5) and np.isclose(w[2:5].sum(), 0.3)
    assert np.isclose(w.sum(), 1.0)
    with pytest.raises(ValueError):
        pooled_weights([2, 3], [0.5, 0.3, 0.2])


def test_two_stage_variants_fit_and_on_policy_aggregates(demos):
    gens = [torch.Generator().manual_seed(k) for k in range(3)]
    specialists = fit_specialists(demos, TINY, gens)
    lam = [1 / 3] * 3
    lo = labeled_only(demos, lam, TINY, torch.Generator().manual_seed(5))
    assert lo.num_windows == 3 * 2 * 40
    off = two_stage_offline(specialists, demos, lam, TINY, torch.Generator().manual_seed(6))
    assert off.num_windows == 3 * 2 * 40
    initial = [d.select(np.arange(len(d)) < 1) for d in demos]
    on = two_stage_on_policy(
        specialists,
        initial,
        lam,
        TINY,
        torch.Generator().manual_seed(7),
        env_ids=POINT_NAV_IDS,
        rounds=1,
        round_seeds=lambda r, k: np.array([10**5 + 10 * k + r]),
        horizon=40,
    )
    # one offline trajectory per environment, then one generalist episode per environment
    assert on.num_windows == 3 * 40 + 3 * 40 and len(on.rollouts) == 1
    assert sorted(on.rollouts[0].env_index.tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="rounds"):
        two_stage_on_policy(
            specialists,
            initial,
            lam,
            TINY,
            torch.Generator(),
            env_ids=POINT_NAV_IDS,
            rounds=-1,
            round_seeds=None,
            horizon=40,
        )
    # round 0 fitted in a stack with another generalist, then continued: the same policy
    gen = torch.Generator().manual_seed(7)
    windows = offline_windows(specialists, initial, gen)
    _, round0 = fit_pooled(
        [offline_windows(specialists, demos, torch.Generator().manual_seed(6)), windows],
        lam,
        TINY,
        [torch.Generator().manual_seed(6), gen],
        run_names=["offline", "round0"],
    )
    resumed = on_policy_rounds(
        specialists,
        windows,
        round0.generalist,
        lam,
        TINY,
        gen,
        env_ids=POINT_NAV_IDS,
        rounds=1,
        round_seeds=lambda r, k: np.array([10**5 + 10 * k + r]),
        horizon=40,
    )
    assert resumed.num_windows == on.num_windows
    mine, theirs = (f.generalist.state_dict()["weights"] for f in (on, resumed))
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[key], theirs[key]) for key in mine)


# ---------------------------------------------------------------- experiment config
def test_policy_experiment_config_loads_and_rejects_bad_values(tmp_path):
    from mol_diffusion.config import load_experiment
    from mol_diffusion.kinds.policy import PolicyExperimentConfig, policy_cells

    quick = load_experiment("diffusion_policy", quick=True)
    default = load_experiment("diffusion_policy")
    assert (
        isinstance(quick, PolicyExperimentConfig) and quick.fingerprint() != default.fingerprint()
    )
    assert len(policy_cells(default)) == default.replicates * len(default.n)
    base = (load_experiment.__globals__["paths"].EXPERIMENTS / "diffusion_policy.toml").read_text()
    for old, new, match in [
        ("m = 12", "m = 13", "multiple of rounds"),
        ("replicates = 6", "replicates = 1", "replicates"),
        ("horizons = [25, 50, 100, 200]", "horizons = [25, 400]", "horizons"),
        ("replicates = 6", "replicates = 6\nbogus = 1", "unknown keys"),
        ('envs = "point_nav"', 'envs = "mars"', "envs"),
        ('envs = "point_nav"', 'envs = "point_nav"\ngoal = 1', "family: unknown keys"),
        ("n = [2, 3, 5, 9, 16, 30]", "n = 5", "n must be a list of integers"),
        ('weights = "uniform"', 'weights = "equal"', 'weights must be "uniform"'),
    ]:
        # Every edit must hit the shipped file, or the case would pass without testing anything.
        assert old in base, f"the shipped diffusion_policy.toml no longer contains {old!r}"
        path = tmp_path / f"bad{abs(hash(old)) % 1000}.toml"
        path.write_text(base.replace(old, new, 1))
        with pytest.raises(ValueError, match=match):
            load_experiment(path)
