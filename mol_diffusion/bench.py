r"""Benchmarks (``python -m mol_diffusion bench``): every comparison measured side by side in
one run, on one torch thread and one BLAS thread (as every sweep worker runs).

1. **Training B small score networks** (``MLPScore(width, depth)``, ``steps`` Adam steps of
   ``batch_size`` pairs each, as for all seeds of a sweep cell):

   - *stacked*: the project's stacked trainer (``scores.mlp.fit_batched``: one ``baddbmm`` per
     layer for all B models);
   - (a) *loop*: the project's own ``MLPScore.fit``, one model at a time (bit for bit the stacked
     fit; the largest parameter gap is printed);
   - (b) *plain torch*: what a user would write first: one ``torch.nn`` MLP of the same
     architecture per model, noised with diffusers' ``DDPMScheduler.add_noise`` (1000 discrete
     steps, built outside the timing), an epsilon-prediction MSE loss and an Adam loop, same
     steps and batch (it skips the EMA, the cosine schedule and the input scaling, which
     favours it); (b) and (c) need diffusers, a dev dependency, and are skipped without it;
   - (c) *vmap*: what a careful user would write: ``torch.func.stack_module_state`` of the B
     plain MLPs, one ``vmap(functional_call)`` forward and backward per step, Adam on the
     stacked parameters.

   The same for B ``DiffusionPolicy`` fits (stacked against the loop).
2. **Evaluation**: posterior means of the B fitted models (``samples`` reverse-SDE draws of
   ``eval_steps`` steps on ``eval_rows`` conditions, as the restoration score does), in one
   stacked pass of all models and draws (``metrics.posterior_means``) against one model and
   one draw at a time (``metrics.posterior_mean``), with one model at a time (its draws
   stacked) between them to show what stacking the models alone adds; and ``episodes``
   rollouts of a diffusion policy stepped together (``policy.rollout`` with B episodes)
   against one episode at a time.
3. **Random-feature fit** against the matrix-product rate. ``RandomFeatureScore.fit`` on N
   pairs with P features does, by the general formula, 2 N P^2 (Gram matrix) + 2 N P dim
   (right-hand side) + P^3 / 3 (Cholesky) + 2 P^2 dim (solve) operations; its Gram matrix is a
   symmetric rank-k update, which executes N P^2 of the 2 N P^2. Both rates are printed (the
   *effective* rate counts the general formula; the *executed* rate counts what runs), against
   the faster of torch's and numpy's float64 ``matmul_size``-square products (2 s^3
   operations). Feature construction is not counted, so both ratios are lower bounds. The
   target is on the effective rate, the count of the general formula by which the fit's rate
   has always been quoted: it says how the fit's time compares with a general product at the
   matmul rate. The executed rate is lower because a single-threaded rank-k update runs at
   about half a general product's rate per operation; a blocked general product on the upper
   triangle (3/4 of the operations) measured slower in wall time than the rank-k update.

Timings are medians over ``repeats`` rounds that run every compared path once in turn (after one
warm-up call each), so a slow spell of the machine slows a whole round; machines here are
shared, so read ratios, not absolute numbers. Each speed-up (a ratio of medians; not the
random-feature rate) is printed with the range of its per-round ratios, and the JSON keeps
them (``<ratio>_rounds``): on a shared machine a ratio can move by a quarter between runs an
hour apart, and a target is met only where the whole range clears it. Nothing here is a test:
targets are printed beside the measurements, not asserted. ``run_bench`` returns every number,
and the command line writes them, with the machine's cores, threads and library versions, to a
JSON file (``--json``, default ``build/bench.json``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mol_diffusion._validation import check_positive_int
from mol_diffusion.kinds.base import one_thread
from mol_diffusion.metrics import posterior_mean, posterior_means
from mol_diffusion.nets import time_embedding
from mol_diffusion.policy import POINT_NAV_IDS
from mol_diffusion.policy.diffusion_policy import DiffusionPolicy
from mol_diffusion.policy.diffusion_policy import fit_batched as fit_policies
from mol_diffusion.policy.rollout import PolicyAgent, rollout
from mol_diffusion.provenance import library_versions
from mol_diffusion.scores import MLPScore, RandomFeatureScore
from mol_diffusion.scores.mlp import fit_batched
from mol_diffusion.tasks import make_gaussian_family

__all__ = ["TARGETS", "BenchConfig", "run_bench", "write_bench"]

# What the performance work aims at (printed beside each measurement, never asserted).
TARGETS = {
    "stacked_vs_loop": 5.0,
    "stacked_vs_plain_torch": 5.0,
    "stacked_vs_vmap": 1.0,
    "policy_stacked_vs_loop": 5.0,
    "posterior_stacked_vs_loop": 5.0,
    "rollout_batched_vs_loop": 5.0,
    "rf_effective_vs_matmul": 0.6,
}


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of the benchmark (the defaults are the issue's: B = 16; ``quick`` shrinks them).

    Args:
        models: B, models fitted (and evaluated) at once.
        width, depth, steps, batch_size: each MLPScore and DiffusionPolicy.
        pairs: training pairs per model.
        samples, eval_steps, eval_rows: posterior draws, sampler steps and conditions of the
            evaluation benchmark.
        episodes, horizon: rollouts of the rollout benchmark and their length H.
        rf_pairs: N, pairs of the random-feature fit. rf_gates: G (P = 5 G features at
            dim = cond_dim = 2).
        matmul_size: side of the reference float64 matrix product.
        repeats: runs per timing (the median is reported).
    """

    models: int = 16
    width: int = 64
    depth: int = 2
    steps: int = 300
    batch_size: int = 128
    pairs: int = 512
    samples: int = 4
    eval_steps: int = 50
    eval_rows: int = 256
    episodes: int = 16
    horizon: int = 100
    rf_pairs: int = 100_000
    rf_gates: int = 205
    matmul_size: int = 4096
    repeats: int = 3

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            check_positive_int(value, name)

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(
            models=4,
            steps=30,
            pairs=128,
            eval_steps=10,
            eval_rows=32,
            episodes=4,
            horizon=20,
            rf_pairs=5000,
            rf_gates=40,
            matmul_size=512,
            repeats=2,
        )


