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


def test_alpha_sigma_are_alpha_and_sigma_exactly():
    sched = VPSchedule(0.2, 15.0)
    for dtype in (torch.float32, torch.float64):
        t = torch.linspace(1e-3, 1.0, 97, dtype=dtype)
        alpha, sigma = sched.alpha_sigma(t)
        assert torch.equal(alpha, sched.alpha(t)) and torch.equal(sigma, sched.sigma(t))


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


def exact_gaussian_eps(sched, mu: float, var: float):
    """Exact noise predictor for x0 ~ N(mu, var): E[eps | x_t] with abar = alphas_cumprod[t] is
    sqrt(1 - abar) (x_t - sqrt(abar) mu) / (abar var + 1 - abar) (Gaussian conditioning)."""

    def eps(x, t):
        abar = sched.alphas_cumprod[t]
        return (1 - abar).sqrt() * (x - abar.sqrt() * mu) / (abar * var + 1 - abar)

    return eps


def run(sched, eps_fn, x, generator):
    for t in sched.timesteps.tolist():
        x = sched.step(eps_fn(x, t), t, x, generator=generator).prev_sample
    return x


def ddpm_output_law(abars: list[float], mu: float, var: float) -> tuple[float, float]:
    """Exact mean and variance of the strided DDPM sampler's output for x0 ~ N(mu, var) with the
    exact noise predictor, started from N(0, 1). Derived independently of the scheduler code by
    Gaussian conditioning: with x0_hat = E[x0 | x_t] and, for a step t -> s,
    x_s | x_t, x0 ~ N(sqrt(ab_s) x0 + k (x_t - sqrt(ab_t) x0), (1 - ab_s) - k^2 (1 - ab_t)),
    k = (1 - ab_s) sqrt(ab_t / ab_s) / (1 - ab_t). The last step returns x0_hat."""
    m, v = 0.0, 1.0
    for i, ab_t in enumerate(abars):
        gain = (
            math.sqrt(ab_t) * var / (ab_t * var + 1 - ab_t)
        )  # x0_hat = mu + gain (x_t - sqrt(ab_t) mu)
        a0, b0 = gain, mu - gain * math.sqrt(ab_t) * mu
        if i + 1 == len(abars):
            return a0 * m + b0, a0**2 * v
        ab_s = abars[i + 1]
        k = (1 - ab_s) * math.sqrt(ab_t / ab_s) / (1 - ab_t)
        c0 = math.sqrt(ab_s) - k * math.sqrt(ab_t)  # coefficient of x0_hat
        a, b = c0 * a0 + k, c0 * b0
        m, v = a * m + b, a**2 * v + (1 - ab_s) - k**2 * (1 - ab_t)
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("kind", "steps"), [("linear", 1000), ("linear", 20), ("cosine", 50)])
def test_ddpm_ancestral_sampling_has_the_exact_strided_output_law(kind, steps):
    """Every intermediate step matters: the output law is compared with an independent exact
    recursion (coarse strides make DDPM under-dispersed, and the recursion knows by how much).
    Tolerance: 5 Monte Carlo standard errors."""
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule=kind)
    sched.set_timesteps(steps)
    mu, var, n = 3.0, 0.25, 40_000
    g = torch.Generator().manual_seed(0)
    x = run(
        sched,
        exact_gaussian_eps(sched, mu, var),
        torch.randn(n, 1, generator=g, dtype=torch.float64),
        g,
    )
    abars = [float(sched.alphas_cumprod[t]) for t in sched.timesteps.tolist()]
    mean, variance = ddpm_output_law(abars, mu, var)
    assert abs(float(x.mean()) - mean) < 5 * math.sqrt(variance / n)
    assert abs(float(x.var()) - variance) < 5 * variance * math.sqrt(2 / n)
    if steps == 1000:  # with all steps the sampler is (nearly) exact for the target itself
        assert mean == pytest.approx(mu, abs=0.01) and variance == pytest.approx(var, rel=0.02)


def test_ddim_eta_one_equals_ddpm_and_eta_zero_is_deterministic():
    mu, var = -1.0, 0.5
    ddpm, ddim1, ddim0 = DDPMScheduler(), DDIMScheduler(eta=1.0), DDIMScheduler(eta=0.0)
    for sched in (ddpm, ddim1, ddim0):
        sched.set_timesteps(50)
    x0 = torch.randn(1000, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = run(ddpm, exact_gaussian_eps(ddpm, mu, var), x0, torch.Generator().manual_seed(2))
    b = run(ddim1, exact_gaussian_eps(ddim1, mu, var), x0, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    c1 = run(ddim0, exact_gaussian_eps(ddim0, mu, var), x0, torch.Generator().manual_seed(3))
    c2 = run(ddim0, exact_gaussian_eps(ddim0, mu, var), x0, torch.Generator().manual_seed(4))
    torch.testing.assert_close(c1, c2, rtol=0, atol=0)
    # The deterministic DDIM map of N(0, 1) through the exact predictor lands near N(mu, var).
    assert abs(float(c1.mean()) - mu) < 0.1 and float(c1.var()) == pytest.approx(var, rel=0.15)


def test_set_timesteps_starts_from_the_noisiest_level():
    sched = DDPMScheduler(num_train_timesteps=1000)
    sched.set_timesteps(1)
    assert sched.timesteps.tolist() == [999]
    sched.set_timesteps(4)
    assert sched.timesteps.tolist() == [999, 749, 499, 249]
    # linear betas are rescaled by 1000 / T, so abar_T ~ 4e-5 for any T
    assert float(DDPMScheduler(num_train_timesteps=50).alphas_cumprod[-1]) < 1e-4


def test_ddpm_step_rejects_nan_and_a_missing_generator():
    sched = DDPMScheduler(num_train_timesteps=10)
    x = torch.zeros(2, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="model_output must be finite"):
        sched.step(x + float("nan"), 9, x, generator=torch.Generator())
    with pytest.raises(ValueError, match="generator must be a torch"):
        sched.step(x, 9, x)


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
