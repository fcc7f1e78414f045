r"""Metrics against exact ground truth.

Excess score risk. For weights lambda (code ``weights``) the scalarized DSM risk of a score model
s is R_lambda(s) = sum_k lambda_k E_k[ sigma^2 || s - s_k ||^2 ] + const, where E_k draws
t ~ U[t_min, 1], c ~ q_k, x_0 ~ p_k(. | c), x_t = alpha x_0 + sigma eps. Its minimiser is the
Pareto (mixture) score s*_lambda, and

    excess(s) = R_lambda(s) - R_lambda(s*_lambda)
              = sum_k lambda_k E_k[ sigma^2 || s - s*_lambda ||^2 ]

is computed here by Monte Carlo, stratified by task, against the closed-form s*_lambda. Each
task's own excess risk L_k(s) = E_k[ sigma^2 || s - s_k ||^2 ] (the k-th objective of the
multi-objective problem) comes from the same draws. ``RiskDraws`` fixes the draws so that methods
are compared on common random numbers.

Restoration (no closed form): ``restoration_score`` gives the PSNR, per task and
lambda-weighted, of a restorer's posterior-mean estimate (an average of sampled restorations).

Distribution distances: closed-form KL and 2-Wasserstein between Gaussians, and the energy
distance (Székely & Rizzo, 2013) between samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mol_diffusion._validation import (
    check_finite,
    check_generator,
    check_matrix,
    check_positive_float,
    check_positive_int,
    check_simplex,
)
from mol_diffusion.tasks.gaussian import GaussianTaskFamily

__all__ = [
    "RestorationScore",
    "RiskDraws",
    "RiskResult",
    "energy_distance",
    "excess_risk",
    "kl_gaussian",
    "make_risk_draws",
    "posterior_mean",
    "posterior_means",
    "psnr",
    "restoration_score",
    "restoration_scores",
    "score_estimates",
    "ssim",
    "w2_gaussian",
]


@dataclass(frozen=True)
class RiskDraws:
    """Common random numbers for risk evaluation, N draws per task.

    Shapes: c (K, N, cond_dim), x0 (K, N, dim), t (K, N), eps (K, N, dim); x_t derived.
    """

    c: torch.Tensor
    x0: torch.Tensor
    t: torch.Tensor
    eps: torch.Tensor
    x_t: torch.Tensor

    @property
    def num_per_task(self) -> int:
        return self.t.shape[1]


def make_risk_draws(
    family: GaussianTaskFamily, num_per_task: int, generator: torch.Generator
) -> RiskDraws:
    """Draw N = ``num_per_task`` evaluation points per task from the family's exact law."""
    n = check_positive_int(num_per_task, "num_per_task")
    check_generator(generator)
    sched = family.schedule
    cs, xs = zip(*(family.sample(k, n, generator) for k in range(family.num_tasks)), strict=True)
    c, x0 = torch.stack(cs), torch.stack(xs)
    t = sched.t_min + (1 - sched.t_min) * torch.rand(
        family.num_tasks, n, generator=generator, dtype=torch.float64
    )
    eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    x_t = sched.alpha(t)[..., None] * x0 + sched.sigma(t)[..., None] * eps
    return RiskDraws(c=c, x0=x0, t=t, eps=eps, x_t=x_t)


@dataclass(frozen=True)
class RiskResult:
    """Excess risks with Monte Carlo standard errors.

    Attributes:
        scalarized: sum_k lambda_k E_k[sigma^2 ||s - s*_lambda||^2].
        scalarized_se: its Monte Carlo standard error.
        per_task: L_k(s) = E_k[sigma^2 ||s - s_k||^2] for each task, length K.
        per_task_se: their standard errors.
        per_sample: sigma^2 ||s - s*_lambda||^2 per draw, shape (K, N) (for paired comparisons).
    """

    scalarized: float
    scalarized_se: float
    per_task: tuple[float, ...]
    per_task_se: tuple[float, ...]
    per_sample: torch.Tensor