class Timed(tuple):
    """(median seconds, last output) of one timed path, with ``rounds``: its seconds in each
    round, for the per-round ratios that show how much a shared machine moved them."""

    rounds: tuple[float, ...]

    def __new__(cls, rounds: list[float], output: object) -> Timed:
        timed = super().__new__(cls, (statistics.median(rounds), output))
        timed.rounds = tuple(rounds)
        return timed


def _interleaved_times(runs: dict[str, Callable], repeats: int) -> dict[str, Timed]:
    """Median seconds and last output of each of ``runs``, timed in ``repeats`` rounds that
    run every path once in turn (after one warm-up call each: the first calls of a process pay
    one-off costs), so a slow spell of a shared machine slows every path of a round alike
    instead of one path's whole series."""
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs: dict[str, object] = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: Timed(times[name], outputs[name]) for name in runs}


def _max_gap(one, many) -> float:
    return max(
        float((p - q).abs().max())
        for a, b in zip(one, many, strict=True)
        for p, q in zip(a.net.parameters(), b.net.parameters(), strict=True)
    )


# ---------------------------------------------------------------- baselines (b) and (c)
def _plain_mlps(cfg: BenchConfig, in_dim: int, out_dim: int) -> list[nn.Module]:
    """B plain ``nn.Sequential`` MLPs: ``depth`` hidden SiLU layers of ``width`` (the
    architecture of ``nets.MLP``)."""

    def one() -> nn.Module:
        layers: list[nn.Module] = []
        for i in range(cfg.depth):
            layers += [nn.Linear(in_dim if i == 0 else cfg.width, cfg.width), nn.SiLU()]
        return nn.Sequential(*layers, nn.Linear(cfg.width, out_dim))

    return [one() for _ in range(cfg.models)]


