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
from dataclasses import dataclass
from pathlib import Path

from mol_diffusion import paths
from mol_diffusion.kinds import KINDS, get_kind

__all__ = ["Preregistration", "load_experiment", "load_preregistration", "parse_experiment"]


@dataclass(frozen=True)
class Preregistration:
    """A confirmatory run's registration, the ``[preregistration]`` table of its TOML.

    Committed before the run (``tests/test_preregistration.py`` checks the git history):

    Attributes:
        seed: the run's experiment seed; new (absent from every earlier version of the file)
            and equal to the config's ``seed``.
        registry: ``claims.registry_fingerprint()`` when it was registered.
        rules: claim id -> ``claims.rule_fingerprint(id)`` of each claim the run confirms.
    """

    seed: int
    registry: str
    rules: dict[str, str]

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(
                f"preregistration.seed must be a non-negative integer, got {self.seed!r}"
            )
        if not isinstance(self.registry, str) or not self.registry:
            raise ValueError(
                f"preregistration.registry must be a fingerprint string, got {self.registry!r}"
            )
        if (
            not isinstance(self.rules, dict)
            or not self.rules
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.rules.items())
        ):
            raise ValueError(
                f"preregistration.rules must map claim ids to rule fingerprints, got {self.rules!r}"
            )


def parse_experiment(raw: dict, name: str, *, quick: bool = False):
    """A validated config from a TOML table whose ``kind`` key names a registered kind."""
    raw = dict(raw)
    raw.pop("preregistration", None)  # not part of the computation (load_preregistration)
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


def _read(name_or_path: str | Path) -> tuple[Path, dict]:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = paths.EXPERIMENTS / f"{name_or_path}.toml"
    if not path.is_file():
        available = sorted(p.stem for p in paths.EXPERIMENTS.glob("*.toml"))
        raise ValueError(f"no experiment config at {path}; available: {available}")
    with path.open("rb") as fh:
        try:
            return path, tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML: {err}") from err


def load_preregistration(name_or_path: str | Path) -> Preregistration | None:
    """The ``[preregistration]`` table of an experiment's TOML, or None (a pilot config)."""
    path, raw = _read(name_or_path)
    table = raw.get("preregistration")
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) != {"seed", "registry", "rules"}:
        raise ValueError(
            f"{path}: [preregistration] must hold exactly seed, registry and rules, got "
            f"{sorted(table) if isinstance(table, dict) else table!r}"
        )
    try:
        return Preregistration(table["seed"], table["registry"], dict(table["rules"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err


def load_experiment(name_or_path: str | Path, *, quick: bool = False):
    """Load and validate ``experiments/<name>.toml`` (or a path to a TOML file).

    Args:
        name_or_path: an experiment name such as ``"sample_complexity"`` or a file path.
        quick: apply the file's ``[quick]`` overrides for a small, fast run.
    """
    path, raw = _read(name_or_path)
    return parse_experiment(raw, path.stem, quick=quick)
