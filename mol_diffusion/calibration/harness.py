r"""The calibration harness: how often does a claim's rule say "supported" when it should not,
and when it should?

A simulation study planned in the ADEMP terms of Morris, White & Crowther (2019), "Using
simulation studies to evaluate statistical methods", Stat. Med. 38:2074-2102:

- Aims: the size and the power of one claim's decision rule, with the design (grid, seeds) the
  experiment uses.
- Data-generating mechanisms: a ``Scenario`` simulates the results tables the claim reads, from
  one numpy Generator; ``calibration.models.PilotModel`` builds such tables from a pilot table
  (its cell means, moved to where the scenario puts the estimand, and its seed-to-seed noise).
  ``size`` scenarios put the estimand on the boundary of the claim's region (for "every k"
  claims, the least favourable null: one component on the boundary, the others at the declared
  effect); ``power`` scenarios put it at the declared effect.
- Estimand: the probability that the rule declares the claim supported.
- Methods: the real ``claims.evaluate`` on each simulated table.
- Performance measures: the rate over S simulations and its Monte Carlo standard error
  sqrt(rate (1 - rate) / S). A rule passes calibration when its size is at most
  ``SIZE_LIMIT + 1.645 MCSE`` and its power at least ``POWER_TARGET``.

Simulation i draws from ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(i,)))``, so a
calibration is the same whatever else ran before it, and a reduced run (fewer simulations) is a
prefix of the full one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

__all__ = [
    "POWER_TARGET",
    "SCENARIOS",
    "SIZE_LIMIT",
    "Calibration",
    "Scenario",
    "calibrate",
    "calibration_frame",
]

SIZE_LIMIT = 0.05  # the one nominal level of every claim
POWER_TARGET = 0.80  # design power required at the declared effect
SCENARIOS = ("size", "power", "contra")


@dataclass(frozen=True)
class Scenario:
    """One data-generating mechanism for one claim.

    Args:
        claim: the registered claim id whose rule is calibrated.
        experiment: the experiment whose table the claim reads.
        name: ``"size"`` (estimand on the boundary of the claim's region), ``"power"``
            (estimand at the declared effect) or ``"contra"`` (estimand outside the region, at
            the effect's mirror image: the rate is then that of "contradicted" verdicts).
        target: the value of the estimand the mechanism builds in.
        seeds: replicates per simulated table (the design being calibrated).
        simulate: ``rng -> {experiment: table}``; the tables the claim reads (its own and any
            control experiment's).
        note: how the mechanism is built, for the calibration table.
    """

    claim: str
    experiment: str
    name: str
    target: float
    seeds: int
    simulate: Callable[[np.random.Generator], dict[str, pd.DataFrame]]
    note: str = ""

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValueError(f"name must be one of {SCENARIOS}, got {self.name!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 2:
            raise ValueError(f"seeds must be an integer >= 2, got {self.seeds!r}")
        if not math.isfinite(self.target):
            raise ValueError(f"target must be finite, got {self.target!r}")


@dataclass(frozen=True)
class Calibration:
    """The outcome of one scenario: the rate at which the rule said "supported".

    Attributes:
        rate: share of simulations declared supported (size or power, by ``scenario``).
        mcse: its Monte Carlo standard error.
        passes: size <= SIZE_LIMIT + 1.645 MCSE, or power (and the rate of contradiction in a
            contra scenario) >= POWER_TARGET.
        not_evaluable: simulations on which the rule could not be evaluated (counted as not
            supported).
        mean_estimate: the mean over simulations of the verdict's estimate (the deciding
            component's): where the mechanism put the estimand, as the rule measures it.
        seconds: wall time of the calibration.
    """

    claim: str
    scenario: str
    target: float
    simulations: int
    rate: float
    mcse: float
    seeds: int
    passes: bool
    not_evaluable: int
    mean_estimate: float
    seconds: float
    note: str = ""


def _supported(verdict) -> bool:
    """What the rule's interval says, before any cap from the calibration itself."""
    return verdict.raw_verdict == "supported"


def calibrate(
    scenario: Scenario,
    *,
    simulations: int = 1000,
    seed: int = 0,
    supported: Callable | None = None,
    evaluate: Callable | None = None,
    progress: bool = False,
) -> Calibration:
    """Run ``scenario`` ``simulations`` times through the claim's real rule.

    Args:
        scenario: the data-generating mechanism and the claim.
        simulations: S, the number of simulated tables (>= 1000 for a reported calibration).
        seed: the calibration's seed (simulation i uses spawn key (i,)).
        supported: ``verdict -> bool``, whether a verdict declares the claim supported
            (default: ``verdict.raw_verdict == "supported"``).
        evaluate: ``(claim, table, results) -> verdict`` (default: ``claims.evaluate``
            without a calibration table).
        progress: show a progress bar on stderr.
    """
    if isinstance(simulations, bool) or not isinstance(simulations, int) or simulations < 1:
        raise ValueError(f"simulations must be a positive integer, got {simulations!r}")
    if evaluate is None:
        from mol_diffusion import claims

        def evaluate(claim, table, results):
            return claims.evaluate(claim, table, results=results, calibration=None)

    supported = _supported if supported is None else supported
    started = time.perf_counter()
    hits = skipped = 0
    estimates = []
    for i in tqdm(
        range(simulations),
        desc=f"{scenario.claim} ({scenario.name})",
        disable=not progress,
        leave=False,
    ):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        tables = scenario.simulate(rng)
        verdict = evaluate(scenario.claim, tables[scenario.experiment], tables)
        if getattr(verdict, "estimate", None) is None:
            skipped += 1
        else:
            estimates.append(verdict.estimate)
        if scenario.name == "contra":
            hits += verdict.raw_verdict == "contradicted"
        else:
            hits += bool(supported(verdict))
    rate = hits / simulations
    mcse = math.sqrt(rate * (1 - rate) / simulations)
    passes = rate <= SIZE_LIMIT + 1.645 * mcse if scenario.name == "size" else rate >= POWER_TARGET
    return Calibration(
        claim=scenario.claim,
        scenario=scenario.name,
        target=scenario.target,
        simulations=simulations,
        rate=rate,
        mcse=mcse,
        seeds=scenario.seeds,
        passes=bool(passes),
        not_evaluable=skipped,
        mean_estimate=float(np.mean(estimates)) if estimates else math.nan,
        seconds=time.perf_counter() - started,
        note=scenario.note,
    )


def calibration_frame(results: list[Calibration]) -> pd.DataFrame:
    """One row per scenario: claim, scenario, target, simulations, rate, mcse, seeds, passes."""
    return pd.DataFrame([asdict(r) for r in results])