def _plain_torch(cfg: BenchConfig, data, scheduler, seed: int = 0) -> list[nn.Module]:
    """Baseline (b): one plain MLP per model, diffusers' DDPM noising (``scheduler``, a
    ``DDPMScheduler`` built outside the timing), MSE on the noise, Adam."""
    g = torch.Generator().manual_seed(seed)
    dim, cond_dim = data[0][1].shape[1], data[0][0].shape[1]
    nets = _plain_mlps(cfg, dim + cond_dim + 16, dim)
    for net, (c, x, _) in zip(nets, data, strict=True):
        c32, x32 = c.to(torch.float32), x.to(torch.float32)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        for _ in range(cfg.steps):
            idx = torch.randint(x32.shape[0], (cfg.batch_size,), generator=g)
            steps = torch.randint(1000, (cfg.batch_size,), generator=g)
            noise = torch.randn(cfg.batch_size, dim, generator=g)
            noisy = scheduler.add_noise(x32[idx], noise, steps)
            emb = time_embedding(steps / 1000.0, 16)
            loss = nn.functional.mse_loss(net(torch.cat([noisy, c32[idx], emb], dim=1)), noise)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return nets


def _vmap_torch(cfg: BenchConfig, data, scheduler, seed: int = 0) -> dict:
    """Baseline (c): the B plain MLPs as ``torch.func.stack_module_state``, one vmapped
    forward and backward per step, Adam on the stacked parameters."""
    from torch.func import functional_call, stack_module_state

    g = torch.Generator().manual_seed(seed)
    dim, cond_dim = data[0][1].shape[1], data[0][0].shape[1]
    nets = _plain_mlps(cfg, dim + cond_dim + 16, dim)
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")

    def one(p, b, z):
        return functional_call(base, (p, b), (z,))

    forward = torch.vmap(one)
    opt = torch.optim.Adam(params.values(), lr=2e-3)
    c32 = torch.stack([c.to(torch.float32) for c, _, _ in data])
    x32 = torch.stack([x.to(torch.float32) for _, x, _ in data])
    rows = torch.arange(cfg.models)[:, None]
    for _ in range(cfg.steps):
        idx = torch.randint(x32.shape[1], (cfg.models, cfg.batch_size), generator=g)
        steps = torch.randint(1000, (cfg.models * cfg.batch_size,), generator=g)
        noise = torch.randn(cfg.models * cfg.batch_size, dim, generator=g)
        noisy = scheduler.add_noise(x32[rows, idx].reshape(-1, dim), noise, steps)
        emb = time_embedding(steps / 1000.0, 16)
        z = torch.cat([noisy, c32[rows, idx].reshape(-1, cond_dim), emb], dim=1)
        out = forward(params, buffers, z.reshape(cfg.models, cfg.batch_size, -1))
        loss = nn.functional.mse_loss(out, noise.reshape(cfg.models, cfg.batch_size, dim))
        opt.zero_grad()
        (loss * cfg.models).backward()  # the sum of the B models' mean losses
        opt.step()
    return params


# ---------------------------------------------------------------- the benchmark
def _round_ratios(slow: Timed, fast: Timed) -> list[float]:
    """slow / fast in each round (both paths ran in the same round, one after the other)."""
    return [a / b for a, b in zip(slow.rounds, fast.rounds, strict=True)]


def _speedup(key: str, slow: Timed, fast: Timed) -> dict:
    """The JSON entries of one speed-up: the ratio of medians under ``key``, the per-round
    ratios under ``<key>_rounds``."""
    return {key: slow[0] / fast[0], f"{key}_rounds": _round_ratios(slow, fast)}


def _ratio_line(name: str, slow: Timed, fast: Timed, target: float) -> str:
    ratios = _round_ratios(slow, fast)
    spread = f"; rounds {min(ratios):.2f}-{max(ratios):.2f}x" if len(ratios) > 1 else ""
    return f"{name}: {slow[0] / fast[0]:.2f}x (target >= {target:g}x{spread})"


