r"""The two-stage semi-supervised procedure and its baselines.

Paper symbols -> code: K tasks (``len(labeled)``), n paired samples per task (``labeled[k]``),
m unlabeled conditions per task (``unlabeled[k]``), weights lambda (``weights``).

- ``two_stage``: (1) fit one specialist per task on its n pairs; (2) label each task's m
  unlabeled conditions with pseudo-samples drawn from that task's specialist (the diffusion
  sampler by default; ``ExactPseudoLabels`` is the ablation for specialists with exact
  samplers); (3) fit one generalist, without any task id, on the pooled pseudo-pairs with
  per-pair weight lambda_k / m_k, so that task k carries total weight lambda_k as in the
  scalarized objective sum_k lambda_k L_k.
- ``labeled_only``: the same generalist class on the n pairs per task (weights lambda_k / n_k).
- ``oracle``: the generalist on m *true* pairs per task: what the class achieves with m labels.

Each method is split in two: ``two_stage_problem`` / ``supervised_problem`` build the
generalist's pooled, weighted training pairs (a ``GeneralistProblem``), and
``fit_generalists`` fits one generalist per problem, many at once when they are ``MLPScore``
models of one config (how a sweep fits all replicates of a grid point together).

Randomness: every function draws child seeds from ``generator`` in a fixed order, the
generalist's seed first. Passing identically seeded generators to the three methods therefore
gives the generalists the same random features, initialisation and DSM draws (common random
numbers), so differences between methods come from their training pairs alone. ``two_stage``
also accepts a separate ``specialist_generator`` for the specialists and pseudo-labels, so that
generalists of different sizes can be fitted on the very same pseudo-pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mol_diffusion._validation import (
    check_generator,
    check_matrix,
    check_pairs,
    check_positive_int,
    check_simplex,
)
from mol_diffusion.samplers import reverse_sde
from mol_diffusion.scores.base import ScoreModel

__all__ = [
    "DiffusionPseudoLabels",
    "ExactPseudoLabels",
    "FitResult",
    "GeneralistProblem",
    "fit_generalists",
    "labeled_only",
    "oracle",
    "supervised_problem",
    "two_stage",
    "two_stage_problem",
]

Pairs = tuple[torch.Tensor, torch.Tensor]
ModelFactory = Callable[[], ScoreModel]


@dataclass(frozen=True)
class DiffusionPseudoLabels:
    """Pseudo-samples drawn with a diffusion sampler from the specialist's score.

    Args:
        sampler: a function of ``mol_diffusion.samplers`` (reverse_sde, probability_flow, ddim).
        steps: sampler steps.
    """

    sampler: Callable = reverse_sde
    steps: int = 500

    def __post_init__(self) -> None:
        check_positive_int(self.steps, "steps")

    def __call__(self, specialist: ScoreModel, c: torch.Tensor, generator: torch.Generator):
        return specialist.sample(c, generator=generator, steps=self.steps, sampler=self.sampler)


@dataclass(frozen=True)
class ExactPseudoLabels:
    """Ablation: exact draws from the specialist's model (needs ``sample_exact``)."""

    def __call__(self, specialist: ScoreModel, c: torch.Tensor, generator: torch.Generator):
        if not hasattr(specialist, "sample_exact"):
            raise ValueError(f"{type(specialist).__name__} has no exact sampler (sample_exact)")
        return specialist.sample_exact(c, generator=generator)


@dataclass(frozen=True)
class FitResult:
    """A fitted generalist and what produced it.

    Attributes:
        method: ``"two_stage"``, ``"labeled_only"`` or ``"oracle"``.
        generalist: the fitted score model (sees no task id).
        specialists: the per-task specialists (two_stage only), else empty.
        num_pairs: pairs the generalist was fitted on.
        fit_seconds: wall time of the whole procedure.
    """

    method: str
    generalist: ScoreModel
    specialists: tuple[ScoreModel, ...]
    num_pairs: int
    fit_seconds: float


def _make(factory: ModelFactory, name: str) -> ScoreModel:
    """A fresh model from ``factory``, with a clear error for an instance passed in its place."""
    instance = hasattr(factory, "fit") and not isinstance(factory, type)
    if instance or not callable(factory):
        raise ValueError(
            f"{name} must be a factory that returns a new model (a class, or e.g. "
            f"`lambda: LinearGaussianScore()`), got a {type(factory).__name__} "
            f"{'instance' if instance else 'object'}"
        )
    model = factory()
    if not hasattr(model, "fit"):
        raise ValueError(f"{name}() must return a score model, got {type(model).__name__}")
    return model


def _child(generator: torch.Generator) -> torch.Generator:
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator().manual_seed(seed)


