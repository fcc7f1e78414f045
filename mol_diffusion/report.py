"""Generated text for the paper and the README: every number there comes from here.

``write_report()`` evaluates every claim on the saved results and writes

- ``experiments/results/claims.json`` and ``paper/generated/claims.tex`` (``claims.write_outputs``),
- ``paper/generated/numbers.tex``: grid sizes and counts quoted in the text (``\\num...`` macros),
- ``paper/generated/discussion.tex``: the contradicted and inconclusive claims with their numbers,
- ``paper/generated/calibration.tex``: the calibration table (``\\calibrationTable``) from
  ``experiments/results/calibration.csv``,
- ``paper/generated/policy.tex``: the diffusion-policy table per environment
  (``\\policyTable``): every method's normalized score and goal success rate at the smallest
  and the largest n, H = max(H),
- ``paper/generated/restoration_pilot.tex``: the restoration pilot on a validation split
  (``\\restorationPilotTable``) from ``experiments/results/pilot/restoration_defaults_digits.csv``
  (``experiments/search_restoration_defaults.py``): PSNR and SSIM per method and n,
- the claims, calibration, policy and restoration-pilot tables of ``README.md`` between
  ``<!-- claims:begin -->`` / ``<!-- claims:end -->``, ``<!-- calibration:begin -->`` /
  ``<!-- calibration:end -->``, ``<!-- policy:begin -->`` / ``<!-- policy:end -->`` and
  ``<!-- restoration-pilot:begin -->`` / ``<!-- restoration-pilot:end -->``.

``python -m mol_diffusion report`` runs it; ``make figures`` calls it after the notebooks.
"""

from __future__ import annotations

import math

import pandas as pd

from mol_diffusion import claims, paths
from mol_diffusion.artifacts import write_if_changed
from mol_diffusion.claims.common import seed_slopes
from mol_diffusion.config import load_experiment
from mol_diffusion.scores import LinearGaussianScore

__all__ = [
    "calibration_summary",
    "policy_outputs",
    "policy_summary",
    "readme_table",
    "restoration_summary",
    "write_report",
]

README_BEGIN, README_END = "<!-- claims:begin -->", "<!-- claims:end -->"
CALIBRATION_BEGIN, CALIBRATION_END = "<!-- calibration:begin -->", "<!-- calibration:end -->"
POLICY_BEGIN, POLICY_END = "<!-- policy:begin -->", "<!-- policy:end -->"
PILOT_BEGIN, PILOT_END = "<!-- restoration-pilot:begin -->", "<!-- restoration-pilot:end -->"
RESTORATION_PILOT = "restoration_defaults_digits.csv"  # under experiments/results/pilot/
RESTORATION_PILOT_ROWS = (  # (method, label) in the order of the table; absent rows are skipped
    ("conv_oracle", "ConvScore oracle (600 true pairs per task), one pass"),
    ("conv_oracle_32x200", "ConvScore oracle, mean of 32 draws x 200 steps"),
    ("conv_oracle_32x50", "ConvScore oracle, mean of 32 draws x 50 steps"),
    ("conv_oracle_8x50", "ConvScore oracle, mean of 8 draws x 50 steps"),
    ("conv_two_stage", "ConvScore two-stage (8 draws per condition)"),
    ("conv_labeled_only", "ConvScore labeled-only"),
    ("prior_stationary", "Gaussian-prior specialist, stationary target"),
    ("prior_diagonal", "Gaussian-prior specialist, diagonal target"),
    ("prior_identity", "Gaussian-prior specialist, identity target"),
    ("blind_cnn", "blind CNN (MSE)"),
    ("ridge", "ridge per task"),
    ("blind_ridge", "blind ridge"),
    ("classical", "classical (scikit-image)"),
    ("degraded", "degraded input"),
)
RESTORATION_BEGIN, RESTORATION_END = "<!-- restoration:begin -->", "<!-- restoration:end -->"
RESTORATION_ROWS = (  # the image_restoration table's methods, in the order of the table
    ("oracle", "oracle (m true pairs per task)"),
    ("two_stage", "two-stage"),
    ("labeled_only", "labeled-only"),
    ("specialist", "specialist (Gaussian prior, own task, exact mean)"),
    ("blind_cnn", "blind CNN (MSE)"),
    ("ridge", "ridge per task"),
    ("blind_ridge", "blind ridge"),
    ("classical", "classical (scikit-image)"),
    ("degraded", "degraded input"),
)
POLICY_EXPERIMENTS = {"diffusion_policy": "Dp", "diffusion_policy_reacher": "Dr"}
"""The policy experiments (one per environment family) and their paper-macro tags."""
POLICY_TABLE_MACROS = {
    "diffusion_policy": "policyTable",
    "diffusion_policy_reacher": "reacherPolicyTable",
}
POLICY_ROWS = (  # (method, label) in the order of the table
    ("expert", "expert"),
    ("specialist", "specialist (own env)"),
    ("nearest_neighbour", "1-NN (own env)"),
    ("bc", "MLP BC (own env)"),
    ("labeled_only", "labeled-only generalist"),
    ("two_stage_offline", "two-stage, offline"),
    ("two_stage_on_policy", "two-stage, on-policy"),
)