def run_bench(config: BenchConfig | None = None, *, echo=print) -> dict:
    """Run every benchmark, print a report through ``echo`` and return the measured numbers
    (seconds, ratios and their targets)."""
    cfg = config or BenchConfig()
    out: dict = {"config": asdict(cfg), "targets": dict(TARGETS)}
    with one_thread():
        out.update(_training(cfg, echo))
        out.update(_evaluation(cfg, echo))
        out.update(_random_features(cfg, echo))
    return out


def _training(cfg: BenchConfig, echo) -> dict:
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

    def stacked():
        return fit_batched(
            [MLPScore(cfg.width, cfg.depth, **options) for _ in range(cfg.models)],
            data,
            [torch.Generator().manual_seed(b) for b in range(cfg.models)],
        )

    try:
        from diffusers import DDPMScheduler
    except ImportError:  # a dev dependency: pip install -e '.[dev]'
        scheduler = None
        echo("diffusers is not installed (pip install -e '.[dev]'): baselines (b) and (c) skipped")
    else:
        scheduler = DDPMScheduler(num_train_timesteps=1000)
    runs = {"stacked": stacked, "loop": loop}
    if scheduler is not None:
        runs["plain_torch"] = lambda: _plain_torch(cfg, data, scheduler)
        runs["vmap"] = lambda: _vmap_torch(cfg, data, scheduler)
    timed = _interleaved_times(runs, cfg.repeats)
    t_stacked, models = timed["stacked"]
    t_loop, single = timed["loop"]
    gap = _max_gap(single, models)
    line = (
        f"training {cfg.models} MLPScore({cfg.width}, {cfg.depth}) x {cfg.steps} steps of "
        f"{cfg.batch_size} (medians of {cfg.repeats} interleaved rounds after one warm-up run "
        f"each): stacked {t_stacked:.2f} s; (a) loop {t_loop:.2f} s"
    )
    if scheduler is not None:
        line += (
            f"; (b) plain torch + diffusers DDPMScheduler + Adam {timed['plain_torch'][0]:.2f} s"
            f"; (c) torch.func.stack_module_state + vmap {timed['vmap'][0]:.2f} s"
        )
    echo(f"{line}; stacked vs loop largest parameter gap {gap:.1e}")
    result = {
        "stacked_seconds": t_stacked,
        "loop_seconds": t_loop,
        "stacked_max_gap": gap,
    }
    for name, label in (
        ("loop", "(a) loop"),
        ("plain_torch", "(b) plain torch"),
        ("vmap", "(c) vmap"),
    ):
        if name in timed:
            key = f"stacked_vs_{name}"
            result[f"{name}_seconds"] = timed[name][0]
            result.update(_speedup(key, timed[name], timed["stacked"]))
            echo(_ratio_line(f"  stacked vs {label}", timed[name], timed["stacked"], TARGETS[key]))

    policy_options = dict(width=cfg.width, depth=cfg.depth, steps=cfg.steps)
    policy_options.update(batch_size=cfg.batch_size, obs_horizon=2, pred_horizon=8)
    windows = []
    for _ in range(cfg.models):
        obs = torch.randn(cfg.pairs, 2, 6, generator=g)
        windows.append(
            (obs, torch.tanh(obs[:, -1:, :2] + torch.randn(cfg.pairs, 8, 2, generator=g)), None)
        )
    policy_runs = {
        "stacked": lambda: fit_policies(
            [DiffusionPolicy(**policy_options) for _ in windows],
            windows,
            [torch.Generator().manual_seed(b) for b in range(cfg.models)],
        ),
        "loop": lambda: [
            DiffusionPolicy(**policy_options).fit(o, a, generator=torch.Generator().manual_seed(b))
            for b, (o, a, _) in enumerate(windows)
        ],
    }
    policy_timed = _interleaved_times(policy_runs, cfg.repeats)
    (t_pstacked, many), (t_ploop, one) = policy_timed["stacked"], policy_timed["loop"]
    pgap = _max_gap(one, many)
    target = TARGETS["policy_stacked_vs_loop"]
    echo(
        f"training {cfg.models} DiffusionPolicy({cfg.width}, {cfg.depth}) x {cfg.steps} steps: "
        f"stacked {t_pstacked:.2f} s, loop {t_ploop:.2f} s; "
        f"{_ratio_line('speed-up', policy_timed['loop'], policy_timed['stacked'], target)}; "
        f"largest parameter gap {pgap:.1e}"
    )
    return {
        **result,
        "policy_stacked_seconds": t_pstacked,
        "policy_loop_seconds": t_ploop,
        **_speedup("policy_stacked_vs_loop", policy_timed["loop"], policy_timed["stacked"]),
        "policy_max_gap": pgap,
    }


