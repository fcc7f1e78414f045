"""Argument checks of the policy package's environments and experts (beside
``mol_diffusion._validation``'s, which every experiment kind imports)."""

from __future__ import annotations

import numbers

__all__ = ["check_choice", "check_probability"]


def check_choice(value: object, choices, name: str) -> str:
    """Return ``value`` if it is one of the strings ``choices``; raise ``ValueError`` naming
    ``name`` otherwise (also for unhashable values such as lists)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_probability(value: object, name: str) -> float:
    """Return ``value`` as float if it is a real number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)
