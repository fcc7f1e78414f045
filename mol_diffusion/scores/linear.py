r"""The lightweight specialist: a conditional Gaussian model, whose score is affine in (x, c).

Model: x | c ~ N(A c + b, Sigma). Under the VP process its score at level t is

    s(x_t, c, t) = -(alpha^2 Sigma + sigma^2 I)^{-1} (x_t - alpha (A c + b)),

affine in x_t and in c at every t. Parameters (A, b, Sigma) are fitted by weighted least
squares with the weighted residual covariance, i.e. the Gaussian maximum-likelihood estimate.
Over this class the population DSM minimiser and the likelihood maximiser coincide (both recover
the true (A, b, Sigma) when the task is linear-Gaussian), and the MLE is the efficient
estimator, so its excess score risk falls like p_spec / n with
p_spec = dim * cond_dim + dim + dim (dim + 1) / 2 (``num_params``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mol_diffusion._validation import (
    check_generator,
    check_matrix,
    check_positive_float,
    check_times,
)
from mol_diffusion.schedules import VPSchedule, check_schedule
from mol_diffusion.scores.base import ScoreModelBase

__all__ = ["LinearGaussianScore", "LinearGaussianScoreConfig"]


@dataclass(frozen=True)
class LinearGaussianScoreConfig:
    """Args:
    ridge: L2 penalty on (A, b) relative to the weighted Gram matrix scale; >= 0.
    min_variance: floor on the eigenvalues of the fitted Sigma; > 0.
    schedule: the forward process the score refers to.
    """

    ridge: float = 0.0
    min_variance: float = 1e-8
    schedule: VPSchedule = field(default_factory=VPSchedule)

    def __post_init__(self) -> None:
        check_positive_float(self.ridge, "ridge", allow_zero=True)
        check_schedule(self.schedule)
        check_positive_float(self.min_variance, "min_variance")


class LinearGaussianScore(ScoreModelBase):
    """Conditional Gaussian specialist; see the module docstring.

    Fitted attributes: ``A`` (dim, cond_dim), ``b`` (dim,), ``Sigma`` (dim, dim).
    """

    def __init__(
        self, *, ridge: float = 0.0, min_variance: float = 1e-8, schedule: VPSchedule | None = None
    ):
        super().__init__()
        self.config = LinearGaussianScoreConfig(ridge, min_variance, schedule or VPSchedule())

    def _fit(self, c, x, weights, generator, run_name) -> None:
        n, dc = c.shape
        w = torch.ones(n, dtype=torch.float64) if weights is None else weights.to(torch.float64)
        support = int((w > 0).sum())
        # without a ridge the weighted Gram matrix of (c, 1) is singular below cond_dim + 1
        # pairs; with one, two pairs suffice for (A, b) and a (rank-deficient, floored) Sigma
        needed = 2 if self.config.ridge > 0 else dc + 2
        if support < needed:
            raise ValueError(
                f"{run_name}: LinearGaussianScore with ridge={self.config.ridge} needs at least "
                f"{needed} pairs with positive weight to estimate (A, b, Sigma), got {support}"
            )
        w = w / w.sum()
        design = torch.cat([c.to(torch.float64), torch.ones(n, 1, dtype=torch.float64)], dim=1)
        gram = design.T @ (w[:, None] * design)
        if self.config.ridge:
            penalty = self.config.ridge * torch.eye(dc + 1, dtype=torch.float64)
            penalty[-1, -1] = 0.0  # the intercept is not shrunk
            gram = gram + penalty
        coef = torch.linalg.solve(gram, design.T @ (w[:, None] * x.to(torch.float64)))  # (dc+1, d)
        self._set_gaussian(coef[:-1].T.contiguous(), coef[-1].clone(), c, x, w)

    def _set_gaussian(self, A, b, c, x, w) -> None:
        """Store the mean map (A, b) and Sigma = the w-weighted residual covariance (floored).

        Shapes: A (dim, cond_dim), b (dim,), c (n, cond_dim), x (n, dim), w (n,) summing to 1.
        """
        resid = x.to(torch.float64) - c.to(torch.float64) @ A.T - b
        cov = resid.T @ (w[:, None] * resid)
        evals, evecs = torch.linalg.eigh(0.5 * (cov + cov.T))
        evals = evals.clamp(min=self.config.min_variance)
        self.A, self.b = A, b
        self.Sigma = evecs @ torch.diag(evals) @ evecs.T
        self._evals, self._evecs = evals, evecs

    def mean(self, c: torch.Tensor) -> torch.Tensor:
        """Fitted conditional mean A c + b, shape (B, dim)."""
        self._require_fitted()
        c = check_matrix(c, "c", cols=self.cond_dim)
        return c.to(torch.float64) @ self.A.T + self.b

    def _score(self, x_t, c, t) -> torch.Tensor:
        return self._score_at_mean(x_t, self.mean(c), t)

    def _score_given(self, c: torch.Tensor):
        mean = self.mean(c)  # once per sampler run, not once per step
        return lambda x_t, t: self._score_at_mean(x_t, mean, t)

    def _score_at_mean(self, x_t, mean, t) -> torch.Tensor:
        """The score given the conditional mean A c + b (B, dim) of each row."""
        t = t.to(torch.float64)
        alpha, sigma = self.schedule.alpha_sigma(t)
        alpha, sigma2 = alpha[:, None], sigma[:, None] ** 2
        var = alpha**2 * self._evals + sigma2  # (B, d) in Sigma's eigenbasis
        z = (x_t.to(torch.float64) - alpha * mean) @ self._evecs
        return -(z / var) @ self._evecs.T

    def affine(self, c: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The score as M x_t + v: M (B, dim, dim), v (B, dim). Used by ``affine_moments``."""
        self._require_fitted()
        t = check_times(t, c.shape[0]).to(torch.float64)
        alpha, sigma2 = self.schedule.alpha(t)[:, None], self.schedule.sigma(t)[:, None] ** 2
        inv_var = 1 / (alpha**2 * self._evals + sigma2)
        precision = torch.einsum("de,be,fe->bdf", self._evecs, inv_var, self._evecs)
        return -precision, torch.einsum("bdf,bf->bd", precision, alpha * self.mean(c))

    def sample_exact(self, c: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        """Exact draws x ~ N(A c + b, Sigma), shape (B, dim): the ablation to diffusion sampling."""
        mean = self.mean(c)
        z = torch.randn(mean.shape, generator=check_generator(generator), dtype=torch.float64)
        return (mean + (z * self._evals.sqrt()) @ self._evecs.T).to(c.dtype)

    @staticmethod
    def parameter_count(dim: int, cond_dim: int) -> int:
        """p_spec = dim cond_dim (A) + dim (b) + dim (dim + 1) / 2 (Sigma)."""
        return dim * cond_dim + dim + dim * (dim + 1) // 2

    @property
    def num_params(self) -> int:
        return self.parameter_count(*self._require_fitted())