def excess_risk(
    model,
    family: GaussianTaskFamily,
    weights,
    *,
    draws: RiskDraws | None = None,
    num_per_task: int = 4096,
    generator: torch.Generator | None = None,
) -> RiskResult:
    """Exact-target excess score risk of ``model`` (anything with ``score(x_t, c, t)``).

    Args:
        model: a fitted score model, or a callable (x_t, c, t) -> score.
        family: the ground-truth task family.
        weights: lambda on the simplex, length K.
        draws: common random numbers from ``make_risk_draws``; drawn here if None.
        num_per_task: draws per task when ``draws`` is None.
        generator: seeds the draws when ``draws`` is None.
    """
    w = check_simplex(weights, family.num_tasks)
    owner = getattr(model, "__self__", model)  # a bound method such as model.score
    schedule = getattr(owner, "schedule", family.schedule)
    if schedule != family.schedule:
        raise ValueError(
            f"model.schedule {schedule} differs from family.schedule {family.schedule}"
        )
    score_fn = model.score if hasattr(model, "score") else model
    if draws is None:
        if generator is None:
            raise ValueError(
                "pass either draws (common random numbers) or a generator to draw them"
            )
        draws = make_risk_draws(family, num_per_task, generator)
    if draws.c.shape[0] != family.num_tasks:
        raise ValueError(f"draws hold {draws.c.shape[0]} tasks, family has {family.num_tasks}")
    k, n = draws.t.shape
    flat = lambda a: a.reshape(k * n, *a.shape[2:])  # noqa: E731
    x_t, c, t = flat(draws.x_t), flat(draws.c), flat(draws.t)
    sigma2 = family.schedule.sigma(t)[:, None] ** 2
    s_model = score_fn(x_t, c, t)
    if not isinstance(s_model, torch.Tensor):
        raise ValueError(f"the model's score must be a torch.Tensor, got {type(s_model).__name__}")
    if s_model.shape != x_t.shape:
        raise ValueError(
            f"the model's score must have shape {tuple(x_t.shape)}, got {tuple(s_model.shape)}"
        )
    if not torch.isfinite(s_model).all():
        raise ValueError(
            "the model's score must be finite, got "
            f"{int((~torch.isfinite(s_model)).sum())} NaN/inf entries"
        )
    s_model = s_model.to(torch.float64)
    target = family.pareto_score(x_t, c, t, w)
    per_sample = (sigma2 * (s_model - target) ** 2).sum(-1).reshape(k, n)
    _, task_scores = family._task_terms(x_t, c, t)  # (K_tasks, K*N, d), every task's score
    own = task_scores.reshape(k, k, n, -1)[
        torch.arange(k), torch.arange(k)
    ]  # task j's score on its draws
    per_task = (sigma2.reshape(k, n, 1) * (s_model.reshape(k, n, -1) - own) ** 2).sum(-1)
    means, variances = per_sample.mean(1), per_sample.var(1) / n
    return RiskResult(
        scalarized=float(w @ means),
        scalarized_se=float((w**2 @ variances).sqrt()),
        per_task=tuple(per_task.mean(1).tolist()),
        per_task_se=tuple((per_task.var(1) / n).sqrt().tolist()),
        per_sample=per_sample,
    )


def _check_gaussian(mean: torch.Tensor, cov: torch.Tensor, name: str) -> torch.Tensor:
    """Check mean (..., d) and a symmetric positive definite cov (..., d, d); return cholesky."""
    for what, value in (("mean", mean), ("cov", cov)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{what}_{name} must be a torch.Tensor, got {type(value).__name__} "
                "(use torch.as_tensor)"
            )
    if cov.shape[-2:] != (mean.shape[-1], mean.shape[-1]):
        raise ValueError(
            f"cov_{name} must have shape (..., {mean.shape[-1]}, {mean.shape[-1]}), "
            f"got {tuple(cov.shape)}"
        )
    if not torch.allclose(cov, cov.mT, atol=1e-8, rtol=1e-6):
        raise ValueError(f"cov_{name} must be symmetric")
    chol, info = torch.linalg.cholesky_ex(cov)
    if info.any():
        raise ValueError(f"cov_{name} must be positive definite")
    return chol


def _sym_sqrt(m: torch.Tensor) -> torch.Tensor:
    evals, evecs = torch.linalg.eigh(0.5 * (m + m.mT))
    return evecs @ torch.diag_embed(evals.clamp(min=0).sqrt()) @ evecs.mT


