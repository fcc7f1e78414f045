"""The Gaussian kind (``kind = "gaussian"``): linear-Gaussian task families with exact risk.

Task families come from ``tasks.make_gaussian_family`` (``nonlinearity > 0`` gives the
misspecified family). Each fitted generalist is scored by its exact scalarized excess score
risk against the closed-form lambda-Pareto score (``metrics.excess_risk``), on Monte Carlo
draws (``risk_draws`` per task): one set per experiment, common to every cell
(``evaluation = "shared"``, the default), or one set per replicate (``evaluation =
"per_replicate"``), so that seed-to-seed variation includes the evaluation's Monte Carlo error.

Score columns: risk (scalarized), risk_se (its Monte Carlo standard error), risk_task0..K-1;
with ``specialist_error = true`` also spec_risk, Proposition 2's specialist term
||hat s*_lambda - s*_lambda||^2_P: the exact excess risk, on the same draws as risk, of the
Pareto score of the specialists' pseudo-mixture hat P (the true condition laws, the fitted
specialists' conditionals); two-stage rows only (NaN in the others, which fit no specialist).

Input scaling of a random-feature generalist (``input_scaling``): "data" (the default) lets each
fit standardize its inputs by its own training data, so labeled-only, two-stage and the oracle
of one cell fit slightly different feature classes; "population" fixes the scaling to the
moments of the true tasks' equal-weight mixture (``population_scaler``), so every method,
replicate and n fits the same class (gates shared through the cell's generalist seed) and the
excess over the oracle is an estimation cost within one class.

Generalist seed (``generalist_seed``): "per_cell" (the default) draws each cell's generalist
seed, and so a random-feature generalist's gates, from (replicate, m, capacity, lambda), shared
by every method and n; "per_replicate" drops m, so one draw of the class serves every m of a
replicate and a sweep in m moves the training set only (the unlabeled-rate design).

Common-noise pseudo-labels (``pseudo_labels.kind = "common_noise"``, linear specialists on the
linear family): task k's pseudo-label of an unlabeled condition c with hidden true label x is
x_hat = A_hat c + b_hat + T (x - A c - b), where T is the optimal transport map from
N(0, Sigma_k) to N(0, Sigma_hat_k) (``CommonNoisePseudoLabels``). Each pseudo-label is an exact
draw from the specialist's conditional, and it differs from the oracle's label only by the
specialist's parameter error, so the two fits share their noise draws (common random numbers)
and their difference isolates the specialist term.
Experiments: sample_complexity, capacity_regime[_d4], capacity_shared[_d4], paired_rate_crn[_d4],
unlabeled_rate[_d4], scarce_label[_d4], neural_generalist, unlabeled_scaling, pareto_front,
misspecified; their claims are in ``claims.gaussian``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from mol_diffusion.kinds.base import apply_quick, config_error, generator
from mol_diffusion.kinds.grid import RISK, Cell, GridConfig, TwoStageGrid, family_fields
from mol_diffusion.metrics import RiskDraws, RiskResult, excess_risk, make_risk_draws
from mol_diffusion.scores import InputScaler
from mol_diffusion.tasks import GaussianTaskFamily, make_gaussian_family
from mol_diffusion.two_stage import FitResult

__all__ = [
    "GAUSSIAN",
    "CommonNoisePseudoLabels",
    "FamilySpec",
    "GaussianConfig",
    "GaussianKind",
    "population_scaler",
    "risk_draws",
    "specialist_error",
]


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


EVALUATIONS = ("shared", "per_replicate")
INPUT_SCALINGS = ("data", "population")
GENERALIST_SEEDS = ("per_cell", "per_replicate")


@dataclass(frozen=True)
class GaussianConfig(GridConfig):
    """A two-stage grid on a Gaussian family (fields: ``kinds.grid.GridConfig``)."""

    family: FamilySpec
    evaluation: str = "shared"  # "shared" or "per_replicate" evaluation draws (module docstring)
    specialist_error: bool = False  # add the spec_risk column (module docstring)
    input_scaling: str = "data"  # "data" or "population" (module docstring)
    generalist_seed: str = "per_cell"  # "per_cell" or "per_replicate" (module docstring)
    family_type: ClassVar[type] = FamilySpec
    common_noise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"experiment {self.name!r}"
        if self.pseudo_labels.kind == "common_noise" and (
            self.specialist.kind != "linear" or self.family.nonlinearity
        ):
            raise config_error(
                where,
                "common_noise pseudo-labels need linear specialists on the linear family "
                f"(nonlinearity 0), got specialist kind {self.specialist.kind!r} and "
                f"nonlinearity {self.family.nonlinearity}",
            )
        if self.evaluation not in EVALUATIONS:
            raise config_error(
                where, f"evaluation must be one of {EVALUATIONS}, got {self.evaluation!r}"
            )
        if not isinstance(self.specialist_error, bool):
            raise config_error(
                where, f"specialist_error must be true or false, got {self.specialist_error!r}"
            )
        if self.specialist_error and self.specialist.kind != "linear":
            raise config_error(
                where,
                "specialist_error needs linear specialists (their conditionals define the "
                f"pseudo-mixture), got specialist kind {self.specialist.kind!r}",
            )
        if self.input_scaling not in INPUT_SCALINGS:
            raise config_error(
                where,
                f"input_scaling must be one of {INPUT_SCALINGS}, got {self.input_scaling!r}",
            )
        if self.generalist_seed not in GENERALIST_SEEDS:
            raise config_error(
                where,
                f"generalist_seed must be one of {GENERALIST_SEEDS}, got {self.generalist_seed!r}",
            )
        if self.input_scaling == "population":
            if self.generalist.kind != "random_features":
                raise config_error(
                    where,
                    "input_scaling = 'population' needs a random_features generalist, got "
                    f"generalist kind {self.generalist.kind!r}",
                )
            if self.family.nonlinearity:
                raise config_error(
                    where,
                    "input_scaling = 'population' needs the linear family (nonlinearity = 0; "
                    f"its moments are closed-form), got nonlinearity {self.family.nonlinearity}",
                )

    @property
    def fingerprint_omit(self) -> tuple[str, ...]:
        """Fields the results-cache key leaves out at their defaults (``evaluation`` "shared",
        ``specialist_error`` false, ``input_scaling`` "data", ``generalist_seed``
        "per_cell"), so the tables computed before they existed keep their key."""
        omit = ("evaluation",) if self.evaluation == "shared" else ()
        omit += () if self.specialist_error else ("specialist_error",)
        omit += ("generalist_seed",) if self.generalist_seed == "per_cell" else ()
        return omit + (("input_scaling",) if self.input_scaling == "data" else ())

    def generalist_seed_key(self, cell) -> tuple[int, ...]:
        if self.generalist_seed == "per_cell":
            return super().generalist_seed_key(cell)
        return (cell.replicate, cell.capacity_index, cell.weights_index)

    def pseudo_labelers(self, family: GaussianTaskFamily, unlabeled):
        if self.pseudo_labels.kind != "common_noise":
            return super().pseudo_labelers(family, unlabeled)
        return [
            CommonNoisePseudoLabels(family.A[k], family.b[k], family.noise_cov[k], c, x)
            for k, (c, x) in enumerate(unlabeled)
        ]

    def generalist_options(self, family: GaussianTaskFamily) -> dict:
        if self.input_scaling == "population":
            return {"input_scaler": population_scaler(family)}
        return {}

    @property
    def kind(self) -> GaussianKind:
        return GAUSSIAN


def risk_draws(
    config: GaussianConfig, family: GaussianTaskFamily | None = None, replicate: int = 0
) -> RiskDraws:
    """The evaluation draws of a replicate: the experiment's one set when ``evaluation`` is
    "shared" (``replicate`` is ignored), else the replicate's own."""
    family = config.family.build() if family is None else family
    key = (RISK,) if config.evaluation == "shared" else (RISK, 1, replicate)
    return make_risk_draws(family, config.risk_draws, generator(config, *key))


