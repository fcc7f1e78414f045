"""How much of the excess over the oracle in the least-squares runs is a difference of class.

Every random-feature generalist standardizes its inputs with statistics of its own training data
(``RandomFeatureScore.init_features``: ``InputScaler.fit``); its gates come from the cell's
generalist seed, shared by the methods. So labeled-only, two-stage and the oracle of one
replicate and capacity fit slightly different feature classes, and their "excess over the
oracle" mixes an estimation cost with that class difference. This script splits it, per
replicate and capacity of a committed run (the cells are refitted exactly as the sweep fits
them):

    excess = (R(method) - R(method's map on the oracle's pairs))     estimation, within its class
           + (R(method's map on the oracle's pairs) - R(oracle's map on the oracle's pairs))
                                                                     class difference

where "X's map on the oracle's pairs" keeps X's scaler and gates and solves W on the oracle's m
true pairs per task with one fresh set of DSM draws, the same for both maps, so the class term
holds no estimation noise of its own. The risks are the run's exact excess risks on the
replicate's evaluation draws.

Usage: ``python experiments/class_mismatch.py [--experiment capacity_regime] [--replicates 8]``
writes ``experiments/results/class_mismatch_<experiment>.csv`` and prints the mean terms per
method and p_gen. A diagnostic of the design, not a claim.
"""

from __future__ import annotations

import argparse
import copy

import pandas as pd
import torch
from tqdm import tqdm

from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.base import one_thread
from mol_diffusion.kinds.gaussian import risk_draws
from mol_diffusion.kinds.grid import Cell, _problem, fit_cells, replicate_data
from mol_diffusion.metrics import excess_risk
from mol_diffusion.objectives import draw_dsm
from mol_diffusion.paths import RESULTS

REFIT_SEED = 20261204  # the fresh DSM draws of both refits


def refit_on(model, problem, draws):
    """A copy of ``model`` (its scaler and gates) with W solved on ``problem``'s pairs."""
    out = copy.deepcopy(model)
    out.solve(draws, problem.c.to(torch.float64), problem.weights)
    return out


def decompose(name: str, replicates: int) -> pd.DataFrame:
    config = load_experiment(name)
    family, weights = config.family.build(), config.weights[0]
    n, m = min(config.n), max(config.m)
    rows = []
    with one_thread():
        for rep in tqdm(range(replicates), desc=name):
            pools = replicate_data(config, family, rep)
            evaluation = risk_draws(config, family, rep)
            for cap in range(len(config.capacities)):
                cells = [
                    Cell("oracle", None, m, cap, 0, rep),
                    Cell("labeled_only", n, m, cap, 0, rep),
                    Cell("two_stage", n, m, cap, 0, rep),
                ]
                oracle, *others = [r.generalist for r in fit_cells(config, cells, family)]
                problem = _problem(config, cells[0], pools, family)
                g = torch.Generator().manual_seed(REFIT_SEED + rep)
                draws = draw_dsm(
                    problem.x.to(torch.float64),
                    oracle.schedule,
                    g,
                    oracle.config.draws_per_pair,
                )

                def risk(model, evaluation=evaluation):
                    return excess_risk(model, family, weights, draws=evaluation)

                r_oracle, r_oracle_map = (
                    risk(oracle).scalarized,
                    risk(refit_on(oracle, problem, draws)).scalarized,
                )
                for cell, model in zip(cells[1:], others, strict=True):
                    r_method = risk(model).scalarized
                    r_map = risk(refit_on(model, problem, draws)).scalarized
                    rows.append(
                        dict(
                            experiment=name,
                            method=cell.method,
                            n=n,
                            m=m,
                            num_params=model.num_params,
                            replicate=rep,
                            excess=r_method - r_oracle,
                            estimation=r_method - r_map,
                            class_difference=r_map - r_oracle_map,
                            oracle_refit_shift=r_oracle_map - r_oracle,
                        )
                    )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="capacity_regime")
    parser.add_argument("--replicates", type=int, default=8, help="the first R replicates")
    args = parser.parse_args()
    table = decompose(args.experiment, args.replicates)
    path = RESULTS / f"class_mismatch_{args.experiment}.csv"
    table.to_csv(path, index=False)
    terms = ["excess", "estimation", "class_difference", "oracle_refit_shift"]
    summary = table.groupby(["method", "num_params"])[terms].agg(["mean", "std"])
    with pd.option_context("display.width", 200, "display.precision", 5):
        print(summary)
        print(table[table.excess <= 0][["method", "num_params", "replicate", *terms]])
    print(f"-> {path}")


if __name__ == "__main__":
    main()