def _tex_list(values) -> str:
    return ", ".join(str(v) for v in values)


def paper_numbers(results: dict, verdicts: list[claims.Verdict]) -> dict[str, str]:
    """Macro name -> text, computed from the configs, the results tables and the verdicts."""
    evaluated = [v for v in verdicts if v.evaluated]
    numbers = {
        "numClaimsRegistered": str(len(verdicts)),
        "numClaimsEvaluated": str(len(evaluated)),
        "numClaimsNotEvaluable": str(sum(v.verdict == "not evaluable" for v in verdicts)),
        "numClaimsConfirmatory": str(sum(v.status == "confirmatory" for v in evaluated)),
        "numClaimsPostHoc": str(sum(v.status == "post hoc" for v in evaluated)),
        "numClaimsPilot": str(sum(v.status == "pilot" for v in evaluated)),
        "numAlpha": f"{claims.ALPHA:g}",
        "numExpectedFalseSupport": f"{len(verdicts) * claims.ALPHA:.1f}",
        "numCiLevel": f"{1 - 2 * claims.ALPHA:.0%}".replace("%", r"\%"),
    }
    for word in claims.VERDICTS:
        name = "".join(part.capitalize() for part in word.split())
        numbers[f"numClaims{name}"] = str(sum(v.verdict == word for v in evaluated))
        numbers[f"numClaimsRaw{name}"] = str(sum(v.raw_verdict == word for v in evaluated))
    calibration = claims.load_calibration()
    summary = calibration_summary(calibration) if calibration is not None else None
    numbers["numClaimsCalibrated"] = "--" if summary is None else str(int(summary.passes.sum()))
    numbers["numCalibrationSimulations"] = (
        "--" if calibration is None else str(int(calibration.simulations.max()))
    )
    sc = load_experiment("sample_complexity")
    numbers["numPSpec"] = str(
        LinearGaussianScore.parameter_count(sc.family.dim, sc.family.cond_dim)
    )
    numbers["numScReplicates"] = str(sc.replicates)
    numbers["numScNGrid"] = _tex_list(sc.n)
    numbers["numScM"] = _tex_list(sc.m)
    table = results.get("sample_complexity")
    if table is not None:
        gen = table[table.method != "labeled_only"].num_params
        numbers["numScPGenMin"], numbers["numScPGenMax"] = str(int(gen.min())), str(int(gen.max()))
        numbers["numScFits"] = str(len(table))
    else:
        numbers["numScPGenMin"] = numbers["numScPGenMax"] = numbers["numScFits"] = "--"
    numbers["numNgReplicates"] = str(load_experiment("neural_generalist").replicates)
    numbers["numMsReplicates"] = str(load_experiment("misspecified").replicates)
    numbers["numPfReplicates"] = str(load_experiment("pareto_front").replicates)
    numbers.update(_misspecified_slope(results.get("misspecified")))
    numbers.update(
        _excess_by_n(results.get("misspecified_d4"), "numMsDFour"),
        **_excess_by_n(results.get("capacity_regime_d4"), "numMsDFourControl"),
    )
    numbers.update(_over_parameterized_slopes(table))
    numbers.update(_restoration_numbers(results.get("image_restoration")))
    for experiment, tag in POLICY_EXPERIMENTS.items():
        numbers.update(_policy_numbers(results.get(experiment), experiment, tag))
    return numbers


