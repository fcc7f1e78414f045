"""The Gaussian-prior restoration specialist (mol_diffusion/scores/prior.py)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from restoration_data import digit_pairs

from mol_diffusion.schedules import VPSchedule
from mol_diffusion.scores.prior import (
    GaussianPriorScore,
    _stationary_target,
    blur_matrix,
    shrunk_covariance,
)
from mol_diffusion.tasks import Deblur, Denoise, Inpaint


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 40), dim=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_identity_target_is_ledoit_wolf(n, dim, seed):
    # reference: scikit-learn's ledoit_wolf, an independent implementation of Ledoit & Wolf
    # (2004), Section 3.3, on the same (1/n, centred) sample covariance
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim))
    expected, intensity = ledoit_wolf(x)
    mu, sigma, lam = shrunk_covariance(torch.as_tensor(x))
    np.testing.assert_allclose(mu.numpy(), x.mean(0), atol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), expected, rtol=1e-9, atol=1e-12)
    assert lam == pytest.approx(intensity, rel=1e-9, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 40), seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0))
def test_diagonal_target_keeps_variances_and_equal_weights_are_no_weights(n, seed, scale):
    x = torch.as_tensor(np.random.default_rng(seed).normal(size=(n, 6)))
    _, sigma, lam = shrunk_covariance(x, target="diagonal")
    centred = x - x.mean(0)
    torch.testing.assert_close(torch.diagonal(sigma), (centred**2).mean(0))
    assert 0 <= lam <= 1
    _, s_w, lam_w = shrunk_covariance(x, torch.full((n,), scale, dtype=torch.float64))
    _, s_none, lam_none = shrunk_covariance(x)
    torch.testing.assert_close(s_w, s_none)
    assert lam_w == pytest.approx(lam_none)
    assert torch.linalg.eigvalsh(sigma).min() > -1e-12


def test_stationary_target_returns_a_stationary_covariance():
    # a squared-exponential covariance of the pixel grid is translation invariant: the
    # offset-averaged correlation reproduces it
    h, w = 5, 4
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    p = torch.stack([yy.flatten(), xx.flatten()], 1).to(torch.float64)
    cov = 2.0 * torch.exp(-((p[:, None] - p[None]) ** 2).sum(-1) / 3.0)
    torch.testing.assert_close(_stationary_target(cov, (h, w)), cov, atol=1e-10, rtol=0)


def test_stationary_target_ignores_constant_pixels():
    # the same stationary covariance with two pixels made constant (zero rows and columns):
    # their zeros must not dilute the other pixels' offset averages, and rho(0) = 1 keeps
    # every varying pixel's variance
    h, w = 5, 4
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    p = torch.stack([yy.flatten(), xx.flatten()], 1).to(torch.float64)
    cov = 2.0 * torch.exp(-((p[:, None] - p[None]) ** 2).sum(-1) / 3.0)
    keep = torch.ones(h * w, dtype=torch.float64)
    keep[[0, 7]] = 0.0
    masked = cov * keep[:, None] * keep[None, :]
    torch.testing.assert_close(_stationary_target(masked, (h, w)), masked, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match=r"images \(4, 4\) needs 16 columns, got 20"):
        _stationary_target(cov, (4, 4))


def test_blur_matrix_is_the_task_operator():
    x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    K = blur_matrix((8, 8), 1.3)
    torch.testing.assert_close(
        x.reshape(3, -1) @ K.T, Deblur(1.3, 0.0).blur(x).reshape(3, -1), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(blur_matrix((8, 8), 0), torch.eye(64, dtype=torch.float64))


@settings(max_examples=6, deadline=None)
@given(sigma=st.floats(0.05, 0.5), seed=st.integers(0, 10_000))
def test_recovers_the_noise_level_of_a_denoising_task(sigma, seed):
    c, x, g = digit_pairs(Denoise(sigma), 32, seed)
    model = GaussianPriorScore((8, 8)).fit(c, x, generator=g)
    # 32 x 64 residuals: the MLE of s has relative sd about 1 / sqrt(2 * 2048) = 1.6%
    assert model.observation == "linear"
    assert model.noise_sd == pytest.approx(sigma, rel=0.08)
    # no blur: w = 0 is in the profile-likelihood set (widths up to 0.3 px leave < 4e-6 of
    # the kernel's mass off centre, so their residuals equal w = 0's) and it is the smallest
    assert model.width == 0.0


@settings(max_examples=6, deadline=None)
@given(width=st.floats(0.7, 2.0), seed=st.integers(0, 10_000))
def test_recovers_the_blur_width_and_noise_of_a_deblurring_task(width, seed):
    c, x, g = digit_pairs(Deblur(width, 0.02), 32, seed)
    model = GaussianPriorScore((8, 8)).fit(c, x, generator=g)
    assert model.observation == "linear"
    assert abs(model.width - width) <= 0.05 + 1e-9  # the grid's step is 0.05 px
    assert model.noise_sd == pytest.approx(0.02, rel=0.25)


def test_weights_are_validated():
    x = torch.rand(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="weights must be non-negative with a positive sum"):
        shrunk_covariance(x, -torch.ones(5, dtype=torch.float64))


def test_inpainting_is_a_mask_and_its_posterior_mean_is_the_gaussian_conditional():
    c, x, g = digit_pairs(Inpaint(0.5), 40, 3)
    model = GaussianPriorScore((8, 8)).fit(c, x, generator=g)
    assert model.observation == "mask" and model.num_params == 64 + 64 * 65 // 2
    c_new, _, _ = digit_pairs(Inpaint(0.5), 3, 4)
    mean = model.mean(c_new)
    for row in range(3):
        o = c_new[row] != 0
        mu, S = model.mu, model.Sigma
        s2 = model.noise_sd**2
        gain = S[:, o] @ torch.linalg.inv(S[o][:, o] + s2 * torch.eye(int(o.sum())))
        expected = mu + gain @ (c_new[row, o] - mu[o])
        torch.testing.assert_close(mean[row], expected, atol=1e-8, rtol=0)


@pytest.mark.parametrize("operator", [Denoise(0.3), Inpaint(0.5), Deblur(1.0, 0.02)])
def test_exact_draws_have_the_posterior_mean_and_the_score_matches_them(operator):
    c, x, g = digit_pairs(operator, 64, 5)
    model = GaussianPriorScore((8, 8), target="stationary").fit(c, x, generator=g)
    cond = c[:2].repeat_interleave(4000, 0)
    draws = model.sample_exact(cond, generator=torch.Generator().manual_seed(0))
    mean = model.mean(c[:2])
    # 4000 draws: the mean's error is sd / 63, and no pixel's posterior sd exceeds ~0.5
    torch.testing.assert_close(draws.reshape(2, 4000, 64).mean(1), mean, atol=0.035, rtol=0)
    # the score is that of the noised posterior: -(alpha^2 Cov + sigma^2 I)^{-1} (x_t - alpha
    # E[x|c]), checked against the draws' own covariance (relative error ~ sqrt(2 / 4000))
    t = torch.full((2,), 0.5, dtype=torch.float64)
    alpha, sigma = VPSchedule().alpha_sigma(t)
    x_t = torch.rand(2, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = model.score(x_t, c[:2], t)
    for row in range(2):
        d = draws.reshape(2, 4000, 64)[row]
        cov = torch.cov(d.T)
        prec = torch.linalg.inv(alpha[row] ** 2 * cov + sigma[row] ** 2 * torch.eye(64))
        expected = -prec @ (x_t[row] - alpha[row] * mean[row])
        assert float((s[row] - expected).norm() / expected.norm()) < 0.05


def test_same_data_same_fit_and_clear_errors():
    c, x, g = digit_pairs(Deblur(1.0, 0.02), 16, 7)
    fits = [GaussianPriorScore((8, 8)).fit(c, x, generator=g) for _ in range(2)]
    torch.testing.assert_close(fits[0].mean(c), fits[1].mean(c), rtol=0, atol=0)
    with pytest.raises(ValueError, match="operator must be one of"):
        GaussianPriorScore((8, 8), operator="blur")
    with pytest.raises(ValueError, match=r"widths\[0\] must be a number in \[0, 2.33\]"):
        GaussianPriorScore((8, 8), widths=(2.5,))
    with pytest.raises(ValueError, match="image_shape must be two integers"):
        GaussianPriorScore((8,))
    with pytest.raises(ValueError, match="operator 'mask' needs conditions"):
        GaussianPriorScore((8, 8), operator="mask").fit(c, x, generator=g)
    with pytest.raises(ValueError, match=r"images \(4, 4\) needs c and x with 16 columns, got 64"):
        GaussianPriorScore((4, 4)).fit(c, x, generator=g)
