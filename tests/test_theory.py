"""Formulas the paper's propositions rely on, checked numerically.

The Gaussian chi-square divergence (paper, Proposition 2, "When the constant is finite"):
1 + chi2(N(mu, S) || N(mu_hat, S_hat)) = |S_hat|^{1/2} |S|^{-1} |2 S^{-1} - S_hat^{-1}|^{-1/2}
exp((mu - mu_hat)^T (2 S_hat - S)^{-1} (mu - mu_hat)) when S_hat > S / 2, else infinity.
Reference values: the integral of p^2 / q by quadrature (scipy.integrate).
"""

import numpy as np
import pytest
from scipy import integrate, stats


def chi2_plus_one(mu, s, mu_hat, s_hat):
    mu, s, mu_hat, s_hat = map(np.atleast_1d, (mu, s, mu_hat, s_hat))
    s, s_hat = np.atleast_2d(s), np.atleast_2d(s_hat)
    inner = 2 * np.linalg.inv(s) - np.linalg.inv(s_hat)
    if np.linalg.eigvalsh(inner).min() <= 0:
        return np.inf
    d = mu - mu_hat
    return float(
        np.sqrt(np.linalg.det(s_hat))
        / (np.linalg.det(s) * np.sqrt(np.linalg.det(inner)))
        * np.exp(d @ np.linalg.solve(2 * s_hat - s, d))
    )


@pytest.mark.parametrize(
    ("mu", "sd", "mu_hat", "sd_hat"),
    [(0.3, 1.0, -0.2, 0.9), (0.0, 1.0, 1.0, 1.5), (1.0, 2.0, 0.0, 1.6)],
)
def test_gaussian_chi_square_in_one_dimension(mu, sd, mu_hat, sd_hat):
    def integrand(x):
        return np.exp(2 * stats.norm.logpdf(x, mu, sd) - stats.norm.logpdf(x, mu_hat, sd_hat))

    value, _ = integrate.quad(integrand, -40, 40, limit=200)
    assert chi2_plus_one(mu, sd**2, mu_hat, sd_hat**2) == pytest.approx(value, rel=1e-8)


def test_gaussian_chi_square_in_two_dimensions():
    mu, mu_hat = np.array([0.2, -0.1]), np.array([0.0, 0.3])
    s = np.array([[1.0, 0.3], [0.3, 0.8]])
    s_hat = np.array([[0.9, 0.1], [0.1, 1.1]])
    p, q = stats.multivariate_normal(mu, s), stats.multivariate_normal(mu_hat, s_hat)
    value, _ = integrate.dblquad(
        lambda y, x: np.exp(2 * p.logpdf([x, y]) - q.logpdf([x, y])), -12, 12, -12, 12
    )
    assert chi2_plus_one(mu, s, mu_hat, s_hat) == pytest.approx(value, rel=1e-6)


def test_the_divergence_is_infinite_below_half_the_covariance():
    assert chi2_plus_one(0.0, 1.0, 0.0, 0.49) == np.inf
    assert np.isfinite(chi2_plus_one(0.0, 1.0, 0.0, 0.51))
