"""One figure style for the project. Functions here read results tables and draw; they never fit.

Every panel shows seed means with a band of +/- 2 standard errors over replicates (clipped to
positive values on log axes) and states the number of seeds. ``savefig`` writes PDF and PNG.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from mol_diffusion import stats
from mol_diffusion.artifacts import write_if_changed

__all__ = [
    "METHOD_STYLE",
    "figure_style",
    "pairs_needed",
    "plot_capacity",
    "plot_excess_vs_n",
    "plot_gap_vs_horizon",
    "plot_gap_vs_n",
    "plot_least_squares_regime",
    "plot_pairs_needed",
    "plot_pareto_fronts",
    "plot_psnr_vs_n",
    "plot_restoration_examples",
    "plot_risk_vs_m",
    "plot_risk_vs_n",
    "plot_score_vs_n",
    "plot_trajectories",
    "savefig",
]

METHOD_STYLE = {
    "two_stage": {"color": "#1f77b4", "marker": "o", "label": "two-stage"},
    "labeled_only": {"color": "#d62728", "marker": "s", "label": "labeled-only"},
    "oracle": {"color": "#555555", "marker": "^", "label": "oracle (m true pairs)"},
    "exact": {"color": "#000000", "marker": "", "label": "exact Pareto front"},
    "specialist": {"color": "#2ca02c", "marker": "D", "label": "specialist (own task)"},
    "degraded": {"color": "#999999", "marker": "", "label": "degraded input"},
    "two_stage_on_policy": {"color": "#1f77b4", "marker": "o", "label": "two-stage, on-policy"},
    "two_stage_offline": {"color": "#9467bd", "marker": "v", "label": "two-stage, offline"},
    "expert": {"color": "#000000", "marker": "", "label": "expert"},
    "nearest_neighbour": {"color": "#8c564b", "marker": "x", "label": "1-NN (own env)", "ls": "--"},
    "bc": {"color": "#e377c2", "marker": "+", "label": "MLP BC (own env)", "ls": "--"},
    "control": {"color": "#ff7f0e", "marker": "s", "label": "well-specified control"},
    "ridge": {"color": "#8c564b", "marker": "x", "label": "ridge (own task)", "ls": "--"},
    "classical": {
        "color": "#bcbd22",
        "marker": "*",
        "label": "scikit-image (own task)",
        "ls": "--",
    },
    "blind_ridge": {"color": "#17becf", "marker": "+", "label": "blind ridge", "ls": "--"},
    "blind_cnn": {"color": "#e377c2", "marker": "v", "label": "blind CNN (MSE)", "ls": "--"},
}
RESTORATION_BASELINES = ("ridge", "classical", "blind_ridge", "blind_cnn")  # dashed
POLICY_METHODS = ("two_stage_on_policy", "two_stage_offline", "labeled_only", "specialist")
POLICY_BASELINES = ("nearest_neighbour", "bc")  # drawn dashed where the table has them

_RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """The project's matplotlib style (a context manager)."""
    with matplotlib.rc_context(_RC):
        yield


def savefig(fig, name: str, directory: Path | None) -> None:
    """Save ``fig`` as ``<directory>/<name>.pdf`` and ``.png`` (no-op when directory is None).

    Both files are deterministic (no creation date) and rewritten only when their bytes
    change, so an unchanged figure keeps its file and modification time. Returns None: a
    notebook cell shows the figure with ``plt.show()``.
    """
    if directory is None:
        return
    for ext in ("pdf", "png"):
        buffer = io.BytesIO()
        fig.savefig(
            buffer,
            format=ext,
            bbox_inches="tight",
            metadata={"CreationDate": None} if ext == "pdf" else None,
        )
        write_if_changed(Path(directory) / f"{name}.{ext}", buffer.getvalue())


