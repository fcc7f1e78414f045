"""Input checks shared by the library. Every error names the argument and what was expected."""

from __future__ import annotations

import math
import numbers

import torch

__all__ = [
    "DivergenceError",
    "NotFittedError",
    "check_finite",
    "check_generator",
    "check_matrix",
    "check_pairs",
    "check_positive_float",
    "check_positive_int",
    "check_sample_weights",
    "check_simplex",
    "check_times",
]


class NotFittedError(RuntimeError, AttributeError):
    """A model was used before ``fit``.

    Also an ``AttributeError`` so that ``hasattr(model, "num_params")`` answers False instead of
    raising on an unfitted model.
    """


class DivergenceError(RuntimeError):
    """A training loss became NaN or infinite."""


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int >= 1 (bools rejected); raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive_float(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if finite and > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def check_generator(generator: object, name: str = "generator") -> torch.Generator:
    """Every random draw comes from an explicit ``torch.Generator``, never the global RNG."""
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"{name} must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
            f"got {type(generator).__name__}"
        )
    return generator


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite, found {bad} NaN/inf entries")
    return x


def check_matrix(x: object, name: str, *, cols: int | None = None) -> torch.Tensor:
    """Check that ``x`` is a finite floating tensor of shape (B, cols) with B >= 1."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, dim), got {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            f"{name} must hold at least one row and one column, got shape {tuple(x.shape)}"
        )
    if cols is not None and x.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return check_finite(x, name)


def check_pairs(c: object, x: object, *, cond_dim: int | None = None, dim: int | None = None):
    """Check a batch of (condition, sample) pairs: c (B, cond_dim), x (B, dim), same B."""
    c = check_matrix(c, "c", cols=cond_dim)
    x = check_matrix(x, "x", cols=dim)
    if c.shape[0] != x.shape[0]:
        raise ValueError(
            "c and x must hold the same number of rows, "
            f"got c {tuple(c.shape)} and x {tuple(x.shape)}"
        )
    return c, x


def check_times(t: object, batch: int, name: str = "t") -> torch.Tensor:
    """Check diffusion times: a finite tensor of shape (batch,) with values in (0, 1]."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), got {tuple(t.shape)}")
    check_finite(t, name)
    if batch and (t.min() <= 0 or t.max() > 1):
        raise ValueError(
            f"{name} must lie in (0, 1], got values in [{float(t.min())}, {float(t.max())}]"
        )
    return t


def check_simplex(
    weights: object, k: int, name: str = "weights", atol: float = 1e-6
) -> torch.Tensor:
    """Check task weights lambda: K non-negative finite entries summing to one (within ``atol``,
    loose enough for float32 input such as [0.5, 0.3, 0.2]).

    Returns a float64 tensor of shape (K,). Lists, tuples, numpy arrays and tensors are accepted;
    nothing is renormalized.
    """
    try:
        w = torch.as_tensor(weights, dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of {k} numbers, got {weights!r}") from err
    if w.shape != (k,):
        raise ValueError(
            f"{name} must have shape ({k},) (one weight per task), got {tuple(w.shape)}"
        )
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"{name} must be finite and non-negative, got {w.tolist()}")
    if abs(float(w.sum()) - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1 (lie on the simplex), got sum {float(w.sum())!r}")
    return w


def check_sample_weights(weights: object, batch: int) -> torch.Tensor | None:
    """Check per-sample weights: None, or a finite non-negative (batch,) tensor, positive sum."""
    if weights is None:
        return None
    if not isinstance(weights, torch.Tensor):
        raise ValueError(f"weights must be a torch.Tensor or None, got {type(weights).__name__}")
    if weights.shape != (batch,):
        raise ValueError(
            f"weights must have shape ({batch},) (one per pair), got {tuple(weights.shape)}"
        )
    check_finite(weights, "weights")
    if (weights < 0).any() or float(weights.sum()) <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return weights
