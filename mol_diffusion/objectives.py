r"""Objectives: denoising score matching draws and per-sample losses, and scalarizations.

Losses are returned per sample (no reduction): weighting is the objective's job. With
time weighting sigma(t)^2 (Song et al., 2021, the "likelihood-free" choice that turns DSM into
noise prediction), the DSM loss of a score model s on one draw is

    l(s; x_0, c, t, eps) = || sigma(t) s(x_t, c, t) + eps ||^2,   x_t = alpha(t) x_0 + sigma(t) eps,

and for an epsilon-predicting model eps_hat = -sigma s it is ||eps_hat - eps||^2. Its expectation
equals sigma^2 || s - s* ||^2 plus a constant that does not depend on s (Vincent, 2011), which is
why the exact excess risk in ``metrics`` and the DSM loss differ by the same constant for every
model.

Multi-objective view: task k has objective L_k(s) (its own DSM or excess risk). A linear
scalarization with weights lambda (code ``weights``) is sum_k lambda_k L_k; the Chebyshev
scalarization is max_k lambda_k (L_k - z_k) for an ideal point z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mol_diffusion._validation import (
    check_generator,
    check_matrix,
    check_positive_int,
    check_simplex,
)
from mol_diffusion.schedules import VPSchedule

__all__ = [
    "DSMDraws",
    "chebyshev_scalarization",
    "draw_dsm",
    "dsm_loss",
    "eps_loss",
    "hypervolume",
    "linear_scalarization",
]


@dataclass(frozen=True)
class DSMDraws:
    """Noised copies of a data set for denoising score matching.

    ``rows`` indexes the pair each draw came from, so per-pair weights carry over as
    ``weights[rows]``. Shapes: rows (N,), t (N,), eps (N, dim), x_t (N, dim), with
    N = num_pairs * draws_per_pair.
    """

    rows: torch.Tensor
    t: torch.Tensor
    eps: torch.Tensor
    x_t: torch.Tensor


def draw_dsm(
    x: torch.Tensor,
    schedule: VPSchedule,
    generator: torch.Generator,
    draws_per_pair: int = 1,
) -> DSMDraws:
    """Draw t ~ U[t_min, 1] and eps ~ N(0, I) for every pair, ``draws_per_pair`` times.

    Args:
        x: clean samples, shape (n, dim).
        schedule: the forward process (supplies alpha, sigma and t_min).
        generator: the only source of randomness.
        draws_per_pair: independent (t, eps) draws per pair.
    """
    x = check_matrix(x, "x")
    check_generator(generator)
    reps = check_positive_int(draws_per_pair, "draws_per_pair")
    rows = torch.arange(x.shape[0]).repeat(reps)
    n = rows.shape[0]
    t = schedule.t_min + (1 - schedule.t_min) * torch.rand(
        n, generator=generator, dtype=torch.float64
    )
    eps = torch.randn(n, x.shape[1], generator=generator, dtype=torch.float64).to(x.dtype)
    t = t.to(x.dtype)
    return DSMDraws(rows=rows, t=t, eps=eps, x_t=schedule.add_noise(x[rows], t, eps))


def dsm_loss(score: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample DSM loss ||sigma s + eps||^2, shape (B,).

    Args:
        score: model score s(x_t, c, t), shape (B, dim).
        eps: the noise that produced x_t, shape (B, dim).
        sigma: sigma(t), shape (B,).
    """
    if score.shape != eps.shape:
        raise ValueError(
            "score and eps must have the same shape, "
            f"got {tuple(score.shape)} and {tuple(eps.shape)}"
        )
    if sigma.shape != score.shape[:1]:
        raise ValueError(f"sigma must have shape ({score.shape[0]},), got {tuple(sigma.shape)}")
    return ((sigma[:, None] * score + eps) ** 2).sum(-1)


def eps_loss(eps_hat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-sample noise-prediction loss ||eps_hat - eps||^2 of a discrete DDPM (Ho et al., 2020,
    eq. 14), summed over every non-batch axis: shape (B, ...) -> (B,)."""
    if eps_hat.shape != eps.shape:
        raise ValueError(
            "eps_hat and eps must have the same shape, "
            f"got {tuple(eps_hat.shape)} and {tuple(eps.shape)}"
        )
    return ((eps_hat - eps) ** 2).flatten(1).sum(-1)


def linear_scalarization(task_losses: torch.Tensor, weights) -> torch.Tensor:
    """sum_k lambda_k L_k. ``task_losses`` has shape (K, ...); returns shape (...)."""
    w = check_simplex(weights, task_losses.shape[0]).to(task_losses.dtype)
    return torch.tensordot(w, task_losses, dims=1)


def chebyshev_scalarization(task_losses: torch.Tensor, weights, ideal=None) -> torch.Tensor:
    """max_k lambda_k (L_k - z_k), ideal point z (zeros by default). Shape (K, ...) -> (...)."""
    k = task_losses.shape[0]
    w = check_simplex(weights, k).to(task_losses.dtype)
    z = torch.zeros(k, dtype=task_losses.dtype) if ideal is None else torch.as_tensor(ideal)
    if z.shape != (k,):
        raise ValueError(f"ideal must have shape ({k},), got {tuple(z.shape)}")
    shape = (-1,) + (1,) * (task_losses.dim() - 1)
    return (w.reshape(shape) * (task_losses - z.to(task_losses.dtype).reshape(shape))).amax(0)


def hypervolume(points, reference) -> float:
    """Volume of the region dominated by ``points`` (P, K) and bounded by ``reference`` (K,),
    all objectives minimized. Exact, by slicing along the last objective (fine for the small
    fronts used here: O(P^K)). Points not strictly below the reference in every objective
    contribute nothing."""
    pts = np.asarray(points, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if pts.ndim != 2 or ref.shape != (pts.shape[1],):
        raise ValueError(
            f"points must be (P, K) and reference (K,), got {pts.shape} and {ref.shape}"
        )
    if not (np.isfinite(pts).all() and np.isfinite(ref).all()):
        raise ValueError("points and reference must be finite")
    return _hv(pts[(pts < ref).all(1)], ref)


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    pts = pts[np.argsort(pts[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        depth = upper - pts[i, -1]
        if depth > 0:
            volume += depth * _hv(pts[: i + 1, :-1], ref[:-1])
    return float(volume)
