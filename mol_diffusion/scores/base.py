r"""The score-model protocol shared by every family, and the input scaling they share.

Contract (checked for every implementation by ``tests/test_score_contract.py``):

- ``fit(c, x, weights=None, *, generator)`` fits on pairs c (n, cond_dim), x (n, dim) with
  optional per-pair weights (n,) (the lambda-weighting of pseudo-pairs enters here), using
  ``generator`` as its only source of randomness; returns the model.
- ``score(x_t, c, t)`` returns s(x_t, c, t) of shape (B, dim) in the dtype of ``x_t``; finite.
- ``sample(c, *, generator, steps, sampler)`` returns one draw x ~ p(. | c) per row, (B, dim).
- ``num_params`` is the number of fitted real parameters (the class's complexity, p_spec
  or p_gen in the paper's bound).
- the same data and the same generator seed give the same fitted model and outputs.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

import torch

from mol_diffusion._validation import (
    DivergenceError,
    NotFittedError,
    check_generator,
    check_matrix,
    check_pairs,
    check_sample_weights,
    check_times,
)
from mol_diffusion.samplers import reverse_sde
from mol_diffusion.schedules import VPSchedule

__all__ = ["InputScaler", "ScoreModel", "ScoreModelBase"]


@runtime_checkable
class ScoreModel(Protocol):
    """What every score model provides (see the module docstring for the contract)."""

    schedule: VPSchedule

    def fit(self, c, x, weights=None, *, generator: torch.Generator) -> Self: ...

    def score(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...

    def sample(
        self, c: torch.Tensor, *, generator: torch.Generator, steps: int = ...
    ) -> torch.Tensor: ...

    @property
    def num_params(self) -> int: ...


@dataclass(frozen=True)
class InputScaler:
    """Standardizes network inputs so that they are O(1) at every noise level.

    x_t is scaled by the noised marginal of a diagonal Gaussian fitted to the data:
    z_x = (x_t - alpha mu_x) / sqrt(alpha^2 var_x + sigma^2); c by its mean and std.
    Shapes: mu_x, var_x (dim,); mu_c, sd_c (cond_dim,).
    """

    mu_x: torch.Tensor
    var_x: torch.Tensor
    mu_c: torch.Tensor
    sd_c: torch.Tensor

    @classmethod
    def fit(cls, c: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None) -> InputScaler:
        w = (
            torch.ones(x.shape[0], dtype=torch.float64)
            if weights is None
            else weights.to(torch.float64)
        )
        w = w / w.sum()
        x64, c64 = x.to(torch.float64), c.to(torch.float64)
        mu_x, mu_c = w @ x64, w @ c64
        var_x = w @ (x64 - mu_x) ** 2
        sd_c = (w @ (c64 - mu_c) ** 2).sqrt()
        for name, value in (("x", var_x), ("c", sd_c)):
            if not torch.isfinite(value).all():
                raise ValueError(
                    f"{name} is too large to standardize (its variance overflows float64, "
                    f"max |{name}| = {float((x if name == 'x' else c).abs().max()):.3g}); "
                    f"rescale {name} to O(1)"
                )
        return cls(mu_x=mu_x, var_x=var_x.clamp(min=1e-6), mu_c=mu_c, sd_c=sd_c.clamp(min=1e-3))

    def __call__(
        self, x_t, c, alpha, sigma, *, scale_c: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scaled (z_x (..., dim), z_c (..., cond_dim)); alpha and sigma have shape (...) (e.g.
        (B,); a scaler whose statistics are stacked to (M, 1, dim) serves (M, B) at once).
        ``scale_c=False`` skips z_c (None), for a caller that keeps it from an earlier call."""
        a, s = alpha[..., None].to(torch.float64), sigma[..., None].to(torch.float64)
        z_x = (x_t.to(torch.float64) - a * self.mu_x) / (a**2 * self.var_x + s**2).sqrt()
        z_c = (c.to(torch.float64) - self.mu_c) / self.sd_c if scale_c else None
        return z_x, z_c


