"""Experiment configurations: one TOML file per experiment in ``experiments/``, validated on load.

A file names its experiment kind at the top (``kind = "gaussian"``, ``"restoration"``,
``"policy"``; see ``mol_diffusion.kinds``), and that kind parses and validates the rest into a
frozen dataclass config. Nothing in a config is evaluated as code. The ``[quick]`` table holds
overrides for a small, fast run (``load_experiment(name, quick=True)``).

Each kind documents its keys: ``kinds.grid.GridConfig`` (Gaussian and restoration grids: n,
m, weights = lambda, generalist.capacities, replicates) and ``kinds.policy.PolicyExperimentConfig``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from mol_diffusion import paths
from mol_diffusion.kinds import KINDS, get_kind

__all__ = ["load_experiment", "parse_experiment"]


def parse_experiment(raw: dict, name: str, *, quick: bool = False):
    """A validated config from a TOML table whose ``kind`` key names a registered kind."""
    raw = dict(raw)
    kind = raw.pop("kind", None)
    if kind is None:
        old = raw.get("family", {}).get("kind") if isinstance(raw.get("family"), dict) else None
        hint = (
            f"; the kind moved from [family] to the top of the file: write kind = {old!r} "
            f"before the first table and remove it from [family]"
            if old in KINDS
            else ""
        )
        raise ValueError(
            f"experiment {name!r}: missing key 'kind' (the experiment kind, one of "
            f"{sorted(KINDS)}){hint}"
        )
    if not isinstance(kind, str):
        raise ValueError(f"experiment {name!r}: kind must be a string, got {kind!r}")
    try:
        found = get_kind(kind)
    except ValueError as err:
        raise ValueError(f"experiment {name!r}: {err}") from err
    config = found.parse(raw, name, quick)
    if "quick" in raw:  # a typo in either variant is an error whichever one is loaded
        try:
            found.parse(raw, name, not quick)
        except ValueError as err:
            variant = "without" if quick else "with"
            raise ValueError(f"{err} (in the config {variant} its [quick] overrides)") from err
    return config


def load_experiment(name_or_path: str | Path, *, quick: bool = False):
    """Load and validate ``experiments/<name>.toml`` (or a path to a TOML file).

    Args:
        name_or_path: an experiment name such as ``"sample_complexity"`` or a file path.
        quick: apply the file's ``[quick]`` overrides for a small, fast run.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = paths.EXPERIMENTS / f"{name_or_path}.toml"
    if not path.is_file():
        available = sorted(p.stem for p in paths.EXPERIMENTS.glob("*.toml"))
        raise ValueError(f"no experiment config at {path}; available: {available}")
    with path.open("rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML: {err}") from err
    return parse_experiment(raw, path.stem, quick=quick)
