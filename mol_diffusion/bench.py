r"""Benchmarks (``python -m mol_diffusion bench``): measured on this machine, in one run.

1. Batched training: B small ``MLPScore`` fits (as for all seeds of a sweep cell) one at a
   time, then as one stacked model (``scores.mlp.fit_batched``), on the same data and seeds;
   prints both medians over ``repeats`` and their ratio, and the largest parameter gap (0: the
   paths agree bit for bit). The same for B ``DiffusionPolicy`` fits
   (``policy.diffusion_policy.fit_batched``, as for the K specialists of a policy cell).
2. Random-feature fit throughput: ``RandomFeatureScore.fit`` on N pairs with P features does
   2 N P^2 (Gram matrix) + 2 N P dim (right-hand side) + P^3 / 3 (Cholesky) + 2 P^2 dim
   (solve) floating-point operations; prints the achieved GFLOP/s next to a float64 matrix
   product of size ``matmul_size`` (2 s^3 operations) timed on the same machine, and their
   ratio. Feature construction is not counted, so the ratio is a lower bound on the solver's
   efficiency.

Timings are medians over ``repeats`` runs; machines here are shared, so read ratios, not
absolute numbers. Nothing here is a test: targets are reported, not asserted.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from mol_diffusion.kinds.base import one_thread
from mol_diffusion.policy.diffusion_policy import DiffusionPolicy
from mol_diffusion.policy.diffusion_policy import fit_batched as fit_policies
from mol_diffusion.scores import MLPScore, RandomFeatureScore
from mol_diffusion.scores.mlp import fit_batched
from mol_diffusion.tasks import make_gaussian_family

__all__ = ["BenchConfig", "run_bench"]


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of the benchmark (the defaults match the issue's targets; ``quick`` shrinks them).

    Args:
        models: B, models fitted at once. width, depth, steps, batch_size: each MLPScore.
        pairs: training pairs per model.
        rf_pairs: N, pairs of the random-feature fit. rf_gates: G (P = 5 G features at
            dim = cond_dim = 2).
        matmul_size: side of the reference float64 matrix product.
        repeats: runs per timing (the median is reported).
    """

    models: int = 8
    width: int = 64
    depth: int = 2
    steps: int = 300
    batch_size: int = 128
    pairs: int = 512
    rf_pairs: int = 100_000
    rf_gates: int = 205
    matmul_size: int = 4096
    repeats: int = 3

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(models=4, steps=30, pairs=128, rf_pairs=5000, rf_gates=40, matmul_size=512)


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _compare(loop, batched, repeats: int) -> tuple[float, float, float]:
    """Median times of the two fitting paths with one torch thread (as every sweep task runs)
    and the largest gap between their parameters."""
    with one_thread():
        t_loop, one = _median_time(loop, repeats)
        t_batch, many = _median_time(batched, repeats)
    gap = max(
        float((p - q).abs().max())
        for a, b in zip(one, many, strict=True)
        for p, q in zip(a.net.parameters(), b.net.parameters(), strict=True)
    )
    return t_loop, t_batch, gap


def run_bench(config: BenchConfig | None = None, *, echo=print) -> dict[str, float]:
    """Run both benchmarks, print a report through ``echo`` and return the measured numbers."""
    cfg = config or BenchConfig()
    fam = make_gaussian_family(cfg.models, 2, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    data = [(*fam.sample(k, cfg.pairs, g), None) for k in range(cfg.models)]
    options = dict(steps=cfg.steps, batch_size=cfg.batch_size)

    def loop():
        return [
            MLPScore(cfg.width, cfg.depth, **options).fit(
                c, x, w, generator=torch.Generator().manual_seed(b)
            )
            for b, (c, x, w) in enumerate(data)
        ]

    def batched():
        return fit_batched(
            [MLPScore(cfg.width, cfg.depth, **options) for _ in range(cfg.models)],
            data,
            [torch.Generator().manual_seed(b) for b in range(cfg.models)],
        )

    t_loop, t_batch, gap = _compare(loop, batched, cfg.repeats)
    echo(
        f"batched training (1 thread): {cfg.models} MLPScore({cfg.width}, {cfg.depth}) x "
        f"{cfg.steps} steps; "
        f"loop {t_loop:.2f} s, batched {t_batch:.2f} s (medians of {cfg.repeats}); "
        f"speed-up {t_loop / t_batch:.2f}x (target >= 3x); largest parameter gap {gap:.1e}"
    )

    policy_options = dict(width=cfg.width, depth=cfg.depth, steps=cfg.steps)
    policy_options.update(batch_size=cfg.batch_size, obs_horizon=2, pred_horizon=8)
    windows = []
    for _ in range(cfg.models):
        obs = torch.randn(cfg.pairs, 2, 6, generator=g)
        windows.append(
            (obs, torch.tanh(obs[:, -1:, :2] + torch.randn(cfg.pairs, 8, 2, generator=g)), None)
        )
    t_ploop, t_pbatch, pgap = _compare(
        lambda: [
            DiffusionPolicy(**policy_options).fit(o, a, generator=torch.Generator().manual_seed(b))
            for b, (o, a, _) in enumerate(windows)
        ],
        lambda: fit_policies(
            [DiffusionPolicy(**policy_options) for _ in windows],
            windows,
            [torch.Generator().manual_seed(b) for b in range(cfg.models)],
        ),
        cfg.repeats,
    )
    echo(
        f"batched training (1 thread): {cfg.models} DiffusionPolicy({cfg.width}, {cfg.depth}) x "
        f"{cfg.steps} steps; loop {t_ploop:.2f} s, batched {t_pbatch:.2f} s; "
        f"speed-up {t_ploop / t_pbatch:.2f}x (target >= 3x); largest parameter gap {pgap:.1e}"
    )

    c, x = fam.sample(0, cfg.rf_pairs, g)
    model = RandomFeatureScore(cfg.rf_gates, draws_per_pair=1)
    t_rf, _ = _median_time(
        lambda: model.fit(c, x, generator=torch.Generator().manual_seed(0)), cfg.repeats
    )
    p, n, dim = cfg.rf_gates * 5, cfg.rf_pairs, 2
    flops = 2 * n * p * p + 2 * n * p * dim + p**3 / 3 + 2 * p * p * dim
    a = torch.randn(cfg.matmul_size, cfg.matmul_size, generator=g, dtype=torch.float64)
    t_mm, _ = _median_time(lambda: a @ a, cfg.repeats)
    rf_rate, mm_rate = flops / t_rf / 1e9, 2 * cfg.matmul_size**3 / t_mm / 1e9
    echo(
        f"random-feature fit: N = {n} pairs, P = {p} features, {torch.get_num_threads()} "
        f"threads; {t_rf:.2f} s, {rf_rate:.1f} GFLOP/s; float64 matmul {cfg.matmul_size}^2: "
        f"{mm_rate:.1f} GFLOP/s; ratio {rf_rate / mm_rate:.0%} (target >= 40%)"
    )
    return {
        "loop_seconds": t_loop,
        "batched_seconds": t_batch,
        "batched_speedup": t_loop / t_batch,
        "batched_max_gap": gap,
        "policy_loop_seconds": t_ploop,
        "policy_batched_seconds": t_pbatch,
        "policy_batched_speedup": t_ploop / t_pbatch,
        "policy_batched_max_gap": pgap,
        "rf_seconds": t_rf,
        "rf_gflops": rf_rate,
        "matmul_gflops": mm_rate,
        "rf_matmul_ratio": rf_rate / mm_rate,
    }
