# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
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
# **Setting.** K linear-Gaussian conditional tasks whose Pareto (λ-mixture) score is known in
# closed form, so every risk below is the *exact* scalarized excess score risk (Monte Carlo over
# fixed evaluation draws). Specialists: `LinearGaussianScore`. Generalists: `RandomFeatureScore`
# with a grid of random-gate counts. The *oracle* fits the same generalist on m true pairs per
# task: the best the class can do with m labels. The sizes of this run are printed from its
# config below (`experiments/sample_complexity.toml`); claims (estimand, region, effect, alpha)
# live in `mol_diffusion/claims/` (one rules module per experiment kind).

# %% tags=["parameters"]
quick = False  # a small, fast run: 2 seeds and coarse grids
workers = 2  # processes for the sweeps
force = False  # rerun even when cached results match the config
reuse_stale = False  # use a stored table computed by other code (warns) instead of rerunning
results_dir = None  # where results tables live (None: experiments/results)
save_figures = True  # write figures/ as PDF and PNG (never for quick runs)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from mol_diffusion import claims, paths, plotting, stats
from mol_diffusion.sweeps import run_experiment

pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 200)
figure_dir = paths.FIGURES if (save_figures and not quick) else None
run_options = dict(
    quick=quick, workers=workers, force=force, reuse_stale=reuse_stale, results_dir=results_dir
)

config, table = run_experiment("sample_complexity", **run_options)
fam, gates = config.family, config.generalist.capacities
p_spec = fam.dim * fam.cond_dim + fam.dim + fam.dim * (fam.dim + 1) // 2  # LinearGaussianScore
display(
    Markdown(
        f"**This run.** K = {fam.num_tasks} tasks, dim = {fam.dim}, cond_dim = {fam.cond_dim}; "
        f"specialists with p_spec = {p_spec}; generalists with {min(gates)}–{max(gates)} random "
        f"gates (p_gen = {table.num_params.min()}–{table.num_params.max()}); n = "
        f"{', '.join(map(str, config.n))} pairs per task, m = {', '.join(map(str, config.m))}; "
        f"{config.replicates} seeds; {len(table)} fits."
    )
)
table.groupby(["method", "capacity", "n"], dropna=False).risk.agg(["mean", "std", "count"]).unstack(
    "capacity"
)

# %% [markdown]
# ## Risk against the number of pairs
#
# One panel per generalist size, the oracle (m true pairs) as the reference. The table after
# the figure gives each method's risk relative to the oracle's, per n, for the largest
# generalist: how close two-stage and labeled-only get, in this run's numbers.

# %%
fig = plotting.plot_risk_vs_n(table)
plotting.savefig(fig, "sample_complexity_risk_vs_n", figure_dir)
plt.show()

# %%
largest = table[(table.capacity == table.capacity.max()) & (table.m == table.m.max())]
oracle_risk = largest[largest.method == "oracle"].risk.mean()
(largest[largest.method != "oracle"].groupby(["method", "n"]).risk.mean() / oracle_risk).unstack(
    "method"
).round(3).rename_axis(columns="risk / oracle risk")

# %% [markdown]
# ## Capacity at the smallest n
#
# The heart of the claim: at scarce labels, does the risk grow with the generalist's parameter
# count? The curves are total risks; the legend's slopes are the mean over seeds of each seed's
# log-log slope in p_gen of the method's excess over the oracle (the estimand of the capacity
# rules; the oracle's own entry is the slope of its risk). This first design is
# over-parameterized at the smallest n (next sections), so what it shows is described, not
# tested: the claims it used to carry were retired in favour of the least-squares designs below
# and the scarce-label design
# (`experiments/scarce_label.toml`, shown in the unlabeled_scaling notebook).

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
# solve for the n at which it falls to a fixed target (`TARGET`, the same for every size, so
# the columns show how the paired-sample cost moves with p_gen). The `log n × method` interaction,
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
pd.DataFrame(rows).rename_axis(columns=f"target excess {TARGET}")

# %%
cap = int(table.capacity.max())
both = pd.concat(
    [claims.excess_over_oracle(largest_m, cap, m) for m in ("two_stage", "labeled_only")]
)
stats.interaction_test(
    both.n.astype(float), both.excess, both.method, ("two_stage", "labeled_only"), both.replicate
).summary_frame()