def _check_tasks(pairs: Sequence[Pairs], weights, name: str) -> tuple[list[Pairs], torch.Tensor]:
    if len(pairs) == 0:
        raise ValueError(f"{name} must hold one (c, x) pair of tensors per task, got none")
    checked = []
    for k, item in enumerate(pairs):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError(f"{name}[{k}] must be a (c, x) pair of tensors")
        checked.append(check_pairs(*item))
    dims = {(c.shape[1], x.shape[1]) for c, x in checked}
    if len(dims) != 1:
        raise ValueError(f"every task in {name} must share (cond_dim, dim), got {sorted(dims)}")
    return checked, check_simplex(weights, len(checked))


def _pool(pairs: Sequence[Pairs], w: torch.Tensor):
    """Concatenate tasks; pair weight lambda_k / n_k so task k's total weight is lambda_k."""
    c = torch.cat([p[0] for p in pairs])
    x = torch.cat([p[1] for p in pairs])
    weights = torch.cat(
        [
            torch.full((p[0].shape[0],), float(w[k]) / p[0].shape[0], dtype=torch.float64)
            for k, p in enumerate(pairs)
        ]
    )
    return c, x, weights


@dataclass(frozen=True)
class GeneralistProblem:
    """What one method hands to the generalist fit: pooled pairs, their weights and a seed.

    Attributes:
        method: ``"two_stage"``, ``"labeled_only"`` or ``"oracle"``.
        c, x, weights: the pooled training pairs (N, cond_dim), (N, dim) and per-pair weights
            lambda_k / n_k (or / m_k).
        generator: the generalist's own generator.
        specialists: the fitted specialists (two_stage only), else empty.
        run_name: names the generalist's fit in error messages.
        seconds: wall time spent preparing the pairs (specialists and pseudo-labels).
    """

    method: str
    c: torch.Tensor
    x: torch.Tensor
    weights: torch.Tensor
    generator: torch.Generator
    specialists: tuple[ScoreModel, ...]
    run_name: str
    seconds: float


def fit_generalists(problems: Sequence[GeneralistProblem], generalist: ModelFactory):
    """Fit one generalist per problem; ``MLPScore`` generalists of one config are fitted as one
    stacked network (``scores.mlp.fit_batched``, bit-for-bit the single fits), others one at a
    time. Returns one ``FitResult`` per problem; a batch's fit time is shared equally."""
    from mol_diffusion.scores.mlp import MLPScore, fit_batched

    problems = list(problems)
    models = [_make(generalist, "generalist") for _ in problems]
    start = time.perf_counter()
    batchable = len(models) > 1 and all(isinstance(m, MLPScore) for m in models)
    if batchable and all(m.config == models[0].config for m in models):
        fit_batched(
            models,
            [(p.c, p.x, p.weights) for p in problems],
            [p.generator for p in problems],
            run_names=[p.run_name for p in problems],
        )
    else:
        for model, p in zip(models, problems, strict=True):
            model.fit(p.c, p.x, weights=p.weights, generator=p.generator, run_name=p.run_name)
    share = (time.perf_counter() - start) / len(problems)
    return [
        FitResult(p.method, model, p.specialists, p.c.shape[0], p.seconds + share)
        for model, p in zip(models, problems, strict=True)
    ]


def _labelers(pseudo_labels, num_tasks: int) -> list:
    """One pseudo-labeler per task: ``pseudo_labels`` itself for every task, or, given a
    sequence, task k's at position k."""
    if callable(pseudo_labels):
        return [pseudo_labels] * num_tasks
    if not isinstance(pseudo_labels, Sequence) or not all(map(callable, pseudo_labels)):
        raise ValueError(
            "pseudo_labels must be a callable (specialist, c, generator) -> x or a sequence of "
            f"one per task, got {type(pseudo_labels).__name__}"
        )
    if len(pseudo_labels) != num_tasks:
        raise ValueError(
            f"pseudo_labels must hold one labeler per task ({num_tasks}), got {len(pseudo_labels)}"
        )
    return list(pseudo_labels)


