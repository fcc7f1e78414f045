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
# # What unlabeled conditions buy, and where the theory's assumptions matter
#
# **Unlabeled scaling.** At fixed n, two-stage risk should fall as m grows, towards a floor set
# by the specialists' error (larger for smaller n): risk ≈ a m^b + c(n), with b < 0 and the
# floor c(n) (heuristically b = -1, the p_gen / m term). The oracle, fitted
# on m *true* pairs, shows what the generalist class itself achieves with m labels.
#
# **Misspecification.** The theory assumes the specialist class contains each task. With
# conditional means that are non-linear in c and *linear* specialists, the specialists'
# approximation error does not vanish with n, so two-stage should stop approaching the oracle:
# a floor in n.
#
# Configurations: `experiments/unlabeled_scaling.toml`, `experiments/misspecified.toml`.

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

config, table = run_experiment("unlabeled_scaling", **run_options)
print(
    f"{len(table)} fits, {table.replicate.nunique()} seeds; n = {config.n}, m = {config.m}, "
    f"p_gen = {sorted(table.num_params.unique())}"
)
table.groupby(["method", "n", "m"], dropna=False).risk.mean().unstack("m")

# %% [markdown]
# ## Risk against the number of unlabeled conditions
#
# Fits of risk = a m^b + c per n (dotted lines: the fitted floors c).

# %%
two_stage = table[table.method == "two_stage"]
floors = {
    int(n): stats.fit_power_law_with_floor(g.m, g.risk, g.replicate)
    for n, g in two_stage.groupby("n")
}
fig = plotting.plot_risk_vs_m(table, floors)
plotting.savefig(fig, "unlabeled_scaling_risk_vs_m", figure_dir)
plt.show()
pd.concat({n: f.summary_frame() for n, f in floors.items()}, names=["n"]).droplevel(1)

# %% [markdown]
# ## Misspecified tasks: linear specialists for non-linear means

# %%
mis_config, mis = run_experiment("misspecified", **run_options)
print(
    f"non-linearity {mis_config.family.nonlinearity} of the conditional means, "
    f"{mis_config.specialist.kind} specialists; n = {mis_config.n}, {mis.replicate.nunique()} seeds"
)
excess = claims.excess_over_oracle(mis, int(mis.capacity.max()))
floor = stats.fit_power_law_with_floor(excess.n.astype(float), excess.excess, excess.replicate)
fig = plotting.plot_excess_vs_n(
    excess, reference_slope=-1.0, floor=floor, title="Misspecified tasks: two-stage minus oracle"
)
plotting.savefig(fig, "misspecified_excess_vs_n", figure_dir)
plt.show()
floor.summary_frame()

# %% [markdown]
# ## Claims

# %%
verdicts = claims.evaluate_all(quick=quick, results_dir=results_dir)
if not quick and results_dir is None:  # keep claims.json / claims.tex complete after any run
    claims.write_outputs(verdicts)
mine = [v for v in verdicts if v.experiment in ("unlabeled_scaling", "misspecified")]
print("\n\n".join(claims.describe(v) for v in mine))
claims.verdict_frame(mine)