def _evaluation(cfg: BenchConfig, echo) -> dict:
    fam = make_gaussian_family(cfg.models, 2, 2, seed=1)
    g = torch.Generator().manual_seed(1)
    data = [(*fam.sample(k, cfg.pairs, g), None) for k in range(cfg.models)]
    models = fit_batched(
        [MLPScore(cfg.width, cfg.depth, steps=20, batch_size=cfg.batch_size) for _ in data],
        data,
        [torch.Generator().manual_seed(b) for b in range(cfg.models)],
    )
    conds = [fam.sample_unlabeled(0, cfg.eval_rows, g)[0]]
    options = dict(samples=cfg.samples, steps=cfg.eval_steps)
    posterior_runs = {
        "stacked": lambda: posterior_means(
            models, conds, generator=torch.Generator().manual_seed(2), **options
        ),
        "loop": lambda: [
            posterior_mean(m, conds[0], generator=torch.Generator().manual_seed(2), **options)
            for m in models
        ],
        "draws": lambda: [
            posterior_means([m], conds, generator=torch.Generator().manual_seed(2), **options)
            for m in models
        ],
    }
    posterior_timed = _interleaved_times(posterior_runs, cfg.repeats)
    (t_stacked, means), (t_loop, alone) = posterior_timed["stacked"], posterior_timed["loop"]
    t_draws = posterior_timed["draws"][0]
    target = TARGETS["posterior_stacked_vs_loop"]
    gap = max(float((a - m[0]).abs().max()) for a, m in zip(alone, means, strict=True))
    echo(
        f"posterior means of {cfg.models} MLPScore({cfg.width}, {cfg.depth}), {cfg.samples} "
        f"draws x {cfg.eval_steps} steps on {cfg.eval_rows} conditions: models and draws "
        f"stacked {t_stacked:.2f} s; one model at a time, its draws stacked {t_draws:.2f} s; "
        f"one model and one draw at a time (posterior_mean) {t_loop:.2f} s; "
        f"{_ratio_line('speed-up', posterior_timed['loop'], posterior_timed['stacked'], target)}, "
        f"of which stacking the models {t_draws / t_stacked:.2f}x; largest gap {gap:.1e} "
        "(float32 rounding)"
    )

    env_id = POINT_NAV_IDS[0]
    import gymnasium as gym

    env = gym.make(env_id)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    obs = torch.randn(cfg.pairs, 1, obs_dim, generator=g)
    actions = torch.tanh(torch.randn(cfg.pairs, 4, action_dim, generator=g))
    policy = DiffusionPolicy(
        width=cfg.width, depth=cfg.depth, steps=20, obs_horizon=1, pred_horizon=4
    ).fit(obs, actions, generator=torch.Generator().manual_seed(3))
    seeds = np.arange(cfg.episodes, dtype=np.int64) + 10_000
    index = np.zeros(cfg.episodes, dtype=np.int64)

    def batched():
        agent = PolicyAgent(policy, generator=torch.Generator().manual_seed(4))
        return rollout(agent, [env_id], index, seeds, cfg.horizon)

    def one_by_one():
        return [
            rollout(
                PolicyAgent(policy, generator=torch.Generator().manual_seed(4)),
                [env_id],
                index[:1],
                seeds[e : e + 1],
                cfg.horizon,
            )
            for e in range(cfg.episodes)
        ]

    rollout_timed = _interleaved_times({"batched": batched, "loop": one_by_one}, cfg.repeats)
    t_rbatch, t_rloop = rollout_timed["batched"][0], rollout_timed["loop"][0]
    target = TARGETS["rollout_batched_vs_loop"]
    echo(
        f"rollouts of one DiffusionPolicy({cfg.width}, {cfg.depth}) on {env_id}, "
        f"{cfg.episodes} episodes x H = {cfg.horizon}: stepped together {t_rbatch:.2f} s, one "
        f"episode at a time {t_rloop:.2f} s; "
        f"{_ratio_line('speed-up', rollout_timed['loop'], rollout_timed['batched'], target)}"
    )
    return {
        "posterior_stacked_seconds": t_stacked,
        "posterior_loop_seconds": t_loop,
        **_speedup(
            "posterior_stacked_vs_loop", posterior_timed["loop"], posterior_timed["stacked"]
        ),
        "posterior_draws_stacked_seconds": t_draws,
        "posterior_models_stacked_vs_draws_stacked": t_draws / t_stacked,
        "posterior_max_gap": gap,
        "rollout_batched_seconds": t_rbatch,
        "rollout_loop_seconds": t_rloop,
        **_speedup("rollout_batched_vs_loop", rollout_timed["loop"], rollout_timed["batched"]),
    }


