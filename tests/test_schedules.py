"""Noise schedules: closed forms of the VP process and the discrete DDPM/DDIM steps."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mol_diffusion import DDIMScheduler, DDPMScheduler, VPSchedule
from mol_diffusion.schedules import cosine_betas, linear_betas


@given(
    beta_min=st.floats(0.01, 1.0),
    beta_span=st.floats(0.0, 30.0),
    t=st.floats(1e-4, 1.0),
)
def test_vp_alpha_is_the_integrated_rate(beta_min, beta_span, t):
    # Reference: alpha(t) = exp(-1/2 int_0^t beta), integrated numerically (trapezoid, 10^4 nodes).
    sched = VPSchedule(beta_min, beta_min + beta_span)
    s = torch.linspace(0, t, 10_001, dtype=torch.float64)
    integral = torch.trapezoid(sched.beta(s), s)
    tt = torch.tensor(t, dtype=torch.float64)
    assert float(sched.alpha(tt)) == pytest.approx(math.exp(-0.5 * float(integral)), rel=1e-8)
    assert float(sched.alpha(tt) ** 2 + sched.sigma(tt) ** 2) == pytest.approx(1.0, abs=1e-12)


def test_vp_add_noise_has_the_forward_marginal():
    sched = VPSchedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1), 2.0, dtype=torch.float64)
    t = torch.full((200_000,), 0.3, dtype=torch.float64)
    x_t = sched.add_noise(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    a, s = float(sched.alpha(t[0])), float(sched.sigma(t[0]))
    # Mean and std of N(2 alpha, sigma^2); tolerance is 5 Monte Carlo standard errors.
    assert float(x_t.mean()) == pytest.approx(2 * a, abs=5 * s / math.sqrt(2e5))
    assert float(x_t.std()) == pytest.approx(s, rel=5 / math.sqrt(2e5) * 2)


def test_betas_reference_values():
    # Ho et al. (2020), Sec. 4: beta_1 = 1e-4, beta_T = 0.02, T = 1000.
    b = linear_betas(1000)
    assert float(b[0]) == pytest.approx(1e-4) and float(b[-1]) == pytest.approx(0.02)
    # Nichol & Dhariwal (2021), eq. 17: abar_t = f(t)/f(0); check t = T/2 directly.
    c = cosine_betas(1000)
    abar = torch.cumprod(1 - c, 0)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert float(abar[499]) == pytest.approx(f(0.5) / f(0.0), rel=1e-9)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddpm_step_with_the_true_noise_recovers_x0(kind):
    """Feeding the exact noise, pred_original_sample is x0 and the last step returns it."""
    sched = DDPMScheduler(num_train_timesteps=100, beta_schedule=kind)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(8, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(8, 3, generator=g, dtype=torch.float64)
    t = 40
    x_t = sched.add_noise(x0, noise, torch.full((8,), t))
    out = sched.step(noise, t, x_t, generator=g)
    torch.testing.assert_close(out.pred_original_sample, x0)
    assert out.prev_sample.shape == x0.shape


def test_ddpm_sampling_of_a_point_mass_with_the_exact_noise_predictor():
    """Target delta at mu: the exact eps is (x_t - sqrt(abar) mu) / sqrt(1 - abar); sampling
    through every step must land on mu (the last step has no noise)."""
    sched = DDPMScheduler(num_train_timesteps=50)
    sched.set_timesteps(10)
    mu = torch.tensor([[1.5, -0.5]], dtype=torch.float64).expand(4, 2)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 2, generator=g, dtype=torch.float64)
    for t in sched.timesteps.tolist():
        abar = sched.alphas_cumprod[t]
        eps = (x - abar.sqrt() * mu) / (1 - abar).sqrt()
        x = sched.step(eps, t, x, generator=g).prev_sample
    torch.testing.assert_close(x, mu)


def test_ddim_is_deterministic_and_exact_for_a_point_mass():
    sched = DDIMScheduler(num_train_timesteps=1000)
    sched.set_timesteps(20)
    mu = torch.tensor([[0.7]], dtype=torch.float64)
    x = torch.tensor([[2.0]], dtype=torch.float64)
    for t in sched.timesteps.tolist():
        abar = sched.alphas_cumprod[t]
        x = sched.step((x - abar.sqrt() * mu) / (1 - abar).sqrt(), t, x).prev_sample
    torch.testing.assert_close(x, mu)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beta_min": 0.0}, "beta_min"),
        ({"beta_min": 1.0, "beta_max": 0.5}, "beta_max"),
        ({"t_min": 0.0}, "t_min"),
    ],
)
def test_vp_schedule_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VPSchedule(**kwargs)


def test_discrete_schedulers_reject_bad_input():
    with pytest.raises(ValueError, match="beta_schedule"):
        DDPMScheduler(beta_schedule="quadratic")
    with pytest.raises(ValueError, match="num_inference_steps"):
        DDPMScheduler(num_train_timesteps=10).set_timesteps(11)
    with pytest.raises(ValueError, match="timesteps"):
        DDPMScheduler(num_train_timesteps=10).add_noise(
            torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([0, 10])
        )
    with pytest.raises(ValueError, match="eta"):
        DDIMScheduler(eta=-1.0)