def _policy_numbers(table, experiment: str = "diffusion_policy", tag: str = "Dp") -> dict:
    """Grid of one diffusion-policy experiment and its lambda-weighted gaps at H = max(H), as
    macros ``num<tag>...``."""
    dp = load_experiment(experiment)
    numbers = {
        f"num{tag}Replicates": str(dp.replicates),
        f"num{tag}NGrid": _tex_list(dp.n),
        f"num{tag}M": str(dp.m),
        f"num{tag}Rounds": str(dp.rounds),
        f"num{tag}Horizon": str(dp.horizon),
        f"num{tag}EvalEpisodes": str(dp.eval_episodes),
        f"num{tag}SpecialistSteps": str(dp.specialist.steps),
        f"num{tag}GeneralistSteps": str(dp.generalist.steps),
    }
    names = {
        "LabeledOnly": "labeled_only",
        "Offline": "two_stage_offline",
        "OnPolicy": "two_stage_on_policy",
        "Specialist": "specialist",
    }
    for name, method in names.items():
        for end, pick in (("Min", min), ("Max", max)):
            value = "--"
            if table is not None:
                gap = claims.policy_gap(table, method)
                gap = gap[(gap.horizon == gap.horizon.max()) & (gap.n == pick(gap.n))]
                value = f"{gap.gap.mean():.2f}"
            numbers[f"num{tag}{name}Gap{end}"] = value
    scored = dict(names, NearestNeighbour="nearest_neighbour", Bc="bc")
    for name, method in scored.items():  # lambda-weighted normalized score, mean over seeds
        for end, pick in (("Min", min), ("Max", max)):
            value = "--"
            if table is not None and "normalized_score" in table:
                rows = table[(table.method == method) & (table.horizon == table.horizon.max())]
                rows = rows[rows.n == pick(rows.n)] if len(rows) else rows
                if len(rows):
                    weighted = (rows.normalized_score * rows.weight).groupby(rows.replicate).sum()
                    value = f"{weighted.mean():.2f}"
            numbers[f"num{tag}{name}Score{end}"] = value
        if table is not None:
            params = table[table.method == method].num_params
            numbers[f"num{tag}{name}Params"] = str(int(params.max())) if len(params) else "--"
        else:
            numbers[f"num{tag}{name}Params"] = "--"
    numbers[f"num{tag}ExpertReturn"] = "--"
    numbers[f"num{tag}ExpertGoals"] = "--"
    if table is not None:
        expert = table[(table.method == "expert") & (table.horizon == table.horizon.max())]
        cells = expert.groupby(["n", "replicate"]).ngroups
        weighted = (expert.return_mean * expert.weight).sum() / cells
        numbers[f"num{tag}ExpertReturn"] = f"{weighted:.2f}"
        # goals reached without contact per episode (the success rate's trials)
        goals = expert.success_trials.sum() / expert.episodes.sum()
        numbers[f"num{tag}ExpertGoals"] = f"{goals:.1f}"
    return numbers


def _excess_at_largest(table):
    """Two-stage excess over the oracle (``claims.excess_over_oracle``) at the table's largest
    capacity and m, first weight vector."""
    cap, m = int(table.capacity.max()), int(table.m.max())
    return claims.excess_over_oracle(table[(table.m == m) & (table.weights_index == 0)], cap)


def _misspecified_slope(table) -> dict[str, str]:
    """Descriptive, not a claim: the per-seed log-log slope in n of the misspecified two-stage
    excess over the oracle over the three largest n, with its 90% t-interval (a floor would
    give 0)."""
    out = {k: "--" for k in ("numMsTopSlope", "numMsTopSlopeLow", "numMsTopSlopeHigh", "numMsTopN")}
    if table is None:
        return out
    ex = _excess_at_largest(table)
    top = sorted(int(v) for v in ex.n.unique())[-3:]
    slopes = seed_slopes(ex[ex.n.isin(top)], "n", "excess", log_x=True, log_y=True)
    mean, low, high = claims.Component("", slopes).interval(1 - 2 * claims.ALPHA)
    out.update(
        numMsTopSlope=f"{mean:.2f}",
        numMsTopSlopeLow=f"{low:.2f}",
        numMsTopSlopeHigh=f"{high:.2f}",
        numMsTopN=", ".join(str(n) for n in top),
    )
    return out


def _excess_by_n(table, prefix: str) -> dict[str, str]:
    """Descriptive: the seed-mean two-stage excess over the oracle at the largest capacity and
    m, per n, as ``<prefix>Excess`` (values, 3 significant digits) and ``<prefix>N`` (the n)."""
    out = {f"{prefix}Excess": "--", f"{prefix}N": "--"}
    if table is None:
        return out
    mean = _excess_at_largest(table).groupby("n").excess.mean()
    out[f"{prefix}Excess"] = ", ".join(f"{v:.3g}" for v in mean)
    out[f"{prefix}N"] = ", ".join(str(int(n)) for n in mean.index)
    return out


def _over_parameterized_slopes(table) -> dict[str, str]:
    """Descriptive, not claims (retired with the first design): the per-seed log-log slopes in
    p_gen of each method's excess over the oracle at sample_complexity's smallest n, where every
    generalist has more parameters than pairs, with their 90% t-intervals, as macros
    ``numScOver<TwoStage|LabeledOnly>Slope[Low|High]``."""
    out = {}
    for name, method in (("TwoStage", "two_stage"), ("LabeledOnly", "labeled_only")):
        keys = [f"numScOver{name}Slope{end}" for end in ("", "Low", "High")]
        out.update(dict.fromkeys(keys, "--"))
        if table is None:
            continue
        ex = claims.excess_at_smallest_n(table, [method])
        slopes = seed_slopes(ex, "num_params", "excess", log_x=True, log_y=True)
        interval = claims.Component("", slopes).interval(1 - 2 * claims.ALPHA)
        out.update({k: f"{v:.2f}" for k, v in zip(keys, interval, strict=True)})
    return out


