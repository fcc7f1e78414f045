"""Generated text for the paper and the README: every number there comes from here.

``write_report()`` evaluates every claim on the saved results and writes

- ``experiments/results/claims.json`` and ``paper/generated/claims.tex`` (``claims.write_outputs``),
- ``paper/generated/numbers.tex``: grid sizes and counts quoted in the text (``\\num...`` macros),
- ``paper/generated/discussion.tex``: the failed claims with their numbers,
- the claims table of ``README.md`` between ``<!-- claims:begin -->`` and ``<!-- claims:end -->``.

``python -m mol_diffusion report`` runs it; ``make figures`` calls it after the notebooks.
"""

from __future__ import annotations

import math

from mol_diffusion import claims, paths
from mol_diffusion.config import load_experiment
from mol_diffusion.scores import LinearGaussianScore

__all__ = ["readme_table", "write_report"]

README_BEGIN, README_END = "<!-- claims:begin -->", "<!-- claims:end -->"


def _tex_list(values) -> str:
    return ", ".join(str(v) for v in values)


def paper_numbers(results: dict, verdicts: list[claims.Verdict]) -> dict[str, str]:
    """Macro name -> text, computed from the configs, the results tables and the verdicts."""
    evaluated = [v for v in verdicts if v.passed is not None]
    numbers = {
        "numClaimsRegistered": str(len(verdicts)),
        "numClaimsEvaluated": str(len(evaluated)),
        "numClaimsPassed": str(sum(v.passed for v in evaluated)),
        "numClaimsFailed": str(sum(not v.passed for v in evaluated)),
    }
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
    numbers.update(_restoration_numbers(results.get("image_restoration")))
    numbers.update(_policy_numbers(results.get("diffusion_policy")))
    return numbers


def _policy_numbers(table) -> dict[str, str]:
    """Grid of the diffusion-policy experiment and its lambda-weighted gaps at H = max(H)."""
    dp = load_experiment("diffusion_policy")
    numbers = {
        "numDpReplicates": str(dp.replicates),
        "numDpNGrid": _tex_list(dp.n),
        "numDpM": str(dp.m),
        "numDpRounds": str(dp.rounds),
        "numDpHorizon": str(dp.horizon),
        "numDpEvalEpisodes": str(dp.eval_episodes),
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
            numbers[f"numDp{name}Gap{end}"] = value
    numbers["numDpExpertReturn"] = "--"
    numbers["numDpExpertSuccess"] = "--"
    if table is not None:
        expert = table[(table.method == "expert") & (table.horizon == table.horizon.max())]
        cells = expert.groupby(["n", "replicate"]).ngroups
        weighted = (expert.return_mean * expert.weight).sum() / cells
        numbers["numDpExpertReturn"] = f"{weighted:.2f}"
        numbers["numDpExpertSuccess"] = f"{expert.successes.sum() / expert.episodes.sum():.2f}"
    return numbers


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
    orc = None if table is None else table[table.method == "oracle"]
    numbers["numIrOraclePsnr"] = "--" if orc is None or orc.empty else f"{orc.psnr.mean():.2f}"
    return numbers


def discussion_items(verdicts: list[claims.Verdict]) -> str:
    """LaTeX list of the failed claims with their statement, numbers and threshold."""
    failed = [v for v in verdicts if v.passed is False]
    if not failed:
        return "Every evaluated claim passed.\n"
    lines = [r"The following claims fail on the default runs:", r"\begin{itemize}"]
    esc = claims.tex_escape
    for v in failed:
        lines.append(
            rf"\item \texttt{{{esc(v.claim)}}}: {esc(v.statement)} "
            rf"Threshold: {esc(v.threshold)}. Measured: {esc(v.detail)}."
        )
    lines.append(r"\end{itemize}")
    return "\n".join(lines) + "\n"


def _md(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "∞" if value == math.inf else "−∞" if value == -math.inf else f"{value:.3g}"


def readme_table(verdicts: list[claims.Verdict]) -> str:
    """The claims table in Markdown."""
    lines = [
        "| claim | experiment | statistic | 95% CI | p | verdict | seeds |",
        "| --- | --- | ---: | --- | ---: | --- | ---: |",
    ]
    for v in verdicts:
        verdict = {True: "pass", False: "**fail**", None: "not run"}[v.passed]
        ci = f"[{_md(v.ci_low)}, {_md(v.ci_high)}]" if v.ci_low is not None else "–"
        lines.append(
            f"| `{v.claim}` | {v.experiment} | {_md(v.statistic)} | {ci} | {_md(v.p_value)} "
            f"| {verdict} | {v.n_seeds if v.n_seeds is not None else '–'} |"
        )
    return "\n".join(lines)


def update_readme(verdicts: list[claims.Verdict], readme=None) -> None:
    """Replace the text between the README's claims markers with the generated table."""
    readme = readme or paths.ROOT / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} block")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{readme_table(verdicts)}\n{README_END}{tail}")


def write_report(results_dir=None) -> list[claims.Verdict]:
    """Evaluate every claim on the saved results and write all generated text."""
    results = claims.load_results(results_dir=results_dir)
    verdicts = claims.evaluate_all(results)
    claims.write_outputs(verdicts)
    paths.PAPER_GENERATED.mkdir(parents=True, exist_ok=True)
    numbers = paper_numbers(results, verdicts)
    lines = ["% Generated by mol_diffusion.report; do not edit."]
    lines += [rf"\newcommand{{\{name}}}{{{value}}}" for name, value in numbers.items()]
    (paths.PAPER_GENERATED / "numbers.tex").write_text("\n".join(lines) + "\n")
    (paths.PAPER_GENERATED / "discussion.tex").write_text(discussion_items(verdicts))
    update_readme(verdicts)
    return verdicts
