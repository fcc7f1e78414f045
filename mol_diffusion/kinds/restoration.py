"""The restoration kind (``kind = "restoration"``): blind image restoration scored by PSNR.

Tasks are degradations (denoise, inpaint, deblur) of real images shipped with scikit-learn
(8 x 8 digits) or scikit-image (patches of its sample photographs), split by source into
train / unlabeled / test (``tasks.RestorationTasks``). A condition c is a degraded image, a
sample x its clean original. Each fitted generalist is scored on the test split by the PSNR
(dB) of its posterior-mean estimate, an average of ``posterior_samples`` sampled restorations
(``metrics.restoration_score``), with the same evaluation noise for every model.

Score columns: psnr (lambda-weighted), then per task k psnr_task<k>, psnr_se_task<k>,
mse_task<k> and, for two-stage rows, the specialists' own psnr_specialist_task<k> (NaN for
other methods). Experiment: image_restoration; its claims are in ``claims.restoration``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mol_diffusion.kinds.base import generator, positive_ints
from mol_diffusion.kinds.grid import RISK, Cell, GridConfig, TwoStageGrid, family_fields
from mol_diffusion.metrics import restoration_score, restoration_scores
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
    "RESTORATION",
    "RestorationConfig",
    "RestorationKind",
    "RestorationSpec",
    "restoration_test_sets",
]

OPERATORS = {"denoise": Denoise, "inpaint": Inpaint, "deblur": Deblur}
DATASETS = ("digits", "patches")


@dataclass(frozen=True)
class RestorationSpec:
    """Image-restoration tasks (the ``[family]`` table) and how they are scored.

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
    is not used)."""

    family: RestorationSpec
    family_type: ClassVar[type] = RestorationSpec

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
        score = restoration_scores if stacked else restoration_score
        return score(
            models,
            prepared,
            config.weights[cell.weights_index],
            samples=spec.posterior_samples,
            steps=spec.sampler_steps,
            generator=generator(config, RISK, 1),  # the same evaluation noise for every model
        )

    def _columns(self, family, main, own) -> dict:
        row = {"psnr": main.psnr}
        for k in range(family.num_tasks):
            row[f"psnr_task{k}"] = main.per_task[k]
            row[f"psnr_se_task{k}"] = main.per_task_se[k]
            row[f"mse_task{k}"] = main.mse[k]
            row[f"psnr_specialist_task{k}"] = own.per_task[k] if own else float("nan")
        return row

    def score(self, config, family, prepared: list, cell: Cell, result: FitResult) -> dict:
        main = self._evaluate(config, result.generalist, prepared, cell)
        own = self._specialists(config, prepared, cell, result)
        return self._columns(family, main, own)

    def _specialists(self, config, prepared, cell, result):
        if not result.specialists:
            return None
        return self._evaluate(config, list(result.specialists), prepared, cell)

    def score_cells(self, config, family, prepared, cells, results) -> list[dict]:
        """Neural generalists of one batch (one config, one lambda) sampled in one stacked pass
        (``metrics.restoration_scores``): the numbers ``score`` gives each cell alone."""
        generalists = [r.generalist for r in results]
        if not (
            all(isinstance(g, MLPScore) for g in generalists)
            and all(g.config == generalists[0].config for g in generalists)
            and len({cell.weights_index for cell in cells}) == 1
        ):
            return super().score_cells(config, family, prepared, cells, results)
        mains = self._evaluate(config, generalists, prepared, cells[0], stacked=True)
        return [
            self._columns(family, main, self._specialists(config, prepared, cell, result))
            for main, cell, result in zip(mains, cells, results, strict=True)
        ]

    def score_columns(self, config: RestorationConfig) -> tuple[str, ...]:
        per_task = (
            f"{c}_task{k}"
            for k in range(config.family.num_tasks)
            for c in ("psnr", "psnr_se", "mse", "psnr_specialist")
        )
        return ("psnr", *per_task)


RESTORATION = RestorationKind()
