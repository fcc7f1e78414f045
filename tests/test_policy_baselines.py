"""Behaviour-cloning baselines (1-nearest-neighbour, deterministic MLP), the random agent and
the normalized score: what they must do by construction, on small point-navigation data."""

import math

import numpy as np
import pytest
import torch

from mol_diffusion import NotFittedError
from mol_diffusion.policy import (
    POINT_NAV_IDS,
    ExpertAgent,
    PolicyAgent,
    action_windows,
    observation_windows,
    rollout,
)
from mol_diffusion.policy.baselines import (
    BCConfig,
    BCPolicy,
    NearestNeighbourConfig,
    NearestNeighbourPolicy,
    fit_bc_batched,
)
from mol_diffusion.policy.evaluation import evaluation_rows
from mol_diffusion.policy.rollout import RandomAgent

TINY_BC = BCConfig(width=32, depth=2, steps=80, batch_size=64, action_horizon=4)


@pytest.fixture(scope="module")
def demo():
    d = rollout(ExpertAgent(), POINT_NAV_IDS, np.zeros(2, int), np.arange(2), 40, action_noise=0.2)
    return observation_windows(d.observations, 1), action_windows(d.actions, 1, 8)


def test_nearest_neighbour_returns_the_chunk_of_a_training_window(demo):
    obs, act = demo
    policy = NearestNeighbourPolicy(NearestNeighbourConfig(action_horizon=4)).fit(
        obs, act, generator=torch.Generator()
    )
    # a training window is its own nearest neighbour: its stored chunk comes back (to float32
    # normalization round-off)
    chunk = policy.predict_chunk(obs[:7])
    assert torch.allclose(chunk, torch.as_tensor(act[:7]), atol=1e-5)
    assert policy.act(obs[:7]).shape == (7, 4, 2)
    assert torch.equal(policy.act(obs[:7]), chunk[:, :4])
    # a zero-weight window is not data: its chunk can no longer come back
    weights = np.ones(len(obs))
    weights[3] = 0
    without = NearestNeighbourPolicy(NearestNeighbourConfig()).fit(
        obs, act, weights, generator=torch.Generator()
    )
    assert without.num_params == (len(obs) - 1) * (1 * 6 + 8 * 2)  # To O + Tp A per window
    assert not torch.allclose(without.predict_chunk(obs[3:4])[0], torch.as_tensor(act[3]))


def test_bc_policy_is_deterministic_seeded_and_fits_its_data(demo):
    obs, act = demo
    one = BCPolicy(TINY_BC).fit(obs, act, generator=torch.Generator().manual_seed(0))
    two = BCPolicy(TINY_BC).fit(obs, act, generator=torch.Generator().manual_seed(0))
    other = BCPolicy(TINY_BC).fit(obs, act, generator=torch.Generator().manual_seed(1))
    a = one.act(obs[:9], generator=torch.Generator().manual_seed(5))
    assert a.shape == (9, 4, 2)
    assert torch.equal(a, one.act(obs[:9], generator=torch.Generator().manual_seed(6)))
    assert torch.equal(a, two.act(obs[:9]))
    assert not torch.equal(a, other.act(obs[:9]))
    # fitting lowers the error below that of the mean chunk (the best constant predictor)
    target = torch.as_tensor(act)
    fitted_mse = float(((one.predict_chunk(obs) - target) ** 2).mean())
    constant_mse = float(((target - target.mean(dim=0)) ** 2).mean())
    assert fitted_mse < 0.5 * constant_mse
    assert one.num_params == (6 * 32 + 32) + (32 * 32 + 32) + (32 * 16 + 16)


def test_bc_policies_fitted_as_one_stack_equal_their_single_fits(demo):
    obs, act = demo
    data = [
        (obs, act, None),
        (obs[:50], act[:50], np.linspace(0, 1, 50)),
        (obs[10:], act[10:], None),
    ]
    single = [
        BCPolicy(TINY_BC).fit(o, a, w, generator=torch.Generator().manual_seed(b))
        for b, (o, a, w) in enumerate(data)
    ]
    stacked = fit_bc_batched(
        [BCPolicy(TINY_BC) for _ in data],
        data,
        [torch.Generator().manual_seed(b) for b in range(3)],
    )
    for one, two in zip(single, stacked, strict=True):
        for x, y in zip(one.mlp.state_dict().values(), two.mlp.state_dict().values(), strict=True):
            assert torch.equal(x, y)
        assert torch.equal(one.act(obs[:5]), two.act(obs[:5]))
    gens = [torch.Generator() for _ in range(2)]
    with pytest.raises(ValueError, match="one entry per policy"):
        fit_bc_batched([BCPolicy(TINY_BC)], data[:2], gens[:1])
    with pytest.raises(ValueError, match="share one config"):
        fit_bc_batched([BCPolicy(TINY_BC), BCPolicy(width=8)], data[:2], gens)
    with pytest.raises(ValueError, match=r"data\[1\]: actions"):
        fit_bc_batched([BCPolicy(TINY_BC) for _ in gens], [data[0], (obs, act[:, :3], None)], gens)
    with pytest.raises(ValueError, match=r"generators\[1\] must be a torch.Generator"):
        fit_bc_batched([BCPolicy(TINY_BC) for _ in gens], data[:2], [gens[0], 0])
    with pytest.raises(ValueError, match=r"generators\[1\] is generators\[0\]"):
        fit_bc_batched([BCPolicy(TINY_BC) for _ in gens], data[:2], [gens[0]] * 2)
    twice = BCPolicy(TINY_BC)
    with pytest.raises(ValueError, match=r"policies\[1\] is policies\[0\]"):
        fit_bc_batched([twice, twice], data[:2], gens)
    with pytest.raises(ValueError, match="run_names must hold 2"):
        fit_bc_batched([BCPolicy(TINY_BC) for _ in gens], data[:2], gens, run_names=["a"])
    unfitted = BCPolicy(TINY_BC)
    with pytest.raises(ValueError, match=r"data\[1\]: windows of \(To O, Tp A\)"):
        fit_bc_batched([unfitted, BCPolicy(TINY_BC)], [data[0], (obs[:, :, :4], act, None)], gens)
    with pytest.raises(NotFittedError):  # a failed batch leaves its policies unfitted
        unfitted.act(obs[:2])


