# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (mol_diffusion)
#     language: python
#     name: mol_diffusion
# ---

# %% [markdown]
# # Pareto fronts over the scalarization weights
#
# With K = 2 tasks, each weight vector λ = (λ_0, 1 − λ_0) defines a scalarized objective whose
# minimiser is the score of the λ-mixture. Sweeping λ traces the trade-off between the two
# tasks' own excess risks L_0 and L_1. The *exact* front comes from the closed-form Pareto
# scores. The claim under test: at scarce labels, two-stage stays close to the oracle's front
# and labeled-only does not; hypervolume ratios to the oracle measure the distance
# (`experiments/pareto_front.toml`). The run's sizes and the verdict are computed below.

# %% tags=["parameters"]
quick = False  # a small, fast run: 2 seeds and a coarse lambda grid
workers = 2  # processes for the sweeps
force = False  # rerun even when cached results match the config
reuse_stale = False  # use a stored table computed by other code (warns) instead of rerunning
results_dir = None  # where results tables live (None: experiments/results)
save_figures = True  # write figures/ as PDF and PNG (never for quick runs)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mol_diffusion import claims, metrics, paths, plotting
from mol_diffusion.kinds.gaussian import risk_draws
from mol_diffusion.sweeps import run_experiment

pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 200)
figure_dir = paths.FIGURES if (save_figures and not quick) else None
run_options = dict(
    quick=quick, workers=workers, force=force, reuse_stale=reuse_stale, results_dir=results_dir
)

config, table = run_experiment("pareto_front", **run_options)
print(
    f"K = {config.family.num_tasks} tasks, n = {config.n} pairs per task, m = {config.m}; "
    f"{len(table)} fits, {table.replicate.nunique()} seeds, {len(config.weights)} weight vectors; "
    f"evaluation draws: {config.evaluation}"
)
table.groupby(["method", "weights"])[["risk_task0", "risk_task1"]].mean()

# %% [markdown]
# ## The exact front
#
# Per-task risks of the closed-form Pareto score for each λ. With `evaluation = "shared"`
# every seed uses the same evaluation draws and so does this front; with `"per_replicate"`
# each seed has its own draws, and the front is the mean over every seed's draws.

# %%
family = config.family.build()
seeds = range(config.replicates) if config.evaluation == "per_replicate" else range(1)
exact = np.mean(
    [
        [
            metrics.excess_risk(
                lambda x_t, c, t, w=w: family.pareto_score(x_t, c, t, w), family, w, draws=draws
            ).per_task
            for w in config.weights
        ]
        for draws in (risk_draws(config, family, r) for r in seeds)
    ],
    axis=0,
)
pd.DataFrame(exact, index=[",".join(map(str, w)) for w in config.weights], columns=["L_0", "L_1"])

# %%
fig = plotting.plot_pareto_fronts(table, exact)
plotting.savefig(fig, "pareto_fronts", figure_dir)
plt.show()

# %% [markdown]
# ## Claim

# %%
verdicts = claims.evaluate_all(quick=quick, results_dir=results_dir)
if not quick and results_dir is None:  # keep claims.json / claims.tex complete after any run
    claims.write_outputs(verdicts)
mine = [v for v in verdicts if v.experiment == "pareto_front"]
print("\n\n".join(claims.describe(v) for v in mine))
claims.verdict_frame(mine)
