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
# # Sample complexity of the two-stage procedure
#
# **Claim under test.** With K tasks, n scarce pairs and m abundant unlabeled conditions per
# task, fitting lightweight *specialists* on the pairs and distilling their pseudo-samples into
# a large *generalist* needs a number of pairs that depends on the specialists' complexity
# p_spec only; the generalist's complexity p_gen is paid with unlabeled conditions
# (heuristically, risk ≲ approx(p_gen) + Σ_k λ_k p_spec / n + p_gen / m). A generalist fitted
# on the pairs alone (*labeled-only*) pays p_gen / n instead.
#
# **Setting.** K = 3 linear-Gaussian conditional tasks whose Pareto (λ-mixture) score is known
# in closed form, so every risk below is the *exact* scalarized excess score risk (Monte Carlo
# over one fixed set of evaluation draws). Specialists: `LinearGaussianScore` (p_spec = 9).
# Generalists: `RandomFeatureScore` with 16–256 random gates (p_gen = 160–2560). The *oracle*
# fits the same generalist on m true pairs per task: the best the class can do with m labels.
# All configuration lives in `experiments/sample_complexity.toml`; claims (estimand, region,
# effect, alpha) live in `mol_diffusion/claims/` (one rules module per experiment kind).

# %% tags=["parameters"]
quick = False  # a small, fast run: 2 seeds and coarse grids
workers = 2  # processes for the sweeps
force = False  # rerun even when cached results match the config
reuse_stale = False  # use a stored table computed by other code (warns) instead of rerunning
results_dir = None  # where results tables live (None: experiments/results)
save_figures = True  # write figures/ as PDF and PNG (never for quick runs)

# %%
import matplotlib.pyplot as plt
import pandas as pd

from mol_diffusion import claims, paths, plotting, stats
from mol_diffusion.sweeps import run_experiment

pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 200)
figure_dir = paths.FIGURES if (save_figures and not quick) else None
run_options = dict(
    quick=quick, workers=workers, force=force, reuse_stale=reuse_stale, results_dir=results_dir
)

config, table = run_experiment("sample_complexity", **run_options)
print(f"{len(table)} fits, {table.replicate.nunique()} seeds, config {config.fingerprint()}")
table.groupby(["method", "capacity", "n"], dropna=False).risk.agg(["mean", "std", "count"]).unstack(
    "capacity"
)

# %% [markdown]
# ## Risk against the number of pairs
#
# One panel per generalist size. Two-stage curves sit on the oracle line once n is moderate;
# labeled-only needs far more pairs, and more so for larger generalists.

# %%
fig = plotting.plot_risk_vs_n(table)
plotting.savefig(fig, "sample_complexity_risk_vs_n", figure_dir)
plt.show()

# %% [markdown]
# ## Capacity at the smallest n
#
# The heart of the claim: at scarce labels, does the risk grow with the generalist's parameter
# count? Slopes are log-log fits on seed means.

# %%
fig = plotting.plot_capacity(table, title="Random-feature generalists at the smallest n")
plotting.savefig(fig, "sample_complexity_capacity", figure_dir)
plt.show()

# %% [markdown]
# ## The paired-sample rate
#
# Two-stage minus oracle (same m, same generalist seed and conditions) isolates what the scarce
# pairs cost. For efficient p_spec-parameter specialists it should decay like p_spec / n.

# %%
excess = claims.excess_over_oracle(table[table.m == table.m.max()], int(table.capacity.max()))
fig = plotting.plot_excess_vs_n(excess, title="Two-stage minus oracle, largest generalist")
plotting.savefig(fig, "sample_complexity_paired_rate", figure_dir)
plt.show()
stats.fit_power_law(excess.n.astype(float), excess.excess, excess.replicate).summary_frame()

# %% [markdown]
# ## How many pairs does each method need?
#
# For each generalist size, fit the excess over the oracle, (method − oracle) ≈ a n^b, and
# solve for the n at which it falls to a fixed target of 0.01 (the same for every size, so the
# columns show how the paired-sample cost moves with p_gen). The `log n × method` interaction,
# fitted in one model, tests whether the two methods' rates in n differ.

# %%
TARGET = 0.01
rows = []
largest_m = table[table.m == table.m.max()]
for cap in sorted(int(c) for c in largest_m.capacity.unique()):
    row = {"capacity": cap, "p_gen": int(largest_m[largest_m.capacity == cap].num_params.iloc[0])}
    for method in ("two_stage", "labeled_only"):
        gap = claims.excess_over_oracle(largest_m, cap, method)
        try:
            fit = stats.fit_power_law(gap.n.astype(float), gap.excess, gap.replicate, n_boot=0)
            row[f"n needed, {method}"] = round(stats.x_to_reach(fit, TARGET), 1)
        except ValueError as err:  # too few positive means, or no decay
            row[f"n needed, {method}"] = f"n/a ({err})"
    rows.append(row)
pd.DataFrame(rows)

# %%
cap = int(table.capacity.max())
both = pd.concat(
    [claims.excess_over_oracle(largest_m, cap, m) for m in ("two_stage", "labeled_only")]
)
stats.interaction_test(
    both.n.astype(float), both.excess, both.method, ("two_stage", "labeled_only"), both.replicate
).summary_frame()

# %% [markdown]
# ## Neural generalists
#
# The capacity question again with `MLPScore` generalists of growing width
# (`experiments/neural_generalist.toml`).

# %%
_, neural = run_experiment("neural_generalist", **run_options)
fig = plotting.plot_capacity(neural, title="MLP generalists at the smallest n")
plotting.savefig(fig, "neural_generalist_capacity", figure_dir)
plt.show()
neural.groupby(["method", "capacity", "n"]).risk.agg(["mean", "std", "count"]).unstack("capacity")

# %% [markdown]
# ## Claims
#
# Verdicts computed from the results tables (every registered claim; claims of experiments
# that have not been run show "not run"): supported, contradicted or inconclusive, with the
# design power from `experiments/results/calibration.csv` and the status (pilot, confirmatory,
# post hoc). A contradicted claim is a finding, reported with its numbers.

# %%
verdicts = claims.evaluate_all(quick=quick, results_dir=results_dir)
if not quick and results_dir is None:
    claims.write_outputs(verdicts)
claims.verdict_frame(verdicts)

# %%
print("\n\n".join(claims.describe(v) for v in verdicts))