def _random_features(cfg: BenchConfig, echo) -> dict:
    fam = make_gaussian_family(2, 2, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    c, x = fam.sample(0, cfg.rf_pairs, g)
    model = RandomFeatureScore(cfg.rf_gates, draws_per_pair=1)
    p, n, dim = cfg.rf_gates * 5, cfg.rf_pairs, 2
    general = 2 * n * p * p + 2 * n * p * dim + p**3 / 3 + 2 * p * p * dim
    executed = general - n * p * p  # the Gram matrix as a symmetric rank-k update
    a = torch.randn(cfg.matmul_size, cfg.matmul_size, generator=g, dtype=torch.float64)
    a_np = a.numpy()
    rf_timed = _interleaved_times(
        {
            "fit": lambda: model.fit(c, x, generator=torch.Generator().manual_seed(0)),
            "torch": lambda: a @ a,
            "numpy": lambda: a_np @ a_np,
        },
        cfg.repeats,
    )
    t_rf, t_mm, t_np = (rf_timed[name][0] for name in ("fit", "torch", "numpy"))
    mm_ops = 2 * cfg.matmul_size**3
    torch_rate, numpy_rate = mm_ops / t_mm / 1e9, mm_ops / t_np / 1e9
    reference = max(torch_rate, numpy_rate)
    effective, done = general / t_rf / 1e9, executed / t_rf / 1e9
    echo(
        f"random-feature fit: N = {n} pairs, P = {p} features; {t_rf:.2f} s; effective "
        f"{effective:.1f} GFLOP/s, executed {done:.1f} GFLOP/s; float64 matmul "
        f"{cfg.matmul_size}^2: torch {torch_rate:.1f}, numpy {numpy_rate:.1f} GFLOP/s; "
        f"effective / faster matmul {effective / reference:.0%} "
        f"(target >= {TARGETS['rf_effective_vs_matmul']:.0%}), executed / faster matmul "
        f"{done / reference:.0%}"
    )
    return {
        "rf_seconds": t_rf,
        "rf_effective_gflops": effective,
        "rf_executed_gflops": done,
        "matmul_torch_gflops": torch_rate,
        "matmul_numpy_gflops": numpy_rate,
        "rf_executed_vs_matmul": done / reference,
        "rf_effective_vs_matmul": effective / reference,
    }


def machine() -> dict:
    """Cores, threads and library versions of this run."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads_default": torch.get_num_threads(),
        "threads_used": 1,
        "python": platform.python_version(),
        "libraries": {**library_versions(), **_diffusers_version()},
    }


def _diffusers_version() -> dict:
    try:
        import diffusers
    except ImportError:
        return {}
    return {"diffusers": diffusers.__version__}


def write_bench(results: dict, path: str | Path) -> Path:
    """Write ``results`` and ``machine()`` to the JSON file ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = dict(results)
    record["machine"] = machine()
    record["finite"] = all(math.isfinite(v) for v in record.values() if isinstance(v, int | float))
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path