def _loglog(ax, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """Log-log axes with labels (and a title when given): every panel here uses them."""
    ax.set(xscale="log", yscale="log", xlabel=xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def _figure_legend(fig, ax, ncol: int | None = None) -> None:
    """One legend for the whole figure, from ``ax``'s lines, below the panels (``ncol``
    columns; default: one row)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=ncol or len(labels),
        frameon=False,
        bbox_to_anchor=(0.5, -0.04),
    )


def _mean_se(groups) -> tuple[pd.Series, pd.Series]:
    """Per group of a ``SeriesGroupBy``: the mean and its standard error over seeds."""
    return groups.mean(), groups.std(ddof=1) / np.sqrt(groups.count())


def _band(
    ax, x, groups: pd.core.groupby.DataFrameGroupBy, column: str, style: dict, label: str | None
):
    mean, se = _mean_se(groups[column])
    se = se.fillna(0)
    lo = np.clip(mean - 2 * se, mean * 0.05, None)
    ax.plot(
        x,
        mean.to_numpy(),
        marker=style["marker"],
        color=style["color"],
        ls=style.get("ls", "-"),
        label=label,
    )
    ax.fill_between(
        x, lo.to_numpy(), (mean + 2 * se).to_numpy(), color=style["color"], alpha=0.15, lw=0
    )
    return mean


def plot_risk_vs_n(table: pd.DataFrame, *, m: int | None = None):
    """Excess risk vs n (log-log), one panel per generalist capacity; oracle as a line."""
    m = int(table.m.max()) if m is None else m
    sel = table[(table.m == m) & (table.weights_index == 0)]
    capacities = sorted(int(c) for c in sel.capacity.dropna().unique())
    n_seeds = sel.replicate.nunique()
    with figure_style():
        fig, axes = plt.subplots(
            1, len(capacities), figsize=(2.4 * len(capacities), 2.6), sharey=True, squeeze=False
        )
        for ax, cap in zip(axes[0], capacities, strict=True):
            rows = sel[sel.capacity == cap]
            p_gen = int(rows.num_params.iloc[0])
            slopes = []
            for method in ("two_stage", "labeled_only"):
                r = rows[rows.method == method]
                if r.empty:
                    continue
                x = np.array(sorted(r.n.unique()), dtype=float)
                fit = stats.fit_power_law(r.n.astype(float), r.risk, r.replicate, n_boot=0)
                slopes.append(f"{METHOD_STYLE[method]['label']}: slope {fit.slope:.2f}")
                style = METHOD_STYLE[method]
                _band(ax, x, r.groupby("n"), "risk", style, style["label"])
            orc = rows[rows.method == "oracle"]
            if not orc.empty:
                style = METHOD_STYLE["oracle"]
                ax.axhline(orc.risk.mean(), color=style["color"], ls="--", label=style["label"])
            ax.text(
                0.97,
                0.97,
                "\n".join(slopes),
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
            )
            _loglog(ax, "paired samples per task n", "", f"p_gen = {p_gen}")
        _figure_legend(fig, axes[0, 0])
        axes[0, 0].set_ylabel("scalarized excess score risk")
        fig.suptitle(f"Risk vs n (m = {m}, {n_seeds} seeds; bands: +/- 2 s.e.)", y=1.02)
    return fig


def _legend_below(ax, **kwargs) -> None:
    """The axes' legend in one column below it, clear of the data (``savefig`` keeps it)."""
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), **kwargs)


def _mean_seed_slope(rows: pd.DataFrame, x: str, y: str) -> float:
    """The mean over seeds of each seed's log-log slope of ``y`` in ``x``
    (``claims.common.seed_slopes``, the capacity claims' estimand); InsufficientDataError when
    a seed has a non-positive value."""
    from mol_diffusion.claims.common import seed_slopes

    return float(np.mean(seed_slopes(rows, x, y, log_x=True, log_y=True)))


def _capacity_label(sel: pd.DataFrame, method: str, n: int, has_oracle: bool) -> str:
    """Legend label of one method in ``plot_capacity``: its style label and the mean per-seed
    log-log slope in p_gen of its excess over the oracle (a method with an oracle to compare
    with) or of its risk (the oracle, or a table without oracle rows), saying which."""
    label = METHOD_STYLE[method]["label"]
    rows = sel[(sel.method == method) & ((sel.n == n) if method != "oracle" else sel.n.isna())]
    if rows.num_params.nunique() < 3:  # a slope needs three sizes (a quick run may have two)
        return label
    if method == "oracle" or not has_oracle:
        try:
            return f"{label}: risk slope {_mean_seed_slope(rows, 'num_params', 'risk'):.2f}"
        except stats.InsufficientDataError:
            return label
    from mol_diffusion.claims import excess_over_oracle

    try:
        ex = pd.concat(
            [excess_over_oracle(sel, int(cap), method) for cap in sorted(rows.capacity.unique())]
        )
    except ValueError:  # a size without oracle rows
        return f"{label}: no oracle at every size"
    try:
        slope = _mean_seed_slope(ex[ex.n == n], "num_params", "excess")
    except stats.InsufficientDataError:  # an excess <= 0 has no log slope
        return f"{label}: excess over oracle not > 0 on every seed"
    return f"{label}: slope of excess over oracle {slope:.2f}"