def kl_gaussian(mean_p, cov_p, mean_q, cov_q) -> torch.Tensor:
    """KL(N(mean_p, cov_p) || N(mean_q, cov_q)); means (..., d), covariances (..., d, d).

    KL = 1/2 [tr(Cq^-1 Cp) + (mq - mp)^T Cq^-1 (mq - mp) - d + log det Cq - log det Cp].
    """
    d = mean_p.shape[-1]
    chol_p = _check_gaussian(mean_p, cov_p, "p")
    chol_q = _check_gaussian(mean_q, cov_q, "q")
    diff = (mean_q - mean_p)[..., None]
    sol = torch.cholesky_solve(torch.cat([cov_p, diff], dim=-1), chol_q)
    trace = torch.diagonal(sol[..., :d], dim1=-2, dim2=-1).sum(-1)
    maha = (diff * sol[..., d:]).sum((-2, -1))
    logdet_q = 2 * torch.log(torch.diagonal(chol_q, dim1=-2, dim2=-1)).sum(-1)
    logdet_p = 2 * torch.log(torch.diagonal(chol_p, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + maha - d + logdet_q - logdet_p)


def w2_gaussian(mean_p, cov_p, mean_q, cov_q) -> torch.Tensor:
    """2-Wasserstein distance between Gaussians (Dowson & Landau, 1982):
    W2^2 = ||mp - mq||^2 + tr(Cp + Cq - 2 (Cq^1/2 Cp Cq^1/2)^1/2).
    """
    _check_gaussian(mean_p, cov_p, "p")
    _check_gaussian(mean_q, cov_q, "q")
    root_q = _sym_sqrt(cov_q)
    cross = _sym_sqrt(root_q @ cov_p @ root_q)
    bures = torch.diagonal(cov_p + cov_q - 2 * cross, dim1=-2, dim2=-1).sum(-1)
    return (((mean_p - mean_q) ** 2).sum(-1) + bures).clamp(min=0).sqrt()


def psnr(estimate: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10 log10(data_range^2 / MSE), in dB.

    Args:
        estimate, target: images of the same shape (B, ...) (flattened or not).
        data_range: max - min of the pixel scale (1 for images in [0, 1]).
    Returns:
        (B,) PSNR values; +inf where the estimate is exact.
    """
    for name, value in (("estimate", estimate), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if estimate.shape != target.shape or estimate.dim() < 2:
        raise ValueError(
            f"estimate and target must share a shape (B, ...), got {tuple(estimate.shape)} "
            f"and {tuple(target.shape)}"
        )
    check_finite(estimate, "estimate")
    check_finite(target, "target")
    check_positive_float(data_range, "data_range")
    mse = ((estimate.to(torch.float64) - target.to(torch.float64)) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Energy distance between samples x (n, d) and y (m, d) (Székely & Rizzo, 2013):
    sqrt(2 E||X - Y|| - E||X - X'|| - E||Y - Y'||), V-statistic form (in 1-d equal to
    ``scipy.stats.energy_distance``). Zero iff the empirical laws coincide.
    """
    x = check_matrix(x, "x").to(torch.float64)
    y = check_matrix(y, "y", cols=x.shape[1]).to(torch.float64)
    exact = "donot_use_mm_for_euclid_dist"  # the matmul shortcut loses precision far from 0
    dist = lambda a, b: torch.cdist(a, b, compute_mode=exact).mean()  # noqa: E731
    value = 2 * dist(x, y) - dist(x, x) - dist(y, y)
    return value.clamp(min=0).sqrt()


@dataclass(frozen=True)
class RestorationScore:
    """PSNR of a restorer's posterior-mean estimate on test images, per task.

    Attributes:
        psnr: lambda-weighted mean over tasks of the per-task PSNR (dB).
        per_task: mean over test images of the per-image PSNR, per task (dB).
        per_task_se: standard error of that mean over images.
        mse: mean squared error per pixel, per task.
        ssim: mean over test images of the per-image SSIM, per task (``ssim``; None when the
            images' shape was not given).
    """

    psnr: float
    per_task: tuple[float, ...]
    per_task_se: tuple[float, ...]
    mse: tuple[float, ...]
    ssim: tuple[float, ...] | None = None

    def weighted_ssim(self, weights) -> float:
        """lambda-weighted mean over tasks of ``ssim``."""
        if self.ssim is None:
            raise ValueError("this score has no SSIM (pass image_shape when scoring)")
        w = check_simplex(weights, len(self.ssim))
        return float(sum(float(w[k]) * v for k, v in enumerate(self.ssim)))


def posterior_mean(
    model, c: torch.Tensor, *, samples: int, steps: int, generator: torch.Generator
) -> torch.Tensor:
    """Average of ``samples`` reverse-SDE draws x ~ p(. | c): (B, cond_dim) -> (B, dim)."""
    check_positive_int(samples, "samples")
    total = None
    for _ in range(samples):
        draw = model.sample(c, generator=generator, steps=steps).to(torch.float64)
        total = draw if total is None else total + draw
    return total / samples


# posterior_means' row block, fixed so that a row's products do not depend on how many models
# are stacked (a stack of one gives each model's means bit for bit); at 16 models of width 64
# or 4 of width 256 the stacked activations of a block are 1 MiB, in cache
_BLOCK_ROWS = 256


def posterior_means(
    models, conds, *, samples: int, steps: int, generator: torch.Generator
) -> list[list[torch.Tensor]]:
    """``posterior_mean`` of M neural models (``MLPScore``, one config) on K condition sets,
    every model on the same noise, in one stacked reverse SDE.

    The noise is drawn from ``generator`` in the order of K successive ``posterior_mean`` calls
    of one model (set k, draw s: the start, then one draw per step), and all K x ``samples``
    chains of all M models advance together. Entry [m][k] does not depend on the other models
    (a stack of one gives it bit for bit), and it is what ``posterior_mean(models[m], conds[k],
    ...)`` returns with a generator in ``generator``'s state, to float32 rounding: the matrix
    products see K x ``samples`` times the rows, and a product of few rows may take another
    kernel (bit for bit at the restoration experiment's sizes, measured); ``generator`` ends in
    the state those calls leave (``tests/test_batched.py``).

    Args:
        models: M fitted ``MLPScore``.
        conds: K condition tensors (N_k, cond_dim).
    Returns:
        [m][k]: the posterior-mean estimate (N_k, dim), float64.
    """
    from mol_diffusion.samplers import stacked_reverse_sde
    from mol_diffusion.scores.mlp import stacked_eps

    check_positive_int(samples, "samples")
    check_positive_int(steps, "steps")
    check_generator(generator)
    models = list(models)
    eps = stacked_eps(models)
    dim, cond_dim = models[0]._require_fitted()
    conds = [check_matrix(c, f"conds[{k}]", cols=cond_dim) for k, c in enumerate(conds)]
    if not conds or len({c.dtype for c in conds}) != 1:
        raise ValueError("conds must hold at least one tensor, all of one dtype")
    dtype, sched = conds[0].dtype, models[0].schedule
    starts, noise, chains = [], [], []
    for c in conds:
        for _ in range(samples):
            shape = (c.shape[0], dim)
            starts.append(torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype))
            noise.append(
                torch.stack(
                    [
                        torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
                        for _ in range(steps)
                    ]
                )
            )
            chains.append(c)

    def score(x_t, c, t):
        sigma = sched.sigma(t.to(torch.float64))[:, None]
        return (-eps(x_t, c, t).to(torch.float64) / sigma).to(x_t.dtype)

    chains, starts, noise = torch.cat(chains), torch.cat(starts), torch.cat(noise, dim=1)
    # The chains are independent, so they advance in blocks of _BLOCK_ROWS rows whatever the
    # number of models: at M = 16, width 64 the whole reverse SDE runs 1.5x faster in blocks of
    # 256 rows than in one block of 1024.
    block = _BLOCK_ROWS
    draws = torch.cat(
        [
            stacked_reverse_sde(
                score,
                chains[r : r + block],
                starts[r : r + block],
                noise[:, r : r + block],
                sched,
                len(models),
            )
            for r in range(0, chains.shape[0], block)
        ],
        dim=1,
    ).to(torch.float64)
    out, row = [[] for _ in models], 0
    for c in conds:
        total = None
        for _ in range(samples):
            draw = draws[:, row : row + c.shape[0]]
            total = draw if total is None else total + draw
            row += c.shape[0]
        for m in range(len(models)):
            out[m].append(total[m] / samples)
    return out


def ssim(
    estimate: torch.Tensor, target: torch.Tensor, image_shape: tuple[int, int]
) -> torch.Tensor:
    """Structural similarity per image (scikit-image's ``structural_similarity``, data range 1,
    the largest odd window up to 7 x 7 that fits the images: 7 on 8 x 8 digits).

    Args:
        estimate, target: (B, H W) images with pixels in [0, 1].
        image_shape: (H, W).
    Returns:
        (B,) SSIM values, float64.
    """
    from skimage.metrics import structural_similarity

    h, w = image_shape
    est = check_matrix(estimate, "estimate", cols=h * w).to(torch.float64)
    ref = check_matrix(target, "target", cols=h * w).to(torch.float64)
    if est.shape != ref.shape:
        raise ValueError(
            f"estimate and target must share a shape, got {tuple(est.shape)} and {tuple(ref.shape)}"
        )
    win = min(7, h - (1 - h % 2), w - (1 - w % 2))
    pairs = zip(est.reshape(-1, h, w).numpy(), ref.reshape(-1, h, w).numpy(), strict=True)
    values = [structural_similarity(a, b, data_range=1.0, win_size=win) for a, b in pairs]
    return torch.tensor(values, dtype=torch.float64)


def score_estimates(
    estimates, test_sets, weights, image_shape: tuple[int, int] | None = None
) -> RestorationScore:
    """Score point estimates: task k's estimate (N_k, dim) of its test images x_k, clipped to
    [0, 1], by per-image PSNR (and SSIM when ``image_shape`` is given)."""
    w = check_simplex(weights, len(test_sets))
    if len(estimates) != len(test_sets):
        raise ValueError(f"estimates must hold {len(test_sets)} tensors, got {len(estimates)}")
    means, ses, mses, ssims = [], [], [], []
    for k, (est, (_, x)) in enumerate(zip(estimates, test_sets, strict=True)):
        est = est.to(torch.float64).clamp(0.0, 1.0)
        values = psnr(est, x)
        if not torch.isfinite(values).all():
            raise ValueError(f"task {k}: an estimate equals its target exactly (infinite PSNR)")
        means.append(float(values.mean()))
        ses.append(float(values.std() / values.numel() ** 0.5))
        mses.append(float(((est - x.to(torch.float64)) ** 2).mean()))
        if image_shape is not None:
            ssims.append(float(ssim(est, x, image_shape).mean()))
    return RestorationScore(
        psnr=float(sum(float(w[k]) * means[k] for k in range(len(means)))),
        per_task=tuple(means),
        per_task_se=tuple(ses),
        mse=tuple(mses),
        ssim=tuple(ssims) if image_shape is not None else None,
    )


def restoration_score(
    models,
    test_sets,
    weights,
    *,
    samples: int = 8,
    steps: int = 50,
    generator: torch.Generator,
    image_shape: tuple[int, int] | None = None,
) -> RestorationScore:
    """Score restorers on task k's test pairs (c_k, x_k) with the PSNR (and, given
    ``image_shape`` (H, W), the SSIM) of the clipped posterior-mean estimate (pixels in
    [0, 1]).

    Args:
        models: one model for every task (a generalist), or a sequence of K models (task k's
            specialist scores task k).
        test_sets: K pairs (c_k (N_k, cond_dim), x_k (N_k, dim)).
        weights: lambda, length K.
        samples, steps: posterior draws averaged, and sampler steps per draw.
        generator: the evaluation noise; pass identically seeded generators to compare models
            on common random numbers.
    """
    from mol_diffusion.scores.mlp import MLPScore

    check_generator(generator)
    w = check_simplex(weights, len(test_sets))
    per_model = isinstance(models, list | tuple)
    if per_model and len(models) != len(test_sets):
        raise ValueError(f"models must hold {len(test_sets)} models, got {len(models)}")
    if isinstance(models, MLPScore):  # the stacked path of restoration_scores, a stack of one
        return restoration_scores(
            [models],
            test_sets,
            weights,
            samples=samples,
            steps=steps,
            generator=generator,
            image_shape=image_shape,
        )[0]
    estimates = [
        posterior_mean(
            models[k] if per_model else models, c, samples=samples, steps=steps, generator=generator
        )
        for k, (c, _) in enumerate(test_sets)
    ]
    return score_estimates(estimates, test_sets, w, image_shape)


def restoration_scores(
    generalists,
    test_sets,
    weights,
    *,
    samples: int = 8,
    steps: int = 50,
    generator: torch.Generator,
    image_shape: tuple[int, int] | None = None,
) -> list[RestorationScore]:
    """``restoration_score`` of M neural generalists (``MLPScore``, one config) on the same
    evaluation noise, with their posterior means drawn in one stacked pass
    (``posterior_means``): entry m equals ``restoration_score(generalists[m], ...)`` with an
    identically seeded generator, bit for bit (that call is this one with a stack of one)."""
    check_generator(generator)
    w = check_simplex(weights, len(test_sets))
    means = posterior_means(
        generalists,
        [c for c, _ in test_sets],
        samples=samples,
        steps=steps,
        generator=generator,
    )
    return [score_estimates(estimates, test_sets, w, image_shape) for estimates in means]
