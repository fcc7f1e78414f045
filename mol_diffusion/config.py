"""Experiment configurations: one TOML file per experiment in ``experiments/``, validated on load.

A config names the task family, the specialist and generalist classes (by kind, with options),
the pseudo-labeler and the grid. Nothing in a config is evaluated as code. The ``[quick]``
table holds overrides for a small, fast run (``load_experiment(name, quick=True)``).

Grid symbols -> keys: n (paired samples per task) -> ``n``; m (unlabeled conditions per task)
-> ``m``; lambda (task weights) -> ``weights``; generalist capacity (num_features or width)
-> ``generalist.capacities``; independent replicates -> ``replicates``.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mol_diffusion import paths
from mol_diffusion._validation import check_simplex
from mol_diffusion.samplers import ddim, probability_flow, reverse_sde
from mol_diffusion.scores import (
    ConvGaussianScore,
    LinearGaussianScore,
    MLPScore,
    RandomFeatureScore,
)
from mol_diffusion.tasks import (
    Deblur,
    Denoise,
    GaussianTaskFamily,
    Inpaint,
    RestorationTasks,
    load_digits_images,
    load_image_patches,
    make_gaussian_family,
)
from mol_diffusion.two_stage import DiffusionPseudoLabels, ExactPseudoLabels

__all__ = [
    "METHODS",
    "ExperimentConfig",
    "FamilySpec",
    "ModelSpec",
    "PseudoLabelSpec",
    "RestorationSpec",
    "load_experiment",
]

METHODS = ("two_stage", "labeled_only", "oracle")
# Part of every results-cache key: bump it with any change that alters computed numbers
# (estimators, samplers, seeding), so cached tables from older code are never reused.
NUMERICS_VERSION = 2  # 2: neural fits run as stacked networks (nets.StackedMLPs)
# kind -> (class, name of the constructor argument that the capacity grid sets, or None)
MODEL_KINDS = {
    "linear": (LinearGaussianScore, None),
    "random_features": (RandomFeatureScore, "num_features"),
    "mlp": (MLPScore, "width"),
    "conv_gaussian": (ConvGaussianScore, None),
}
EXACT_SAMPLER_KINDS = ("linear", "conv_gaussian")  # specialists with sample_exact
OPERATORS = {"denoise": Denoise, "inpaint": Inpaint, "deblur": Deblur}
DATASETS = ("digits", "patches")
SAMPLERS = {"reverse_sde": reverse_sde, "probability_flow": probability_flow, "ddim": ddim}


def _error(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _positive_ints(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise _error(where, f"must be a non-empty list of positive integers, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _error(where, f"must hold positive integers, got {v!r}")
    if len(set(value)) != len(value):
        raise _error(where, f"must not repeat values, got {value!r}")
    return tuple(sorted(value))


@dataclass(frozen=True)
class FamilySpec:
    """Arguments of ``make_gaussian_family`` (see its docstring)."""

    num_tasks: int = 3
    dim: int = 2
    cond_dim: int = 2
    seed: int = 0
    condition_separation: float = 2.0
    noise_scale: float = 0.5
    nonlinearity: float = 0.0

    def __post_init__(self) -> None:
        self.build()  # validates every field with make_gaussian_family's own checks

    def build(self) -> GaussianTaskFamily:
        return make_gaussian_family(
            self.num_tasks,
            self.dim,
            self.cond_dim,
            self.seed,
            condition_separation=self.condition_separation,
            noise_scale=self.noise_scale,
            nonlinearity=self.nonlinearity,
        )


@dataclass(frozen=True)
class RestorationSpec:
    """Image-restoration tasks (``family.kind = "restoration"``) and how they are scored.

    Args:
        tasks: one degradation per task: (kind, ((option, value), ...)) with kind in
            ``denoise``, ``inpaint``, ``deblur`` (options: their constructor arguments).
        dataset: ``digits`` (scikit-learn, 8 x 8) or ``patches`` (scikit-image, ``patch`` px).
        patch: patch side for ``patches``.
        split_seed: fixes the train / unlabeled / test split by source.
        posterior_samples: samples averaged into the posterior-mean estimate that is scored.
        sampler_steps: reverse-SDE steps per evaluation sample.
        test_images: score on the first this many test images per task (None: all of them).
    """

    tasks: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    dataset: str = "digits"
    patch: int = 16
    split_seed: int = 0
    posterior_samples: int = 8
    sampler_steps: int = 50
    test_images: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        for name in ("patch", "posterior_samples", "sampler_steps"):
            _positive_ints(getattr(self, name), name)
        if self.test_images is not None:
            _positive_ints(self.test_images, "test_images")
        if not self.tasks:
            raise ValueError("tasks must name at least one degradation")
        self.operators()  # validates every degradation

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def image_shape(self) -> tuple[int, int]:
        return (8, 8) if self.dataset == "digits" else (self.patch, self.patch)

    def operators(self) -> tuple:
        out = []
        for k, (kind, options) in enumerate(self.tasks):
            if kind not in OPERATORS:
                raise ValueError(
                    f"tasks[{k}].kind must be one of {sorted(OPERATORS)}, got {kind!r}"
                )
            try:
                out.append(OPERATORS[kind](**dict(options)))
            except TypeError as err:
                raise ValueError(f"tasks[{k}] ({kind}): {err}") from err
        return tuple(out)

    def build(self) -> RestorationTasks:
        if self.dataset == "digits":
            images, sources = load_digits_images()
        else:
            images, sources = load_image_patches(self.patch)
        return RestorationTasks(images, sources, self.operators(), split_seed=self.split_seed)


def _restoration_spec(table: dict) -> RestorationSpec:
    table = dict(table)
    table.pop("kind")
    tasks = table.pop("tasks", None)
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "kind" in t for t in tasks):
        raise ValueError("tasks must be a list of tables, each with a 'kind' key")
    parsed = tuple(
        (t["kind"], tuple(sorted((key, v) for key, v in t.items() if key != "kind"))) for t in tasks
    )
    return RestorationSpec(tasks=parsed, **table)


@dataclass(frozen=True)
class ModelSpec:
    """A score-model class by ``kind`` (linear, random_features, mlp) with constructor options."""

    kind: str
    options: tuple[tuple[str, Any], ...] = ()
    capacities: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {sorted(MODEL_KINDS)}, got {self.kind!r}")
        cap_arg = MODEL_KINDS[self.kind][1]
        if cap_arg is None and self.capacities:
            raise ValueError(f"kind {self.kind!r} has no capacity argument; remove 'capacities'")
        if cap_arg is not None and not self.capacities:
            raise ValueError(f"kind {self.kind!r} needs 'capacities' (values of {cap_arg})")
        if cap_arg is not None and cap_arg in dict(self.options):
            raise ValueError(f"set {cap_arg} through 'capacities', not as an option")
        self.build(self.capacities[0] if self.capacities else None)  # validates the options

    def build(self, capacity: int | None = None):
        cls, cap_arg = MODEL_KINDS[self.kind]
        kwargs = dict(self.options)
        if cap_arg is not None:
            if capacity is None:
                raise ValueError(f"kind {self.kind!r} needs a capacity ({cap_arg})")
            kwargs[cap_arg] = capacity
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(f"bad option for model kind {self.kind!r}: {err}") from err


@dataclass(frozen=True)
class PseudoLabelSpec:
    """How specialists label unlabeled conditions: ``diffusion`` (a sampler) or ``exact``."""

    kind: str = "diffusion"
    sampler: str = "reverse_sde"
    steps: int = 250

    def __post_init__(self) -> None:
        if self.kind not in ("diffusion", "exact"):
            raise ValueError(
                f"pseudo_labels.kind must be 'diffusion' or 'exact', got {self.kind!r}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(
                f"pseudo_labels.sampler must be one of {sorted(SAMPLERS)}, got {self.sampler!r}"
            )
        self.build()

    def build(self):
        if self.kind == "exact":
            return ExactPseudoLabels()
        return DiffusionPseudoLabels(sampler=SAMPLERS[self.sampler], steps=self.steps)


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: family, models, pseudo-labeler and grid.

    Args:
        name: file stem; results go to ``experiments/results/<name>.csv``.
        seed: the experiment seed; every cell's seeds derive from it and the cell.
        replicates: independent repetitions (seeds) of every cell.
        methods: subset of ``two_stage``, ``labeled_only``, ``oracle``.
        n: paired samples per task (grid). m: unlabeled conditions per task (grid).
        weights: list of lambda vectors, each on the simplex with K entries.
        family, specialist, generalist, pseudo_labels: see their classes.
        risk_draws: Monte Carlo draws per task for the exact excess risk (common to all cells).
        quick: True when the ``[quick]`` overrides were applied.
    """

    name: str
    seed: int
    replicates: int
    methods: tuple[str, ...]
    n: tuple[int, ...]
    m: tuple[int, ...]
    weights: tuple[tuple[float, ...], ...]
    family: FamilySpec | RestorationSpec
    specialist: ModelSpec
    generalist: ModelSpec
    pseudo_labels: PseudoLabelSpec = field(default_factory=PseudoLabelSpec)
    risk_draws: int = 4096
    quick: bool = False

    def __post_init__(self) -> None:
        where = f"experiment {self.name!r}"
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise _error(where, f"seed must be a non-negative integer, got {self.seed!r}")
        _positive_ints(self.replicates, f"{where}: replicates")
        _positive_ints(self.risk_draws, f"{where}: risk_draws")
        if not self.methods or any(mt not in METHODS for mt in self.methods):
            raise _error(
                where, f"methods must be a non-empty subset of {METHODS}, got {self.methods!r}"
            )
        for k, w in enumerate(self.weights):
            try:
                check_simplex(w, self.family.num_tasks, name=f"weights[{k}]")
            except ValueError as err:
                raise _error(where, str(err)) from err
        if not self.weights:
            raise _error(where, "weights must hold at least one lambda vector")
        if self.specialist.kind not in EXACT_SAMPLER_KINDS and self.pseudo_labels.kind == "exact":
            raise _error(
                where,
                f"exact pseudo-labels need a specialist with sample_exact (kind in "
                f"{EXACT_SAMPLER_KINDS})",
            )
        for role in ("specialist", "generalist"):
            shape = dict(getattr(self, role).options).get("image_shape")
            if shape is not None and (
                not isinstance(self.family, RestorationSpec)
                or tuple(shape) != self.family.image_shape
            ):
                raise _error(
                    where,
                    f"{role}.image_shape {shape!r} must match the family's images "
                    f"{getattr(self.family, 'image_shape', None)}",
                )

    @property
    def capacities(self) -> tuple[int, ...]:
        return self.generalist.capacities

    def fingerprint(self) -> str:
        """sha256 of the canonical config, the library version and NUMERICS_VERSION: the
        results-cache key."""
        return fingerprint(self)