def plot_capacity(table: pd.DataFrame, *, n: int | None = None, title: str = ""):
    """Risk vs generalist parameters at one n (default: the smallest), per method (log-log).

    The curves are total risks (seed means, +/- 2 s.e.). The legend gives, per method, the mean
    over seeds of the per-seed log-log slope in p_gen at that n, as the capacity claims compute
    it: of the method's excess over the oracle (same replicate, m, capacity and lambda;
    ``claims.excess_over_oracle``) when the table has oracle rows, of its total risk otherwise
    (and for the oracle itself); the label says which. Rows: first lambda, largest m. The
    legend sits below the axes.
    """
    sel = table[(table.weights_index == 0) & (table.m == table.m.max())]
    n = int(sel.n.min()) if n is None else n
    n_seeds = sel.replicate.nunique()
    has_oracle = bool((sel.method == "oracle").any())
    with figure_style():
        fig, ax = plt.subplots(figsize=(3.6, 2.8))
        for method in ("two_stage", "labeled_only", "oracle"):
            r = sel[(sel.method == method) & ((sel.n == n) if method != "oracle" else sel.n.isna())]
            if r.empty:
                continue
            x = np.array(sorted(r.num_params.unique()), dtype=float)
            label = _capacity_label(sel, method, n, has_oracle)
            _band(ax, x, r.groupby("num_params"), "risk", METHOD_STYLE[method], label)
        _loglog(ax, "generalist parameters p_gen", "scalarized excess score risk")
        ax.xaxis.set_minor_formatter(NullFormatter())  # grids of about one decade
        ax.set_title(title or f"Capacity at n = {n} ({n_seeds} seeds)")
        _legend_below(ax, title="mean per-seed log-log slope in p_gen", title_fontsize=7)
    return fig


def plot_least_squares_regime(frames: dict[str, pd.DataFrame], bound: float = 2.0):
    """The capacity claims in the least-squares regime, one row of two panels per family.

    Args:
        frames: title -> excess over the oracle at one n, columns method (two_stage,
            labeled_only), num_params, replicate, excess and spec_risk (two-stage rows), as
            ``claims.excess_over_oracle`` gives them.
        bound: the registered edge of the specialist bound, in specialist errors (2 in the
            first design, 1.25 with one feature class).
    Left: excess over the oracle against p_gen (log-log, mean +- 2 SE over seeds), labeled-only
    beside a slope-1 guide, two-stage (points with a non-positive mean are not drawn on the log
    scale) beside the mean specialist error and ``bound`` times it. Right: the two-stage excess
    in units of the specialist error, per p_gen, with 1 and the bound.
    """
    with figure_style():
        fig, axes = plt.subplots(len(frames), 2, figsize=(7.2, 2.8 * len(frames)), squeeze=False)
        for (title, ex), (left, right) in zip(frames.items(), axes, strict=True):
            n_seeds = ex.replicate.nunique()
            for method in ("labeled_only", "two_stage"):
                mean, se = _mean_se(ex[ex.method == method].groupby("num_params").excess)
                keep = mean.to_numpy() > 0
                x = mean.index.to_numpy(float)
                style = METHOD_STYLE[method]
                left.errorbar(
                    x[keep],
                    mean.to_numpy()[keep],
                    yerr=2 * se.to_numpy()[keep],
                    marker=style["marker"],
                    color=style["color"],
                    label=f"{style['label']} - oracle",
                    capsize=2,
                )
            lo = ex[ex.method == "labeled_only"].groupby("num_params").excess.mean()
            x = lo.index.to_numpy(float)
            left.plot(x, lo.iloc[0] * x / x[0], ":", color="#d62728", label="slope 1")
            ts = ex[ex.method == "two_stage"]
            spec = float(ts.spec_risk.mean())
            left.axhline(spec, color="#2ca02c", lw=1, label="specialist error")
            left.axhline(
                bound * spec, color="#2ca02c", lw=1, ls="--", label=f"{bound:g} x specialist error"
            )
            _loglog(left, "generalist parameters p_gen", "excess over the oracle")
            left.set_title(f"{title} ({n_seeds} seeds)")
            mean, se = _mean_se((ts.excess / ts.spec_risk).groupby(ts.num_params))
            right.errorbar(
                mean.index.to_numpy(float),
                mean.to_numpy(),
                yerr=2 * se.to_numpy(),
                marker="o",
                color=METHOD_STYLE["two_stage"]["color"],
                capsize=2,
            )
            right.axhline(bound, color="#2ca02c", ls="--", lw=1)
            right.axhline(1.0, color="#2ca02c", lw=1)
            right.set(
                xscale="log",
                xlabel="generalist parameters p_gen",
                ylabel="(two-stage - oracle) / specialist error",
                ylim=(min(0.0, float((mean - 2 * se).min())) - 0.1, bound + 0.3),
            )
            for ax in (left, right):  # the grid's p_gen values as plain tick labels
                ax.set_xticks(x, [str(int(v)) for v in x])
                ax.xaxis.set_minor_formatter(NullFormatter())
        fig.tight_layout()
        _figure_legend(fig, axes[0][0])
    return fig


