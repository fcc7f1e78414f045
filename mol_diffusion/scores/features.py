r"""A large score class that is linear in its parameters: random gated-linear features.

    eps_hat(x_t, c, t) = W^T phi(x_t, c, t),     s = -eps_hat / sigma(t),
    phi(z) = vec( g(z) (x) [z_x, z_c, 1] ) / sqrt(G),   g(z) = sigmoid(b (Omega z + u)),
    z = [z_x, z_c, e(t)],

with G = ``num_features`` random sigmoid gates of sharpness b = ``bandwidth`` (Omega with
N(0, 1 / dim_z) entries, u ~ N(0, 1), drawn from the fit's generator), inputs scaled by
``InputScaler`` (fitted on the training data, or fixed in advance with ``input_scaler``, which
makes the feature class the same for every training set) and time features
e(t) = (2t - 1, alpha(t), sigma(t)). Each gate multiplies the affine inputs [z_x, z_c, 1], so
the model is a random mixture of affine maps: every task score is affine in x_t with
coefficients that depend on (c, t), and the Pareto score mixes them with weights that depend on
(x_t, c, t); soft gates match that structure (at equal parameter count they cut the
approximation error of plain random ReLU features by about a third on the Gaussian families).
Bounded gates keep the score at most linear in x_t, so samplers stay stable. Only W is fitted,
so the class complexity is exactly ``num_params = G (dim + cond_dim + 1) dim``.

Denoising score matching with weighting sigma^2 over this class is a weighted ridge
regression of the noise on the features, solved exactly:

    W = (Phi^T D Phi / sum(D) + rho I)^{-1} Phi^T D E / sum(D),

where each pair contributes ``draws_per_pair`` rows (t, eps), D holds the pair weights and
rho = ``ridge``. The Gram matrix is accumulated in chunks of ``chunk_size`` rows so memory stays
O(P^2 + chunk_size P) with P = G (dim + cond_dim + 1) features; each chunk's Gram is a
symmetric rank-k update of sqrt(D) Phi (so the weights must be >= 0). Predictions never build
Phi: eps_hat = sum_k a_k (g^T W_k), with W_k the rows of W that multiply affine input k.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import torch

from mol_diffusion._validation import (
    DivergenceError,
    check_positive_float,
    check_positive_int,
    check_times,
)
from mol_diffusion.objectives import DSMDraws, draw_dsm
from mol_diffusion.schedules import VPSchedule, check_schedule
from mol_diffusion.scores.base import InputScaler, ScoreModelBase

__all__ = ["RandomFeatureScore", "RandomFeatureScoreConfig"]

_TIME_FEATURES = 3


@dataclass(frozen=True)
class RandomFeatureScoreConfig:
    """Args:
    num_features: G, the number of random gates (p_gen = G (dim + cond_dim + 1) dim).
    ridge: rho > 0, the ridge penalty on W in the normalized objective.
    draws_per_pair: (t, eps) draws per training pair.
    bandwidth: sharpness b of the sigmoid gates.
    chunk_size: rows per chunk when accumulating the Gram matrix.
    schedule: the forward process.
    """

    num_features: int = 512
    ridge: float = 1e-4
    draws_per_pair: int = 4
    bandwidth: float = 3.0
    chunk_size: int = 16384
    schedule: VPSchedule = field(default_factory=VPSchedule)

    def __post_init__(self) -> None:
        check_positive_int(self.num_features, "num_features")
        check_schedule(self.schedule)
        check_positive_float(self.ridge, "ridge")
        check_positive_int(self.draws_per_pair, "draws_per_pair")
        check_positive_float(self.bandwidth, "bandwidth")
        check_positive_int(self.chunk_size, "chunk_size")


_SCRATCH = threading.local()


def _scratch(numel: int) -> torch.Tensor:
    """A float64 work buffer of ``numel`` elements kept per thread between fits: a sweep fits
    hundreds of models whose sqrt(D) phi chunk (16384 x 640 floats at the defaults, 84 MB)
    would otherwise be mapped and faulted in afresh each time (3x the cost of filling it)."""
    buffer = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.numel() < numel:
        buffer = _SCRATCH.buffer = torch.empty(numel, dtype=torch.float64)
    return buffer[:numel]


class RandomFeatureScore(ScoreModelBase):
    """Random-feature score model fitted by exact weighted ridge DSM; see the module docstring.

    Fitted attributes: ``W`` (P, dim), the gates (``omega`` (G, dim_z), ``offset`` (G,)) and
    the input scaler.
    """

    def __init__(
        self,
        num_features: int = 512,
        *,
        ridge: float = 1e-4,
        draws_per_pair: int = 4,
        bandwidth: float = 3.0,
        chunk_size: int = 16384,
        schedule: VPSchedule | None = None,
        input_scaler: InputScaler | None = None,
    ):
        """Args: see ``RandomFeatureScoreConfig``; ``input_scaler``: a fixed input scaling
        (statistics of shapes (dim,) and (cond_dim,)), or None to standardize by each fit's own
        training data."""
        super().__init__()
        self.config = RandomFeatureScoreConfig(
            num_features, ridge, draws_per_pair, bandwidth, chunk_size, schedule or VPSchedule()
        )
        if input_scaler is not None and not isinstance(input_scaler, InputScaler):
            raise TypeError(
                f"input_scaler must be an InputScaler or None, got {type(input_scaler).__name__}"
            )
        self.input_scaler = input_scaler

    # ------------------------------------------------------------------ features
    def _parts(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor):
        """The two factors of phi: gates g(z) / sqrt(G), shape (B, G), and the affine inputs
        [z_x, z_c, 1], shape (B, A) with A = dim + cond_dim + 1; phi = vec(g (x) a)."""
        if not hasattr(self, "omega"):
            self._require_fitted()
        t = t.to(torch.float64)
        alpha, sigma = self.schedule.alpha(t), self.schedule.sigma(t)
        z_x, z_c = self.scaler(x_t, c, alpha, sigma)
        z = torch.cat([z_x, z_c, torch.stack([2 * t - 1, alpha, sigma], dim=1)], dim=1)
        gates = torch.sigmoid(self.config.bandwidth * (z @ self.omega.T + self.offset))
        gates = gates / math.sqrt(self.config.num_features)
        return gates, torch.cat([z_x, z_c, torch.ones_like(t)[:, None]], dim=1)

    def features(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """phi(x_t, c, t), shape (B, G A) with A = dim + cond_dim + 1, float64; column
        i A + k is gate i times affine input k."""
        gates, affine = self._parts(x_t, c, t)
        return (gates[:, :, None] * affine[:, None, :]).reshape(t.shape[0], -1)

    def init_features(
        self, c: torch.Tensor, x: torch.Tensor, weights, generator: torch.Generator
    ) -> None:
        """Draw the random feature map and fit the input scaler to the data, or take the fixed
        ``input_scaler`` (first step of ``fit``)."""
        dim_z = x.shape[1] + c.shape[1] + _TIME_FEATURES
        cfg = self.config
        fixed = self.input_scaler
        if fixed is not None:
            shapes = (tuple(fixed.mu_x.shape), tuple(fixed.mu_c.shape))
            if shapes != ((x.shape[1],), (c.shape[1],)):
                raise ValueError(
                    f"input_scaler has statistics of shapes {shapes}, the data need "
                    f"(({x.shape[1]},), ({c.shape[1]},)) for x (dim) and c (cond_dim)"
                )
        self.scaler = fixed if fixed is not None else InputScaler.fit(c, x, weights)
        self.omega = torch.randn(cfg.num_features, dim_z, generator=generator, dtype=torch.float64)
        self.omega /= math.sqrt(dim_z)
        self.offset = torch.randn(cfg.num_features, generator=generator, dtype=torch.float64)

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def solve(
        self, draws: DSMDraws, c: torch.Tensor, weights: torch.Tensor | None, run_name: str = "fit"
    ):
        """Exact weighted ridge solution for W given DSM draws of the pairs (c, x).

        Args:
            draws: noised copies; ``draws.rows`` index rows of ``c`` and ``weights``.
            c: conditions of the pairs, shape (n, cond_dim).
            weights: per-pair weights (n,) or None.
        Returns:
            W, shape (P, dim) with P = G (dim + cond_dim + 1); also stored on the model.
        """
        f, chunk = (
            self.omega.shape[0] * (self.omega.shape[1] - _TIME_FEATURES + 1),
            self.config.chunk_size,
        )
        n_rows = draws.rows.shape[0]
        row_w = (
            torch.ones(n_rows, dtype=torch.float64)
            if weights is None
            else weights.to(torch.float64)[draws.rows]
        )
        total = row_w.sum()
        if (row_w < 0).any():
            raise ValueError("weights must be >= 0 (the Gram matrix is built from sqrt(weights))")
        gram = torch.zeros(f, f, dtype=torch.float64)
        rhs = torch.zeros(f, draws.eps.shape[1], dtype=torch.float64)
        buffer = _scratch(min(chunk, n_rows) * f)  # reused by every chunk (and fit)
        for start in range(0, n_rows, chunk):
            sl = slice(start, start + chunk)
            gates, affine = self._parts(draws.x_t[sl], c[draws.rows[sl]], draws.t[sl])
            root = torch.sqrt(row_w[sl] / total)[:, None]
            # sqrt(D) phi in one pass; then (sqrt(D) phi)^T (sqrt(D) phi) = phi^T D phi, which
            # numpy computes as a symmetric rank-k update (A^T A on one buffer: half the
            # operations of a general product, about 2x the speed of torch's matmul here).
            n_chunk = root.shape[0]
            scaled = buffer[: n_chunk * f].view(n_chunk, gates.shape[1], affine.shape[1])
            torch.mul((gates * root)[:, :, None], affine[:, None, :], out=scaled)
            scaled = scaled.view(n_chunk, f)
            rows = scaled.numpy()
            gram += torch.from_numpy(rows.T @ rows)
            rhs += scaled.T @ (draws.eps[sl].to(torch.float64) * root)
        gram.diagonal().add_(self.config.ridge)
        chol, info = torch.linalg.cholesky_ex(gram)
        if info:
            raise DivergenceError(
                f"{run_name}: the ridge system is not positive definite; increase ridge"
            )
        W = torch.cholesky_solve(rhs, chol)
        if not torch.isfinite(W).all():
            raise DivergenceError(f"{run_name}: the ridge solution is not finite")
        self.W = W
        return W

    def _fit(self, c, x, weights, generator, run_name) -> None:
        self.init_features(c, x, weights, generator)
        draws = draw_dsm(x.to(torch.float64), self.schedule, generator, self.config.draws_per_pair)
        self.solve(draws, c.to(torch.float64), weights, run_name)

    def eps(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise eps_hat = W^T phi, shape (B, dim), float64."""
        self._require_fitted()
        check_times(t, x_t.shape[0])
        gates, affine = self._parts(x_t, c, t)
        a_dim, dim = affine.shape[1], self.W.shape[1]
        per_input = (gates @ self.W.reshape(-1, a_dim * dim)).reshape(-1, a_dim, dim)
        return (per_input * affine[:, :, None]).sum(dim=1)

    def _score(self, x_t, c, t) -> torch.Tensor:
        return -self.eps(x_t, c, t) / self.schedule.sigma(t.to(torch.float64))[:, None]

    @property
    def num_params(self) -> int:
        dim, cond_dim = self._require_fitted()
        return self.config.num_features * (dim + cond_dim + 1) * dim