def _model_spec(table: dict, where: str) -> ModelSpec:
    if not isinstance(table, dict) or "kind" not in table:
        raise _error(where, "must be a table with a 'kind' key")
    table = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    kind = table.pop("kind")
    caps = table.pop("capacities", ())
    caps = _positive_ints(caps, f"{where}.capacities") if caps else ()
    try:
        return ModelSpec(kind=kind, options=tuple(sorted(table.items())), capacities=caps)
    except ValueError as err:
        raise _error(where, str(err)) from err


def apply_quick(raw: dict, quick: bool) -> dict:
    """A copy of a TOML table without its ``[quick]`` table, whose overrides are applied when
    ``quick`` (sub-tables are merged key by key)."""
    raw = dict(raw)
    overrides = raw.pop("quick", {})
    if quick:
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
    return raw


def fingerprint(config) -> str:
    """sha256 of a config dataclass, the library version and NUMERICS_VERSION: the
    results-cache key."""
    from mol_diffusion import __version__

    key = {"config": asdict(config), "version": __version__, "numerics": NUMERICS_VERSION}
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _parse(raw: dict, name: str, quick: bool) -> ExperimentConfig:
    raw = apply_quick(raw, quick)
    known = {f.name for f in fields(ExperimentConfig)} - {"name", "quick"}
    unknown = set(raw) - known
    if unknown:
        raise _error(
            f"experiment {name!r}", f"unknown keys {sorted(unknown)}; known: {sorted(known)}"
        )
    missing = {
        "seed",
        "replicates",
        "methods",
        "n",
        "m",
        "family",
        "specialist",
        "generalist",
    } - set(raw)
    if missing:
        raise _error(f"experiment {name!r}", f"missing keys {sorted(missing)}")
    try:
        family_table = dict(raw["family"])
        kind = family_table.get("kind", "gaussian")
        if kind == "restoration":
            family = _restoration_spec(family_table)
        elif kind == "gaussian":
            family_table.pop("kind", None)
            family = FamilySpec(**family_table)
        else:
            raise ValueError(f"kind must be 'gaussian' or 'restoration', got {kind!r}")
    except (TypeError, ValueError) as err:
        raise _error(f"experiment {name!r}: family", str(err)) from err
    k = family.num_tasks
    weights = raw.get("weights", "uniform")
    if weights == "uniform":
        weights = [[1.0 / k] * k]
    try:
        pseudo = PseudoLabelSpec(**raw.get("pseudo_labels", {}))
    except (TypeError, ValueError) as err:
        raise _error(f"experiment {name!r}: pseudo_labels", str(err)) from err
    return ExperimentConfig(
        name=name,
        seed=raw["seed"],
        replicates=raw["replicates"],
        methods=tuple(raw["methods"]),
        n=_positive_ints(raw["n"], f"experiment {name!r}: n"),
        m=_positive_ints(raw["m"], f"experiment {name!r}: m"),
        weights=tuple(tuple(float(v) for v in w) for w in weights),
        family=family,
        specialist=_model_spec(raw["specialist"], f"experiment {name!r}: specialist"),
        generalist=_model_spec(raw["generalist"], f"experiment {name!r}: generalist"),
        pseudo_labels=pseudo,
        risk_draws=raw.get("risk_draws", 4096),
        quick=quick,
    )


def load_experiment(name_or_path: str | Path, *, quick: bool = False) -> ExperimentConfig:
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
    family = raw.get("family")
    if isinstance(family, dict) and family.get("kind") == "policy":
        from mol_diffusion.policy.experiment import parse_policy_config

        return parse_policy_config(raw, path.stem, quick)
    return _parse(raw, path.stem, quick)