def two_stage_problem(
    labeled: Sequence[Pairs],
    unlabeled: Sequence[torch.Tensor],
    weights,
    *,
    specialist: ModelFactory,
    generator: torch.Generator,
    pseudo_labels: Callable | Sequence[Callable] = DiffusionPseudoLabels(),
    specialist_generator: torch.Generator | None = None,
    run_name: str = "two_stage",
    draws: int = 1,
) -> GeneralistProblem:
    """Stages (1) and (2) of ``two_stage``: specialists and pseudo-pairs, ready for the fit
    (``draws`` pseudo-labels per unlabeled condition: the conditions repeated ``draws`` times,
    all of task k's pseudo-pairs sharing its weight lambda_k)."""
    start = time.perf_counter()
    check_positive_int(draws, "draws")
    pairs, w = _check_tasks(labeled, weights, "labeled")
    if len(unlabeled) != len(pairs):
        raise ValueError(
            f"unlabeled must hold one tensor per task ({len(pairs)}), got {len(unlabeled)}"
        )
    cond_dim = pairs[0][0].shape[1]
    gen_generalist = _child(check_generator(generator))
    source = generator
    if specialist_generator is not None:
        source = check_generator(specialist_generator, "specialist_generator")
    gen_specialists, gen_labels = _child(source), _child(source)
    specialists = tuple(
        _make(specialist, "specialist").fit(
            c, x, generator=gen_specialists, run_name=f"{run_name}/specialist{k}"
        )
        for k, (c, x) in enumerate(pairs)
    )
    labelers = _labelers(pseudo_labels, len(pairs))
    pseudo = []
    for k, (model, c_u) in enumerate(zip(specialists, unlabeled, strict=True)):
        c_u = check_matrix(c_u, f"unlabeled[{k}]", cols=cond_dim).repeat(draws, 1)
        pseudo.append((c_u, labelers[k](model, c_u, gen_labels)))
    c, x, pair_weights = _pool(pseudo, w)
    return GeneralistProblem(
        "two_stage",
        c,
        x,
        pair_weights,
        gen_generalist,
        specialists,
        f"{run_name}/generalist",
        time.perf_counter() - start,
    )


def supervised_problem(
    method: str, pairs: Sequence[Pairs], weights, *, generator, run_name: str
) -> GeneralistProblem:
    """The pooled pairs of ``labeled_only`` (method ``"labeled_only"``, the n labeled pairs per
    task) or ``oracle`` (method ``"oracle"``, m true pairs per task)."""
    names = {"labeled_only": "labeled", "oracle": "true_pairs"}
    if method not in names:
        raise ValueError(f"method must be one of {sorted(names)}, got {method!r}")
    start = time.perf_counter()
    pairs, w = _check_tasks(pairs, weights, names[method])
    gen = _child(check_generator(generator))
    c, x, pair_weights = _pool(pairs, w)
    return GeneralistProblem(
        method, c, x, pair_weights, gen, (), f"{run_name}/generalist", time.perf_counter() - start
    )


def two_stage(
    labeled: Sequence[Pairs],
    unlabeled: Sequence[torch.Tensor],
    weights,
    *,
    specialist: ModelFactory,
    generalist: ModelFactory,
    generator: torch.Generator,
    pseudo_labels: Callable | Sequence[Callable] = DiffusionPseudoLabels(),
    specialist_generator: torch.Generator | None = None,
    run_name: str = "two_stage",
    draws: int = 1,
) -> FitResult:
    """Specialists on scarce pairs -> pseudo-samples for abundant conditions -> generalist.

    Args:
        labeled: per task k, (c_k (n_k, cond_dim), x_k (n_k, dim)).
        unlabeled: per task k, conditions (m_k, cond_dim) without samples.
        weights: lambda on the simplex, length K.
        specialist: builds an unfitted specialist (e.g. ``LinearGaussianScore``).
        generalist: builds an unfitted generalist (e.g. ``lambda: RandomFeatureScore(1024)``).
        generator: the only source of randomness.
        pseudo_labels: (specialist, c, generator) -> x; diffusion sampling by default; or a
            sequence of K such labelers, task k's at position k (e.g. labels that share hidden
            true labels' noise, ``kinds.gaussian.CommonNoisePseudoLabels``).
        specialist_generator: seeds the specialists and pseudo-labels (default: derived from
            ``generator``).
        run_name: names the run in error messages.
        draws: pseudo-labels per unlabeled condition (more draws average the specialist's
            posterior better; the generalist sees m * draws pseudo-pairs per task).
    """
    problem = two_stage_problem(
        labeled,
        unlabeled,
        weights,
        specialist=specialist,
        generator=generator,
        pseudo_labels=pseudo_labels,
        specialist_generator=specialist_generator,
        run_name=run_name,
        draws=draws,
    )
    return fit_generalists([problem], generalist)[0]


def labeled_only(
    labeled: Sequence[Pairs],
    weights,
    *,
    generalist: ModelFactory,
    generator: torch.Generator,
    run_name: str = "labeled_only",
) -> FitResult:
    """The generalist fitted directly on the n pairs per task (the supervised baseline)."""
    problem = supervised_problem(
        "labeled_only", labeled, weights, generator=generator, run_name=run_name
    )
    return fit_generalists([problem], generalist)[0]


def oracle(
    true_pairs: Sequence[Pairs],
    weights,
    *,
    generalist: ModelFactory,
    generator: torch.Generator,
    run_name: str = "oracle",
) -> FitResult:
    """The generalist fitted on m true pairs per task: what the class can do with m labels."""
    problem = supervised_problem(
        "oracle", true_pairs, weights, generator=generator, run_name=run_name
    )
    return fit_generalists([problem], generalist)[0]