def plot_excess_vs_n(
    excess: pd.DataFrame,
    *,
    reference_slope: float | None = -1.0,
    title: str = "",
    floor=None,
    control: pd.DataFrame | None = None,
    control_label: str = "well-specified control - oracle",
):
    """(method - oracle) risk vs n with the fitted power law (and optional floor fit).

    ``excess`` has columns n, replicate, excess (e.g. from ``claims.excess_over_oracle``).
    ``control``, in the same columns, is drawn beside it with its own band (e.g. the
    well-specified control of a misspecified run, same class and m), labelled
    ``control_label``, and the title then gives both seed counts. The legend sits below the
    axes.
    """
    n_seeds = excess.replicate.nunique()
    with figure_style():
        fig, ax = plt.subplots(figsize=(3.6, 2.8))
        x = np.array(sorted(excess.n.unique()), dtype=float)
        mean = _band(
            ax, x, excess.groupby("n"), "excess", METHOD_STYLE["two_stage"], "two-stage - oracle"
        )
        if (mean > 0).all() and len(x) >= 3:  # a quick run may have two values of n
            fit = stats.fit_power_law(
                excess.n.astype(float), excess.excess, excess.replicate, n_boot=0
            )
            ax.plot(
                x, fit.predict(x), color="k", lw=0.8, label=f"power-law fit, slope {fit.slope:.2f}"
            )
        if reference_slope is not None:
            ax.plot(
                x,
                mean.iloc[0] * (x / x[0]) ** reference_slope,
                color="k",
                ls=":",
                lw=0.8,
                label=f"slope {reference_slope:g}",
            )
        if floor is not None:
            ax.plot(
                x,
                floor.predict(x),
                color="#2ca02c",
                lw=1.0,
                label=f"a n^b + c, floor {floor.c:.3g}",
            )
        seeds = f"{n_seeds} seeds"
        if control is not None and not control.empty:
            xc = np.array(sorted(control.n.unique()), dtype=float)
            _band(ax, xc, control.groupby("n"), "excess", METHOD_STYLE["control"], control_label)
            seeds += f"; control {control.replicate.nunique()}"
            title = f"{title}\n({seeds})" if title else ""
        _loglog(ax, "paired samples per task n", "excess over the oracle")
        ax.set_title(title or f"Two-stage minus oracle ({seeds})")
        _legend_below(ax)
    return fig


def pairs_needed(excess: pd.DataFrame, targets: np.ndarray) -> pd.Series:
    """n(epsilon): the pairs per task at which the seed-mean excess over the oracle first falls
    to each target, by log-log interpolation between grid values of n (NaN outside the grid:
    no extrapolation).

    Args:
        excess: one method and capacity, columns n and excess (``claims.excess_over_oracle``).
        targets: excess levels epsilon > 0.
    Returns:
        n(epsilon) indexed by epsilon.
    """
    mean = excess.groupby("n").excess.mean().sort_index()
    n, e = mean.index.to_numpy(float), mean.to_numpy(float)
    out = np.full(len(targets), np.nan)
    for i, eps in enumerate(np.asarray(targets, dtype=float)):
        if not eps > 0:
            raise ValueError(f"targets must be > 0, got {eps}")
        below = np.flatnonzero(e <= eps * (1 + 1e-12))  # a target at a grid value, rounded
        if below.size == 0:
            continue
        j = below[0]
        if j == 0:
            out[i] = n[0] if np.isclose(e[0], eps) else np.nan  # reached before the grid
            continue
        if e[j - 1] <= 0 or e[j] <= 0:
            out[i] = n[j]
            continue
        u = (np.log(eps) - np.log(e[j - 1])) / (np.log(e[j]) - np.log(e[j - 1]))
        out[i] = float(np.exp(np.log(n[j - 1]) + u * (np.log(n[j]) - np.log(n[j - 1]))))
    return pd.Series(out, index=pd.Index(targets, name="epsilon"), name="n")


