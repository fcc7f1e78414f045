"""Estimator behaviour against exact ground truth."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import linalg

from mol_diffusion import (
    DivergenceError,
    LinearGaussianScore,
    MLPScore,
    RandomFeatureScore,
    draw_dsm,
    dsm_loss,
    excess_risk,
    make_gaussian_family,
    make_risk_draws,
)


def test_linear_specialist_converges_to_the_task_at_rate_one_over_n():
    """Risk vs the true task score (lambda = e_0 makes the Pareto target task 0). For a
    p-parameter efficient estimator the excess risk is ~ C p / n, so the seed-averaged risk
    should drop by about 16x from n = 200 to n = 3200. Loose band [6, 40] keeps it non-flaky
    (16 seeds; the chi-square-like spread of one fit is large)."""
    fam = make_gaussian_family(3, 2, 2, seed=0)
    g = torch.Generator().manual_seed(123)
    draws = make_risk_draws(fam, 2048, g)
    e0 = [1.0, 0.0, 0.0]
    mean_risk = {}
    for n in (200, 3200):
        risks = []
        for _ in range(16):
            c, x = fam.sample(0, n, g)
            risks.append(
                excess_risk(
                    LinearGaussianScore().fit(c, x, generator=g), fam, e0, draws=draws
                ).scalarized
            )
        mean_risk[n] = float(np.mean(risks))
    ratio = mean_risk[200] / mean_risk[3200]
    assert 6 < ratio < 40, mean_risk
    c, x = fam.sample(0, 50_000, g)
    model = LinearGaussianScore().fit(c, x, generator=g)
    torch.testing.assert_close(model.A, fam.A[0], atol=0.02, rtol=0)
    torch.testing.assert_close(model.Sigma, fam.noise_cov[0], atol=0.01, rtol=0)


def test_linear_specialist_zero_weights_equal_dropping_pairs():
    fam = make_gaussian_family(2, 2, 2, seed=1)
    g = torch.Generator().manual_seed(0)
    c, x = fam.sample(0, 30, g)
    w = torch.ones(30, dtype=torch.float64)
    w[20:] = 0
    a = LinearGaussianScore().fit(c, x, weights=w, generator=g)
    b = LinearGaussianScore().fit(c[:20], x[:20], generator=g)
    torch.testing.assert_close(a.A, b.A)
    torch.testing.assert_close(a.Sigma, b.Sigma)


def test_random_feature_fit_accepts_inputs_that_require_grad():
    # Inputs that carry autograd (a user's upstream model) fit as their detached values do.
    fam = make_gaussian_family(1, 2, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    c, x = fam.sample(0, 30, g)
    plain = RandomFeatureScore(4).fit(c, x, generator=torch.Generator().manual_seed(1))
    tracked = RandomFeatureScore(4).fit(
        c.clone().requires_grad_(),
        x.clone().requires_grad_(),
        generator=torch.Generator().manual_seed(1),
    )
    assert not tracked.W.requires_grad and torch.equal(tracked.W, plain.W)


def test_random_feature_fit_does_not_depend_on_earlier_fits():
    # The sqrt(D) phi work buffer is kept between fits; a fit after a larger and after a
    # smaller one must give the W of the first fit.
    fam = make_gaussian_family(1, 2, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    c, x = fam.sample(0, 300, g)

    def fit(features, rows):
        model = RandomFeatureScore(features, chunk_size=256)
        return model.fit(c[:rows], x[:rows], generator=torch.Generator().manual_seed(1)).W

    first = fit(16, 120)
    fit(64, 300), fit(4, 10)
    assert torch.equal(fit(16, 120), first)


@given(
    seed=st.integers(0, 10_000),
    num_features=st.integers(4, 40),
    ridge=st.floats(1e-6, 1.0),
    chunk=st.integers(7, 200),
)
def test_random_feature_fit_solves_the_normal_equations(seed, num_features, ridge, chunk):
    """Reference: scipy's least-squares solve of the augmented system
    [sqrt(D/sum D) Phi; sqrt(rho) I] W = [sqrt(D/sum D) E; 0], whose solution is the ridge
    normal-equation solution. Chunked Gram accumulation must not change it."""
    fam = make_gaussian_family(2, 2, 1, seed=seed)
    g = torch.Generator().manual_seed(seed)
    c, x = fam.sample(0, 25, g)
    w = torch.rand(25, generator=g, dtype=torch.float64)
    model = RandomFeatureScore(num_features, ridge=ridge, draws_per_pair=3, chunk_size=chunk)
    model.fit(c, x, weights=w, generator=g)
    draws = draw_dsm(x, model.schedule, g, draws_per_pair=3)
    W = model.solve(draws, c, w)
    phi = model.features(draws.x_t, c[draws.rows], draws.t).numpy()
    d = (w[draws.rows] / w[draws.rows].sum()).numpy()
    p = phi.shape[1]
    assert p == num_features * (2 + 1 + 1)  # G gates x [z_x (2), z_c (1), 1]
    lhs = np.vstack([np.sqrt(d)[:, None] * phi, math.sqrt(ridge) * np.eye(p)])
    rhs = np.vstack([np.sqrt(d)[:, None] * draws.eps.numpy(), np.zeros((p, 2))])
    ref, *_ = linalg.lstsq(lhs, rhs)
    np.testing.assert_allclose(W.numpy(), ref, rtol=1e-6, atol=1e-8)


@given(seed=st.integers(0, 10_000), num_features=st.integers(1, 40), rows=st.integers(1, 60))
def test_random_feature_prediction_is_the_feature_map_times_w(seed, num_features, rows):
    """eps() never builds Phi (it sums a_k (g^T W_k) over the affine inputs); it must equal
    the definition Phi W of the module docstring to rounding."""
    fam = make_gaussian_family(2, 3, 2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    c, x = fam.sample(1, 30, g)
    model = RandomFeatureScore(num_features, draws_per_pair=2).fit(c, x, generator=g)
    x_t = torch.randn(rows, 3, generator=g, dtype=torch.float64)
    c_t = torch.randn(rows, 2, generator=g, dtype=torch.float64)
    t = torch.rand(rows, generator=g, dtype=torch.float64) * 0.98 + 0.01
    expected = model.features(x_t, c_t, t) @ model.W
    torch.testing.assert_close(model.eps(x_t, c_t, t), expected, rtol=1e-10, atol=1e-12)


def test_random_feature_fit_rejects_negative_weights():
    fam = make_gaussian_family(2, 2, 1, seed=0)
    g = torch.Generator().manual_seed(0)
    c, x = fam.sample(0, 10, g)
    model = RandomFeatureScore(4)
    model.init_features(c, x, None, g)
    draws = draw_dsm(x, model.schedule, g, draws_per_pair=1)
    weights = torch.ones(10, dtype=torch.float64)
    weights[3] = -0.5
    with pytest.raises(ValueError, match="weights must be >= 0"):
        model.solve(draws, c, weights)


@given(
    seed=st.integers(0, 10_000),
    weights=st.sampled_from([(1 / 3, 1 / 3, 1 / 3), (0.6, 0.3, 0.1), (0.0, 0.5, 0.5)]),
)
def test_dsm_loss_minus_excess_risk_is_the_same_constant_for_every_model(seed, weights):
    """Vincent (2011): E[||sigma s + eps||^2] = E[sigma^2 ||s - s*||^2] + const. On the same
    draws, the per-sample difference of (DSM - excess) between two models is
    2 sigma (s1 - s2) . (eps + sigma s*), which has mean zero; its sample mean must lie within
    4.5 standard errors of zero for every pair of models."""
    fam = make_gaussian_family(3, 2, 2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    c, x = fam.sample(1, 60, g)
    models = {
        "linear": LinearGaussianScore().fit(c, x, generator=g).score,
        "random_features": RandomFeatureScore(32).fit(c, x, generator=g).score,
        "zero": lambda x_t, c, t: torch.zeros_like(x_t),
        "truth": lambda x_t, c, t: fam.pareto_score(x_t, c, t, weights),
    }
    draws = make_risk_draws(fam, 3000, g)
    w = torch.tensor(weights, dtype=torch.float64)
    kk, nn = draws.t.shape
    flat_t = draws.t.reshape(-1)
    gaps = {}
    for name, score in models.items():
        s = score(draws.x_t.reshape(kk * nn, -1), draws.c.reshape(kk * nn, -1), flat_t)
        dsm = dsm_loss(s, draws.eps.reshape(kk * nn, -1), fam.schedule.sigma(flat_t)).reshape(
            kk, nn
        )
        gaps[name] = dsm - excess_risk(score, fam, weights, draws=draws).per_sample
    names = sorted(gaps)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = gaps[a] - gaps[b]  # (K, N)
            mean = float(w @ diff.mean(1))
            se = float((w**2 @ (diff.var(1) / nn)).sqrt())
            assert abs(mean) <= 4.5 * se + 1e-12, (a, b, mean, se)


def test_random_features_capacity_lowers_the_risk_with_ample_data():
    """With plenty of exact pairs the generalist's risk falls as features are added
    (approximation error), and it beats the best single linear score on the mixture."""
    fam = make_gaussian_family(3, 2, 2, seed=0)
    g = torch.Generator().manual_seed(7)
    cs, xs = zip(*(fam.sample(k, 4000, g) for k in range(3)), strict=True)
    c, x = torch.cat(cs), torch.cat(xs)
    draws = make_risk_draws(fam, 2048, g)
    lam = [1 / 3] * 3
    risks = [
        excess_risk(
            RandomFeatureScore(f, draws_per_pair=8).fit(c, x, generator=g), fam, lam, draws=draws
        ).scalarized
        for f in (8, 128)
    ]
    linear = excess_risk(
        LinearGaussianScore().fit(c, x, generator=g), fam, lam, draws=draws
    ).scalarized
    assert risks[1] < 0.8 * risks[0] and risks[1] < linear, (risks, linear)


def test_mlp_learns_a_single_task_and_reports_divergence():
    fam = make_gaussian_family(1, 2, 2, seed=2)
    g = torch.Generator().manual_seed(0)
    c, x = fam.sample(0, 2000, g)
    draws = make_risk_draws(fam, 1024, g)
    model = MLPScore(64, 2, steps=600).fit(c, x, generator=g)
    zero = excess_risk(lambda x_t, c, t: torch.zeros_like(x_t), fam, [1.0], draws=draws).scalarized
    assert excess_risk(model, fam, [1.0], draws=draws).scalarized < 0.2 * zero
    with pytest.raises(DivergenceError, match="cell-7: training loss became"):
        MLPScore(16, 1, steps=200, lr=1e12).fit(c * 1e3, x * 1e3, generator=g, run_name="cell-7")
