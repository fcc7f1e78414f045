r"""An image specialist with an exact posterior: a shrunk Gaussian prior and a fitted operator.

Model, for images of shape (H, W) flattened to dim = H W (condition and target alike):

    x ~ N(mu, Sigma),        c = A x + s e,   e ~ N(0, I),

with one of two observation models, chosen from the task's pairs (``operator = "auto"``) or
named in the config:

- **linear**: A = K_w, a normalized Gaussian blur of standard deviation w pixels with
  reflecting borders (``tasks.Deblur``: the model knows the task's blur family); w = 0 is the
  identity, i.e. denoising. w is the smallest grid value of ``widths`` in the 95% profile-
  likelihood set of the Gaussian noise model, N log(r_w / r_min) <= 3.84 with r_w the mean
  squared residual c - K_w x over the N = n dim residuals (so a blur is fitted only when the
  pairs show one), and s^2 = r_w (the Gaussian MLE of the noise variance at w), floored at
  ``min_variance``.
- **mask**: A = diag(o(c)) keeps the pixels that read non-zero, s^2 = ``min_variance``
  (inpainting without noise: a hidden pixel reads 0, so the mask is read off the condition; an
  observed pixel that is truly 0 counts as hidden. On digits about half the pixels are truly 0,
  so this model discards observations: it is the class's limit, not an exact account of the
  task). Chosen by ``auto`` when every pixel of every pair reads either its clean value
  or 0, and some read 0 where the clean value is not.

The prior is fitted to the task's clean images x alone: mu their weighted mean, Sigma their
weighted covariance S shrunk towards a target T,  Sigma = lambda T + (1 - lambda) S, with T the
scaled identity tr(S)/dim I (Ledoit & Wolf 2004, J. Multivariate Anal. 88, 365-411, Theorem 1
with their estimator of Section 3.3) or diag(S) (the same estimator for the off-diagonal part:
Schafer & Strimmer 2005, Stat. Appl. Genet. Mol. Biol. 4, art. 32, target "D") or a
*stationary* target: S's variances with the correlation averaged over the pixel pairs at each
offset (a translation-invariant correlation, projected onto the positive semi-definite
matrices; ``_stationary_target``). For the stationary target the intensity is the same plug-in
formula with T in place of the identity target; it ignores T's own estimation error, so it is a
heuristic there, chosen on validation data, not an optimal-shrinkage result. With weights w_k
summing to 1, the estimator's sum (1/n^2) sum_k ||x_k x_k^T - S||^2 is sum_k w_k^2 ||...||^2
(equal weights give theirs).

The posterior is Gaussian and exact:

    E[x | c] = mu + Sigma A^T G^{-1} (c - A mu),    Cov[x | c] = Sigma - Sigma A^T G^{-1} A Sigma,

G = A Sigma A^T + s^2 I (for a mask, on the observed pixels only). Under the VP process the score
at level t is -(alpha^2 Cov[x|c] + sigma^2 I)^{-1} (x_t - alpha E[x|c]), so sampling, exact
draws (``sample_exact``) and the exact posterior mean (``mean``) agree.

p_spec = dim (mu) + dim (dim + 1) / 2 (Sigma) + the operator's fitted parameters (w and s for
linear, s alone for ``denoise``, none for mask) (``num_params``). The shrinkage makes the
effective number smaller at small n; the count is the class's, not the fit's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from mol_diffusion._image_checks import check_image_shape
from mol_diffusion._validation import (
    check_generator,
    check_matrix,
    check_positive_float,
    check_sample_weights,
)
from mol_diffusion.schedules import VPSchedule, check_schedule
from mol_diffusion.scores.base import ScoreModelBase

__all__ = [
    "GaussianPriorScore",
    "GaussianPriorScoreConfig",
    "blur_matrix",
    "shrunk_covariance",
]

OPERATORS = ("auto", "linear", "denoise", "deblur", "mask")
TARGETS = ("identity", "diagonal", "stationary")
DEFAULT_WIDTHS = tuple(round(0.05 * i, 2) for i in range(61))  # 0 (identity) to 3 px
_ROW_BLOCK = 128  # rows of per-row (dim, dim) systems held at once (mask model)


def blur_matrix(image_shape: tuple[int, int], width: float) -> torch.Tensor:
    """K_w as a (dim, dim) float64 matrix: ``tasks.Deblur(width).blur`` on flattened images
    (row-major), the identity for width 0."""
    from mol_diffusion.tasks.restoration import Deblur

    h, w = image_shape
    eye = torch.eye(h * w, dtype=torch.float64)
    if width == 0:
        return eye
    basis = Deblur(width=width, sigma=0.0).blur(eye.reshape(h * w, h, w))  # row j = K e_j
    return basis.reshape(h * w, h * w).T.contiguous()


def _max_width(image_shape: tuple[int, int]) -> float:
    """Largest width whose kernel radius ceil(3 w) fits the image (``tasks.Deblur``)."""
    return (min(image_shape) - 1) / 3


def _stationary_target(S: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """T_ij = sqrt(S_ii S_jj) rho(p_i - p_j), projected onto the positive semi-definite
    matrices: S's variances (T_ii = S_ii before the projection) with the correlation averaged
    over the pixel pairs at each offset p_i - p_j whose pixels both vary (a constant pixel has no
    correlation to average), rho(0) = 1; shape of S."""
    h, w = image_shape
    if S.shape != (h * w, h * w):
        raise ValueError(
            f"target 'stationary' for images {tuple(image_shape)} needs {h * w} columns, got "
            f"{S.shape[0]}"
        )
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    yy, xx = yy.flatten(), xx.flatten()
    offset = (yy[:, None] - yy[None, :] + h - 1) * (2 * w - 1) + (xx[:, None] - xx[None, :] + w - 1)
    var = torch.diagonal(S)
    varies = var > 1e-12 * max(float(var.max()), 1e-300)
    sd = var.clamp(min=0).sqrt()
    both = (varies[:, None] & varies[None, :]).flatten()
    corr = (S / sd.clamp(min=1e-300)[:, None] / sd.clamp(min=1e-300)[None, :]).flatten()
    ids = offset.flatten()
    bins = (2 * h - 1) * (2 * w - 1)
    total = torch.zeros(bins, dtype=S.dtype).index_add_(0, ids[both], corr[both])
    count = torch.bincount(ids[both], minlength=bins).to(S.dtype)
    rho = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    rho[(h - 1) * (2 * w - 1) + (w - 1)] = 1.0  # offset 0
    T = sd[:, None] * rho[offset] * sd[None, :]
    # an offset-averaged correlation need not be positive semi-definite: project it
    evals, evecs = torch.linalg.eigh(T)
    return (evecs * evals.clamp(min=0)) @ evecs.T


def shrunk_covariance(
    x: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    target: str = "identity",
    image_shape: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Weighted mean, shrunk covariance and shrinkage intensity of the rows of x (n, dim).

    See the module docstring for the estimator and its sources. Returns (mu (dim,),
    Sigma (dim, dim), lambda in [0, 1]); lambda = 1 when S equals its target.
    """
    x = check_matrix(x, "x").to(torch.float64)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    n, dim = x.shape
    weights = check_sample_weights(weights, n)
    w = torch.full((n,), 1.0 / n, dtype=torch.float64) if weights is None else weights
    w = w.to(torch.float64) / w.sum()
    mu = w @ x
    xc = x - mu
    S = xc.T @ (w[:, None] * xc)
    if target == "identity":
        T = torch.eye(dim, dtype=torch.float64) * (torch.trace(S) / dim)
    elif target == "diagonal":
        T = torch.diag(torch.diagonal(S))
    else:
        if image_shape is None:
            raise ValueError("target 'stationary' needs image_shape")
        T = _stationary_target(S, image_shape)
    d2 = float(((S - T) ** 2).sum())
    if d2 <= 0:
        return mu, S, 1.0
    # sum_k w_k^2 ||x_k x_k^T - S||_F^2 (off-diagonal entries only for the diagonal target),
    # without forming the n outer products
    sq = (xc**2).sum(1)
    quad = torch.einsum("ki,ij,kj->k", xc, S, xc)
    full = sq**2 - 2 * quad + float((S**2).sum())
    if target == "diagonal":
        full = full - ((xc**2 - torch.diagonal(S)) ** 2).sum(1)
    b2 = min(float((w**2 * full).sum()), d2)
    lam = b2 / d2
    return mu, lam * T + (1 - lam) * S, lam