def _restoration_numbers(table) -> dict[str, str]:
    """Grid of the image-restoration experiment and its PSNRs (dB) at the smallest and largest n."""
    ir = load_experiment("image_restoration")
    numbers = {
        "numIrReplicates": str(ir.replicates),
        "numIrNGrid": _tex_list(ir.n),
        "numIrM": _tex_list(ir.m),
    }
    ends = {"Min": min(ir.n), "Max": max(ir.n)}
    for end, n in ends.items():
        for method, name in (("two_stage", "TwoStage"), ("labeled_only", "LabeledOnly")):
            value = "--"
            if table is not None:
                rows = table[(table.method == method) & (table.n == n)]
                value = f"{rows.psnr.mean():.2f}" if len(rows) else "--"
            numbers[f"numIr{name}Psnr{end}"] = value
        numbers[f"numIrN{end}"] = str(n)
    # what distilling costs: each task's specialist PSNR minus the two-stage generalist's, on the
    # same test images, averaged over seeds, per (task, n); the smallest and the largest, with
    # the task and n of the largest
    loss = {"Min": "--", "Max": "--", "MaxTask": "--", "MaxN": "--"}
    if table is not None:
        ts = table[table.method == "two_stage"]
        tasks = sorted(c for c in ts.columns if c.startswith("psnr_task"))
        if tasks and all(f"psnr_specialist_task{c.removeprefix('psnr_task')}" in ts for c in tasks):
            cells = {
                (int(c.removeprefix("psnr_task")), int(n)): float(
                    (rows[f"psnr_specialist_task{c.removeprefix('psnr_task')}"] - rows[c]).mean()
                )
                for n, rows in ts.groupby("n")
                for c in tasks
            }
            worst = max(cells, key=cells.get)
            names = [kind for kind, _ in ir.family.tasks]
            loss = {
                "Min": f"{round(min(cells.values()), 2) + 0.0:.2f}",
                "Max": f"{round(cells[worst], 2) + 0.0:.2f}",
                "MaxTask": names[worst[0]],
                "MaxN": str(worst[1]),
            }
    for key, value in loss.items():
        numbers[f"numIrDistillLoss{key}"] = value
    # at the largest n: labeled-only minus the blind CNN per seed, and the task on which the
    # specialists fall furthest below labeled-only (means over seeds)
    numbers["numIrLoMinusCnnMax"], numbers["numIrSpecialistDeficit"] = "--", "--"
    numbers["numIrSpecialistDeficitTask"] = "--"
    if table is not None and {"blind_cnn", "labeled_only", "two_stage"} <= set(table.method):
        at = table[table.n == ends["Max"]]
        lo = at[at.method == "labeled_only"].set_index("replicate").sort_index()
        cnn = at[at.method == "blind_cnn"].set_index("replicate").sort_index()
        numbers["numIrLoMinusCnnMax"] = ", ".join(
            f"${round(v, 2) + 0.0:+.2f}$" for v in (lo.psnr - cnn.psnr)
        )
        ts = at[at.method == "two_stage"].set_index("replicate").sort_index()
        names = [kind for kind, _ in ir.family.tasks]
        deficit = {
            k: float((lo[f"psnr_task{k}"] - ts[f"psnr_specialist_task{k}"]).mean())
            for k in range(len(names))
        }
        worst = max(deficit, key=deficit.get)
        numbers["numIrSpecialistDeficit"] = f"{deficit[worst]:.2f}"
        numbers["numIrSpecialistDeficitTask"] = names[worst]
    orc = None if table is None else table[table.method == "oracle"]
    numbers["numIrOraclePsnr"] = "--" if orc is None or orc.empty else f"{orc.psnr.mean():.2f}"
    # the specialists and the baselines at both ends of the grid (PSNR and SSIM)
    summary = None if table is None or "ssim" not in table else restoration_summary(table)
    for method, name in (
        ("specialist", "Specialist"),
        ("blind_cnn", "BlindCnn"),
        ("ridge", "Ridge"),
        ("blind_ridge", "BlindRidge"),
        ("classical", "Classical"),
        ("degraded", "Degraded"),
        ("two_stage", "TwoStage"),
        ("labeled_only", "LabeledOnly"),
    ):
        for end, n in ends.items():
            row = (
                None if summary is None else summary[(summary.method == method) & (summary.n == n)]
            )
            ok = row is not None and not row.empty
            if method not in ("two_stage", "labeled_only"):
                numbers[f"numIr{name}Psnr{end}"] = f"{row.psnr.iloc[0]:.2f}" if ok else "--"
            numbers[f"numIr{name}Ssim{end}"] = f"{row.ssim.iloc[0]:.3f}" if ok else "--"
    return numbers