# %% [markdown]
# ## Two regimes: the capacity claims where the theory speaks
#
# Everything above runs n = 8..256 pairs per task against p_gen = 80..1280 parameters: at the
# smallest n every generalist has more parameters than there are pairs, so labeled-only sits in
# the over-parameterized, ridge-regularized regime, where its risk barely moves with p_gen and
# no least-squares statement applies. That is a described finding, not a claim.
#
# The capacity claims are tested in the regime the statements describe
# (`experiments/capacity_regime.toml`, dim = cond_dim = 2, and `capacity_regime_d4.toml`, a
# second family with dim = cond_dim = 4): n fixed where each of the dim output regressions has
# at least twice as many rows (4 K n DSM draws) as unknowns (p_gen / dim), m = 16384 so the
# oracle's own fitting error is small, ridge 1e-8 (least squares), and exact pseudo-labels so
# that the sampler adds nothing to the specialist term. Each two-stage row carries
# `spec_risk`, Proposition 2's specialist error ||ŝ*_λ − s*_λ||², the exact excess risk of the
# specialists' own pseudo-mixture. Proposition 3 says labeled-only's excess over the oracle
# grows like p_gen / n (slope 1). The registered specialist-bound claim reads Proposition 2 as
# bounding two-stage's excess over the oracle by twice the specialist error, whatever p_gen;
# that edge is loose (see the note after the verdict summary below).
#
# Counted by pairs per output coordinate: `sample_complexity` at n = 8 has K n = 24 pairs for
# 40-640 unknowns (over-parameterized, and ridge 1e-4); the least-squares runs have 384 pairs
# for 20-320 unknowns (2-d) and 768 for 36-576 (4-d), ridge 1e-8.

# %%
regimes = {}
for name in ("capacity_regime", "capacity_regime_d4"):
    regime_config, regime = run_experiment(name, **run_options)
    rfam, n_ls = regime_config.family, min(regime_config.n)
    ex = claims.excess_at_smallest_n(regime)  # the rows the capacity claims read
    unknowns = ex.num_params.max() // rfam.dim
    rows = 4 * rfam.num_tasks * n_ls  # draws_per_pair = 4 regression rows per pair
    rp_spec = rfam.dim * rfam.cond_dim + rfam.dim + rfam.dim * (rfam.dim + 1) // 2
    display(
        Markdown(
            f"**{name}.** dim = cond_dim = {rfam.dim}, p_spec = {rp_spec}; n = {n_ls} pairs per "
            f"task ({rows} regression rows, {rows / unknowns:.1f} times the {unknowns} unknowns "
            f"per output coordinate of the largest generalist); p_gen = "
            f"{ex.num_params.min()}–{ex.num_params.max()}; m = {max(regime_config.m)}; "
            f"{regime_config.replicates} seeds."
        )
    )
    regimes[f"{name}: dim = {rfam.dim}, n = {n_ls}"] = ex
fig = plotting.plot_least_squares_regime(regimes)
plotting.savefig(fig, "capacity_regime", figure_dir)
plt.show()
pd.concat(
    {
        title: ex.assign(ratio=ex.excess / ex.spec_risk)
        .groupby(["method", "num_params"])[["excess", "spec_risk", "ratio"]]
        .mean()
        for title, ex in regimes.items()
    }
).round(4)

# %%
over_lo = claims.excess_at_smallest_n(table, ["labeled_only"])
over = [over_lo[over_lo.num_params == p] for p in over_lo.num_params.agg(["min", "max"])]
lines = []
for title, ex in regimes.items():
    lo = ex[ex.method == "labeled_only"].groupby("num_params").excess.mean()
    ts = ex[ex.method == "two_stage"]
    ratio = (ts.excess / ts.spec_risk).groupby(ts.num_params).mean()
    slope = np.polyfit(np.log(lo.index.to_numpy(float)), np.log(lo.to_numpy()), 1)[0]
    lines.append(
        f"- {title}: labeled-only excess over the oracle {lo.iloc[0]:.4f} -> {lo.iloc[-1]:.4f} "
        f"over p_gen {lo.index[0]}-{lo.index[-1]} (log-log slope of the seed means "
        f"{slope:.2f}); two-stage excess over the oracle {ratio.iloc[0]:.2f} -> "
        f"{ratio.iloc[-1]:.2f} specialist errors (largest {ratio.max():.2f}; bound 2)."
    )
display(
    Markdown(
        "**Side by side.** Over-parameterized regime (sample_complexity, n = "
        f"{int(table.n.min())}): labeled-only excess over the oracle "
        f"{over[0].excess.mean():.4f} at p_gen {over[0].num_params.iloc[0]}, "
        f"{over[1].excess.mean():.4f} at p_gen {over[1].num_params.iloc[0]}. "
        "Least-squares regime:\n\n" + "\n".join(lines)
    )
)

