"""Experiment kinds and their registry: a TOML's ``kind = "..."`` names one of ``KINDS``.

- ``gaussian`` (``kinds.gaussian``): exact excess score risk. Experiments sample_complexity,
  neural_generalist, unlabeled_scaling, pareto_front, misspecified.
- ``restoration`` (``kinds.restoration``): PSNR of the posterior mean. Experiment
  image_restoration.
- ``policy`` (``kinds.policy``): rollouts (return, gap, success). Experiments diffusion_policy,
  diffusion_policy_reacher.

A new kind is one module with an object implementing ``kinds.base.ExperimentKind``; register
it with ``register_kind`` (or pass its configs straight to the engine) and check it with
``kinds.checks.check_kind``. The engine receives kind objects, never names, so a kind that is
registered at run time works on spawned workers too.
"""

from __future__ import annotations

from mol_diffusion.kinds.base import ExperimentKind
from mol_diffusion.kinds.gaussian import GAUSSIAN
from mol_diffusion.kinds.policy import POLICY
from mol_diffusion.kinds.restoration import RESTORATION

__all__ = ["KINDS", "ExperimentKind", "get_kind", "register_kind"]

KINDS: dict[str, ExperimentKind] = {kind.name: kind for kind in (GAUSSIAN, RESTORATION, POLICY)}


def register_kind(kind: ExperimentKind, *, replace: bool = False) -> ExperimentKind:
    """Add ``kind`` to ``KINDS`` under ``kind.name``; returns it. Registering a second kind
    under a taken name raises unless ``replace``."""
    if not isinstance(kind, ExperimentKind):
        raise TypeError(
            "kind must implement ExperimentKind (name, timing_columns, integer_columns, parse, "
            "cells, batch_key, run_cells, columns, key_columns, cell_key), got "
            f"{type(kind).__name__}"
        )
    if not isinstance(kind.name, str) or not kind.name:
        raise ValueError(f"kind.name must be a non-empty string, got {kind.name!r}")
    if kind.name in KINDS and KINDS[kind.name] is not kind and not replace:
        raise ValueError(f"an experiment kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> ExperimentKind:
    """The registered kind called ``name``."""
    if name not in KINDS:
        raise ValueError(f"unknown experiment kind {name!r}; registered: {sorted(KINDS)}")
    return KINDS[name]