def plot_pairs_needed(frames: dict[str, dict[tuple[str, int], pd.DataFrame]]):
    """Pairs needed to reach a target excess over the oracle, n(epsilon), one panel per family.

    Args:
        frames: title -> {(method, p_gen): that method's excess over the oracle per n
            (``claims.excess_over_oracle`` at one capacity)}.
    Each curve is ``pairs_needed`` on a log grid of epsilon spanning the panel's excesses,
    drawn only where the grid of n brackets it; line style by p_gen, colour by method.
    """
    with figure_style():
        fig, axes = plt.subplots(1, len(frames), figsize=(3.6 * len(frames), 2.9), squeeze=False)
        for ax, (title, curves) in zip(axes[0], frames.items(), strict=True):
            values = pd.concat(curves.values()).groupby(["method", "num_params", "n"]).excess
            means = values.mean()
            positive = means[means > 0]
            targets = np.geomspace(positive.min(), positive.max(), 60)
            sizes = sorted({p for _, p in curves})
            for (method, p_gen), ex in sorted(curves.items()):
                need = pairs_needed(ex, targets)
                style = METHOD_STYLE[method]
                ax.plot(
                    need.index,
                    need.to_numpy(),
                    color=style["color"],
                    ls=("--", "-", ":", "-.")[sizes.index(p_gen) % 4],
                    label=f"{style['label']}, p_gen {p_gen}",
                )
            _loglog(ax, "target excess over the oracle epsilon", "pairs per task needed n")
            ax.set_title(title)
            ax.legend(frameon=False, fontsize="small")
        fig.tight_layout()
    return fig


def plot_risk_vs_m(table: pd.DataFrame, floors: dict | None = None, *, title: str = ""):
    """Two-stage risk vs m for each n (and the oracle), log-log, with optional floor fits
    (``{n: stats.fit_power_law_with_floor(...)}``); ``title`` prefixes the axes title."""
    n_seeds = table.replicate.nunique()
    colors = plt.get_cmap("viridis")
    with figure_style():
        fig, ax = plt.subplots(figsize=(4.0, 3.0))
        ts = table[table.method == "two_stage"]
        n_values = sorted(int(v) for v in ts.n.unique())
        for i, n in enumerate(n_values):
            r = ts[ts.n == n]
            x = np.array(sorted(r.m.unique()), dtype=float)
            style = {"color": colors(i / max(len(n_values) - 1, 1) * 0.85), "marker": "o"}
            _band(ax, x, r.groupby("m"), "risk", style, f"two-stage, n = {n}")
            if floors and n in floors:
                ax.axhline(floors[n].c, color=style["color"], ls=":", lw=0.8)
        orc = table[table.method == "oracle"]
        if not orc.empty:
            x = np.array(sorted(orc.m.unique()), dtype=float)
            _band(ax, x, orc.groupby("m"), "risk", METHOD_STYLE["oracle"], "oracle")
        _loglog(ax, "unlabeled conditions per task m", "scalarized excess score risk")
        prefix = f"{title}: " if title else ""
        ax.set_title(f"{prefix}risk vs m ({n_seeds} seeds; dotted: fitted floors)")
        ax.legend(frameon=False)
    return fig


def plot_excess_over_limit(frames: dict[str, pd.DataFrame]):
    """Two-stage excess over its large-m limit vs m (log-log), one panel per family, with the
    slope -1 of the claim through the first point.

    ``frames`` maps a panel title to rows with columns m, replicate, excess
    (``claims.gaussian.excess_over_limit``; the limit's m is the table's largest)."""
    with figure_style():
        fig, axes = plt.subplots(
            1, len(frames), figsize=(3.4 * len(frames), 2.8), squeeze=False, sharey=False
        )
        for ax, (title, ex) in zip(axes[0], frames.items(), strict=True):
            x = np.array(sorted(ex.m.unique()), dtype=float)
            style = METHOD_STYLE["two_stage"]
            mean = _band(ax, x, ex.groupby("m"), "excess", style, "two-stage - its limit")
            ax.plot(x, mean.iloc[0] * x[0] / x, color="k", ls=":", lw=0.8, label="slope -1")
            _loglog(ax, "unlabeled conditions per task m", "excess over the large-m limit")
            ax.xaxis.set_minor_formatter(NullFormatter())  # the grid spans about one decade
            ax.set_title(f"{title}\n({ex.replicate.nunique()} seeds)", fontsize="medium")
            ax.legend(frameon=False)
        fig.tight_layout()
    return fig


