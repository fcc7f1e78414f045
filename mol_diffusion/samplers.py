r"""Samplers for the VP process given any score function s(x_t, c, t).

All samplers start at x_1 ~ N(0, I) (the VP marginal at t = 1 up to alpha(1)^2 ~ 5e-5 for the
default schedule) and integrate from t = 1 down to t = t_min on a uniform grid of ``steps``
intervals. They return x at t_min, a draw from p_{t_min} ~ p_0.

- ``reverse_sde``: Euler–Maruyama on the reverse-time SDE (Anderson, 1982; Song et al., 2021,
  eq. 6): dx = [-1/2 beta x - beta s] dt + sqrt(beta) dW_bar, integrated backwards in t.
- ``probability_flow``: Heun's method on the probability-flow ODE (Song et al., 2021, eq. 13):
  dx/dt = -1/2 beta (x + s).
- ``ddim``: deterministic DDIM (Song, Meng & Ermon, 2021, eq. 12 with eta = 0) on the continuous
  schedule: eps_hat = -sigma_t s, x0_hat = (x - sigma_t eps_hat) / alpha_t,
  x_next = alpha_next x0_hat + sigma_next eps_hat.
- ``affine_moments``: for a score affine in x (s = M(c, t) x + v(c, t)) the law of the
  continuous-time sampler's output is Gaussian; its mean and covariance solve linear ODEs,
  integrated here with RK4 (no Monte Carlo error).

``score_fn`` takes (x_t (B, dim), c (B, cond_dim), t (B,)) and returns (B, dim).
``stacked_reverse_sde`` runs the reverse SDE of M models at once, on given noise shared by all M
(common random numbers), with ``score_fn`` taking (x_t (M, B, dim), c (B, cond_dim), t (B,)).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from mol_diffusion._validation import (
    DivergenceError,
    check_generator,
    check_matrix,
    check_positive_int,
)
from mol_diffusion.schedules import VPSchedule, check_schedule

__all__ = ["affine_moments", "ddim", "probability_flow", "reverse_sde", "stacked_reverse_sde"]

ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
AffineFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _grid(schedule: VPSchedule, steps: int) -> torch.Tensor:
    check_schedule(schedule)
    check_positive_int(steps, "steps")
    return torch.linspace(1.0, schedule.t_min, steps + 1, dtype=torch.float64)


def _start(c: torch.Tensor, dim: int, generator: torch.Generator) -> torch.Tensor:
    c = check_matrix(c, "c")
    check_positive_int(dim, "dim")
    check_generator(generator)
    return torch.randn(c.shape[0], dim, generator=generator, dtype=torch.float64).to(c.dtype)


def _checked_score(
    score_fn: ScoreFn, x: torch.Tensor, c: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    s = score_fn(x, c, t)
    if s.shape != x.shape:
        raise ValueError(f"score_fn must return shape {tuple(x.shape)}, got {tuple(s.shape)}")
    return s


def _checked(x: torch.Tensor, sampler: str) -> torch.Tensor:
    if not torch.isfinite(x).all():
        raise DivergenceError(f"{sampler}: the sample became NaN/inf; the score is unstable")
    return x


def reverse_sde(
    score_fn: ScoreFn,
    c: torch.Tensor,
    dim: int,
    schedule: VPSchedule,
    generator: torch.Generator,
    steps: int = 500,
) -> torch.Tensor:
    """Euler–Maruyama on the reverse SDE. Returns samples of shape (B, dim)."""
    x = _start(c, dim, generator)
    grid = _grid(schedule, steps)
    for t_cur, t_next in itertools.pairwise(grid):
        h = float(t_cur - t_next)
        t = torch.full((x.shape[0],), float(t_cur), dtype=x.dtype)
        beta = schedule.beta(t)[:, None]
        drift = 0.5 * beta * x + beta * _checked_score(
            score_fn, x, c, t
        )  # reverse-time drift, per unit of -dt
        z = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.dtype)
        x = x + h * drift + (beta * h).sqrt() * z
    return _checked(x, "reverse_sde")


def stacked_reverse_sde(
    score_fn: ScoreFn,
    c: torch.Tensor,
    start: torch.Tensor,
    noise: torch.Tensor,
    schedule: VPSchedule,
    models: int,
) -> torch.Tensor:
    """``reverse_sde`` for ``models`` score functions at once, on noise drawn by the caller.

    Args:
        score_fn: (x_t (M, B, dim), c (B, cond_dim), t (B,)) -> (M, B, dim); slice m is model
            m's score.
        c: conditions (B, cond_dim), shared by the M models.
        start: x at t = 1, (B, dim); noise: (steps, B, dim), one draw per step. Drawn as
            ``reverse_sde`` draws them, slice m is model m's ``reverse_sde`` sample: the same
            elementwise operations in the same order, so equal up to the rounding of the
            score function on a different number of rows.
        models: M.
    Returns:
        samples (M, B, dim).
    """
    check_positive_int(models, "models")
    grid = _grid(schedule, noise.shape[0])
    if start.shape != noise.shape[1:] or start.shape[0] != c.shape[0]:
        raise ValueError(
            f"start (B, dim) and noise (steps, B, dim) must match c's B = {c.shape[0]}, got "
            f"{tuple(start.shape)} and {tuple(noise.shape)}"
        )
    x = start.expand(models, -1, -1)
    for (t_cur, t_next), z in zip(itertools.pairwise(grid), noise, strict=True):
        h = float(t_cur - t_next)
        t = torch.full((x.shape[1],), float(t_cur), dtype=x.dtype)
        beta = schedule.beta(t)[:, None]
        score = score_fn(x, c, t)
        if score.shape != x.shape:
            raise ValueError(
                f"score_fn must return shape {tuple(x.shape)}, got {tuple(score.shape)}"
            )
        x = x + h * (0.5 * beta * x + beta * score) + (beta * h).sqrt() * z
    return _checked(x, "stacked_reverse_sde")


def probability_flow(
    score_fn: ScoreFn,
    c: torch.Tensor,
    dim: int,
    schedule: VPSchedule,
    generator: torch.Generator,
    steps: int = 100,
) -> torch.Tensor:
    """Heun (2nd-order) integration of the probability-flow ODE. Returns (B, dim)."""
    x = _start(c, dim, generator)
    grid = _grid(schedule, steps)

    def velocity(x: torch.Tensor, t_val: float) -> torch.Tensor:  # dx/dt
        t = torch.full((x.shape[0],), t_val, dtype=x.dtype)
        return -0.5 * schedule.beta(t)[:, None] * (x + _checked_score(score_fn, x, c, t))

    for t_cur, t_next in itertools.pairwise(grid):
        dt = float(t_next - t_cur)  # negative
        k1 = velocity(x, float(t_cur))
        x_pred = x + dt * k1
        k2 = velocity(x_pred, float(t_next))
        x = x + 0.5 * dt * (k1 + k2)
    return _checked(x, "probability_flow")


def ddim(
    score_fn: ScoreFn,
    c: torch.Tensor,
    dim: int,
    schedule: VPSchedule,
    generator: torch.Generator,
    steps: int = 100,
) -> torch.Tensor:
    """Deterministic DDIM on the continuous VP schedule. Returns (B, dim)."""
    x = _start(c, dim, generator)
    grid = _grid(schedule, steps)
    for t_cur, t_next in itertools.pairwise(grid):
        t = torch.full((x.shape[0],), float(t_cur), dtype=x.dtype)
        a_t, s_t = schedule.alpha(t)[:, None], schedule.sigma(t)[:, None]
        t_n = torch.full_like(t, float(t_next))
        a_n, s_n = schedule.alpha(t_n)[:, None], schedule.sigma(t_n)[:, None]
        eps_hat = -s_t * _checked_score(score_fn, x, c, t)
        x0_hat = (x - s_t * eps_hat) / a_t
        x = a_n * x0_hat + s_n * eps_hat
    return _checked(x, "ddim")


def affine_moments(
    affine_fn: AffineFn,
    c: torch.Tensor,
    dim: int,
    schedule: VPSchedule,
    *,
    stochastic: bool = True,
    steps: int = 1000,
    initial: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact law of the continuous-time sampler's output for a score affine in x.

    With s(x, c, t) = M x + v (``affine_fn(c, t)`` returns M (B, dim, dim), v (B, dim)) and
    reverse time tau = 1 - t, the sampler's mean m and covariance P solve

        dm/dtau = K m + beta v,                  K = 1/2 beta I + beta M      (reverse SDE)
        dP/dtau = K P + P K^T + beta I

    or, for the probability-flow ODE (``stochastic=False``), K = 1/2 beta (I + M),
    dm/dtau = K m + 1/2 beta v and dP/dtau = K P + P K^T, integrated by RK4 to t = t_min.
    The initial law at t = 1 is the samplers' N(0, I) unless ``initial`` = (mean (B, dim),
    cov (B, dim, dim)) is given; started from the true p_1 and driven by the exact score, both
    end at p_{t_min} (N(0, I) differs from p_1 by alpha(1) ~ 6e-3 in the mean for the default
    schedule, which the probability-flow ODE carries to its output).

    Returns:
        mean (B, dim) and covariance (B, dim, dim) at t = t_min.
    """
    c = check_matrix(c, "c").to(torch.float64)
    check_positive_int(dim, "dim")
    b = c.shape[0]
    eye = torch.eye(dim, dtype=torch.float64)

    def rhs(t_val: float, m: torch.Tensor, p: torch.Tensor):
        t = torch.full((b,), t_val, dtype=torch.float64)
        mat, vec = affine_fn(c, t)
        beta = float(schedule.beta(torch.tensor(t_val, dtype=torch.float64)))
        if stochastic:
            k = 0.5 * beta * eye + beta * mat
            dm = torch.einsum("bij,bj->bi", k, m) + beta * vec
            dp = k @ p + p @ k.mT + beta * eye
        else:
            k = 0.5 * beta * (eye + mat)
            dm = torch.einsum("bij,bj->bi", k, m) + 0.5 * beta * vec
            dp = k @ p + p @ k.mT
        return dm, dp

    if initial is None:
        m, p = torch.zeros(b, dim, dtype=torch.float64), eye.expand(b, dim, dim).clone()
    else:
        m, p = (v.to(torch.float64).clone() for v in initial)
        if m.shape != (b, dim) or p.shape != (b, dim, dim):
            raise ValueError(
                f"initial must be (mean ({b}, {dim}), cov ({b}, {dim}, {dim})), "
                f"got {tuple(m.shape)} and {tuple(p.shape)}"
            )
    grid = _grid(schedule, steps)
    for t_cur, t_next in itertools.pairwise(grid):
        h = float(t_cur - t_next)  # step in tau
        tc, tm, tn = float(t_cur), float(t_cur) - h / 2, float(t_next)
        k1m, k1p = rhs(tc, m, p)
        k2m, k2p = rhs(tm, m + h / 2 * k1m, p + h / 2 * k1p)
        k3m, k3p = rhs(tm, m + h / 2 * k2m, p + h / 2 * k2p)
        k4m, k4p = rhs(tn, m + h * k3m, p + h * k3p)
        m = m + h / 6 * (k1m + 2 * k2m + 2 * k3m + k4m)
        p = p + h / 6 * (k1p + 2 * k2p + 2 * k3p + k4p)
    return m, 0.5 * (p + p.mT)