@dataclass(frozen=True)
class GaussianPriorScoreConfig:
    """Args:
    image_shape: (H, W) of the images; dim = cond_dim = H W.
    operator: the observation model: ``auto`` (chosen from the pairs), ``linear`` (blur of a
        fitted width, 0 allowed), ``denoise`` (width 0), ``deblur`` (width > 0) or ``mask``.
    target: the covariance shrinkage target, ``identity``, ``diagonal`` or ``stationary``
        (module docstring).
    widths: candidate blur widths in pixels for the linear model, each in [0, (min(H, W) - 1)
        / 3] (the kernel must fit the image); default 0 to 3 px in steps of 0.05, those that fit.
    min_variance: floor on the noise variance s^2 and on the posterior covariance's
        eigenvalues; > 0.
    schedule: the forward process the score refers to.
    """

    image_shape: tuple[int, int]
    operator: str = "auto"
    target: str = "identity"
    widths: tuple[float, ...] | None = None
    min_variance: float = 1e-6
    schedule: VPSchedule = field(default_factory=VPSchedule)

    def __post_init__(self) -> None:
        check_schedule(self.schedule)
        object.__setattr__(self, "image_shape", check_image_shape(self.image_shape, minimum=2))
        if self.operator not in OPERATORS:
            raise ValueError(f"operator must be one of {OPERATORS}, got {self.operator!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        limit = _max_width(self.image_shape)
        if self.widths is None:
            widths = tuple(v for v in DEFAULT_WIDTHS if v <= limit)
        else:
            widths = tuple(self.widths)
            for i, v in enumerate(widths):
                if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= limit:
                    raise ValueError(
                        f"widths[{i}] must be a number in [0, {limit:.3g}] for images "
                        f"{self.image_shape}, got {v!r}"
                    )
        if self.operator == "denoise":
            widths = (0.0,)
        elif self.operator == "deblur":
            widths = tuple(v for v in widths if v > 0)
        if not widths and self.operator != "mask":
            raise ValueError(f"widths leaves no candidate for operator {self.operator!r}")
        object.__setattr__(self, "widths", tuple(float(v) for v in widths))
        check_positive_float(self.min_variance, "min_variance")


class GaussianPriorScore(ScoreModelBase):
    """Gaussian-prior restoration specialist with an exact posterior; see the module docstring.

    Fitted attributes: ``mu`` (dim,), ``Sigma`` (dim, dim), ``shrinkage`` (lambda),
    ``observation`` (``linear`` or ``mask``), ``width`` (w, linear only), ``noise_sd`` (s).
    """

    def __init__(self, image_shape: tuple[int, int], **options):
        super().__init__()
        self.config = GaussianPriorScoreConfig(image_shape, **options)

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, c, x, weights, generator, run_name) -> None:
        h, w_px = self.config.image_shape
        dim = h * w_px
        if c.shape[1] != dim or x.shape[1] != dim:
            raise ValueError(
                f"{run_name}: GaussianPriorScore for images {self.config.image_shape} needs c "
                f"and x with {dim} columns, got {c.shape[1]} and {x.shape[1]}"
            )
        if c.shape[0] < 2:
            raise ValueError(f"{run_name}: GaussianPriorScore needs at least 2 pairs")
        c64, x64 = c.to(torch.float64), x.to(torch.float64)
        w = None if weights is None else weights.to(torch.float64) / weights.sum()
        self.mu, self.Sigma, self.shrinkage = shrunk_covariance(
            x64, w, target=self.config.target, image_shape=self.config.image_shape
        )
        floor = self.config.min_variance
        reads_clean_or_zero = bool(((c64 == x64) | (c64 == 0)).all())
        hides_some = bool(((c64 == 0) & (x64 != 0)).any())
        mask = self.config.operator == "mask" or (
            self.config.operator == "auto" and reads_clean_or_zero and hides_some
        )
        if mask:
            if not reads_clean_or_zero:
                raise ValueError(
                    f"{run_name}: operator 'mask' needs conditions that read each pixel's clean "
                    "value or 0; these pairs do not (a noisy or blurred task?)"
                )
            self.observation, self.width, self.noise_sd = "mask", None, math.sqrt(floor)
            self.A = None
            return
        wts = torch.full((c.shape[0],), 1.0 / c.shape[0], dtype=torch.float64) if w is None else w
        blurs = [blur_matrix(self.config.image_shape, v) for v in self.config.widths]
        resids = [float(wts @ ((c64 - x64 @ K.T) ** 2).mean(1)) for K in blurs]
        # the smallest width in the 95% profile-likelihood set of the Gaussian noise model with
        # N = n dim residuals: N log(r_w / r_min) <= chi2_1(0.95) = 3.84 (least residual alone
        # picks a slight blur for about half of the pure-denoising fits at n = 8)
        n_resid = c.shape[0] * dim
        r_min = max(min(resids), floor)
        inside = [
            i for i, r in enumerate(resids) if n_resid * math.log(max(r, floor) / r_min) <= 3.84
        ]
        pick = min(inside, key=lambda i: self.config.widths[i])
        self.width, resid, self.A = self.config.widths[pick], resids[pick], blurs[pick]
        self.observation = "linear"
        self.noise_sd = math.sqrt(max(resid, floor))
        G = self.A @ self.Sigma @ self.A.T + self.noise_sd**2 * torch.eye(dim, dtype=torch.float64)
        gain = torch.linalg.solve(G, self.A @ self.Sigma).T  # Sigma A^T G^{-1}, (dim, dim)
        cov = self.Sigma - gain @ self.A @ self.Sigma
        self._gain = gain
        self._evals, self._evecs = self._eig(cov)

    def _eig(self, cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        evals, evecs = torch.linalg.eigh(0.5 * (cov + cov.transpose(-1, -2)))
        return evals.clamp(min=self.config.min_variance), evecs

    # -- the posterior ---------------------------------------------------------------------
    def _mask_posterior(self, c: torch.Tensor, with_cov: bool):
        """Per-row posterior mean (B, dim) and, with ``with_cov``, the eigendecomposition of
        the per-row covariance ((B, dim), (B, dim, dim)), in row blocks."""
        means, evals, evecs = [], [], []
        for start in range(0, c.shape[0], _ROW_BLOCK):
            cb = c[start : start + _ROW_BLOCK].to(torch.float64)
            o = (cb != 0).to(torch.float64)  # (b, dim)
            # P = O Sigma O + s^2 O + (I - O): the observed block, the rest decoupled
            P = o[:, :, None] * self.Sigma * o[:, None, :] + torch.diag_embed(
                o * self.noise_sd**2 + (1 - o)
            )
            resid = (o * (cb - self.mu))[:, :, None]
            if with_cov:
                sig_o = self.Sigma * o[:, None, :]  # Sigma O, (b, dim, dim)
                solved = torch.linalg.solve(P, torch.cat([resid, sig_o.transpose(1, 2)], 2))
                means.append(self.mu + (sig_o @ solved[:, :, :1])[:, :, 0])
                cov = self.Sigma - sig_o @ solved[:, :, 1:]
                ev, vec = self._eig(cov)
                evals.append(ev)
                evecs.append(vec)
            else:
                solved = torch.linalg.solve(P, resid)
                means.append(self.mu + ((self.Sigma * o[:, None, :]) @ solved)[:, :, 0])
        mean = torch.cat(means)
        return (mean, torch.cat(evals), torch.cat(evecs)) if with_cov else mean

    def mean(self, c: torch.Tensor) -> torch.Tensor:
        """The exact posterior mean E[x | c], shape (B, dim), float64."""
        self._require_fitted()
        c = check_matrix(c, "c", cols=self.cond_dim)
        return self._mean(c)

    def _mean(self, c: torch.Tensor) -> torch.Tensor:
        if self.observation == "mask":
            return self._mask_posterior(c, with_cov=False)
        c64 = c.to(torch.float64)
        return self.mu + (c64 - self.mu @ self.A.T) @ self._gain.T

    def _moments(self, c: torch.Tensor):
        """(mean (B, dim), evals (dim,) or (B, dim), evecs (dim, dim) or (B, dim, dim))."""
        if self.observation == "mask":
            return self._mask_posterior(c, with_cov=True)
        return self._mean(c), self._evals, self._evecs

    @staticmethod
    def _score_from(x_t, mean, evals, evecs, alpha, sigma2) -> torch.Tensor:
        r = x_t.to(torch.float64) - alpha * mean
        if evecs.dim() == 2:
            return -((r @ evecs) / (alpha**2 * evals + sigma2)) @ evecs.T
        z = torch.einsum("bd,bde->be", r, evecs) / (alpha**2 * evals + sigma2)
        return -torch.einsum("be,bde->bd", z, evecs)

    def _score(self, x_t, c, t) -> torch.Tensor:
        return self._score_given(c)(x_t, t)

    def _score_given(self, c: torch.Tensor):
        mean, evals, evecs = self._moments(c)  # once per sampler run, not once per step

        def score(x_t, t):
            alpha, sigma = self.schedule.alpha_sigma(t.to(torch.float64))
            return self._score_from(x_t, mean, evals, evecs, alpha[:, None], sigma[:, None] ** 2)

        return score

    def sample_exact(self, c: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        """Exact posterior draws x ~ N(E[x|c], Cov[x|c]), shape (B, dim), dtype of c."""
        self._require_fitted()
        c = check_matrix(c, "c", cols=self.cond_dim)
        mean, evals, evecs = self._moments(c)
        z = torch.randn(mean.shape, generator=check_generator(generator), dtype=torch.float64)
        if evecs.dim() == 2:
            draw = mean + (z * evals.sqrt()) @ evecs.T
        else:
            draw = mean + torch.einsum("be,bde->bd", z * evals.sqrt(), evecs)
        return draw.to(c.dtype)

    @property
    def num_params(self) -> int:
        dim, _ = self._require_fitted()
        if self.observation == "mask":
            return dim + dim * (dim + 1) // 2
        fitted_width = len(self.config.widths) > 1  # denoise fixes w = 0
        return dim + dim * (dim + 1) // 2 + 1 + int(fitted_width)
