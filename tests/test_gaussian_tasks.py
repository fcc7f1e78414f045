"""Exact ground truth of the Gaussian task families."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mol_diffusion import make_gaussian_family, make_misspecified_family

families = st.builds(
    lambda k, d, dc, seed, sep, gamma: make_gaussian_family(
        k, d, dc, seed, condition_separation=sep, nonlinearity=gamma
    ),
    k=st.integers(1, 4),
    d=st.integers(1, 3),
    dc=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    sep=st.floats(0.0, 4.0),
    gamma=st.sampled_from([0.0, 0.7]),
)


def simplex(k: int):
    return st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k).map(
        lambda v: torch.tensor(v, dtype=torch.float64) / sum(v)
    )


def query(fam, seed, batch=6):
    g = torch.Generator().manual_seed(seed)
    c = fam.sample_conditions(int(torch.randint(fam.num_tasks, (1,), generator=g)), batch, g)
    x_t = 2 * torch.randn(batch, fam.dim, generator=g, dtype=torch.float64)
    t = 0.01 + 0.99 * torch.rand(batch, generator=g, dtype=torch.float64)
    return x_t, c, t


@given(fam=families, data=st.data(), seed=st.integers(0, 1000))
def test_pareto_score_is_the_gradient_of_the_pareto_log_density(fam, data, seed):
    weights = data.draw(simplex(fam.num_tasks))
    x_t, c, t = query(fam, seed)
    x_t.requires_grad_(True)
    (grad,) = torch.autograd.grad(fam.pareto_log_prob(x_t, c, t, weights).sum(), x_t)
    torch.testing.assert_close(
        fam.pareto_score(x_t.detach(), c, t, weights), grad, rtol=1e-9, atol=1e-9
    )


@given(fam=families, seed=st.integers(0, 1000))
def test_task_log_prob_matches_scipy(fam, seed):
    # Independent reference: scipy's multivariate normal with the closed-form noised moments.
    x_t, c, t = query(fam, seed, batch=3)
    for k in range(fam.num_tasks):
        mean, cov = fam.noised_moments(k, c, t)
        ref = [
            stats.multivariate_normal(mean[i].numpy(), cov[i].numpy()).logpdf(x_t[i].numpy())
            for i in range(3)
        ]
        torch.testing.assert_close(
            fam.task_log_prob(k, x_t, c, t), torch.tensor(ref, dtype=torch.float64)
        )
    for k in range(fam.num_tasks):
        q_k = stats.multivariate_normal(fam.cond_mean[k].numpy(), fam.cond_cov[k].numpy())
        ref_q = torch.tensor([q_k.logpdf(ci) for ci in c.numpy()], dtype=torch.float64)
        torch.testing.assert_close(fam.cond_log_prob(c)[k], ref_q)


@given(fam=families, seed=st.integers(0, 1000))
def test_unit_weights_recover_the_task(fam, seed):
    """lambda = e_k makes the Pareto target task k itself, at every c."""
    x_t, c, t = query(fam, seed)
    for k in range(fam.num_tasks):
        e_k = torch.zeros(fam.num_tasks, dtype=torch.float64)
        e_k[k] = 1
        torch.testing.assert_close(fam.pareto_score(x_t, c, t, e_k), fam.task_score(k, x_t, c, t))
        torch.testing.assert_close(
            fam.pareto_log_prob(x_t, c, t, e_k), fam.task_log_prob(k, x_t, c, t)
        )


def test_dominant_condition_law_selects_its_task():
    """With well separated condition laws, at c = mu_k the Pareto score is task k's score
    (posterior weight of the other tasks below 1e-6) for any interior weights."""
    fam = make_gaussian_family(3, 2, 2, seed=3, condition_separation=12.0)
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(5, 2, generator=g, dtype=torch.float64)
    t = torch.full((5,), 0.5, dtype=torch.float64)
    for k in range(3):
        c = fam.cond_mean[k].expand(5, 2)
        r = fam.pareto_posterior(x_t, c, t, [0.2, 0.3, 0.5])
        assert float(r[k].min()) > 1 - 1e-6
        torch.testing.assert_close(
            fam.pareto_score(x_t, c, t, [0.2, 0.3, 0.5]),
            fam.task_score(k, x_t, c, t),
            atol=1e-4,
            rtol=1e-5,
        )


@given(fam=families, data=st.data(), seed=st.integers(0, 1000))
def test_relabeling_tasks_with_their_weights_changes_nothing(fam, data, seed):
    weights = data.draw(simplex(fam.num_tasks))
    perm = data.draw(st.permutations(range(fam.num_tasks)))
    x_t, c, t = query(fam, seed)
    permuted = fam.permute(perm)
    w_perm = weights[list(perm)]
    torch.testing.assert_close(
        permuted.pareto_score(x_t, c, t, w_perm), fam.pareto_score(x_t, c, t, weights)
    )
    torch.testing.assert_close(
        permuted.pareto_log_prob(x_t, c, t, w_perm), fam.pareto_log_prob(x_t, c, t, weights)
    )


def test_sampling_matches_the_conditional_law():
    fam = make_misspecified_family(2, 2, 3, seed=5)
    g = torch.Generator().manual_seed(0)
    c0 = fam.sample_conditions(1, 1, g)
    c = c0.expand(100_000, 3)
    x = fam.sample_given(1, c, g)
    # Moments of N(m_1(c0), Sigma_1); tolerances are 6 Monte Carlo standard errors.
    se = fam.noise_cov[1].diagonal().sqrt() / math.sqrt(1e5)
    assert ((x.mean(0) - fam.conditional_mean(1, c0)[0]).abs() < 6 * se).all()
    torch.testing.assert_close(torch.cov(x.T), fam.noise_cov[1], atol=0.02, rtol=0.02)
    cs = fam.sample_conditions(0, 100_000, g)
    torch.testing.assert_close(torch.cov(cs.T), fam.cond_cov[0], atol=0.03, rtol=0.03)


def test_factory_is_seeded_and_overlap_knob_moves_the_condition_means():
    a, b = make_gaussian_family(seed=4), make_gaussian_family(seed=4)
    torch.testing.assert_close(a.A, b.A)
    assert not torch.equal(a.A, make_gaussian_family(seed=5).A)
    assert (
        float(make_gaussian_family(seed=4, condition_separation=0.0).cond_mean.abs().max()) == 0.0
    )
    for k, dc in [(3, 2), (4, 3), (2, 2), (3, 1)]:
        means = make_gaussian_family(k, 2, dc, seed=4, condition_separation=5.0).cond_mean
        gaps = torch.cdist(means, means) + 1e9 * torch.eye(k)
        assert float(gaps.min()) == pytest.approx(5.0)
    assert make_gaussian_family().is_linear and not make_misspecified_family().is_linear


def test_misspecified_mean_is_not_affine_in_c():
    fam = make_misspecified_family(1, 2, 2, seed=0)
    c = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    m = fam.conditional_mean(0, c)
    # An affine map has zero second difference along a line.
    assert float((m[2] - 2 * m[1] + m[0]).abs().max()) > 1e-2
    lin = make_gaussian_family(1, 2, 2, seed=0).conditional_mean(0, c)
    assert float((lin[2] - 2 * lin[1] + lin[0]).abs().max()) < 1e-12
