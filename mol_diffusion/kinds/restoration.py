"""The restoration kind (``kind = "restoration"``): blind image restoration scored by PSNR.

Tasks are degradations (denoise, inpaint, deblur) of real images shipped with scikit-learn
(8 x 8 digits) or scikit-image (patches of its sample photographs), split by source into
train / unlabeled / test (``tasks.RestorationTasks``). A condition c is a degraded image, a
sample x its clean original. Each fitted restorer is scored on the test split by the per-image
PSNR (dB) and SSIM of its posterior-mean estimate (``metrics.score_estimates``), by one of two
estimators (``RestorationSpec.estimator``):

- ``sampled``: an average of ``posterior_samples`` sampled restorations
  (``metrics.restoration_score``), with the same evaluation noise for every model;
- ``one_pass``: the model's own posterior mean, exact for a specialist with one (``mean``:
  ``scores.prior``, ``scores.conv``) and the clean-image prediction at the largest noise level
  for the convolutional generalist (``scores.convnet.ConvScore.posterior_mean_one_pass``): no
  Monte Carlo error.

Baselines (methods beside the three of ``kinds.grid``, fitted on the same n pairs per task of
the same replicate, ``restorers``): ``degraded`` (the input), ``ridge`` (per task),
``classical`` (the scikit-image method per task with the operator known), ``blind_ridge`` and
``blind_cnn`` (on the pairs pooled over tasks; the CNN on the labeled-only generalist's seed).

Score columns: psnr and ssim (lambda-weighted), psnr_specialist (lambda-weighted, two-stage
rows), then per task k psnr_task<k>, psnr_se_task<k>, mse_task<k>, ssim_task<k> and, for
two-stage rows, the specialists' own psnr_specialist_task<k> and ssim_specialist_task<k> (NaN
for other methods). Experiment: image_restoration; its claims are in ``claims.restoration``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mol_diffusion.kinds.base import config_error, generator, one_thread, positive_ints
from mol_diffusion.kinds.grid import (
    FIT,
    METHODS,
    MODEL_KINDS,
    RISK,
    Cell,
    GridConfig,
    TwoStageGrid,
    family_fields,
    replicate_data,
)
from mol_diffusion.metrics import restoration_score, restoration_scores, score_estimates
from mol_diffusion.restorers import (
    BlindCNNRestorer,
    ClassicalRestorer,
    DegradedInput,
    RidgeRestorer,
)
from mol_diffusion.scores import MLPScore
from mol_diffusion.tasks import (
    Deblur,
    Denoise,
    Inpaint,
    RestorationTasks,
    load_digits_images,
    load_image_patches,
)
from mol_diffusion.two_stage import FitResult

__all__ = [
    "BASELINES",
    "RESTORATION",
    "RestorationConfig",
    "RestorationKind",
    "RestorationSpec",
    "restoration_test_sets",
]

OPERATORS = {"denoise": Denoise, "inpaint": Inpaint, "deblur": Deblur}
DATASETS = ("digits", "patches")
ESTIMATORS = ("sampled", "one_pass")
BASELINES = ("degraded", "ridge", "classical", "blind_ridge", "blind_cnn")
BLIND_BASELINES = ("blind_ridge", "blind_cnn")  # one restorer for every task


@dataclass(frozen=True)
class RestorationSpec:
    """Image-restoration tasks (the ``[family]`` table) and how they are scored.

    Args:
        tasks: one degradation per task: (kind, ((option, value), ...)) with kind in
            ``denoise``, ``inpaint``, ``deblur`` (options: their constructor arguments).
        dataset: ``digits`` (scikit-learn, 8 x 8) or ``patches`` (scikit-image, ``patch`` px).
        patch: patch side for ``patches``.
        split_seed: fixes the train / unlabeled / test split by source.
        posterior_samples: samples averaged into the posterior-mean estimate that is scored
            (estimator ``sampled``).
        sampler_steps: reverse-SDE steps per evaluation sample (estimator ``sampled``).
        test_images: score on the first this many test images per task (None: all of them).
        estimator: ``sampled`` or ``one_pass`` (module docstring).
        cnn_steps: Adam steps of the ``blind_cnn`` baseline (``restorers.BlindCNNRestorer``,
            its other settings at their defaults).
    """

    tasks: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    dataset: str = "digits"
    patch: int = 16
    split_seed: int = 0
    posterior_samples: int = 8
    sampler_steps: int = 50
    test_images: int | None = None
    estimator: str = "sampled"
    cnn_steps: int = 2000

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        for name in ("patch", "posterior_samples", "sampler_steps", "cnn_steps"):
            positive_ints(getattr(self, name), name)
        if self.test_images is not None:
            positive_ints(self.test_images, "test_images")
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

    @classmethod
    def parse(cls, table: dict) -> RestorationSpec:
        """From the ``[family]`` table; ``tasks`` is a list of tables with a ``kind`` key."""
        table = dict(table)
        tasks = table.pop("tasks", None)
        if not isinstance(tasks, list) or not all(
            isinstance(t, dict) and "kind" in t for t in tasks
        ):
            raise ValueError("tasks must be a list of tables, each with a 'kind' key")
        parsed = tuple(
            (t["kind"], tuple(sorted((key, v) for key, v in t.items() if key != "kind")))
            for t in tasks
        )
        return cls(tasks=parsed, **family_fields(cls, table))


@dataclass(frozen=True)
class RestorationConfig(GridConfig):
    """A two-stage grid on restoration tasks (fields: ``kinds.grid.GridConfig``; ``risk_draws``
    is not used); ``methods`` may also name the ``BASELINES``."""

    family: RestorationSpec
    family_type: ClassVar[type] = RestorationSpec
    allowed_methods: ClassVar[tuple[str, ...]] = METHODS + BASELINES

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.family.estimator == "one_pass":
            needs = [("generalist", "posterior_mean_one_pass")]
            if "two_stage" in self.methods:  # the specialists' own scores
                needs.append(("specialist", "mean"))
            for role, attr in needs:
                model = getattr(self, role)
                if not hasattr(MODEL_KINDS[model.kind][0], attr):
                    raise config_error(
                        f"experiment {self.name!r}",
                        f"estimator 'one_pass' needs a {role} with {attr} (kind "
                        f"{model.kind!r} has none)",
                    )

    @property
    def kind(self) -> RestorationKind:
        return RESTORATION


def restoration_test_sets(config: RestorationConfig, family: RestorationTasks) -> list:
    """The experiment's degraded test pairs per task (common to every cell)."""
    g = generator(config, RISK)
    limit = config.family.test_images
    return [
        tuple(part[:limit] for part in family.test_pairs(k, g)) for k in range(family.num_tasks)
    ]


