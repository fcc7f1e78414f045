r"""A lightweight image specialist: a conditional Gaussian whose mean is a linear filter of c.

Model, for images of shape (H, W) flattened to dim = H W (condition and target alike):

    x | c ~ N(k * c + b, Sigma),

where k * c is the 2-d correlation of the degraded image c with one r x r kernel k (reflecting
borders), b a per-pixel offset (dim,) and Sigma the residual covariance (dim, dim). It is
``LinearGaussianScore`` with A constrained to the translation-invariant maps A = Conv(k); score,
sampling and exact draws are inherited. Every pixel of every pair is an equation for the r^2
kernel weights, so a handful of images pins the mean down: this is what makes the model a
*specialist* whose paired-sample need is small (paper: p_spec small). Restoration by a fitted
linear filter is the classical Wiener approach; here it is estimated from the pairs by weighted
least squares (the Gaussian MLE of the mean), with a small ridge on k.

p_spec = r^2 (k) + dim (b) + dim (dim + 1) / 2 (Sigma) (``num_params``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from mol_diffusion._validation import check_positive_float, check_positive_int
from mol_diffusion.schedules import VPSchedule, check_schedule
from mol_diffusion.scores.linear import LinearGaussianScore

__all__ = ["ConvGaussianScore", "ConvGaussianScoreConfig"]


@dataclass(frozen=True)
class ConvGaussianScoreConfig:
    """Args:
    image_shape: (H, W) of the images; dim = cond_dim = H W.
    kernel: side r of the square filter, odd, smaller than H and W.
    ridge: L2 penalty on k relative to the scale of the patch Gram matrix; >= 0.
    min_variance: floor on the eigenvalues of the fitted Sigma; > 0.
    schedule: the forward process the score refers to.
    """

    image_shape: tuple[int, int]
    kernel: int = 5
    ridge: float = 1e-4
    min_variance: float = 1e-8
    schedule: VPSchedule = field(default_factory=VPSchedule)

    def __post_init__(self) -> None:
        check_schedule(self.schedule)
        shape = self.image_shape
        if (
            not isinstance(shape, tuple | list)
            or len(shape) != 2
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)
        ):
            raise ValueError(f"image_shape must be two positive integers (H, W), got {shape!r}")
        object.__setattr__(self, "image_shape", tuple(shape))
        check_positive_int(self.kernel, "kernel")
        if self.kernel % 2 == 0 or self.kernel // 2 >= min(shape):
            raise ValueError(
                f"kernel must be odd with kernel // 2 < min(image_shape) = {min(shape)}, "
                f"got {self.kernel}"
            )
        check_positive_float(self.ridge, "ridge", allow_zero=True)
        check_positive_float(self.min_variance, "min_variance")


class ConvGaussianScore(LinearGaussianScore):
    """Conditional Gaussian image specialist with a convolutional mean; see the module docstring.

    Fitted attributes: ``kernel`` (r, r), and as in ``LinearGaussianScore`` ``A`` (dim, dim),
    ``b`` (dim,), ``Sigma`` (dim, dim).
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        *,
        kernel: int = 5,
        ridge: float = 1e-4,
        min_variance: float = 1e-8,
        schedule: VPSchedule | None = None,
    ):
        super(LinearGaussianScore, self).__init__()
        self.config = ConvGaussianScoreConfig(
            image_shape, kernel, ridge, min_variance, schedule or VPSchedule()
        )

    def _patches(self, c: torch.Tensor) -> torch.Tensor:
        """(B, H W) -> the r x r neighbourhood of every pixel, (B, H W, r^2), reflecting borders."""
        h, w = self.config.image_shape
        r = self.config.kernel
        img = F.pad(c.reshape(-1, 1, h, w), (r // 2,) * 4, mode="reflect")
        return F.unfold(img, r).transpose(1, 2)

    def _fit(self, c, x, weights, generator, run_name) -> None:
        h, w_px = self.config.image_shape
        dim = h * w_px
        if c.shape[1] != dim or x.shape[1] != dim:
            raise ValueError(
                f"{run_name}: ConvGaussianScore for images {self.config.image_shape} needs c and "
                f"x with {dim} columns, got {c.shape[1]} and {x.shape[1]}"
            )
        n = c.shape[0]
        if n < 2:
            raise ValueError(f"{run_name}: ConvGaussianScore needs at least 2 pairs, got {n}")
        w = torch.ones(n, dtype=torch.float64) if weights is None else weights.to(torch.float64)
        w = w / w.sum()
        c64, x64 = c.to(torch.float64), x.to(torch.float64)
        patches = self._patches(c64)  # (n, dim, r^2)
        # weighted per-pixel centring absorbs b; then one least-squares problem for k
        p_mean = torch.einsum("n,npk->pk", w, patches)
        x_mean = w @ x64
        pc, xc = patches - p_mean, x64 - x_mean
        r2 = patches.shape[2]
        gram = torch.einsum("n,npk,npl->kl", w, pc, pc) / dim
        rhs = torch.einsum("n,npk,np->k", w, pc, xc) / dim
        gram = gram + self.config.ridge * torch.eye(r2, dtype=torch.float64)
        k = torch.linalg.solve(gram, rhs)
        b = x_mean - p_mean @ k
        # A = Conv(k) as a (dim, dim) matrix: its column j is the filter applied to pixel j alone
        A = (self._patches(torch.eye(dim, dtype=torch.float64)) @ k).T.contiguous()
        self.kernel = k.reshape(self.config.kernel, self.config.kernel)
        self._set_gaussian(A, b, c64, x64, w)

    def mean(self, c: torch.Tensor) -> torch.Tensor:
        """Fitted conditional mean k * c + b, shape (B, dim)."""
        return super().mean(c)

    @property
    def num_params(self) -> int:
        dim, _ = self._require_fitted()
        return self.config.kernel**2 + dim + dim * (dim + 1) // 2
