"""Samplers driven by exact scores reproduce the closed-form target."""

import math

import pytest
import torch

from mol_diffusion import (
    LinearGaussianScore,
    affine_moments,
    ddim,
    make_gaussian_family,
    make_misspecified_family,
    probability_flow,
    reverse_sde,
)

N = 20_000


def mixture_moments(fam, c0, weights):
    """Mean and covariance of p_{lambda, t_min}(. | c0): a Gaussian mixture with weights
    r_k proportional to lambda_k q_k(c0) (closed form)."""
    t = torch.full((1,), fam.schedule.t_min, dtype=torch.float64)
    log_r = torch.log(torch.tensor(weights, dtype=torch.float64)) + fam.cond_log_prob(c0)[:, 0]
    r = torch.softmax(log_r, 0)
    means, covs = zip(*(fam.noised_moments(k, c0, t) for k in range(fam.num_tasks)), strict=True)
    means, covs = torch.cat(means), torch.cat(covs)
    mean = r @ means
    centered = means - mean
    cov = (r[:, None, None] * (covs + centered[:, :, None] * centered[:, None, :])).sum(0)
    return mean, cov, r


@pytest.mark.parametrize(
    ("sampler", "steps"),
    [(reverse_sde, 1000), (probability_flow, 200), (ddim, 200)],
)
def test_exact_pareto_score_reproduces_the_mixture_moments(sampler, steps):
    """A non-Gaussian (two-component) target: the mixture at a condition between two tasks.
    Tolerance: 6 Monte Carlo standard errors plus 0.03 for time discretization."""
    fam = make_misspecified_family(2, 2, 2, seed=0, condition_separation=1.0)
    weights = [0.4, 0.6]
    c0 = fam.cond_mean.mean(0, keepdim=True)
    mean, cov, r = mixture_moments(fam, c0, weights)
    assert 0.05 < float(r.min())  # both components matter
    score = lambda x_t, c, t: fam.pareto_score(x_t, c, t, weights)  # noqa: E731
    x = sampler(
        score, c0.expand(N, 2), 2, fam.schedule, torch.Generator().manual_seed(1), steps=steps
    )
    se = cov.diagonal().sqrt() / math.sqrt(N)
    assert ((x.mean(0) - mean).abs() < 6 * se + 0.03).all(), (x.mean(0), mean)
    torch.testing.assert_close(
        torch.cov(x.T), cov, atol=0.05 * float(cov.diagonal().max()) + 0.03, rtol=0.05
    )


def test_affine_moments_with_the_exact_score_give_the_target():
    """Continuous-time moment ODEs driven by the exact task score and started at the true p_1
    end at p_{t_min}(. | c) (RK4 with 1000 steps: errors ~1e-8)."""
    fam = make_gaussian_family(2, 3, 2, seed=4)
    c = fam.sample_conditions(1, 4, torch.Generator().manual_seed(0))
    at = lambda t: torch.full((4,), t, dtype=torch.float64)  # noqa: E731
    mean_ref, cov_ref = fam.noised_moments(1, c, at(fam.schedule.t_min))
    start = fam.noised_moments(1, c, at(1.0))
    for stochastic in (True, False):
        mean, cov = affine_moments(
            lambda c, t: fam.task_affine(1, c, t),
            c,
            3,
            fam.schedule,
            stochastic=stochastic,
            initial=start,
        )
        torch.testing.assert_close(mean, mean_ref, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(cov, cov_ref, atol=1e-6, rtol=1e-6)
    # From the samplers' N(0, I) start, the SDE forgets the mismatch; the ODE keeps ~alpha(1) |m|.
    mean_sde, _ = affine_moments(lambda c, t: fam.task_affine(1, c, t), c, 3, fam.schedule)
    torch.testing.assert_close(mean_sde, mean_ref, atol=1e-3, rtol=0)


def test_affine_moments_predict_the_sampler_law_of_a_misfit_model():
    """For an affine score that is not the process's score (a specialist fitted on 15 pairs),
    the reverse SDE's output is still Gaussian with the moment-ODE mean and covariance."""
    fam = make_gaussian_family(1, 2, 2, seed=5)
    g = torch.Generator().manual_seed(2)
    model = LinearGaussianScore().fit(*fam.sample(0, 15, g), generator=g)
    c0 = fam.sample_conditions(0, 1, g)
    mean, cov = affine_moments(model.affine, c0, 2, fam.schedule)
    x = model.sample(c0.expand(N, 2), generator=g, steps=1000)
    se = cov[0].diagonal().sqrt() / math.sqrt(N)
    assert ((x.mean(0) - mean[0]).abs() < 6 * se + 0.01).all()
    torch.testing.assert_close(torch.cov(x.T), cov[0], atol=0.03, rtol=0.05)


def test_linear_specialist_exact_sampling_matches_its_model():
    fam = make_gaussian_family(1, 2, 2, seed=5)
    g = torch.Generator().manual_seed(3)
    model = LinearGaussianScore().fit(*fam.sample(0, 50, g), generator=g)
    c0 = fam.sample_conditions(0, 1, g)
    x = model.sample_exact(c0.expand(N, 2), generator=g)
    torch.testing.assert_close(x.mean(0), model.mean(c0)[0], atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), model.Sigma, atol=0.03, rtol=0.05)


def test_samplers_reject_bad_steps_and_report_divergence():
    fam = make_gaussian_family(1, 1, 1, seed=0)
    c = torch.zeros(3, 1, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="steps"):
        reverse_sde(lambda x, c, t: x, c, 1, fam.schedule, g, steps=0)
    with pytest.raises(Exception, match="NaN/inf"):
        probability_flow(lambda x, c, t: x * float("inf"), c, 1, fam.schedule, g, steps=3)


@pytest.mark.parametrize("sampler", [reverse_sde, probability_flow])
@pytest.mark.parametrize("kind", ["linear", "random_features", "mlp"])
def test_model_sample_is_the_sampler_on_its_validated_score(sampler, kind):
    """ScoreModelBase.sample skips the per-step input checks of ``score`` (c is checked once)
    and computes what depends on c alone once per run (``_score_given``); it gives the same
    draws as the sampler run on the public, validating ``score``."""
    from mol_diffusion import MLPScore, RandomFeatureScore

    fam = make_gaussian_family(1, 2, 2, seed=1)
    g = torch.Generator().manual_seed(0)
    model = {
        "linear": LinearGaussianScore,
        "random_features": lambda: RandomFeatureScore(8),
        "mlp": lambda: MLPScore(8, 1, steps=5),
    }[kind]()
    model.fit(*fam.sample(0, 40, g), generator=g)
    c = fam.sample_conditions(0, 30, g)
    fast = model.sample(c, generator=torch.Generator().manual_seed(4), steps=20, sampler=sampler)
    slow = sampler(model.score, c, 2, model.schedule, torch.Generator().manual_seed(4), steps=20)
    assert torch.equal(fast, slow)