def plot_pareto_fronts(table: pd.DataFrame, exact: np.ndarray | None = None):
    """Per-task risks (L_0, L_1) of each method over the lambda grid (K = 2), seed means."""
    n_seeds = table.replicate.nunique()
    with figure_style():
        fig, ax = plt.subplots(figsize=(3.8, 3.2))
        for method in ("oracle", "two_stage", "labeled_only"):
            r = table[table.method == method]
            if r.empty:
                continue
            pts = r.groupby("weights_index")[["risk_task0", "risk_task1"]].mean().sort_index()
            s = METHOD_STYLE[method]
            ax.plot(
                pts.risk_task0,
                pts.risk_task1,
                marker=s["marker"],
                color=s["color"],
                label=s["label"],
            )
        if exact is not None:
            ax.plot(
                exact[:, 0],
                exact[:, 1],
                color="k",
                lw=0.8,
                ls="--",
                label=METHOD_STYLE["exact"]["label"],
            )
        _loglog(ax, "task 0 excess risk L_0", "task 1 excess risk L_1")
        ax.set_title(f"Fronts over lambda ({n_seeds} seeds)")
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def plot_psnr_vs_n(
    table: pd.DataFrame, *, metric: str = "psnr", degraded=None, task_names: list[str] | None = None
):
    """PSNR (dB) or SSIM vs n: one panel for the lambda-average and one per task.

    Lines: two-stage and labeled-only generalists, the two-stage specialists on their own task
    (``<metric>_specialist_task<k>``), the baselines the table holds (dashed: ridge, classical,
    blind ridge, blind CNN), the oracle (a dashed level) and the degraded input (dotted: the
    table's ``degraded`` rows, or ``degraded``, per-task values, for a table without them).
    Bands: +/- 2 s.e. over seeds.

    Args:
        table: an image_restoration results table (``kinds.restoration``).
        metric: ``psnr`` or ``ssim``.
    """
    if metric not in ("psnr", "ssim"):
        raise ValueError(f"metric must be 'psnr' or 'ssim', got {metric!r}")
    sel = table[(table.weights_index == 0) & (table.m == table.m.max())]
    tasks = sorted(int(c.removeprefix("psnr_task")) for c in sel if c.startswith("psnr_task"))
    names = task_names or [f"task {k}" for k in tasks]
    weights = np.array([float(v) for v in sel.weights.iloc[0].split(",")])
    columns = [(metric, "lambda-average")] + [(f"{metric}_task{k}", names[k]) for k in tasks]
    n_seeds = sel.replicate.nunique()
    baselines = [b for b in RESTORATION_BASELINES if b in set(sel.method)]
    with figure_style():
        fig, axes = plt.subplots(1, len(columns), figsize=(2.3 * len(columns), 2.6), squeeze=False)
        for i, (ax, (column, title)) in enumerate(zip(axes[0], columns, strict=True)):
            for method in ("two_stage", "labeled_only", *baselines):
                r = sel[sel.method == method]
                x = np.array(sorted(r.n.unique()), dtype=float)
                style = METHOD_STYLE[method]
                _band(ax, x, r.groupby("n"), column, style, style["label"])
            ts = sel[sel.method == "two_stage"]
            spec = ts[[f"{metric}_specialist_task{k}" for k in tasks]].to_numpy()
            ts = ts.assign(specialist=spec @ weights if i == 0 else spec[:, i - 1])
            x = np.array(sorted(ts.n.unique()), dtype=float)
            style = METHOD_STYLE["specialist"]
            _band(ax, x, ts.groupby("n"), "specialist", style, style["label"])
            orc = sel[sel.method == "oracle"]
            if not orc.empty:
                style = METHOD_STYLE["oracle"]
                ax.axhline(orc[column].mean(), color=style["color"], ls="--", label=style["label"])
            deg = sel[sel.method == "degraded"]
            value = None
            if not deg.empty:
                value = float(deg[column].mean())
            elif degraded is not None and metric == "psnr":
                value = float(np.dot(weights, degraded)) if i == 0 else degraded[i - 1]
            if value is not None:
                style = METHOD_STYLE["degraded"]
                ax.axhline(value, color=style["color"], ls=":", label=style["label"])
            ax.set_xscale("log")
            grid_n = sorted(int(v) for v in sel.n.dropna().unique())
            ax.set_xticks(grid_n, [str(v) for v in grid_n])
            ax.minorticks_off()
            ax.set_xlabel("paired images per task n")
            ax.set_title(title)
        label = "PSNR (dB)" if metric == "psnr" else "SSIM"
        axes[0, 0].set_ylabel(f"{label} of the posterior mean")
        _figure_legend(fig, axes[0, 0], ncol=5)
        fig.suptitle(
            f"Restoration {label} vs n (m = {int(sel.m.max())}, {n_seeds} seeds; "
            "bands: +/- 2 s.e.)",
            y=1.02,
        )
        fig.tight_layout()
    return fig