# %% [markdown]
# **What this design gets wrong** (found in review after the confirmatory runs; the registered
# rules are unchanged, and the paper states it in full): (i) each method's random-feature
# generalist standardizes its inputs on its own training data, so the excess over the oracle is
# not taken within one class; on the seed that makes the 2-d labeled-only rule not evaluable, the
# negative excess is this class difference, not evaluation noise; (ii) the edge 2 of the
# specialist bound is loose: for one fixed linear class fitted at the population level the excess
# over the oracle is the projection of the specialists' error onto the class, a ratio of at most 1,
# which rises with p_gen as the class grows, as the right panels show; (iii) the rows per unknown
# count four correlated DSM draws per pair (by pairs: 1.2 and 1.3 per unknown at the largest
# generalist). The next section is the registered design that fixes (i)-(iii).

# %% [markdown]
# ## One feature class for every method
#
# The second least-squares design (`experiments/capacity_shared.toml`, dim = cond_dim = 2, and
# `capacity_shared_d4.toml`, dim = cond_dim = 4) fixes the generalist's input scaling to the
# true tasks' equal-weight mixture (`input_scaling = "population"`), so labeled-only, two-stage
# and the oracle of a seed fit one class (the gates were already shared) and the excess over
# the oracle is an estimation cost within it. n is sized by pairs: K n is at least twice the
# largest generalist's unknowns per output coordinate. For one fixed class the theory gives a
# sharper bound than the first design's 2: the risk's norm is the DSM objective's, so at large
# m the oracle fits the projection of the true Pareto score onto the class and two-stage the
# projection of the specialists' pseudo-mixture score, and Pythagoras gives excess over the
# oracle = the projected specialist error ≤ the specialist error. The registered edge is 1.25
# (the margin allows for the finite m and for the pseudo-mixture's norm in two-stage's
# projection). The same argument lets the ratio rise towards 1 as the class grows; the
# capacity-free claim tests whether that rise is negligible.

# %%
shared = {}
for name in ("capacity_shared", "capacity_shared_d4"):
    shared_config, shared_table = run_experiment(name, **run_options)
    sfam, n_sh = shared_config.family, min(shared_config.n)
    ex = claims.excess_at_smallest_n(shared_table)  # the rows the shared_* claims read
    unknowns = ex.num_params.max() // sfam.dim
    pairs = sfam.num_tasks * n_sh
    display(
        Markdown(
            f"**{name}.** dim = cond_dim = {sfam.dim}; n = {n_sh} pairs per task ({pairs} "
            f"pairs, {pairs / unknowns:.1f} times the {unknowns} unknowns per output coordinate "
            f"of the largest generalist); p_gen = {ex.num_params.min()}–{ex.num_params.max()}; "
            f"m = {max(shared_config.m)}; input scaling {shared_config.input_scaling}; "
            f"{shared_config.replicates} seeds; {int((ex.excess <= 0).sum())} of {len(ex)} "
            "excesses over the oracle are not positive."
        )
    )
    shared[f"{name}: dim = {sfam.dim}, n = {n_sh}"] = ex
fig = plotting.plot_least_squares_regime(shared, bound=1.25)
plotting.savefig(fig, "capacity_shared", figure_dir)
plt.show()
pd.concat(
    {
        title: ex.assign(ratio=ex.excess / ex.spec_risk)
        .groupby(["method", "num_params"])[["excess", "spec_risk", "ratio"]]
        .mean()
        for title, ex in shared.items()
    }
).round(4)

# %%
lines = []
for title, ex in shared.items():
    lo = ex[ex.method == "labeled_only"].groupby("num_params").excess.mean()
    ts = ex[ex.method == "two_stage"]
    ratio = (ts.excess / ts.spec_risk).groupby(ts.num_params).mean()
    slope = np.polyfit(np.log(lo.index.to_numpy(float)), np.log(lo.to_numpy()), 1)[0]
    local = np.diff(np.log(lo.to_numpy())) / np.diff(np.log(lo.index.to_numpy(float)))
    lines.append(
        f"- {title}: labeled-only excess over the oracle {lo.iloc[0]:.4f} -> {lo.iloc[-1]:.4f} "
        f"(log-log slope of the seed means {slope:.2f}; between neighbouring p_gen "
        + ", ".join(f"{v:.2f}" for v in local)
        + f"); two-stage excess {ratio.iloc[0]:.2f} -> {ratio.iloc[-1]:.2f} specialist errors "
        f"(largest {ratio.max():.2f}; registered edge 1.25)."
    )
display(Markdown("**One class, both families.**\n\n" + "\n".join(lines)))

