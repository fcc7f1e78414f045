"""The two-stage method grid shared by the Gaussian and the restoration kinds.

A grid expands a config into cells (method, n, m, capacity, lambda, replicate) and fits one
generalist per cell: two-stage (specialists on the n pairs per task, pseudo-labels for the m
unlabeled conditions), labeled-only (the n pairs) or the oracle (the m conditions with their
true labels). What a kind adds is its task family and how a fitted generalist is scored
(``TwoStageGrid.score``).

Paper symbols -> config keys: n (paired samples per task) -> ``n``; m (unlabeled conditions per
task) -> ``m``; lambda (task weights) -> ``weights``; generalist capacity (num_features or
width) -> ``generalist.capacities``; independent replicates -> ``replicates``.

Seeds (``kinds.base.generator``; the first key entry says what a seed is for):

- Common random numbers: within a replicate the data (n labeled pairs per task, nested across
  n; m unlabeled conditions, nested across m, with hidden true labels for the oracle) and the
  generalist's own seed are shared by all methods and all n (``GridConfig.generalist_seed_key``;
  a kind may share it across m too), and the specialists' seed (and so
  the pseudo-labels) is shared by all generalist capacities, so comparisons across methods and
  across capacities are paired. Evaluation draws are common to every cell of an experiment.
- Batching: with a neural (``mlp``) generalist, the cells of one grid point that differ only by
  replicate share a batch key and their generalists are fitted as one stacked network
  (``two_stage.fit_generalists``). A single fit is a stack of one, so a cell's row is the same
  bit for bit whether it ran alone, in a batch, or in a batch cut short by an interruption.

Columns: experiment, method, n (<NA> for the oracle, which uses no scarce pairs), m, capacity,
num_params, weights_index, weights, replicate, then the kind's score columns, num_pairs,
fit_seconds (the only column that varies between identical runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from mol_diffusion._validation import check_simplex
from mol_diffusion.kinds.base import (
    apply_quick,
    check_keys,
    config_error,
    fingerprint,
    generator,
    is_number,
    one_thread,
    positive_ints,
)
from mol_diffusion.samplers import ddim, probability_flow, reverse_sde
from mol_diffusion.scores import (
    ConvGaussianScore,
    ConvScore,
    GaussianPriorScore,
    LinearGaussianScore,
    MLPScore,
    RandomFeatureScore,
)
from mol_diffusion.two_stage import (
    DiffusionPseudoLabels,
    ExactPseudoLabels,
    FitResult,
    GeneralistProblem,
    fit_generalists,
    supervised_problem,
    two_stage_problem,
)

__all__ = [
    "METHODS",
    "MODEL_KINDS",
    "Cell",
    "GridConfig",
    "ModelSpec",
    "PseudoLabelSpec",
    "TwoStageGrid",
    "family_fields",
    "fit_cell",
    "fit_cells",
    "replicate_data",
]

METHODS = ("two_stage", "labeled_only", "oracle")
# kind -> (class, name of the constructor argument that the capacity grid sets, or None)
MODEL_KINDS = {
    "linear": (LinearGaussianScore, None),
    "random_features": (RandomFeatureScore, "num_features"),
    "mlp": (MLPScore, "width"),
    "conv_gaussian": (ConvGaussianScore, None),
    "gaussian_prior": (GaussianPriorScore, None),
    "conv": (ConvScore, "width"),
}
EXACT_SAMPLER_KINDS = ("linear", "conv_gaussian", "gaussian_prior")  # with sample_exact
PSEUDO_LABEL_KINDS = ("diffusion", "exact", "common_noise")
SAMPLERS = {"reverse_sde": reverse_sde, "probability_flow": probability_flow, "ddim": ddim}
DATA, FIT, RISK, SPECIALIST = 0, 1, 2, 3  # first spawn-key entry: what the seed is for


@dataclass(frozen=True)
class ModelSpec:
    """A score-model class by ``kind`` (linear, random_features, mlp, conv_gaussian,
    gaussian_prior, conv) with its constructor ``options``; ``capacities`` are the values of
    its capacity argument (the grid)."""

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

    def build(self, capacity: int | None = None, **extra):
        """An unfitted model of capacity ``capacity``; ``extra`` adds constructor arguments a
        kind computes rather than reads from the config (``GridConfig.generalist_options``)."""
        cls, cap_arg = MODEL_KINDS[self.kind]
        kwargs = {**dict(self.options), **extra}
        if cap_arg is not None:
            if capacity is None:
                raise ValueError(f"kind {self.kind!r} needs a capacity ({cap_arg})")
            kwargs[cap_arg] = capacity
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(f"bad option for model kind {self.kind!r}: {err}") from err

    @classmethod
    def parse(cls, table: Any, where: str) -> ModelSpec:
        """From a TOML table: ``kind``, optional ``capacities``, the rest are options."""
        if not isinstance(table, dict) or "kind" not in table:
            raise config_error(where, "must be a table with a 'kind' key")
        table = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
        kind = table.pop("kind")
        caps = table.pop("capacities", ())
        caps = positive_ints(caps, f"{where}.capacities") if caps else ()
        try:
            return cls(kind=kind, options=tuple(sorted(table.items())), capacities=caps)
        except ValueError as err:
            raise config_error(where, str(err)) from err


@dataclass(frozen=True)
class PseudoLabelSpec:
    """How specialists label unlabeled conditions: ``diffusion`` (a sampler), ``exact`` (the
    specialist's exact conditional draws) or ``common_noise`` (exact draws that share the
    noise of the conditions' hidden true labels: common random numbers with the oracle's
    labels; built by a kind that knows its tasks' true conditionals,
    ``GridConfig.pseudo_labelers``). ``draws``: pseudo-labels per unlabeled condition
    (``two_stage.two_stage_problem``)."""

    kind: str = "diffusion"
    sampler: str = "reverse_sde"
    steps: int = 250
    draws: int = 1

    def __post_init__(self) -> None:
        positive_ints(self.draws, "pseudo_labels.draws")
        if self.kind not in PSEUDO_LABEL_KINDS:
            raise ValueError(
                f"pseudo_labels.kind must be one of {PSEUDO_LABEL_KINDS}, got {self.kind!r}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(
                f"pseudo_labels.sampler must be one of {sorted(SAMPLERS)}, got {self.sampler!r}"
            )
        if self.kind != "common_noise":
            self.build()

    def build(self):
        if self.kind == "common_noise":
            raise ValueError(
                "common_noise pseudo-labels are built by the experiment kind from the hidden "
                "true labels (GridConfig.pseudo_labelers), not from the spec alone"
            )
        if self.kind == "exact":
            return ExactPseudoLabels()
        return DiffusionPseudoLabels(sampler=SAMPLERS[self.sampler], steps=self.steps)


@dataclass(frozen=True)
class GridConfig:
    """One two-stage grid experiment: family, models, pseudo-labeler and grid.

    Args:
        name: file stem; results go to ``experiments/results/<name>.csv``.
        seed: the experiment seed; every cell's seeds derive from it and the cell.
        replicates: independent repetitions (seeds) of every cell.
        methods: subset of ``two_stage``, ``labeled_only``, ``oracle``.
        n: paired samples per task (grid). m: unlabeled conditions per task (grid).
        weights: list of lambda vectors, each on the simplex with K entries.
        family: the kind's task family spec (``num_tasks``, ``build()``).
        specialist, generalist, pseudo_labels: see their classes.
        risk_draws: Monte Carlo draws per task for the exact excess risk (common to all cells;
            read by the Gaussian kind only).
        quick: True when the ``[quick]`` overrides were applied.

    A subclass may widen ``allowed_methods`` with its own baselines (rows the kind fits
    itself; see ``kinds.restoration``).
    """

    name: str
    seed: int
    replicates: int
    methods: tuple[str, ...]
    n: tuple[int, ...]
    m: tuple[int, ...]
    weights: tuple[tuple[float, ...], ...]
    family: Any
    specialist: ModelSpec
    generalist: ModelSpec
    pseudo_labels: PseudoLabelSpec = field(default_factory=PseudoLabelSpec)
    risk_draws: int = 4096
    quick: bool = False
    family_type: ClassVar[type] = object  # a subclass names its family spec class
    common_noise: ClassVar[bool] = False  # whether pseudo_labelers builds common_noise labels
    allowed_methods: ClassVar[tuple[str, ...]] = METHODS

    def __post_init__(self) -> None:
        where = f"experiment {self.name!r}"
        if not isinstance(self.family, self.family_type):
            raise config_error(where, f"family must be a {self.family_type.__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise config_error(where, f"seed must be a non-negative integer, got {self.seed!r}")
        positive_ints(self.replicates, f"{where}: replicates")
        positive_ints(self.risk_draws, f"{where}: risk_draws")
        allowed = self.allowed_methods
        if not self.methods or any(mt not in allowed for mt in self.methods):
            raise config_error(
                where, f"methods must be a non-empty subset of {allowed}, got {self.methods!r}"
            )
        for k, w in enumerate(self.weights):
            try:
                check_simplex(w, self.family.num_tasks, name=f"weights[{k}]")
            except ValueError as err:
                raise config_error(where, str(err)) from err
        if not self.weights:
            raise config_error(where, "weights must hold at least one lambda vector")
        labels = self.pseudo_labels.kind
        if self.specialist.kind not in EXACT_SAMPLER_KINDS and labels in ("exact", "common_noise"):
            raise config_error(
                where,
                f"{labels} pseudo-labels need a specialist with sample_exact (kind in "
                f"{EXACT_SAMPLER_KINDS})",
            )
        if labels == "common_noise" and not self.common_noise:
            raise config_error(
                where, "common_noise pseudo-labels are not available for this experiment kind"
            )
        images = getattr(self.family, "image_shape", None)
        for role in ("specialist", "generalist"):
            shape = dict(getattr(self, role).options).get("image_shape")
            if shape is not None and (images is None or tuple(shape) != images):
                raise config_error(
                    where, f"{role}.image_shape {shape!r} must match the family's images {images}"
                )

    @property
    def capacities(self) -> tuple[int, ...]:
        return self.generalist.capacities

    def pseudo_labelers(self, family, unlabeled):
        """The two-stage pseudo-labeler, or one per task, for the cell's unlabeled pairs
        ``unlabeled`` ([(c_k, hidden x_k)] per task); a kind whose config sets
        ``common_noise`` overrides this to build common_noise labels."""
        return self.pseudo_labels.build()

    def generalist_seed_key(self, cell: Cell) -> tuple[int, ...]:
        """The spawn key of the cell's generalist seed after ``FIT``: (replicate, m, capacity,
        lambda), shared by every method and n (a kind's config may drop m; see
        ``kinds.gaussian``'s ``generalist_seed``)."""
        return (cell.replicate, cell.m, cell.capacity_index, cell.weights_index)

    def generalist_options(self, family) -> dict:
        """Constructor arguments of every cell's generalist that depend on the task family (a
        kind's config overrides this; none by default)."""
        return {}

    def fingerprint(self) -> str:
        """The results-cache key (``kinds.base.fingerprint``)."""
        return fingerprint(self)


@dataclass(frozen=True)
class Cell:
    """One fit: a method at one grid point and replicate. ``n`` is None for the oracle."""

    method: str
    n: int | None
    m: int
    capacity_index: int
    weights_index: int
    replicate: int

    @property
    def label(self) -> str:
        return (
            f"{self.method}/n={self.n}/m={self.m}/cap{self.capacity_index}"
            f"/w{self.weights_index}/rep{self.replicate}"
        )


def family_fields(cls, table: dict) -> dict:
    """``table`` checked against the fields of the family dataclass ``cls``."""
    known = {f.name for f in fields(cls)}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return table


def _capacity(config: GridConfig, cell: Cell) -> int | None:
    return config.capacities[cell.capacity_index] if config.capacities else None


def replicate_data(config: GridConfig, family, replicate: int):
    """Labeled pools (max n per task) and unlabeled conditions with hidden labels (max m)."""
    g = generator(config, DATA, replicate)
    labeled = [family.sample(k, max(config.n), g) for k in range(family.num_tasks)]
    unlabeled = [family.sample_unlabeled(k, max(config.m), g) for k in range(family.num_tasks)]
    return labeled, unlabeled


def _problem(config: GridConfig, cell: Cell, pools, family) -> GeneralistProblem:
    """One cell's generalist training pairs (for two-stage, its specialists and pseudo-labels)."""
    labeled_pool, unlabeled_pool = pools
    weights = config.weights[cell.weights_index]
    fit_generator = generator(config, FIT, *config.generalist_seed_key(cell))
    run_name = f"{config.name}/{cell.label}"
    unlabeled = [(c[: cell.m], x[: cell.m]) for c, x in unlabeled_pool]
    if cell.method == "oracle":
        return supervised_problem(
            "oracle", unlabeled, weights, generator=fit_generator, run_name=run_name
        )
    labeled = [(c[: cell.n], x[: cell.n]) for c, x in labeled_pool]
    if cell.method == "two_stage":
        return two_stage_problem(
            labeled,
            [c for c, _ in unlabeled],
            weights,
            specialist=config.specialist.build,
            generator=fit_generator,
            pseudo_labels=config.pseudo_labelers(family, unlabeled),
            draws=config.pseudo_labels.draws,
            specialist_generator=generator(
                config, SPECIALIST, cell.replicate, cell.n, cell.m, cell.weights_index
            ),
            run_name=run_name,
        )
    return supervised_problem(
        "labeled_only", labeled, weights, generator=fit_generator, run_name=run_name
    )


def fit_cells(config: GridConfig, cells: Sequence[Cell], family=None) -> list[FitResult]:
    """Fit the generalists of several cells of one capacity exactly as the sweep does (neural
    generalists as one stacked network, bit-for-bit the one-at-a-time fits); ``family``
    defaults to ``config.family.build()``."""
    cells = list(cells)
    if not cells or len({cell.capacity_index for cell in cells}) != 1:
        raise ValueError("cells must be a non-empty sequence of cells of one capacity")
    family = config.family.build() if family is None else family
    pools = {
        rep: replicate_data(config, family, rep) for rep in sorted({c.replicate for c in cells})
    }
    problems = [_problem(config, cell, pools[cell.replicate], family) for cell in cells]
    capacity = _capacity(config, cells[0])
    options = config.generalist_options(family)
    return fit_generalists(problems, lambda: config.generalist.build(capacity, **options))


def fit_cell(config: GridConfig, cell: Cell, family=None) -> FitResult:
    """Fit one cell's generalist (and, for two-stage, its specialists) exactly as the sweep
    does; ``family`` defaults to ``config.family.build()``."""
    return fit_cells(config, [cell], family)[0]


class TwoStageGrid:
    """The part of the experiment-kind protocol that every two-stage grid shares.

    A subclass sets ``name``, ``family_spec`` (a dataclass built from the ``[family]`` table,
    with ``num_tasks`` and ``build()``) and ``config_class`` (a ``GridConfig`` subclass), and
    implements ``prepare`` (evaluation data common to every cell), ``score`` (one fitted cell's
    score columns) and ``score_columns``.
    """

    name: str
    timing_columns = ("fit_seconds",)
    integer_columns = ("n", "capacity")  # n is <NA> for the oracle, capacity for fixed classes
    config_class: type[GridConfig]
    required = frozenset(
        {"seed", "replicates", "methods", "n", "m", "family", "specialist", "generalist"}
    )

    def parse_family(self, table: dict):
        raise NotImplementedError

    def prepare(self, config: GridConfig, family) -> Any:
        raise NotImplementedError

    def score(self, config: GridConfig, family, prepared, cell: Cell, result: FitResult) -> dict:
        raise NotImplementedError

    def score_columns(self, config: GridConfig) -> tuple[str, ...]:
        raise NotImplementedError

    # ---------------------------------------------------------------- the protocol
    def parse(self, raw: dict, name: str, quick: bool) -> GridConfig:
        raw = apply_quick(raw, quick)
        where = f"experiment {name!r}"
        known = {f.name for f in fields(self.config_class)} - {"name", "quick"}
        check_keys(raw, known, set(self.required), where)
        try:
            family = self.parse_family(dict(raw["family"]))
        except (TypeError, ValueError) as err:
            raise config_error(f"{where}: family", str(err)) from err
        k = family.num_tasks
        weights = raw.get("weights", "uniform")
        if weights == "uniform":
            weights = [[1.0 / k] * k]
        if not isinstance(weights, list) or not all(
            isinstance(w, list) and all(is_number(v) for v in w) for w in weights
        ):
            raise config_error(
                where,
                f'weights must be "uniform" or a list of lambda vectors (lists of numbers), '
                f"got {weights!r}",
            )
        if not isinstance(raw["methods"], list) or not all(
            isinstance(m, str) for m in raw["methods"]
        ):
            raise config_error(
                where,
                f"methods must be a list of names from {self.config_class.allowed_methods}, "
                f"got {raw['methods']!r}",
            )
        try:
            pseudo = PseudoLabelSpec(**raw.get("pseudo_labels", {}))
        except (TypeError, ValueError) as err:
            raise config_error(f"{where}: pseudo_labels", str(err)) from err
        return self.config_class(
            name=name,
            seed=raw["seed"],
            replicates=raw["replicates"],
            methods=tuple(raw["methods"]),
            n=positive_ints(raw["n"], f"{where}: n"),
            m=positive_ints(raw["m"], f"{where}: m"),
            weights=tuple(tuple(float(v) for v in w) for w in weights),
            family=family,
            specialist=ModelSpec.parse(raw["specialist"], f"{where}: specialist"),
            generalist=ModelSpec.parse(raw["generalist"], f"{where}: generalist"),
            pseudo_labels=pseudo,
            risk_draws=raw.get("risk_draws", 4096),
            quick=quick,
        )

    def cells(self, config: GridConfig) -> list[Cell]:
        """All cells of the grid in canonical order (replicate-major)."""
        caps = range(max(len(config.capacities), 1))
        out = []
        for rep in range(config.replicates):
            for w in range(len(config.weights)):
                for cap in caps:
                    for m in config.m:
                        for method in config.methods:
                            for n in (None,) if method == "oracle" else config.n:
                                out.append(Cell(method, n, m, cap, w, rep))
        return out

    def batch_key(self, config: GridConfig, cell: Cell):
        if config.generalist.kind == "mlp":  # every replicate of a grid point in one stacked fit
            return (cell.method, cell.n, cell.m, cell.capacity_index, cell.weights_index)
        return None

    def run_cells(self, config: GridConfig, cells: Sequence[Cell]) -> list[list[dict]]:
        """Fit the generalists of several cells of one capacity together (``fit_cells``) and
        score each; one row per cell, the row each cell gives alone."""
        with one_thread():
            family = config.family.build()
            results = fit_cells(config, cells, family)
            prepared = self.prepare(config, family)
            scores = self.score_cells(config, family, prepared, cells, results)
            return [
                [self._row(config, cell, result, row)]
                for cell, result, row in zip(cells, results, scores, strict=True)
            ]

    def score_cells(
        self, config: GridConfig, family, prepared, cells: Sequence[Cell], results
    ) -> list[dict]:
        """The score columns of several fitted cells; a kind overrides this to evaluate them
        together (each cell's scores must be those ``score`` gives it alone)."""
        return [
            self.score(config, family, prepared, cell, result)
            for cell, result in zip(cells, results, strict=True)
        ]

    def columns(self, config: GridConfig) -> tuple[str, ...]:
        head = (
            "experiment",
            "method",
            "n",
            "m",
            "capacity",
            "num_params",
            "weights_index",
            "weights",
            "replicate",
        )
        return (*head, *self.score_columns(config), "num_pairs", "fit_seconds")

    def key_columns(self, config: GridConfig) -> tuple[str, ...]:
        return ("method", "n", "m", "capacity", "weights_index", "replicate")

    def cell_key(self, config: GridConfig, cell: Cell) -> dict:
        return {
            "method": cell.method,
            "n": cell.n,
            "m": cell.m,
            "capacity": _capacity(config, cell),
            "weights_index": cell.weights_index,
            "replicate": cell.replicate,
        }

    def _row(self, config: GridConfig, cell: Cell, result: FitResult, scores: dict) -> dict:
        return self.row(
            config,
            cell,
            scores,
            num_params=result.generalist.num_params,
            num_pairs=result.num_pairs,
            fit_seconds=result.fit_seconds,
        )

    def row(
        self,
        config: GridConfig,
        cell: Cell,
        scores: dict,
        *,
        num_params: int,
        num_pairs: int,
        fit_seconds: float,
    ) -> dict:
        """One results row: the cell's key columns, ``scores``, and what the fit used."""
        weights = config.weights[cell.weights_index]
        row = {
            "experiment": config.name,
            "method": cell.method,
            "n": cell.n,
            "m": cell.m,
            "capacity": _capacity(config, cell),
            "num_params": num_params,
            "weights_index": cell.weights_index,
            "weights": ",".join(f"{w:.6g}" for w in weights),
            "replicate": cell.replicate,
            **scores,
        }
        row.update({"num_pairs": num_pairs, "fit_seconds": fit_seconds})
        return row