class ScoreModelBase(abc.ABC):
    """Validation, fitted-state bookkeeping and sampling shared by the score families.

    Subclasses implement ``_fit``, ``_score`` and ``num_params``; they hold their
    hyper-parameters in a frozen, validated ``config`` dataclass with a ``schedule`` field.
    """

    config: object

    def __init__(self) -> None:
        self._dims: tuple[int, int] | None = None  # (dim, cond_dim) once fitted

    @property
    def schedule(self) -> VPSchedule:
        return self.config.schedule

    @property
    def is_fitted(self) -> bool:
        return self._dims is not None

    @property
    def dim(self) -> int:
        return self._require_fitted()[0]

    @property
    def cond_dim(self) -> int:
        return self._require_fitted()[1]

    def _require_fitted(self) -> tuple[int, int]:
        if self._dims is None:
            raise NotFittedError(
                f"{type(self).__name__} is used before fit(); call fit(c, x, generator=...) first"
            )
        return self._dims

    def fit(
        self, c, x, weights=None, *, generator: torch.Generator, run_name: str | None = None
    ) -> Self:
        """Fit on pairs c (n, cond_dim), x (n, dim), with optional per-pair weights (n,).

        Args:
            c: conditions, shape (n, cond_dim).
            x: targets, shape (n, dim).
            weights: non-negative per-pair weights, shape (n,), or None for equal weights.
            generator: the only source of randomness of the fit.
            run_name: names the fit in error messages (e.g. a sweep cell).
        """
        c, x = check_pairs(c, x)
        w = check_sample_weights(weights, x.shape[0])
        check_generator(generator)
        self._dims = None
        name = run_name or type(self).__name__
        self._fit(c, x, w, generator, name)
        self._dims = (x.shape[1], c.shape[1])
        # a fit that overflowed (data of scale 1e200, say) gives NaN scores: stop here
        probe = torch.full((min(8, x.shape[0]),), 0.5, dtype=x.dtype)
        self._check_finite(self._score(x[: len(probe)], c[: len(probe)], probe), name)
        return self

    def _check_finite(self, out: torch.Tensor, name: str) -> torch.Tensor:
        if not torch.isfinite(out).all():
            self._dims = None
            raise DivergenceError(
                f"{name}: the fitted {type(self).__name__} gives non-finite scores "
                f"({int((~torch.isfinite(out)).sum())} NaN/inf entries); its parameters "
                "overflowed: standardize c and x (they should be O(1)) or regularize the fit"
            )
        return out

    def score(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """s(x_t, c, t), shape (B, dim), dtype of ``x_t``."""
        dim, cond_dim = self._require_fitted()
        x_t = check_matrix(x_t, "x_t", cols=dim)
        c = check_matrix(c, "c", cols=cond_dim)
        if c.shape[0] != x_t.shape[0]:
            raise ValueError(
                f"x_t and c must hold the same number of rows, got {x_t.shape[0]} and {c.shape[0]}"
            )
        check_times(t, x_t.shape[0])
        return self._score(x_t, c, t).to(x_t.dtype)

    def sample(
        self, c: torch.Tensor, *, generator: torch.Generator, steps: int = 500, sampler=reverse_sde
    ):
        """One draw x ~ p(. | c) per row of c (B, cond_dim) with ``sampler``; shape (B, dim)."""
        dim, cond_dim = self._require_fitted()
        c = check_matrix(c, "c", cols=cond_dim)

        given_c = self._score_given(c)

        def score(x_t: torch.Tensor, c_step: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            # ``score`` without re-validating, at every step, the inputs that c (checked once)
            # and the sampler (x_t of c's rows, t on its grid) fix; the same values. A sample
            # that stops being finite still fails at the sampler's end.
            if c_step is c:
                return given_c(x_t, t).to(x_t.dtype)
            return self.score(x_t, c_step, t)  # conditions the run did not check: validated

        return sampler(score, c, dim, self.schedule, generator, steps=steps)

    @abc.abstractmethod
    def _fit(self, c, x, weights, generator, run_name) -> None: ...

    @abc.abstractmethod
    def _score(self, x_t, c, t) -> torch.Tensor: ...

    def _score_given(self, c: torch.Tensor):
        """``(x_t, t) -> _score(x_t, c, t)`` for the fixed (validated) conditions of a sampler
        run; a model overrides it to compute what depends on c alone once per run instead of
        once per step (the same values)."""
        return lambda x_t, t: self._score(x_t, c, t)

    @property
    @abc.abstractmethod
    def num_params(self) -> int: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"