def discussion_items(verdicts: list[claims.Verdict]) -> str:
    """LaTeX list of the contradicted and the inconclusive claims, with their numbers."""
    esc = claims.tex_escape
    out = []
    for word, intro in (
        (
            "contradicted",
            "Contradicted by the default runs (the interval lies outside the region):",
        ),
        ("inconclusive", "Inconclusive (neither, or the rule is not calibrated to decide):"),
        ("not evaluable", "Not evaluable on the default runs:"),
    ):
        chosen = [v for v in verdicts if v.verdict == word]
        if not chosen:
            continue
        out += [intro, r"\begin{itemize}"]
        for v in chosen:
            numbers = (
                f"estimate {v.estimate:.3g}, {1 - 2 * claims.ALPHA:.0%} CI [{v.ci_low:.3g}, "
                f"{v.ci_high:.3g}], region {v.region}; "
                if v.estimate is not None
                else ""
            )
            out.append(
                rf"\item \texttt{{{esc(v.claim)}}} ({esc(v.status_label)}): {esc(v.statement)} "
                rf"{esc(numbers)}{esc(v.detail)}."
            )
        out.append(r"\end{itemize}")
    return ("\n".join(out) if out else "Every evaluated claim is supported.") + "\n"


def _md(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "∞" if value == math.inf else "−∞" if value == -math.inf else f"{value:.3g}"


def readme_table(verdicts: list[claims.Verdict]) -> str:
    """The claims table in Markdown."""
    level = f"{1 - 2 * claims.ALPHA:.0%}"
    lines = [
        f"| claim | estimate | {level} CI | region | verdict | design power | seeds | status |",
        "| --- | ---: | --- | --- | --- | ---: | ---: | --- |",
    ]
    for v in verdicts:
        verdict = f"**{v.verdict}**" if v.verdict == "contradicted" else v.verdict
        if v.raw_verdict != v.verdict and v.raw_verdict in claims.VERDICTS:
            verdict += f" (interval: {v.raw_verdict})"
        ci = f"[{_md(v.ci_low)}, {_md(v.ci_high)}]" if v.ci_low is not None else "–"
        lines.append(
            f"| `{v.claim}` | {_md(v.estimate)} | {ci} | {v.region} | {verdict} "
            f"| {_md(v.design_power)} | {v.n_seeds if v.n_seeds is not None else '–'} "
            f"| {v.status_label} |"
        )
    return "\n".join(lines)


def calibration_summary(calibration: pd.DataFrame) -> pd.DataFrame:
    """One row per claim from ``calibration.csv``: its experiment's seeds, the worst size over
    its least-favourable nulls and the power at the declared effect with those seeds, whether
    the rule passes calibration, and the seeds that reach the power target (from the power
    ladder; "> S" when none of the calibrated seed counts does)."""
    rows = []
    for claim_id in claims.REGISTRY:
        exp = claims.REGISTRY[claim_id].experiment
        design = load_experiment(exp).replicates
        part = calibration[calibration.claim == claim_id]
        at = part[part.seeds == design]
        sizes, powers = at[at.scenario == "size"], at[at.scenario == "power"]
        size = float(sizes.rate.max()) if len(sizes) else math.nan
        power = float(powers.rate.min()) if len(powers) else math.nan
        size_ok = bool(len(sizes)) and bool(sizes.passes.all())  # the harness's verdicts
        ladder = part[part.scenario == "power"].groupby("seeds").passes.all()
        enough = ladder[ladder]
        if len(enough):
            needed = str(int(enough.index.min()))
        elif len(ladder):
            needed = f"> {int(ladder.index.max())}"
        else:
            needed = "unknown"
        rows.append(
            dict(
                claim=claim_id,
                experiment=exp,
                seeds=design,
                size=size,
                power=power,
                passes=bool(size_ok and len(powers) and powers.passes.all()),
                fails_on=", ".join(
                    why
                    for why, bad in (
                        ("no model", not len(powers)),
                        ("size", len(sizes) > 0 and not size_ok),
                        ("power", len(powers) > 0 and not powers.passes.all()),
                    )
                    if bad
                ),
                seeds_for_power=needed,
                simulations=int(part.simulations.max()) if len(part) else 0,
                note="" if len(powers) else str(part.note.iloc[0]) if len(part) else "absent",
            )
        )
    return pd.DataFrame(rows)


def calibration_markdown(summary) -> str:
    lines = [
        "| claim | seeds | size | power | passes | seeds for power 0.8 | simulations |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in summary.itertuples():
        verdict = "yes" if r.passes else f"**no** ({r.fails_on})"
        lines.append(
            f"| `{r.claim}` | {r.seeds} | {_md(r.size)} | {_md(r.power)} | "
            f"{verdict} | {r.seeds_for_power} | {r.simulations} |"
        )
    return "\n".join(lines)


def calibration_tex(summary) -> str:
    esc = claims.tex_escape
    rows = [
        " & ".join(
            [
                esc(r.claim),
                str(r.seeds),
                "--" if math.isnan(r.size) else f"{r.size:.3f}",
                "--" if math.isnan(r.power) else f"{r.power:.2f}",
                "yes" if r.passes else rf"\textbf{{no}} ({esc(r.fails_on)})",
                esc(r.seeds_for_power),
            ]
        )
        + r" \\"
        for r in summary.itertuples()
    ]
    return (
        "\n".join(
            [
                "% Generated by mol_diffusion.report from experiments/results/calibration.csv.",
                r"\newcommand{\calibrationTable}{%",
                r"\begin{tabular}{lrrrlr}",
                r"\hline",
                r"claim & seeds & size & power & passes & seeds for power 0.8 \\",
                r"\hline",
                *rows,
                r"\hline",
                r"\end{tabular}}",
            ]
        )
        + "\n"
    )


def _replace_block(text: str, begin: str, end: str, body: str, where) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"{where} has no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def policy_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per environment, method and end of the n grid (smallest, largest) at H = max(H): the mean
    normalized score over seeds with its standard error over seeds, and the goal success rate
    pooled over seeds (successes / trials). Rows for the methods of ``POLICY_ROWS`` present."""
    h = int(table.horizon.max())
    rows = table[(table.horizon == h) & table.n.isin([table.n.min(), table.n.max()])]
    out = []
    for (env, env_id, method, n), part in rows.groupby(["env", "env_id", "method", "n"]):
        if method not in dict(POLICY_ROWS):
            continue
        score = part.normalized_score
        trials = int(part.success_trials.sum())
        out.append(
            dict(
                env=int(env),
                env_id=env_id,
                method=method,
                n=int(n),
                score=float(score.mean()),
                score_se=float(score.std(ddof=1) / math.sqrt(len(score)))
                if len(score) > 1
                else math.nan,
                success=int(part.successes.sum()) / trials if trials else math.nan,
                seeds=int(part.replicate.nunique()),
            )
        )
    frame = pd.DataFrame(out)
    order = {m: i for i, (m, _) in enumerate(POLICY_ROWS)}
    return frame.sort_values(
        ["env", "method", "n"], key=lambda c: c.map(order) if c.name == "method" else c
    ).reset_index(drop=True)


def _policy_cells(summary: pd.DataFrame, env_id: str, method: str, ns) -> list[str]:
    cells = []
    for n in ns:
        r = summary[(summary.env_id == env_id) & (summary.method == method) & (summary.n == n)]
        if r.empty:
            cells += ["–", "–"]
            continue
        r = r.iloc[0]
        se = "" if math.isnan(r.score_se) else f" ± {r.score_se:.2f}"
        cells += [f"{r.score:.2f}{se}", "–" if math.isnan(r.success) else f"{r.success:.2f}"]
    return cells


def policy_markdown(summary: pd.DataFrame) -> str:
    """One Markdown table per environment: method x (score, success) at the smallest and the
    largest n."""
    if summary.empty:
        return "No diffusion-policy results."
    ns = sorted(summary.n.unique())
    labels = dict(POLICY_ROWS)
    blocks = []
    for env_id in summary.env_id.unique():
        head = " | ".join(f"score, n = {n} | success, n = {n}" for n in ns)
        lines = [
            f"`{env_id}` ({int(summary[summary.env_id == env_id].seeds.max())} seeds)",
            "",
            f"| method | {head} |",
            "| --- |" + " ---: |" * (2 * len(ns)),
        ]
        for method in dict.fromkeys(summary[summary.env_id == env_id].method):
            cells = _policy_cells(summary, env_id, method, ns)
            lines.append(f"| {labels[method]} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def policy_tex(
    summary: pd.DataFrame, macro: str = "policyTable", experiment: str = "diffusion_policy"
) -> str:
    """``\\<macro>`` (``\\policyTable`` by default): the environments side by side is too wide;
    one block per environment, stacked, with the same columns as the README's table."""
    esc = claims.tex_escape
    if summary.empty:
        return f"\\newcommand{{\\{macro}}}{{no diffusion-policy results}}\n"
    ns = sorted(summary.n.unique())
    labels = dict(POLICY_ROWS)
    head = " & ".join(f"score, $n={n}$ & success, $n={n}$" for n in ns)
    lines = [
        f"% Generated by mol_diffusion.report from experiments/results/{experiment}.csv.",
        rf"\newcommand{{\{macro}}}{{%",
        r"\begin{tabular}{l" + "rr" * len(ns) + "}",
        r"\hline",
        rf"method & {head} \\",
    ]
    for env_id in summary.env_id.unique():
        lines += [
            r"\hline",
            rf"\multicolumn{{{1 + 2 * len(ns)}}}{{l}}{{\texttt{{{esc(env_id)}}}}} \\",
        ]
        for method in dict.fromkeys(summary[summary.env_id == env_id].method):
            cells = [
                c.replace("±", r"$\pm$").replace("–", "--")
                for c in _policy_cells(summary, env_id, method, ns)
            ]
            lines.append(" & ".join([esc(labels[method]), *cells]) + r" \\")
    lines += [r"\hline", r"\end{tabular}}"]
    return "\n".join(lines) + "\n"


def _restoration_long(per_rep: pd.DataFrame, rows) -> pd.DataFrame:
    """Per method (in ``rows`` order; absent methods skipped) and n of a frame with one row per
    (method, n, replicate): mean and sd of psnr over replicates, mean ssim."""
    out = per_rep.groupby(["method", "n"]).agg(
        psnr=("psnr", "mean"),
        psnr_sd=("psnr", "std"),
        ssim=("ssim", "mean"),
        replicates=("replicate", "nunique"),
    )
    frame = []
    for method, label in rows:
        if method in out.index.get_level_values("method"):
            for n, r in out.loc[method].iterrows():
                frame.append({"method": method, "label": label, "n": int(n), **r.to_dict()})
    return pd.DataFrame(frame)


def restoration_pilot_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method (``RESTORATION_PILOT_ROWS`` order) and n: the task-averaged PSNR's mean and
    standard deviation over replicates and the mean SSIM; n = 0 marks the oracle (its m true
    pairs). Columns: method, label, n, psnr, psnr_sd, ssim, replicates."""
    per_rep = table.groupby(["method", "n", "replicate"])[["psnr", "ssim"]].mean().reset_index()
    return _restoration_long(per_rep, RESTORATION_PILOT_ROWS)


def restoration_summary(table: pd.DataFrame) -> pd.DataFrame:
    """``restoration_pilot_summary``'s columns for an image_restoration results table
    (``kinds.restoration``, lambda-averaged scores at the largest m and the first lambda):
    every method it holds in ``RESTORATION_ROWS`` order, the two-stage rows' specialists as
    method ``specialist``; n = 0 marks the oracle."""
    sel = table[(table.weights_index == 0) & (table.m == table.m.max())]
    weights = [float(v) for v in sel.weights.iloc[0].split(",")]
    ts = sel[sel.method == "two_stage"]
    ssim_own = sum(w * ts[f"ssim_specialist_task{k}"] for k, w in enumerate(weights))
    own = ts.assign(method="specialist", psnr=ts.psnr_specialist, ssim=ssim_own)
    frame = pd.concat([sel, own], ignore_index=True)
    frame = frame.assign(n=frame.n.astype("Int64").fillna(0).astype(int))
    return _restoration_long(frame[["method", "n", "replicate", "psnr", "ssim"]], RESTORATION_ROWS)


def _pilot_cell(summary: pd.DataFrame, method: str, n: int) -> str:
    r = summary[(summary.method == method) & (summary.n == n)]
    if r.empty:
        return ""
    r = r.iloc[0]
    sd = "" if r.replicates < 2 else f" ± {r.psnr_sd:.2f}"
    return f"{r.psnr:.2f}{sd} ({r.ssim:.3f})"


def restoration_markdown(summary: pd.DataFrame) -> str:
    """The README's restoration table (pilot or experiment): PSNR (dB) mean ± sd over
    replicates (SSIM), one column per n and one for the oracle."""
    ns = [n for n in sorted(summary.n.unique()) if n > 0]
    lines = [
        "| method | " + " | ".join(f"n = {n}" for n in ns) + " | oracle |",
        "| --- |" + " ---: |" * (len(ns) + 1),
    ]
    for method in dict.fromkeys(summary.method):
        label = summary[summary.method == method].label.iloc[0]
        cells = [_pilot_cell(summary, method, n) for n in (*ns, 0)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def restoration_tex(
    summary: pd.DataFrame | None,
    macro: str = "restorationPilotTable",
    source: str = f"experiments/results/pilot/{RESTORATION_PILOT}",
) -> str:
    """``\\<macro>``: the table of ``restoration_markdown`` in LaTeX."""
    esc = claims.tex_escape
    if summary is None or summary.empty:
        return f"\\newcommand{{\\{macro}}}{{no table ({esc(source)})}}\n"
    ns = [n for n in sorted(summary.n.unique()) if n > 0]
    lines = [
        f"% Generated by mol_diffusion.report from {source}.",
        rf"\newcommand{{\{macro}}}{{%",
        r"\begin{tabular}{l" + "r" * (len(ns) + 1) + "}",
        r"\hline",
        "method & " + " & ".join(f"$n = {n}$" for n in ns) + r" & oracle \\",
        r"\hline",
    ]
    for method in dict.fromkeys(summary.method):
        label = summary[summary.method == method].label.iloc[0]
        cells = [_pilot_cell(summary, method, n).replace("±", r"$\pm$") for n in (*ns, 0)]
        lines.append(" & ".join([esc(label), *cells]) + r" \\")
    lines += [r"\hline", r"\end{tabular}}"]
    return "\n".join(lines) + "\n"


def update_readme(
    verdicts: list[claims.Verdict],
    summary=None,
    readme=None,
    policy: str | None = None,
    pilot: str | None = None,
    restoration: str | None = None,
) -> None:
    """Replace the README's claims (and, given a summary, calibration; given a policy table,
    policy; given a restoration-pilot or restoration table, that) blocks."""
    readme = readme or paths.ROOT / "README.md"
    text = _replace_block(
        readme.read_text(), README_BEGIN, README_END, readme_table(verdicts), readme
    )
    if summary is not None:
        text = _replace_block(
            text, CALIBRATION_BEGIN, CALIBRATION_END, calibration_markdown(summary), readme
        )
    if policy is not None:
        text = _replace_block(text, POLICY_BEGIN, POLICY_END, policy, readme)
    if pilot is not None:
        text = _replace_block(text, PILOT_BEGIN, PILOT_END, pilot, readme)
    if restoration is not None:
        text = _replace_block(text, RESTORATION_BEGIN, RESTORATION_END, restoration, readme)
    write_if_changed(readme, text)


def write_report(results_dir=None) -> list[claims.Verdict]:
    """Evaluate every claim on the saved results and write all generated text."""
    results = claims.load_results(results_dir=results_dir)
    verdicts = claims.evaluate_all(results)
    claims.write_outputs(verdicts)
    paths.PAPER_GENERATED.mkdir(parents=True, exist_ok=True)
    numbers = paper_numbers(results, verdicts)
    lines = ["% Generated by mol_diffusion.report; do not edit."]
    lines += [rf"\newcommand{{\{name}}}{{{value}}}" for name, value in numbers.items()]
    write_if_changed(paths.PAPER_GENERATED / "numbers.tex", "\n".join(lines) + "\n")
    write_if_changed(paths.PAPER_GENERATED / "discussion.tex", discussion_items(verdicts))
    calibration = claims.load_calibration()
    summary = None if calibration is None else calibration_summary(calibration)
    tex = (
        calibration_tex(summary)
        if summary is not None
        else "\\newcommand{\\calibrationTable}{no calibration.csv}\n"
    )
    write_if_changed(paths.PAPER_GENERATED / "calibration.tex", tex)
    tex, markdown = policy_outputs(results)
    write_if_changed(paths.PAPER_GENERATED / "policy.tex", tex)
    pilot_csv = paths.RESULTS / "pilot" / RESTORATION_PILOT
    pilot = restoration_pilot_summary(pd.read_csv(pilot_csv)) if pilot_csv.exists() else None
    write_if_changed(paths.PAPER_GENERATED / "restoration_pilot.tex", restoration_tex(pilot))
    pilot_md = None if pilot is None else restoration_markdown(pilot)
    ir = results.get("image_restoration")
    ir_summary = None if ir is None or "ssim" not in ir else restoration_summary(ir)
    write_if_changed(
        paths.PAPER_GENERATED / "restoration.tex",
        restoration_tex(
            ir_summary, "restorationTable", "experiments/results/image_restoration.csv"
        ),
    )
    ir_md = None if ir_summary is None else restoration_markdown(ir_summary)
    update_readme(verdicts, summary, policy=markdown, pilot=pilot_md, restoration=ir_md)
    return verdicts


def policy_outputs(results: dict) -> tuple[str, str | None]:
    """``paper/generated/policy.tex`` (one table macro per policy experiment,
    ``POLICY_TABLE_MACROS``) and the README's policy block (None without any policy table)."""
    tex, markdown = [], []
    for experiment, macro in POLICY_TABLE_MACROS.items():
        table = results.get(experiment)
        if table is None:
            tex.append(f"\\newcommand{{\\{macro}}}{{--}}\n")
            continue
        policy = policy_summary(table)
        tex.append(policy_tex(policy, macro, experiment))
        markdown.append(f"**{experiment}**\n\n{policy_markdown(policy)}")
    return "".join(tex), "\n\n".join(markdown) if markdown else None
