r"""Scenarios for today's claim rules, built on the committed tables as pilots.

Each builder returns the ``size`` and ``power`` scenarios of one claim: a ``PilotModel`` of the
claim's pilot table whose cell means are moved so that the claim's estimand sits on the boundary
of its region (size) or at the effect declared here (power), with the pilot's seed-to-seed noise.
For "every k" claims the least favourable null puts the component with the smallest pilot
estimate on the boundary and the others at the effect.

Where the mechanism puts the estimand: slopes are the least-squares slope of the moved cell means
(on the modelled scale) in log x; differences are differences of cell means. The rules read
seed means of the natural-scale values, so with log-scale models the built-in value and the
rule's estimand differ by the noise's second-order term (Jensen); the calibration measures the
rule as it is, on this mechanism.

Effects (the smallest effect that would matter, and why; the rewrite of the rules declares its
own in the claims registry):

- capacity cost of labeled-only: slope 1 in p_gen, the p_gen / n of least squares;
- capacity-free two-stage: slope 0, no growth in p_gen;
- scarce-label advantage (Gaussian): labeled-only risk 25% above two-stage, log ratio log 1.25;
- restoration advantage: 0.5 dB of PSNR for every task, about the gain of doubling n for ridge
  regression at these sizes;
- restoration advantage shrinks: -0.25 dB per e-fold of n;
- policy advantage: a gap 1.0 smaller in every environment (a fifth of the expert's mean return);
- policy gap falls with n: -0.5 per e-fold of n;
- floors (unlabeled decay: floor at n_min minus floor at n_max; misspecification: floor of the
  excess minus the well-specified control's): 0.01, a tenth of the oracle's risk (about 0.10 in
  both families). Floors are moved on the natural scale (a constant added to a curve's risks),
  by bisection until the fitted floor of the mean curve sits at the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from mol_diffusion import paths, stats
from mol_diffusion.calibration.harness import Scenario, calibrate, calibration_frame
from mol_diffusion.calibration.models import PilotModel
from mol_diffusion.config import load_experiment
from mol_diffusion.sweeps import read_table

__all__ = ["SCENARIO_BUILDERS", "calibration_table", "today_scenarios"]

GRID_KEYS = ["method", "n", "m", "capacity", "weights_index"]
GAUSSIAN_ADVANTAGE = math.log(1.25)  # labeled-only risk 25% above two-stage
POLICY_ADVANTAGE = 1.0  # gap reduction per environment, in return units
FLOOR_EFFECT = 0.01  # a floor difference of a tenth of the oracle's risk (about 0.10)
POLICY_KEYS = ["method", "n", "env", "horizon"]


def _pilot(experiment: str, results_dir=None) -> pd.DataFrame:
    directory = paths.RESULTS if results_dir is None else results_dir
    kind = load_experiment(experiment).kind
    return read_table(directory / f"{experiment}.csv", kind.integer_columns)


def _slope(model: PilotModel, mean: np.ndarray, mask, value: str, axis: str) -> float:
    lx = np.log(model.template[axis].to_numpy(float)[mask])
    return float(np.polyfit(lx, mean[mask, model.column(value)], 1)[0])


def _pair(claim, experiment, seeds, build, size_target, power_target, note) -> list[Scenario]:
    """Size and power scenarios from ``build(target) -> rng -> tables``."""
    return [
        Scenario(claim, experiment, name, target, seeds, build(target), note)
        for name, target in (("size", size_target), ("power", power_target))
    ]


def _tables(model, experiment, seeds, mean) -> Callable:
    return lambda rng: {experiment: model.simulate(rng, seeds, mean)}


def capacity_scenarios(claim, experiment, method, boundary, effect, results_dir=None):
    """Slope of log risk in p_gen at the smallest n (the capacity claims)."""
    table = _pilot(experiment, results_dir)
    cols = ["risk", *(c for c in table.columns if c.startswith("risk_task"))]
    model = PilotModel.fit(table, cols, log=True, keys=GRID_KEYS)
    rows = table[(table.method == method) & (table.weights_index == 0)]
    mask = model.cells(method=method, n=int(rows.n.min()), m=int(table.m.max()), weights_index=0)
    seeds = table.replicate.nunique()

    def build(target):
        mean = model.mean
        for value in cols:  # every risk column moves alike, so per-task risks stay consistent
            mean = model.tilted(
                mean,
                mask,
                value,
                "num_params",
                target - _slope(model, mean, mask, value, "num_params"),
            )
        return _tables(model, experiment, seeds, mean)

    note = f"pilot {experiment} ({seeds} seeds); slope of {method} log risk in p_gen at n_min"
    return _pair(claim, experiment, seeds, build, boundary, effect, note)


def gaussian_advantage_scenarios(
    claim="scarce_label_advantage",
    experiment="sample_complexity",
    effect=GAUSSIAN_ADVANTAGE,
    results_dir=None,
):
    """Mean log(labeled-only / two-stage) risk at the smallest n, every capacity."""
    table = _pilot(experiment, results_dir)
    cols = ["risk", *(c for c in table.columns if c.startswith("risk_task"))]
    model = PilotModel.fit(table, cols, log=True, keys=GRID_KEYS)
    n, m = int(table.n.min()), int(table.m.max())
    caps = sorted(int(c) for c in table.capacity.unique())
    gaps = {}
    for cap in caps:
        ts = model.cells(method="two_stage", n=n, m=m, capacity=cap, weights_index=0)
        lo = model.cells(method="labeled_only", n=n, m=m, capacity=cap, weights_index=0)
        gaps[cap] = (ts, lo, float(model.mean[lo, 0].mean() - model.mean[ts, 0].mean()))
    weakest = min(caps, key=lambda c: gaps[c][2])
    seeds = table.replicate.nunique()

    def build(boundary_too: bool):
        def make(target):
            mean = model.mean
            for cap, (ts, lo, _) in gaps.items():
                want = 0.0 if (boundary_too and cap == weakest) else effect
                for value in cols:
                    k = model.column(value)
                    delta = float(mean[ts, k].mean() + want - mean[lo, k].mean())
                    mean = model.shifted(mean, lo, value, delta)
            return _tables(model, experiment, seeds, mean)

        return make

    note = f"pilot {experiment} ({seeds} seeds); least favourable null: capacity {weakest} at 0"
    return [
        Scenario(claim, experiment, "size", 0.0, seeds, build(True)(0.0), note),
        Scenario(claim, experiment, "power", effect, seeds, build(False)(effect), note),
    ]


def restoration_scenarios(results_dir=None):
    """PSNR gain of two-stage over labeled-only: per task at n_min, and its slope in log n."""
    experiment = "image_restoration"
    table = _pilot(experiment, results_dir)
    tasks = sorted(c for c in table.columns if c.startswith("psnr_task"))
    model = PilotModel.fit(table, ["psnr", *tasks], log=False, keys=GRID_KEYS)
    if not np.allclose(table.psnr, table[tasks].mean(axis=1)):
        raise ValueError("the restoration scenarios assume uniform lambda (psnr = mean of tasks)")
    m, n_min, seeds = int(table.m.max()), int(table.n.min()), table.replicate.nunique()
    ts_all, lo_all = model.cells(method="two_stage", m=m), model.cells(method="labeled_only", m=m)

    def gains(mean, n):
        ts, lo = (
            model.cells(method="two_stage", n=n, m=m),
            model.cells(method="labeled_only", n=n, m=m),
        )
        return (
            ts,
            lo,
            {
                t: float(mean[ts, model.column(t)].mean() - mean[lo, model.column(t)].mean())
                for t in tasks
            },
        )

    _, _, pilot_gain = gains(model.mean, n_min)
    weakest = min(tasks, key=pilot_gain.get)

    def advantage(at_boundary: bool):
        mean = model.mean
        _, lo, gain = gains(mean, n_min)
        deltas = {t: gain[t] - (0.0 if (at_boundary and t == weakest) else 0.5) for t in tasks}
        for t, delta in deltas.items():
            mean = model.shifted(mean, lo, t, delta)
        mean = model.shifted(mean, lo, "psnr", float(np.mean(list(deltas.values()))))
        return _tables(model, experiment, seeds, mean)

    def shrink(target):
        mean = model.mean
        ns = model.template.n.to_numpy(float)
        slope = np.polyfit(np.log(ns[ts_all]), mean[ts_all, 0] - mean[lo_all, 0], 1)[0]
        for value in ("psnr", *tasks):  # moving labeled-only moves the gain's slope exactly
            mean = model.tilted(mean, lo_all, value, "n", -(target - slope))
        return _tables(model, experiment, seeds, mean)

    note = f"pilot {experiment} ({seeds} seeds)"
    return [
        Scenario(
            "restoration_scarce_label_advantage",
            experiment,
            "size",
            0.0,
            seeds,
            advantage(True),
            note + f"; task {weakest} at 0",
        ),
        Scenario(
            "restoration_scarce_label_advantage",
            experiment,
            "power",
            0.5,
            seeds,
            advantage(False),
            note,
        ),
        *_pair("restoration_advantage_shrinks", experiment, seeds, shrink, 0.0, -0.25, note),
    ]


def policy_scenarios(results_dir=None):
    """Gap reduction of two-stage (on-policy) over labeled-only at n_min and H max, every
    environment; and the slope of the on-policy gap in log n at H max."""
    experiment, headline = "diffusion_policy", "two_stage_on_policy"
    table = _pilot(experiment, results_dir)
    model = PilotModel.fit(table, ["gap"], log=False, keys=POLICY_KEYS)
    n_min, h, seeds = int(table.n.min()), int(table.horizon.max()), table.replicate.nunique()
    envs = sorted(int(e) for e in table.env.unique())

    def cells(method, env, n=n_min):
        return model.cells(method=method, n=n, env=env, horizon=h)

    def reduction(mean, env):
        return float(
            mean[cells("labeled_only", env), 0].mean() - mean[cells(headline, env), 0].mean()
        )

    weakest = min(envs, key=lambda e: reduction(model.mean, e))

    def advantage(at_boundary: bool):
        mean = model.mean
        for env in envs:
            want = 0.0 if (at_boundary and env == weakest) else POLICY_ADVANTAGE
            mean = model.shifted(
                mean, cells("labeled_only", env), "gap", want - reduction(mean, env)
            )
        return _tables(model, experiment, seeds, mean)

    on_policy = model.cells(method=headline, horizon=h)
    lam = table.drop_duplicates("env").set_index("env").weight.reindex(envs).to_numpy(float)

    def falls(target):
        mean = model.mean
        ns = sorted(int(v) for v in table.n.unique())
        weighted = [
            sum(w * mean[cells(headline, e, n), 0].mean() for w, e in zip(lam, envs, strict=True))
            for n in ns
        ]
        slope = float(np.polyfit(np.log(ns), weighted, 1)[0])
        mean = model.tilted(mean, on_policy, "gap", "n", (target - slope) / lam.sum())
        return _tables(model, experiment, seeds, mean)

    note = f"pilot {experiment} ({seeds} seeds)"
    return [
        Scenario(
            "policy_scarce_label_advantage",
            experiment,
            "size",
            0.0,
            seeds,
            advantage(True),
            note + f"; env {weakest} at 0",
        ),
        Scenario(
            "policy_scarce_label_advantage",
            experiment,
            "power",
            POLICY_ADVANTAGE,
            seeds,
            advantage(False),
            note,
        ),
        *_pair("policy_gap_falls_with_n", experiment, seeds, falls, 0.0, -0.5, note),
    ]


def _raise_floor(model, mean, mask, target, floor_of, what: str, low: float) -> np.ndarray:
    """``mean`` with ``d`` added (on the natural scale) to the risks of the masked cells, ``d``
    in ``[low, 1]`` found by bisection so that ``floor_of(mean)`` equals ``target``: a floor
    moved, the decay toward it kept."""
    k = model.column("risk")

    def moved(d):
        out = mean.copy()
        out[mask, k] = np.log(np.exp(mean[mask, k]) + d)
        return out

    high = 1.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        if floor_of(moved(mid)) < target:
            low = mid
        else:
            high = mid
    out = moved(0.5 * (low + high))
    if abs(floor_of(out) - target) > 1e-6:
        raise ValueError(f"could not place the floor of {what} at {target}")
    return out


def unlabeled_floor_scenarios(results_dir=None):
    """floor(n_min) - floor(n_max) of two-stage risk = a m^b + c (largest capacity, w0)."""
    experiment, claim = "unlabeled_scaling", "unlabeled_decay"
    table = _pilot(experiment, results_dir)
    cols = ["risk", *(c for c in table.columns if c.startswith("risk_task"))]
    model = PilotModel.fit(table, cols, log=True, keys=GRID_KEYS)
    cap, seeds = int(table.capacity.max()), table.replicate.nunique()
    n_values = sorted(int(v) for v in table[table.method == "two_stage"].n.unique())

    def curve(n):
        return model.cells(method="two_stage", n=n, capacity=cap, weights_index=0)

    def floor(mean, n):
        mask = curve(n)
        x = model.template.m.to_numpy(float)[mask]
        return stats.fit_power_law_with_floor(x, np.exp(mean[mask, 0])).c

    def build(target):
        base = floor(model.mean, n_values[-1])
        mean = _raise_floor(
            model,
            model.mean,
            curve(n_values[0]),
            base + target,
            lambda m: floor(m, n_values[0]),
            f"n = {n_values[0]}",
            low=-0.99 * float(np.exp(model.mean[curve(n_values[0]), 0]).min()),
        )
        return _tables(model, experiment, seeds, mean)

    note = f"pilot {experiment} ({seeds} seeds); the n = {n_values[0]} curve's floor moved"
    return _pair(claim, experiment, seeds, build, 0.0, FLOOR_EFFECT, note)


def misspecified_floor_scenarios(results_dir=None):
    """Floor of (two-stage - oracle) = a n^b + c, misspecified minus the well-specified control."""
    experiment, control, claim = "misspecified", "sample_complexity", "misspecified_floor"
    tables = {name: _pilot(name, results_dir) for name in (experiment, control)}
    models = {}
    for name, table in tables.items():
        cols = ["risk", *(c for c in table.columns if c.startswith("risk_task"))]
        models[name] = PilotModel.fit(table, cols, log=True, keys=GRID_KEYS)
    table = tables[experiment]
    cap, m, seeds = int(table.capacity.max()), int(table.m.max()), table.replicate.nunique()

    def excess(model, mean):
        ts = model.cells(method="two_stage", capacity=cap, m=m, weights_index=0)
        oracle = model.cells(method="oracle", capacity=cap, m=m, weights_index=0)
        x = model.template.n.to_numpy(float)[ts]
        return x, np.exp(mean[ts, 0]) - float(np.exp(mean[oracle, 0]).mean())

    def excess_floor(model, mean):
        return stats.fit_power_law_with_floor(*excess(model, mean)).c

    mis, ctrl = models[experiment], models[control]
    base = excess_floor(ctrl, ctrl.mean)
    ts_mask = mis.cells(method="two_stage", capacity=cap, m=m, weights_index=0)

    def build(target):
        mean = _raise_floor(
            mis,
            mis.mean,
            ts_mask,
            base + target,
            lambda mm: excess_floor(mis, mm),
            experiment,
            low=-0.99 * float(excess(mis, mis.mean)[1].min()),
        )
        ctrl_seeds = tables[control].replicate.nunique()
        return lambda rng: {
            experiment: mis.simulate(rng, seeds, mean),
            control: ctrl.simulate(rng, ctrl_seeds),
        }

    note = (
        f"pilots {experiment} ({seeds} seeds) and {control}; the misspecified floor moved to the "
        f"control's ({base:.4f}) plus 0 (size) or the effect (power); target: that floor"
    )
    return [
        Scenario(claim, experiment, name, base + t, seeds, build(t), note)
        for name, t in (("size", 0.0), ("power", FLOOR_EFFECT))
    ]


SCENARIO_BUILDERS = {
    "capacity_free_two_stage": lambda d: capacity_scenarios(
        "capacity_free_two_stage", "sample_complexity", "two_stage", 0.15, 0.0, d
    ),
    "capacity_cost_labeled_only": lambda d: capacity_scenarios(
        "capacity_cost_labeled_only", "sample_complexity", "labeled_only", 0.5, 1.0, d
    ),
    "scarce_label_advantage": lambda d: gaussian_advantage_scenarios(results_dir=d),
    "neural_capacity_free_two_stage": lambda d: capacity_scenarios(
        "neural_capacity_free_two_stage", "neural_generalist", "two_stage", 0.15, 0.0, d
    ),
    "neural_capacity_cost_labeled_only": lambda d: capacity_scenarios(
        "neural_capacity_cost_labeled_only", "neural_generalist", "labeled_only", 0.5, 1.0, d
    ),
    "restoration": lambda d: restoration_scenarios(d),
    "policy": lambda d: policy_scenarios(d),
    "unlabeled_decay": lambda d: unlabeled_floor_scenarios(d),
    "misspecified_floor": lambda d: misspecified_floor_scenarios(d),
}


def today_scenarios(results_dir=None) -> list[Scenario]:
    """Every scenario built here, from the pilot tables under ``results_dir``."""
    return [s for build in SCENARIO_BUILDERS.values() for s in build(results_dir)]


def calibration_table(
    *, simulations: int = 1000, seed: int = 20261201, results_dir=None, progress: bool = False
) -> pd.DataFrame:
    """Every scenario calibrated, one row each, plus a row per registered claim that has no
    scenario yet (rate NaN, passes False): nothing is left out silently."""
    from mol_diffusion import claims

    scenarios = today_scenarios(results_dir)
    rows = calibration_frame(
        [calibrate(s, simulations=simulations, seed=seed, progress=progress) for s in scenarios]
    )
    covered = set(rows.claim)
    missing = [
        dict(
            claim=cid,
            scenario="none",
            target=float("nan"),
            simulations=0,
            rate=float("nan"),
            mcse=float("nan"),
            seeds=0,
            passes=False,
            not_evaluable=0,
            seconds=0.0,
            note="no generative model yet: design power unknown",
        )
        for cid in claims.REGISTRY
        if cid not in covered
    ]
    return pd.concat([rows, pd.DataFrame(missing)], ignore_index=True)
