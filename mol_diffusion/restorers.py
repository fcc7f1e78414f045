r"""Point restorers that a diffusion restorer must beat, their scores, and a validation split.

Every restorer maps a degraded image c (B, H W) to an estimate of its clean image (B, H W):
``fit(c, x, *, generator) -> self`` on one task's n pairs (or on all tasks' pairs pooled, for a
blind restorer), ``restore(c)``. Each tunes its own hyper-parameters on the pairs it is given
(leave-one-out or a grid scored on those pairs), so none sees a validation or test image.

- ``DegradedInput``: x_hat = c.
- ``RidgeRestorer``: x_hat = W c + b, multi-output ridge with an unpenalized intercept and one
  penalty chosen from ``alphas`` by the exact leave-one-out error (the hat-matrix identity
  e_i / (1 - h_ii); Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*,
  2nd ed., eq. 7.52). Per task, or blind when fitted on every task's pairs.
- ``ClassicalRestorer``: the scikit-image method for the task's degradation:
  total-variation denoising (``denoise_tv_chambolle``) for ``Denoise``; Wiener deconvolution
  with the true blur kernel (``restoration.wiener``, which assumes periodic borders where the
  task reflects) for ``Deblur``; biharmonic inpainting (``inpaint_biharmonic``) of the pixels
  that read 0 for ``Inpaint`` (the mask read off the condition, as ``scores.prior`` does: on
  digits, where about half the pixels are truly 0, this inpaints observed pixels too). The TV
  weight and the Wiener balance are the grid values with the least MSE on the task's pairs.
- ``BlindCNNRestorer``: a residual convolutional network x_hat = c + f(c) (``depth`` 3 x 3
  convolutions of ``channels`` channels, ReLU) trained with MSE and Adam on the pairs pooled
  over tasks; the task is not an input.

``restoration_metrics`` gives per-image PSNR (dB, data range 1) and SSIM (scikit-image,
``data_range=1``, a 7 x 7 window, the largest odd window that fits 8 x 8 images) of clipped
estimates; ``validation_split`` carves a validation set, by source, out of the train split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mol_diffusion._image_checks import check_image_shape
from mol_diffusion._validation import DivergenceError, check_matrix, check_positive_int
from mol_diffusion.metrics import psnr, ssim
from mol_diffusion.tasks.restoration import Deblur, Denoise, Inpaint, RestorationTasks

__all__ = [
    "BlindCNNRestorer",
    "ClassicalRestorer",
    "DegradedInput",
    "RidgeRestorer",
    "restoration_metrics",
    "validation_split",
]


def _pairs(c, x) -> tuple[torch.Tensor, torch.Tensor]:
    c = check_matrix(c, "c").to(torch.float64)
    x = check_matrix(x, "x").to(torch.float64)
    if c.shape[0] != x.shape[0]:
        raise ValueError(f"c and x must hold the same rows, got {c.shape[0]} and {x.shape[0]}")
    return c, x


class DegradedInput:
    """x_hat = c (no fit)."""

    name = "degraded input"

    def fit(self, c, x, *, generator=None) -> DegradedInput:
        _pairs(c, x)
        return self

    def restore(self, c: torch.Tensor) -> torch.Tensor:
        return check_matrix(c, "c").to(torch.float64)

    @property
    def num_params(self) -> int:
        return 0


class RidgeRestorer:
    """Multi-output ridge x_hat = W c + b with a leave-one-out penalty (module docstring).

    Args:
        alphas: candidate penalties on W (b is not penalized), each > 0.
    Fitted: ``W`` (dim, cond_dim), ``b`` (dim,), ``alpha``, ``loo_mse`` per candidate.
    """

    name = "ridge"

    def __init__(self, alphas: tuple[float, ...] = tuple(10.0**k for k in range(-4, 4))):
        if not alphas or any(
            isinstance(a, bool) or not isinstance(a, int | float) or a <= 0 for a in alphas
        ):
            raise ValueError(f"alphas must be positive numbers, got {alphas!r}")
        self.alphas = tuple(float(a) for a in alphas)

    def fit(self, c, x, *, generator=None) -> RidgeRestorer:
        c, x = _pairs(c, x)
        n, p = c.shape
        if n < 3:
            raise ValueError(f"RidgeRestorer needs at least 3 pairs, got {n}")
        design = torch.cat([c, torch.ones(n, 1, dtype=torch.float64)], 1)
        gram = design.T @ design
        self.loo_mse, fits = [], []
        for a in self.alphas:
            penalty = torch.full((p + 1,), a, dtype=torch.float64)
            penalty[-1] = 0.0
            inv = torch.linalg.inv(gram + torch.diag(penalty))
            coef = inv @ design.T @ x  # (p + 1, dim)
            hat = ((design @ inv) * design).sum(1)  # h_ii
            resid = (x - design @ coef) / (1 - hat).clamp(min=1e-12)[:, None]
            self.loo_mse.append(float((resid**2).mean()))
            fits.append(coef)
        best = int(np.argmin(self.loo_mse))
        self.alpha, coef = self.alphas[best], fits[best]
        self.W, self.b = coef[:-1].T.contiguous(), coef[-1].clone()
        return self

    def restore(self, c: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "W"):
            raise ValueError("RidgeRestorer.restore before fit")
        return check_matrix(c, "c", cols=self.W.shape[1]).to(torch.float64) @ self.W.T + self.b

    @property
    def num_params(self) -> int:
        """Entries of W and b (the penalty is chosen, not counted)."""
        if not hasattr(self, "W"):
            raise ValueError("RidgeRestorer.num_params before fit")
        return self.W.numel() + self.b.numel()


@dataclass
class ClassicalRestorer:
    """The scikit-image method for ``operator`` (module docstring).

    Args:
        operator: the task's degradation (``Denoise``, ``Deblur`` or ``Inpaint``).
        image_shape: (H, W).
        grid: candidate TV weights (Denoise) or Wiener balances (Deblur); ignored for Inpaint.
    Fitted: ``parameter`` (the chosen grid value, None for Inpaint).
    """

    operator: object
    image_shape: tuple[int, int]
    grid: tuple[float, ...] = tuple(float(v) for v in np.geomspace(1e-3, 10.0, 17))

    name = "classical (scikit-image)"

    def __post_init__(self) -> None:
        self.image_shape = check_image_shape(self.image_shape)
        if not isinstance(self.operator, Denoise | Deblur | Inpaint):
            raise ValueError(
                f"operator must be a Denoise, Deblur or Inpaint, got {type(self.operator).__name__}"
            )
        self.parameter = None

    def _one(self, img: np.ndarray, value: float | None) -> np.ndarray:
        from skimage import restoration

        if isinstance(self.operator, Denoise):
            return restoration.denoise_tv_chambolle(img, weight=value)
        if isinstance(self.operator, Deblur):
            k = self.operator._kernel.numpy()
            return restoration.wiener(img, np.outer(k, k), balance=value, clip=False)
        mask = img == 0
        if mask.all() or not mask.any():
            return img
        return restoration.inpaint_biharmonic(img, mask)

    def _apply(self, c: torch.Tensor, value) -> torch.Tensor:
        h, w = self.image_shape
        imgs = c.reshape(-1, h, w).numpy()
        out = np.stack([self._one(img, value) for img in imgs])
        return torch.as_tensor(out.reshape(len(imgs), -1), dtype=torch.float64)

    def fit(self, c, x, *, generator=None) -> ClassicalRestorer:
        c, x = _pairs(c, x)
        if isinstance(self.operator, Inpaint):
            return self
        errors = [float(((self._apply(c, v).clamp(0, 1) - x) ** 2).mean()) for v in self.grid]
        self.parameter = self.grid[int(np.argmin(errors))]
        return self

    def restore(self, c: torch.Tensor) -> torch.Tensor:
        c = check_matrix(c, "c", cols=self.image_shape[0] * self.image_shape[1])
        if self.parameter is None and not isinstance(self.operator, Inpaint):
            raise ValueError("ClassicalRestorer.restore before fit")
        return self._apply(c.to(torch.float64), self.parameter)

    @property
    def num_params(self) -> int:
        """The one grid value fitted to the pairs (none for Inpaint)."""
        return 0 if isinstance(self.operator, Inpaint) else 1


class BlindCNNRestorer:
    """A residual CNN trained with MSE on pooled pairs (module docstring).

    Args:
        image_shape: (H, W).
        channels, depth: width and number of 3 x 3 convolutions (depth >= 2).
        steps, batch_size, lr: Adam steps, minibatch size and learning rate.
    """

    name = "blind CNN (MSE)"

    def __init__(
        self,
        image_shape: tuple[int, int],
        *,
        channels: int = 32,
        depth: int = 6,
        steps: int = 2000,
        batch_size: int = 128,
        lr: float = 1e-3,
    ):
        for name, value in (
            ("channels", channels),
            ("depth", depth),
            ("steps", steps),
            ("batch_size", batch_size),
        ):
            check_positive_int(value, name)
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.image_shape = check_image_shape(image_shape)
        self.channels, self.depth, self.steps = channels, depth, steps
        self.batch_size, self.lr = batch_size, lr

    def _net(self) -> torch.nn.Module:
        layers, width = [], 1
        for _ in range(self.depth - 1):
            layers += [torch.nn.Conv2d(width, self.channels, 3, padding=1), torch.nn.ReLU()]
            width = self.channels
        layers.append(torch.nn.Conv2d(width, 1, 3, padding=1))
        return torch.nn.Sequential(*layers)

    def fit(self, c, x, *, generator: torch.Generator) -> BlindCNNRestorer:
        c, x = _pairs(c, x)
        h, w = self.image_shape
        if c.shape[1] != h * w or x.shape[1] != h * w:
            raise ValueError(
                f"BlindCNNRestorer for images {self.image_shape} needs c and x with {h * w} "
                f"columns, got {c.shape[1]} and {x.shape[1]}"
            )
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = self._net()
        ci, xi = c.reshape(-1, 1, h, w).float(), x.reshape(-1, 1, h, w).float()
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        batch = min(self.batch_size, len(ci))
        for _ in range(self.steps):
            idx = torch.randint(len(ci), (batch,), generator=generator)
            loss = ((ci[idx] + self.net(ci[idx]) - xi[idx]) ** 2).mean()
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"BlindCNNRestorer: the training MSE became {float(loss)}; lower lr "
                    f"(got {self.lr:g})"
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
        return self

    @torch.no_grad()
    def restore(self, c: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "net"):
            raise ValueError("BlindCNNRestorer.restore before fit")
        h, w = self.image_shape
        ci = check_matrix(c, "c", cols=h * w).reshape(-1, 1, h, w).float()
        return (ci + self.net(ci)).reshape(len(ci), -1).to(torch.float64)

    @property
    def num_params(self) -> int:
        if not hasattr(self, "net"):
            raise ValueError("BlindCNNRestorer.num_params before fit")
        return sum(p.numel() for p in self.net.parameters())


def restoration_metrics(
    estimate: torch.Tensor, clean: torch.Tensor, image_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR (dB) and SSIM of the clipped estimate, each (B,) (module docstring)."""
    est = check_matrix(estimate, "estimate").to(torch.float64).clamp(0, 1)
    ref = check_matrix(clean, "clean", cols=est.shape[1]).to(torch.float64)
    return psnr(est, ref).numpy(), ssim(est, ref, image_shape).numpy()


def validation_split(
    tasks: RestorationTasks, fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``tasks.images`` of the train split without and with its validation part:
    ``fraction`` of the train split's sources (at least one), drawn with ``seed``."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    train = tasks.splits["train"]
    src = tasks.sources[train]
    ids = np.random.default_rng(seed).permutation(np.unique(src))
    held = ids[: max(1, round(fraction * len(ids)))]
    if len(held) == len(ids):
        raise ValueError("the validation part would take every train source")
    inside = np.isin(src, held)
    return train[~inside], train[inside]