def _sqrtm(spd: torch.Tensor) -> torch.Tensor:
    evals, evecs = torch.linalg.eigh(spd)
    return (evecs * evals.clamp(min=0).sqrt()) @ evecs.T


@dataclass(frozen=True, eq=False)
class CommonNoisePseudoLabels:
    """Task k's common-noise pseudo-labeler (module docstring).

    Args:
        A, b, cov: the task's true conditional x | c ~ N(A c + b, cov); shapes (dim, cond_dim),
            (dim,), (dim, dim).
        c, x: the unlabeled conditions (m, cond_dim) and their hidden true labels (m, dim).
    Called as a pseudo-labeler, ``(specialist, c, generator) -> x_hat`` (m, dim), for a fitted
    ``LinearGaussianScore`` and the same conditions ``c``; it draws no random numbers.
    """

    A: torch.Tensor
    b: torch.Tensor
    cov: torch.Tensor
    c: torch.Tensor
    x: torch.Tensor

    def __call__(self, specialist, c: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if c.shape != self.c.shape or not torch.equal(c, self.c):
            raise ValueError(
                "common_noise pseudo-labels label the conditions whose hidden labels they hold; "
                f"got other conditions (shape {tuple(c.shape)}, expected {tuple(self.c.shape)})"
            )
        noise = self.x.to(torch.float64) - (c.to(torch.float64) @ self.A.T + self.b)
        # the optimal transport map N(0, S) -> N(0, S_hat):
        # T = S^{-1/2} (S^{1/2} S_hat S^{1/2})^{1/2} S^{-1/2}
        root = _sqrtm(self.cov)
        inv_root = torch.linalg.inv(root)
        sigma_hat = 0.5 * (specialist.Sigma + specialist.Sigma.T)
        transport = inv_root @ _sqrtm(root @ sigma_hat @ root) @ inv_root
        return (specialist.mean(c).to(torch.float64) + noise @ transport.T).to(c.dtype)


def population_scaler(family: GaussianTaskFamily) -> InputScaler:
    """The input scaling ``InputScaler.fit`` converges to on the equal-weight mixture of the
    family's tasks, in closed form (the limit of many pairs per task, equal counts).

    Task k has c ~ N(mu_k, S_k) and x | c ~ N(A_k c + b_k, Sigma_k), so E_k[x] = A_k mu_k + b_k
    and Cov_k[x] = A_k S_k A_k^T + Sigma_k; the mixture's per-coordinate variance is the mean
    over tasks of (variance + mean^2) minus the squared mixture mean (the law of total
    variance). The same floors as ``InputScaler.fit`` (variance 1e-6, sd 1e-3) apply.
    """
    if family.nonlinearity:
        raise ValueError(
            f"population_scaler needs a linear family (nonlinearity 0), got {family.nonlinearity}"
        )
    mean_x = torch.einsum("kdc,kc->kd", family.A, family.cond_mean) + family.b  # (K, dim)
    cov_x = family.A @ family.cond_cov @ family.A.mT + family.noise_cov  # (K, dim, dim)
    mean_c, var_c = family.cond_mean, torch.diagonal(family.cond_cov, dim1=-2, dim2=-1)

    def mixture(means, variances):
        mu = means.mean(0)
        return mu, (variances + means**2).mean(0) - mu**2

    mu_x, var_x = mixture(mean_x, torch.diagonal(cov_x, dim1=-2, dim2=-1))
    mu_c, var_c = mixture(mean_c, var_c)
    return InputScaler(
        mu_x=mu_x, var_x=var_x.clamp(min=1e-6), mu_c=mu_c, sd_c=var_c.sqrt().clamp(min=1e-3)
    )


def specialist_error(
    family: GaussianTaskFamily, specialists, weights, *, draws: RiskDraws
) -> RiskResult:
    """Proposition 2's specialist term ||hat s*_lambda - s*_lambda||^2_P, exactly up to the
    Monte Carlo error of ``draws``.

    Args:
        family: the true task family (its condition laws q_k are kept).
        specialists: K fitted ``LinearGaussianScore`` (A (dim, cond_dim), b (dim,), Sigma
            (dim, dim)), task k's specialist at position k.
        weights: lambda, length K.
    Returns:
        the excess risk of the pseudo-mixture's lambda-Pareto score against the true one.
    """
    if len(specialists) != family.num_tasks:
        raise ValueError(
            f"specialists must hold one model per task ({family.num_tasks}), got {len(specialists)}"
        )
    k, dim, cond_dim = family.num_tasks, family.dim, family.cond_dim
    # the true condition laws q_k, the specialists' affine-Gaussian conditionals (validated as
    # any family: covariances symmetric positive definite)
    pseudo = replace(
        family,
        A=torch.stack([s.A for s in specialists]),
        b=torch.stack([s.b for s in specialists]),
        noise_cov=torch.stack([0.5 * (s.Sigma + s.Sigma.T) for s in specialists]),
        B=torch.zeros(k, dim, 1, dtype=torch.float64),
        F=torch.zeros(k, 1, cond_dim, dtype=torch.float64),
        nonlinearity=0.0,
    )
    return excess_risk(
        lambda x_t, c, t: pseudo.pareto_score(x_t, c, t, weights), family, weights, draws=draws
    )


class GaussianKind(TwoStageGrid):
    """Gaussian families scored by exact excess risk (see the module docstring)."""

    name = "gaussian"
    config_class = GaussianConfig

    def parse_family(self, table: dict) -> FamilySpec:
        return FamilySpec(**family_fields(FamilySpec, table))

    def parse(self, raw: dict, name: str, quick: bool) -> GaussianConfig:
        config = super().parse(raw, name, quick)
        raw = apply_quick(raw, quick)
        return replace(
            config,
            evaluation=raw.get("evaluation", "shared"),
            specialist_error=raw.get("specialist_error", False),
            input_scaling=raw.get("input_scaling", "data"),
            generalist_seed=raw.get("generalist_seed", "per_cell"),
        )

    def prepare(self, config: GaussianConfig, family) -> dict:
        return {}  # evaluation draws per replicate, made on first use

    def score(self, config, family, prepared: dict, cell: Cell, result: FitResult) -> dict:
        weights = config.weights[cell.weights_index]
        key = 0 if config.evaluation == "shared" else cell.replicate
        if key not in prepared:
            prepared[key] = risk_draws(config, family, cell.replicate)
        risk = excess_risk(result.generalist, family, weights, draws=prepared[key])
        scores = {"risk": risk.scalarized, "risk_se": risk.scalarized_se}
        scores.update({f"risk_task{k}": v for k, v in enumerate(risk.per_task)})
        if config.specialist_error:
            spec = math.nan  # only a two-stage fit has specialists
            if cell.method == "two_stage":
                spec = specialist_error(family, result.specialists, weights, draws=prepared[key])
                spec = spec.scalarized
            scores["spec_risk"] = spec
        return scores

    def score_columns(self, config: GaussianConfig) -> tuple[str, ...]:
        k = config.family.num_tasks
        extra = ("spec_risk",) if config.specialist_error else ()
        return ("risk", "risk_se", *(f"risk_task{i}" for i in range(k)), *extra)


GAUSSIAN = GaussianKind()