class RestorationKind(TwoStageGrid):
    """Restoration tasks scored by PSNR on the test split (see the module docstring)."""

    name = "restoration"
    config_class = RestorationConfig

    def parse_family(self, table: dict) -> RestorationSpec:
        return RestorationSpec.parse(table)

    def prepare(self, config: RestorationConfig, family: RestorationTasks) -> list:
        return restoration_test_sets(config, family)

    def _evaluate(self, config, models, prepared: list, cell: Cell, stacked: bool = False):
        spec = config.family
        weights = config.weights[cell.weights_index]
        if spec.estimator == "one_pass":
            per_model = isinstance(models, list | tuple)
            estimates = [
                _point_estimate(models[k] if per_model else models, c)
                for k, (c, _) in enumerate(prepared)
            ]
            return score_estimates(estimates, prepared, weights, spec.image_shape)
        score = restoration_scores if stacked else restoration_score
        return score(
            models,
            prepared,
            weights,
            samples=spec.posterior_samples,
            steps=spec.sampler_steps,
            generator=generator(config, RISK, 1),  # the same evaluation noise for every model
            image_shape=spec.image_shape,
        )

    def _columns(self, family, main, own, weights) -> dict:
        nan = float("nan")
        row = {
            "psnr": main.psnr,
            "ssim": main.weighted_ssim(weights),
            "psnr_specialist": own.psnr if own else nan,
        }
        for k in range(family.num_tasks):
            row[f"psnr_task{k}"] = main.per_task[k]
            row[f"psnr_se_task{k}"] = main.per_task_se[k]
            row[f"mse_task{k}"] = main.mse[k]
            row[f"ssim_task{k}"] = main.ssim[k]
            row[f"psnr_specialist_task{k}"] = own.per_task[k] if own else nan
            row[f"ssim_specialist_task{k}"] = own.ssim[k] if own else nan
        return row

    def score(self, config, family, prepared: list, cell: Cell, result: FitResult) -> dict:
        main = self._evaluate(config, result.generalist, prepared, cell)
        own = self._specialists(config, prepared, cell, result)
        return self._columns(family, main, own, config.weights[cell.weights_index])

    def _specialists(self, config, prepared, cell, result):
        if not result.specialists:
            return None
        return self._evaluate(config, list(result.specialists), prepared, cell)

    def score_cells(self, config, family, prepared, cells, results) -> list[dict]:
        """Neural generalists of one batch (one config, one lambda) sampled in one stacked pass
        (``metrics.restoration_scores``): the numbers ``score`` gives each cell alone."""
        generalists = [r.generalist for r in results]
        if not (
            config.family.estimator == "sampled"
            and all(isinstance(g, MLPScore) for g in generalists)
            and all(g.config == generalists[0].config for g in generalists)
            and len({cell.weights_index for cell in cells}) == 1
        ):
            return super().score_cells(config, family, prepared, cells, results)
        mains = self._evaluate(config, generalists, prepared, cells[0], stacked=True)
        weights = config.weights[cells[0].weights_index]
        return [
            self._columns(family, main, self._specialists(config, prepared, cell, result), weights)
            for main, cell, result in zip(mains, cells, results, strict=True)
        ]

    def run_cells(self, config, cells) -> list[list[dict]]:
        """The grid's cells as ``TwoStageGrid.run_cells`` fits them; baseline cells
        (``BASELINES``) fitted and scored here, one row each."""
        cells = list(cells)
        grid = [i for i, c in enumerate(cells) if c.method not in BASELINES]
        rows: dict[int, list[dict]] = {}
        if grid:
            fitted = super().run_cells(config, [cells[i] for i in grid])
            rows.update(zip(grid, fitted, strict=True))
        base = [i for i, c in enumerate(cells) if c.method in BASELINES]
        if base:
            with one_thread():
                family = config.family.build()
                prepared = self.prepare(config, family)
                for i in base:
                    rows[i] = [self._baseline_row(config, family, prepared, cells[i])]
        return [rows[i] for i in range(len(cells))]

    def _baseline_row(self, config, family, prepared: list, cell: Cell) -> dict:
        spec = config.family
        labeled, _ = replicate_data(config, family, cell.replicate)
        pairs = [(c[: cell.n], x[: cell.n]) for c, x in labeled]
        start = time.perf_counter()
        if cell.method in BLIND_BASELINES:
            if cell.method == "blind_cnn":
                model = BlindCNNRestorer(spec.image_shape, steps=spec.cnn_steps)
            else:
                model = RidgeRestorer()
            fit_generator = generator(config, FIT, *config.generalist_seed_key(cell))
            model.fit(
                torch.cat([c for c, _ in pairs]),
                torch.cat([x for _, x in pairs]),
                generator=fit_generator,
            )
            models = [model] * len(pairs)
            num_params = model.num_params
        else:
            build = {
                "degraded": lambda k: DegradedInput(),
                "ridge": lambda k: RidgeRestorer(),
                "classical": lambda k: ClassicalRestorer(family.operators[k], spec.image_shape),
            }[cell.method]
            models = [build(k).fit(c, x) for k, (c, x) in enumerate(pairs)]
            num_params = sum(m.num_params for m in models)
        seconds = time.perf_counter() - start
        weights = config.weights[cell.weights_index]
        estimates = [m.restore(c) for m, (c, _) in zip(models, prepared, strict=True)]
        main = score_estimates(estimates, prepared, weights, spec.image_shape)
        return self.row(
            config,
            cell,
            self._columns(family, main, None, weights),
            num_params=num_params,
            num_pairs=sum(len(c) for c, _ in pairs),
            fit_seconds=seconds,
        )

    def score_columns(self, config: RestorationConfig) -> tuple[str, ...]:
        per_task = (
            f"{c}_task{k}"
            for k in range(config.family.num_tasks)
            for c in ("psnr", "psnr_se", "mse", "ssim", "psnr_specialist", "ssim_specialist")
        )
        return ("psnr", "ssim", "psnr_specialist", *per_task)


def _point_estimate(model, c):
    """A model's one-pass posterior mean of x given c (estimator ``one_pass``)."""
    if hasattr(model, "posterior_mean_one_pass"):
        return model.posterior_mean_one_pass(c)
    if hasattr(model, "mean"):
        return model.mean(c)
    raise ValueError(f"{type(model).__name__} has no one-pass posterior mean (estimator one_pass)")


RESTORATION = RestorationKind()