def plot_restoration_examples(panels: dict[str, np.ndarray], row_labels: list[str]):
    """A grid of images: one column per entry of ``panels`` (name -> (R, H, W) array in [0, 1]),
    one row per label in ``row_labels``."""
    names = list(panels)
    rows = len(row_labels)
    for name, images in panels.items():
        if np.asarray(images).shape[0] != rows:
            raise ValueError(
                f"panels[{name!r}] holds {np.asarray(images).shape[0]} images, expected {rows}"
            )
    with figure_style():
        fig, axes = plt.subplots(
            rows, len(names), figsize=(1.2 * len(names), 1.2 * rows), squeeze=False
        )
        for j, name in enumerate(names):
            for i in range(rows):
                ax = axes[i, j]
                ax.imshow(np.asarray(panels[name][i]), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if i == 0:
                    ax.set_title(name, fontsize=7)
                if j == 0:
                    ax.set_ylabel(row_labels[i], fontsize=7)
        fig.tight_layout(pad=0.2)
    return fig


def _policy_gaps(table: pd.DataFrame, method: str) -> pd.DataFrame:
    from mol_diffusion.claims import policy_gap

    return policy_gap(table, method)


def _mean_band(ax, groups, style: dict, alpha: float = 0.15) -> None:
    """The mean of a grouped series against its (numeric) groups, with a +/- 2 s.e. band, in a
    method's style (dashed for the baselines)."""
    mean, se = groups.mean(), groups.std(ddof=1).fillna(0) / np.sqrt(groups.count())
    x = mean.index.to_numpy(dtype=float)
    ax.plot(
        x,
        mean,
        marker=style["marker"],
        color=style["color"],
        ls=style.get("ls", "-"),
        label=style["label"],
    )
    ax.fill_between(x, mean - 2 * se, mean + 2 * se, color=style["color"], alpha=alpha, lw=0)


def plot_gap_vs_n(table: pd.DataFrame, *, horizon: int | None = None):
    """Sub-optimality gap J_H(expert) - J_H(policy) vs demonstrations per environment n, at
    H = ``horizon`` (default the largest): lambda-weighted and per environment. Bands: +/- 2 s.e.
    over seeds; the dotted line is a gap of zero (the expert)."""
    h = int(table.horizon.max()) if horizon is None else horizon
    envs = sorted(table.env.unique())
    names = table.drop_duplicates("env").set_index("env").env_id.str.split("/").str[-1]
    columns = [("gap", "lambda-weighted")] + [(f"gap_env{k}", names[k]) for k in envs]
    with figure_style():
        fig, axes = plt.subplots(1, len(columns), figsize=(2.3 * len(columns), 2.6), sharey=True)
        for ax, (column, title) in zip(axes, columns, strict=True):
            for method in _policy_methods(table):
                gap = _policy_gaps(table, method)
                gap = gap[gap.horizon == h]
                _mean_band(ax, gap.groupby("n")[column], METHOD_STYLE[method])
            ax.axhline(0, color="k", ls=":", lw=0.8)
            ax.set(xscale="log", xlabel="demonstrations per environment n", title=title)
        axes[0].set_ylabel(f"gap J(expert) - J(policy), H = {h}")
        _figure_legend(fig, axes[0])
        fig.suptitle(f"Sub-optimality gap vs n ({table.replicate.nunique()} seeds)", y=1.02)
        fig.tight_layout()
    return fig


def _policy_methods(table: pd.DataFrame) -> list[str]:
    """The learned policies to draw: the four of the procedure, then the baselines present."""
    present = set(table.method)
    return [m for m in POLICY_METHODS + POLICY_BASELINES if m in present]


def plot_score_vs_n(table: pd.DataFrame, *, horizon: int | None = None):
    """Normalized score (random policy 0, expert 1) vs demonstrations per environment n, at
    H = ``horizon`` (default the largest): lambda-weighted and per environment, every learned
    policy with the baselines dashed. Bands: +/- 2 s.e. over seeds."""
    h = int(table.horizon.max()) if horizon is None else horizon
    rows = table[table.horizon == h]
    envs = sorted(rows.env.unique())
    names = rows.drop_duplicates("env").set_index("env").env_id.str.split("/").str[-1]
    with figure_style():
        fig, axes = plt.subplots(
            1, len(envs) + 1, figsize=(2.3 * (len(envs) + 1), 2.6), sharey=True
        )
        for ax, env in zip(axes, [None, *envs], strict=True):
            for method in _policy_methods(rows):
                sel = rows[rows.method == method]
                if env is None:  # lambda-weighted per (n, replicate)
                    sel = (
                        (sel.normalized_score * sel.weight)
                        .groupby([sel.n, sel.replicate])
                        .sum()
                        .rename("normalized_score")
                        .reset_index()
                    )
                else:
                    sel = sel[sel.env == env]
                _mean_band(ax, sel.groupby("n").normalized_score, METHOD_STYLE[method], 0.12)
            ax.axhline(1, color="k", ls=":", lw=0.8)
            ax.axhline(0, color="#999999", ls=":", lw=0.8)
            title = "lambda-weighted" if env is None else names[env]
            ax.set(xscale="log", xlabel="demonstrations per environment n", title=title)
        axes[0].set_ylabel(f"normalized score, H = {h}")
        _figure_legend(fig, axes[0])
        fig.suptitle(
            f"Normalized score vs n (expert 1, random 0; {rows.replicate.nunique()} seeds)", y=1.02
        )
        fig.tight_layout()
    return fig


def plot_gap_vs_horizon(table: pd.DataFrame):
    """Lambda-weighted gap vs the evaluation horizon H (log-log), mean over n and seeds, one
    panel per n and one for the mean over n (the data of the horizon claim)."""
    ns = sorted(int(v) for v in table.n.unique())
    with figure_style():
        fig, axes = plt.subplots(1, len(ns) + 1, figsize=(2.3 * (len(ns) + 1), 2.6), sharey=True)
        for ax, n in zip(axes, [*ns, None], strict=True):
            for method in POLICY_METHODS:
                gap = _policy_gaps(table, method)
                if n is not None:
                    gap = gap[gap.n == n]
                mean = gap.groupby("horizon").gap.mean()
                style = METHOD_STYLE[method]
                ax.plot(
                    mean.index,
                    mean.clip(lower=1e-2),
                    marker=style["marker"],
                    color=style["color"],
                    label=style["label"],
                )
            _loglog(ax, "evaluation horizon H", "", "mean over n" if n is None else f"n = {n}")
        axes[0].set_ylabel("lambda-weighted gap")
        _figure_legend(fig, axes[0])
        fig.suptitle("Gap vs horizon (values below 0.01 drawn at 0.01)", y=1.02)
        fig.tight_layout()
    return fig


def plot_trajectories(panels: dict[str, tuple], *, obstacles: dict[str, tuple] | None = None):
    """Positions of episodes in the plane, one panel per entry.

    Args:
        panels: title -> (observations (B, T + 1, O) whose first two features are x, y;
            per-episode colour values (B,) or None).
        obstacles: title -> (centre (x, y), radius) drawn as a grey disc.
    """
    with figure_style():
        fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5), squeeze=False)
        for ax, (title, (obs, _)) in zip(axes[0], panels.items(), strict=True):
            for b in range(obs.shape[0]):
                ax.plot(obs[b, :, 0], obs[b, :, 1], lw=0.6, alpha=0.7)
            if obstacles and title in obstacles:
                center, radius = obstacles[title]
                ax.add_patch(plt.Circle(center, radius, color="0.6", alpha=0.6))
            ax.plot([0, 0], [-1, 1], "k*", ms=6)
            ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", title=title)
            ax.set_xticks([-1, 0, 1])
            ax.set_yticks([-1, 0, 1])
        fig.tight_layout()
    return fig