# %% [markdown]
# ## The paired rate with the specialist term isolated
#
# The paired-rate section above fits two-stage's excess over the oracle across n with m fixed,
# where the two fits' independent label noise leaves a floor. Here
# (`experiments/paired_rate_crn.toml`, dim = cond_dim = 2, and `paired_rate_crn_d4.toml`,
# dim = cond_dim = 4) every method fits one feature class and the pseudo-labels share the
# noise of the oracle's labels (common random numbers: each pseudo-label is an exact draw from
# the specialist's conditional, the hidden true label transported by the specialist's error),
# so two-stage's excess over the oracle is the specialists' error carried through the fit. The
# n grid starts at 10 p_spec and spans 16x. The registered claim reads the largest generalist:
# the excess should fall like 1/n, and its ratio to the specialist error should not depend
# on n.

# %%
crn, needed = {}, {}
for name in ("paired_rate_crn", "paired_rate_crn_d4"):
    crn_config, crn_table = run_experiment(name, **run_options)
    cfam = crn_config.family
    top = crn_table[crn_table.m == crn_table.m.max()]
    caps = sorted(int(c) for c in top.capacity.unique())
    title = f"{name}: dim = {cfam.dim}"
    crn[title] = claims.excess_over_oracle(top, caps[-1])
    needed[title] = {
        (method, int(ex.num_params.iloc[0])): ex
        for cap in caps
        for method in ("two_stage", "labeled_only")
        for ex in [claims.excess_over_oracle(top, cap, method)]
    }
for title, ex in crn.items():
    fig = plotting.plot_excess_vs_n(ex, title=f"{title}, largest generalist")
    plotting.savefig(fig, f"paired_rate_crn{'_d4' if 'd4' in title else ''}", figure_dir)
    plt.show()
pd.concat(
    {
        title: ex.assign(ratio=ex.excess / ex.spec_risk)
        .groupby("n")[["excess", "spec_risk", "ratio"]]
        .mean()
        for title, ex in crn.items()
    }
).round(5)

# %% [markdown]
# **Pairs needed.** n(ε), the pairs per task at which the seed-mean excess over the oracle
# falls to ε, read off the same runs by log-log interpolation between grid values of n (no
# extrapolation), for both methods and both generalist sizes. For labeled-only, n(ε) moves with
# p_gen; for two-stage it moves much less, and the gap between the methods is the paired cost
# the unlabeled conditions save.

# %%
fig = plotting.plot_pairs_needed(needed)
plotting.savefig(fig, "pairs_needed", figure_dir)
plt.show()


def needed_text(ex, eps):
    """n(eps) as text: the interpolated n, or where the target lies beyond the grid."""
    value = plotting.pairs_needed(ex, np.array([eps])).iloc[0]
    if np.isfinite(value):
        return f"{value:.0f}"
    means = ex.groupby("n").excess.mean().sort_index()
    return f"< {int(means.index[0])}" if means.iloc[0] <= eps else f"> {int(means.index[-1])}"


pd.concat(
    {
        title: pd.DataFrame(
            {
                f"{method}, p_gen {p_gen}": [needed_text(ex, eps) for eps in (1e-2, 3e-3, 1e-3)]
                for (method, p_gen), ex in sorted(curves.items())
            },
            index=pd.Index([1e-2, 3e-3, 1e-3], name="target excess"),
        )
        for title, curves in needed.items()
    }
)

# %% [markdown]
# ## Neural generalists
#
# The capacity panel again with `MLPScore` generalists of growing width, on both families
# (`experiments/neural_generalist.toml`, d = 2 at n = 8; `neural_generalist_d4.toml`, d = 4 at
# n = 32, about one p_spec each), with an MLP oracle (the same network fitted on m true pairs
# per task), so the capacity claims read the excess over the oracle, as for random features.
# Every width has far more parameters than the K n = 24 (d = 2) or 96 (d = 4) pairs: the
# over-parameterized regime. The figures draw total risks; their legends give the mean per-seed
# slope in p_gen of each method's excess over the oracle, the claims' estimate. The table after
# the figures gives the excess over the oracle per width, the claims' estimand before the
# per-seed slope.

# %%
neural_excess = {}
for name in ("neural_generalist", "neural_generalist_d4"):
    neural_config, neural = run_experiment(name, **run_options)
    dim, n = neural_config.family.dim, min(neural_config.n)
    print(
        f"{name}: d = {dim}, widths {neural_config.generalist.capacities}, methods "
        f"{sorted(neural.method.unique())}, {neural.replicate.nunique()} seeds"
    )
    fig = plotting.plot_capacity(neural, title=f"MLP generalists, d = {dim}, n = {n}")
    plotting.savefig(fig, f"{name}_capacity", figure_dir)
    plt.show()
    neural_excess[f"d = {dim}"] = (
        claims.excess_at_smallest_n(neural)
        .groupby(["method", "num_params"])
        .excess.agg(["mean", "std", "count"])
    )
pd.concat(neural_excess, names=["family"]).round(4)

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
