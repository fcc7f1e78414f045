r"""Conditional Gaussian task families with exact scores at every noise level.

Task k (k = 0..K-1) has a condition law and a conditional target

    c ~ q_k = N(mu_k, S_k)                      c in R^{cond_dim}
    x | c ~ p_k(. | c) = N(m_k(c), Sigma_k)     x in R^{dim}
    m_k(c) = A_k c + b_k + gamma * B_k sin(F_k c)

with gamma = ``nonlinearity`` (0 gives the linear-Gaussian family; gamma > 0 the misspecified
family, whose mean is non-linear in c but whose law given c stays Gaussian, so every score
below is still closed form).

Under the VP forward process x_t = alpha(t) x + sigma(t) eps (``VPSchedule``),

    p_{k,t}(x_t | c) = N(alpha m_k(c), C_{k,t}),   C_{k,t} = alpha^2 Sigma_k + sigma^2 I,
    s_k(x_t, c, t) = -C_{k,t}^{-1} (x_t - alpha m_k(c)).

Linear scalarization with weights lambda on the simplex (paper symbol lambda, code ``weights``)
has the population minimiser (Proposition 1 in ``paper/``)

    s*_lambda(x_t, c, t) = grad_{x_t} log p_{lambda,t}(x_t | c),
    p_{lambda,t}(x_t | c) = sum_k lambda_k q_k(c) p_{k,t}(x_t | c) / sum_k lambda_k q_k(c),

the score of the lambda-mixture ("Pareto target"). It is a posterior-weighted average of the task
scores, s*_lambda = sum_k r_k s_k with r_k proportional to lambda_k q_k(c) p_{k,t}(x_t | c):
non-linear in (x_t, c) even though every task score is affine in x_t.

Shapes: conditions ``c`` are (B, cond_dim), samples ``x``/``x_t`` are (B, dim), times ``t``
are (B,) in (0, 1]. Everything is float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from mol_diffusion._validation import (
    check_generator,
    check_matrix,
    check_positive_float,
    check_positive_int,
    check_simplex,
    check_times,
)
from mol_diffusion.schedules import VPSchedule

__all__ = ["GaussianTaskFamily", "make_gaussian_family", "make_misspecified_family"]

_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True, eq=False)
class GaussianTaskFamily:
    """K conditional Gaussian tasks; the exact ground truth for every experiment on scores.

    Args:
        cond_mean: mu_k, shape (K, cond_dim).
        cond_cov: S_k, shape (K, cond_dim, cond_dim), symmetric positive definite.
        A: shape (K, dim, cond_dim).
        b: shape (K, dim).
        noise_cov: Sigma_k, shape (K, dim, dim), symmetric positive definite.
        B: shape (K, dim, hidden) — weights of the non-linear part of the mean.
        F: shape (K, hidden, cond_dim) — frequencies of the non-linear part.
        nonlinearity: gamma >= 0; 0 makes the conditional mean affine in c.
        schedule: the forward noising process the scores refer to.
    """

    cond_mean: torch.Tensor
    cond_cov: torch.Tensor
    A: torch.Tensor
    b: torch.Tensor
    noise_cov: torch.Tensor
    B: torch.Tensor
    F: torch.Tensor
    nonlinearity: float = 0.0
    schedule: VPSchedule = field(default_factory=VPSchedule)
    _cond_chol: torch.Tensor = field(init=False, repr=False, compare=False)
    _noise_chol: torch.Tensor = field(init=False, repr=False, compare=False)
    _noise_evals: torch.Tensor = field(init=False, repr=False, compare=False)
    _noise_evecs: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        k, dc = self.cond_mean.shape if self.cond_mean.dim() == 2 else (None, None)
        if k is None or k < 1:
            raise ValueError(
                f"cond_mean must have shape (K, cond_dim), got {tuple(self.cond_mean.shape)}"
            )
        if self.b.dim() != 2 or self.B.dim() != 3:
            raise ValueError(
                f"b must have shape (K, dim) and B shape (K, dim, hidden), "
                f"got {tuple(self.b.shape)} and {tuple(self.B.shape)}"
            )
        d = self.b.shape[-1]
        h = self.B.shape[-1]
        expected = {
            "cond_cov": (k, dc, dc),
            "A": (k, d, dc),
            "b": (k, d),
            "noise_cov": (k, d, d),
            "B": (k, d, h),
            "F": (k, h, dc),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if tuple(value.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
        for name in ("cond_mean", *expected):
            value = getattr(self, name)
            if value.dtype != torch.float64:
                object.__setattr__(self, name, value.to(torch.float64))
            if not torch.isfinite(getattr(self, name)).all():
                raise ValueError(f"{name} must be finite")
        check_positive_float(self.nonlinearity, "nonlinearity", allow_zero=True)
        for name in ("cond_cov", "noise_cov"):
            value = getattr(self, name)
            if not torch.allclose(value, value.mT, atol=1e-10):
                raise ValueError(f"{name} must be symmetric")
        cond_chol, info = torch.linalg.cholesky_ex(self.cond_cov)
        if info.any():
            raise ValueError("cond_cov must be positive definite for every task")
        noise_chol, info = torch.linalg.cholesky_ex(self.noise_cov)
        if info.any():
            raise ValueError("noise_cov must be positive definite for every task")
        evals, evecs = torch.linalg.eigh(self.noise_cov)
        object.__setattr__(self, "_cond_chol", cond_chol)
        object.__setattr__(self, "_noise_chol", noise_chol)
        object.__setattr__(self, "_noise_evals", evals)
        object.__setattr__(self, "_noise_evecs", evecs)

    # ------------------------------------------------------------------ sizes
    @property
    def num_tasks(self) -> int:
        """K, the number of tasks."""
        return self.cond_mean.shape[0]

    @property
    def dim(self) -> int:
        """Dimension of the target x."""
        return self.b.shape[1]

    @property
    def cond_dim(self) -> int:
        """Dimension of the condition c."""
        return self.cond_mean.shape[1]

    @property
    def is_linear(self) -> bool:
        """True when every conditional mean is affine in c (the well-specified case)."""
        return self.nonlinearity == 0.0

    def _check_task(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.num_tasks:
            raise ValueError(f"k must be a task index in [0, {self.num_tasks}), got {k!r}")
        return k

    def _check_query(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor):
        x_t = check_matrix(x_t, "x_t", cols=self.dim).to(torch.float64)
        c = check_matrix(c, "c", cols=self.cond_dim).to(torch.float64)
        if c.shape[0] != x_t.shape[0]:
            raise ValueError(
                f"x_t and c must hold the same number of rows, got {x_t.shape[0]} and {c.shape[0]}"
            )
        t = check_times(t, x_t.shape[0]).to(torch.float64)
        return x_t, c, t

    # ------------------------------------------------------------------ means and sampling
    def conditional_means(self, c: torch.Tensor) -> torch.Tensor:
        """m_k(c) for every task, shape (K, B, dim)."""
        c = check_matrix(c, "c", cols=self.cond_dim).to(torch.float64)
        mean = torch.einsum("kdc,bc->kbd", self.A, c) + self.b[:, None, :]
        if self.nonlinearity:
            hidden = torch.sin(torch.einsum("khc,bc->kbh", self.F, c))
            mean = mean + self.nonlinearity * torch.einsum("kdh,kbh->kbd", self.B, hidden)
        return mean

    def conditional_mean(self, k: int, c: torch.Tensor) -> torch.Tensor:
        """m_k(c), shape (B, dim)."""
        return self.conditional_means(c)[self._check_task(k)]

    def sample_conditions(self, k: int, m: int, generator: torch.Generator) -> torch.Tensor:
        """m draws c ~ q_k, shape (m, cond_dim)."""
        self._check_task(k)
        check_positive_int(m, "m")
        z = torch.randn(m, self.cond_dim, generator=check_generator(generator), dtype=torch.float64)
        return self.cond_mean[k] + z @ self._cond_chol[k].T

    def sample_given(self, k: int, c: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x ~ p_k(. | c) for each row of c, shape (B, dim)."""
        mean = self.conditional_mean(k, c)
        z = torch.randn(mean.shape, generator=check_generator(generator), dtype=torch.float64)
        return mean + z @ self._noise_chol[k].T

    def sample(
        self, k: int, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n paired draws (c, x) from task k: c (n, cond_dim), x (n, dim)."""
        c = self.sample_conditions(k, check_positive_int(n, "n"), generator)
        return c, self.sample_given(k, c, generator)

    def sample_unlabeled(
        self, k: int, m: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """m unlabeled draws of task k with their hidden samples, (c (m, cond_dim), x (m, dim)):
        the same law as ``sample`` here; the two-stage procedure sees only c, the oracle both."""
        return self.sample(k, m, generator)

    # ------------------------------------------------------------------ densities and scores
    def cond_log_prob(self, c: torch.Tensor) -> torch.Tensor:
        """log q_k(c) for every task, shape (K, B)."""
        c = check_matrix(c, "c", cols=self.cond_dim).to(torch.float64)
        diff = c[None] - self.cond_mean[:, None, :]  # (K, B, dc)
        z = torch.linalg.solve_triangular(self._cond_chol, diff.mT, upper=False)  # (K, dc, B)
        logdet = 2 * torch.log(torch.diagonal(self._cond_chol, dim1=-2, dim2=-1)).sum(-1)
        return -0.5 * (z**2).sum(1) - 0.5 * logdet[:, None] - 0.5 * self.cond_dim * _LOG_2PI

    def _task_terms(self, x_t, c, t) -> tuple[torch.Tensor, torch.Tensor]:
        """log p_{k,t}(x_t | c), shape (K, B), and s_k(x_t, c, t), shape (K, B, dim)."""
        alpha = self.schedule.alpha(t)
        sigma2 = self.schedule.sigma(t) ** 2
        resid = x_t[None] - alpha[None, :, None] * self.conditional_means(c)  # (K, B, d)
        # C_{k,t} = U_k diag(alpha^2 ev_k + sigma^2) U_k^T shares Sigma_k's eigenvectors.
        var = alpha[None, :, None] ** 2 * self._noise_evals[:, None, :] + sigma2[None, :, None]
        z = torch.einsum("kde,kbd->kbe", self._noise_evecs, resid)  # U_k^T resid
        logp = (
            -0.5 * (z**2 / var).sum(-1) - 0.5 * torch.log(var).sum(-1) - 0.5 * self.dim * _LOG_2PI
        )
        score = -torch.einsum("kde,kbe->kbd", self._noise_evecs, z / var)
        return logp, score

    def task_log_prob(
        self, k: int, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """log p_{k,t}(x_t | c), shape (B,)."""
        self._check_task(k)
        return self._task_terms(*self._check_query(x_t, c, t))[0][k]

    def task_score(
        self, k: int, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """s_k(x_t, c, t) = grad_{x_t} log p_{k,t}(x_t | c), shape (B, dim)."""
        self._check_task(k)
        return self._task_terms(*self._check_query(x_t, c, t))[1][k]

    def task_affine(
        self, k: int, c: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients of the task score, affine in x_t: s_k = M x_t + v.

        Returns M of shape (B, dim, dim) and v of shape (B, dim).
        """
        self._check_task(k)
        c = check_matrix(c, "c", cols=self.cond_dim).to(torch.float64)
        t = check_times(t, c.shape[0]).to(torch.float64)
        alpha, sigma2 = self.schedule.alpha(t), self.schedule.sigma(t) ** 2
        var = alpha[:, None] ** 2 * self._noise_evals[k] + sigma2[:, None]  # (B, d)
        u = self._noise_evecs[k]
        precision = torch.einsum("de,be,fe->bdf", u, 1 / var, u)
        mean = alpha[:, None] * self.conditional_mean(k, c)
        return -precision, torch.einsum("bdf,bf->bd", precision, mean)

    def noised_moments(
        self, k: int, c: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (B, dim) and covariance (B, dim, dim) of p_{k,t}(. | c)."""
        self._check_task(k)
        c = check_matrix(c, "c", cols=self.cond_dim).to(torch.float64)
        t = check_times(t, c.shape[0]).to(torch.float64)
        alpha, sigma2 = self.schedule.alpha(t), self.schedule.sigma(t) ** 2
        cov = alpha[:, None, None] ** 2 * self.noise_cov[k] + sigma2[:, None, None] * torch.eye(
            self.dim, dtype=torch.float64
        )
        return alpha[:, None] * self.conditional_mean(k, c), cov

    def _log_mixture_terms(
        self, x_t, c, t, weights
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = check_simplex(weights, self.num_tasks)
        x_t, c, t = self._check_query(x_t, c, t)
        logp, score = self._task_terms(x_t, c, t)
        log_prior = torch.log(w)[:, None] + self.cond_log_prob(c)  # log lambda_k q_k(c), (K, B)
        if torch.isneginf(log_prior).all(0).any():
            raise ValueError(
                "every task with positive weight gives zero density to some condition c"
            )
        return log_prior, logp, score

    def pareto_posterior(self, x_t, c, t, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """r_k(x_t, c, t) = P(task k | x_t, c) under the lambda-mixture, shape (K, B)."""
        log_prior, logp, _ = self._log_mixture_terms(x_t, c, t, weights)
        return torch.softmax(log_prior + logp, dim=0)

    def pareto_score(self, x_t, c, t, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """s*_lambda(x_t, c, t): score of the lambda-scalarized (mixture) target, shape (B, dim)."""
        log_prior, logp, score = self._log_mixture_terms(x_t, c, t, weights)
        r = torch.softmax(log_prior + logp, dim=0)
        return (r[..., None] * score).sum(0)

    def pareto_log_prob(self, x_t, c, t, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """log p_{lambda,t}(x_t | c), shape (B,)."""
        log_prior, logp, _ = self._log_mixture_terms(x_t, c, t, weights)
        return torch.logsumexp(log_prior + logp, 0) - torch.logsumexp(log_prior, 0)

    # ------------------------------------------------------------------ transformations
    def permute(self, perm: Sequence[int]) -> GaussianTaskFamily:
        """The same family with task k renamed to position i where perm[i] = k."""
        idx = torch.as_tensor(list(perm), dtype=torch.long)
        if sorted(idx.tolist()) != list(range(self.num_tasks)):
            raise ValueError(
                f"perm must be a permutation of range({self.num_tasks}), got {list(perm)}"
            )
        names = ("cond_mean", "cond_cov", "A", "b", "noise_cov", "B", "F")
        return replace(self, **{name: getattr(self, name)[idx] for name in names})


def _random_spd(k: int, d: int, lo: float, hi: float, generator: torch.Generator) -> torch.Tensor:
    """K random SPD matrices with eigenvalues uniform in [lo, hi] (condition number <= hi/lo)."""
    q, _ = torch.linalg.qr(torch.randn(k, d, d, generator=generator, dtype=torch.float64))
    ev = lo + (hi - lo) * torch.rand(k, d, generator=generator, dtype=torch.float64)
    m = q @ torch.diag_embed(ev) @ q.mT
    return 0.5 * (m + m.mT)


def _spread_means(k: int, dc: int, separation: float, generator: torch.Generator) -> torch.Tensor:
    """K points, neighbours ``separation`` apart, on a circle in a random plane (line if dc = 1)."""
    if dc == 1 or k <= 2:
        direction = torch.randn(dc, generator=generator, dtype=torch.float64)
        offsets = separation * (torch.arange(k, dtype=torch.float64) - (k - 1) / 2)
        return offsets[:, None] * (direction / direction.norm())
    plane, _ = torch.linalg.qr(torch.randn(dc, 2, generator=generator, dtype=torch.float64))
    radius = separation / (2 * math.sin(math.pi / k))
    phase = 2 * math.pi * float(torch.rand(1, generator=generator, dtype=torch.float64))
    angles = phase + 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return radius * (
        torch.cos(angles)[:, None] * plane[:, 0] + torch.sin(angles)[:, None] * plane[:, 1]
    )


def make_gaussian_family(
    num_tasks: int = 3,
    dim: int = 2,
    cond_dim: int = 2,
    seed: int = 0,
    *,
    condition_separation: float = 2.0,
    noise_scale: float = 0.5,
    nonlinearity: float = 0.0,
    hidden: int = 8,
    frequency: float = 1.5,
    schedule: VPSchedule | None = None,
) -> GaussianTaskFamily:
    """A seeded random family of well-conditioned conditional Gaussian tasks.

    Args:
        num_tasks: K.
        dim: dimension of x.
        cond_dim: dimension of c.
        seed: the family is a deterministic function of the seed.
        condition_separation: distance between neighbouring condition means mu_k, in units of
            the condition standard deviation (S_k has eigenvalues in [0.5, 1.5]): 0 makes all
            condition laws identical (full overlap), large values make them nearly disjoint.
            The means sit evenly on a circle in a random plane (on a line if cond_dim = 1), so
            every pair is at least this far apart. Must be >= 0.
        noise_scale: scale of the conditional noise, Sigma_k has eigenvalues in
            noise_scale^2 * [0.5, 1.5].
        nonlinearity: gamma in m_k(c) = A_k c + b_k + gamma B_k sin(F_k c); 0 is the
            well-specified linear family.
        hidden: number of sine units in the non-linear part.
        frequency: scale of F_k (how wiggly the non-linear part is).
        schedule: the forward process; defaults to ``VPSchedule()``.
    """
    k = check_positive_int(num_tasks, "num_tasks")
    d = check_positive_int(dim, "dim")
    dc = check_positive_int(cond_dim, "cond_dim")
    h = check_positive_int(hidden, "hidden")
    sep = check_positive_float(condition_separation, "condition_separation", allow_zero=True)
    scale = check_positive_float(noise_scale, "noise_scale")
    freq = check_positive_float(frequency, "frequency")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    g = torch.Generator().manual_seed(seed)
    return GaussianTaskFamily(
        cond_mean=_spread_means(k, dc, sep, g),
        cond_cov=_random_spd(k, dc, 0.5, 1.5, g),
        A=torch.randn(k, d, dc, generator=g, dtype=torch.float64) / math.sqrt(dc),
        b=torch.randn(k, d, generator=g, dtype=torch.float64),
        noise_cov=scale**2 * _random_spd(k, d, 0.5, 1.5, g),
        B=torch.randn(k, d, h, generator=g, dtype=torch.float64) / math.sqrt(h),
        F=freq * torch.randn(k, h, dc, generator=g, dtype=torch.float64),
        nonlinearity=check_positive_float(nonlinearity, "nonlinearity", allow_zero=True),
        schedule=schedule or VPSchedule(),
    )


def make_misspecified_family(
    num_tasks: int = 3,
    dim: int = 2,
    cond_dim: int = 2,
    seed: int = 0,
    *,
    nonlinearity: float = 1.0,
    **kwargs,
) -> GaussianTaskFamily:
    """The family of ``make_gaussian_family`` with a conditional mean non-linear in c.

    Linear specialists cannot represent these tasks; their approximation error sets a floor.
    """
    if not nonlinearity > 0:
        raise ValueError(
            f"nonlinearity must be > 0 for a misspecified family, got {nonlinearity!r}"
        )
    return make_gaussian_family(num_tasks, dim, cond_dim, seed, nonlinearity=nonlinearity, **kwargs)