def test_baselines_check_their_arguments(demo):
    obs, act = demo
    with pytest.raises(ValueError, match="action_horizon"):
        NearestNeighbourConfig(obs_horizon=2, pred_horizon=4, action_horizon=4)
    with pytest.raises(ValueError, match="lr"):
        BCConfig(lr=0)
    with pytest.raises(ValueError, match="ema_decay"):
        BCConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="config must be a BCConfig"):
        BCPolicy(NearestNeighbourConfig())
    with pytest.raises(NotFittedError):
        BCPolicy(TINY_BC).act(obs[:2])
    with pytest.raises(ValueError, match="actions"):
        BCPolicy(TINY_BC).fit(obs, act[:, :3], generator=torch.Generator())
    with pytest.raises(ValueError, match="weights"):
        BCPolicy(TINY_BC).fit(obs, act, -np.ones(len(obs)), generator=torch.Generator())
    with pytest.raises(ValueError, match="obs"):
        NearestNeighbourPolicy().fit(obs[:, :0], act, generator=torch.Generator())
    fitted = NearestNeighbourPolicy().fit(obs, act, generator=torch.Generator())
    with pytest.raises(ValueError, match="O=6"):
        fitted.act(obs[:, :, :4])


def test_normalized_score_is_zero_for_random_one_for_expert_and_paired(demo):
    obs, act = demo
    k, seeds, h = np.array([0, 0, 2]), 10**6 + np.array([0, 1, 0]), 30
    expert = rollout(ExpertAgent(), POINT_NAV_IDS, k, seeds, h)
    random = rollout(RandomAgent(), POINT_NAV_IDS, k, seeds, h)
    again = rollout(RandomAgent(), POINT_NAV_IDS, k, seeds, h)
    assert np.array_equal(random.actions, again.actions)  # seeded by the episodes' seeds
    assert np.abs(random.actions).max() <= 1
    for r in evaluation_rows(expert, expert, [h], random):
        assert math.isclose(r["normalized_score"], 1.0)
    for r in evaluation_rows(random, expert, [h], random):
        assert math.isclose(r["normalized_score"], 0.0, abs_tol=1e-12)
    nearest = NearestNeighbourPolicy().fit(obs, act, generator=torch.Generator())
    policy = rollout(PolicyAgent(nearest, generator=torch.Generator()), POINT_NAV_IDS, k, seeds, h)
    row = evaluation_rows(policy, expert, [h], random)[0]
    j, j_exp, j_rand = (t.returns()[:2] for t in (policy, expert, random))
    assert math.isclose(
        row["normalized_score"], ((j - j_rand.mean()) / (j_exp.mean() - j_rand.mean())).mean()
    )
    with pytest.raises(ValueError, match="random trajectories"):
        evaluation_rows(policy, expert, [h], rollout(RandomAgent(), POINT_NAV_IDS, k, seeds + 1, h))
    with pytest.raises(ValueError, match="does not exceed"):
        evaluation_rows(policy, random, [h], random)  # a reference that is no better than random


def test_policy_agent_runs_a_baseline_per_environment(demo):
    obs, act = demo
    specialists = [
        NearestNeighbourPolicy().fit(obs, act, generator=torch.Generator()) for _ in range(3)
    ]
    agent = PolicyAgent(specialists, generator=torch.Generator())
    out = rollout(agent, POINT_NAV_IDS, np.array([0, 1, 2]), 10**6 + np.arange(3), 8)
    assert out.actions.shape == (3, 8, 2) and agent.calls == 4  # Ta = 2: four chunks
    with pytest.raises(ValueError, match="non-empty"):
        PolicyAgent([], generator=torch.Generator())
