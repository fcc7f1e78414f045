"""Generated text for the README and the paper."""

import pandas as pd
import pytest

from mol_diffusion import claims, report


def verdicts():
    base = dict(estimand="slope", region="in (-1.25, -0.75)", effect="-1", effect_reason="1/n")
    contradicted = claims.Verdict(
        "paired_rate",
        "sample_complexity",
        "decays like 1/n.",
        **base,
        estimate=-1.6,
        ci_low=-1.9,
        ci_high=float("inf"),
        raw_verdict="contradicted",
        verdict="contradicted",
        design_power=0.91,
        n_seeds=6,
        detail="per-seed slopes; 50% < x_1 & y^2",
    )
    capped = claims.Verdict(
        "unlabeled_decay",
        "unlabeled_scaling",
        "a floor.",
        **{**base, "region": "> 0"},
        estimate=0.04,
        ci_low=0.02,
        ci_high=0.06,
        raw_verdict="supported",
        verdict="inconclusive",
        design_power=0.5,
        n_seeds=5,
        detail="at most inconclusive: design power 0.50 < 0.8",
    )
    missing = claims.Verdict("pareto_front", "pareto_front", "close.", **base)
    return [contradicted, capped, missing]


def test_readme_table_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_BEGIN}\nold table\n{report.README_END}\noutro\n")
    report.update_readme(verdicts(), readme=readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert (
        "| `paired_rate` | -1.6 | [-1.9, ∞] | in (-1.25, -0.75) | **contradicted** | 0.91 | 6 "
        "| pilot |" in text
    )
    assert (
        "| `unlabeled_decay` | 0.04 | [0.02, 0.06] | > 0 | inconclusive (interval: supported)"
        in text
    )
    assert "| `pareto_front` | – | – | in (-1.25, -0.75) | not run | – | – | pilot |" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="claims:begin"):
        report.update_readme(verdicts(), readme=readme)


def _policy_rows() -> list[dict]:
    rows = []
    for env, env_id in enumerate(["E/A-v0", "E/B-v0"]):
        for method, score in (("expert", 1.0), ("bc", 0.5), ("two_stage_on_policy", 0.8)):
            for n in (2, 5, 30):
                for rep in (0, 1):
                    for h in (50, 200):
                        rows.append(
                            dict(
                                env=env,
                                env_id=env_id,
                                method=method,
                                n=n,
                                replicate=rep,
                                horizon=h,
                                normalized_score=score + 0.1 * rep + (h == 50),
                                successes=3 + rep,
                                success_trials=8,
                            )
                        )
    return rows


def test_policy_table_gives_each_environment_its_methods_at_both_ends_of_n():
    summary = report.policy_summary(pd.DataFrame(_policy_rows()))
    assert sorted(summary.n.unique()) == [2, 30]  # the smallest and the largest n only
    assert list(summary.method.unique()) == ["expert", "bc", "two_stage_on_policy"]  # table order
    bc = summary[(summary.method == "bc") & (summary.env_id == "E/B-v0") & (summary.n == 30)]
    # H = 200 only; mean 0.55 and s.e. 0.05 over the two seeds; success (3 + 4) / 16
    assert bc.score.item() == pytest.approx(0.55) and bc.score_se.item() == pytest.approx(0.05)
    assert bc.success.item() == pytest.approx(7 / 16)
    text = report.policy_markdown(summary)
    assert text.index("`E/A-v0` (2 seeds)") < text.index("`E/B-v0`")
    assert "| MLP BC (own env) | 0.55 ± 0.05 | 0.44 | 0.55 ± 0.05 | 0.44 |" in text
    tex = report.policy_tex(summary)
    assert r"\newcommand{\policyTable}" in tex and r"0.55 $\pm$ 0.05" in tex
    assert r"\texttt{E/A-v0}" in tex


def test_policy_outputs_give_one_table_per_family_and_a_placeholder_for_a_missing_one():
    table = pd.DataFrame(_policy_rows())
    tex, markdown = report.policy_outputs({"diffusion_policy_reacher": table})
    assert "\\newcommand{\\policyTable}{--}" in tex  # no point-navigation table
    assert tex.count("\\newcommand{\\reacherPolicyTable}{%") == 1
    assert "results/diffusion_policy_reacher.csv" in tex
    assert markdown.startswith("**diffusion_policy_reacher**")
    assert report.policy_outputs({}) == (
        "\\newcommand{\\policyTable}{--}\n\\newcommand{\\reacherPolicyTable}{--}\n",
        None,
    )
    tex, markdown = report.policy_outputs({"diffusion_policy": table, **{}})
    assert markdown.count("`E/A-v0`") == 1


def test_discussion_escapes_latex_and_groups_by_verdict():
    text = report.discussion_items(verdicts())
    assert (
        text.index("Contradicted")
        < text.index(r"\texttt{paired\_rate}")
        < text.index("Inconclusive")
    )
    assert r"\texttt{unlabeled\_decay}" in text and "pareto" not in text
    assert r"50\% $<$ x\_1 \& y\^{}2" in text
    assert report.discussion_items(verdicts()[2:]) == "Every evaluated claim is supported.\n"


def test_claims_tex_macros_handle_infinite_bounds(tmp_path):
    claims.write_outputs(verdicts(), json_path=tmp_path / "c.json", tex_path=tmp_path / "c.tex")
    tex = (tmp_path / "c.tex").read_text()
    assert r"\newcommand{\claimPairedRateHigh}{$\infty$}" in tex
    assert r"\newcommand{\claimParetoFrontEstimate}{--}" in tex
    assert r"\newcommand{\claimUnlabeledDecayVerdict}{inconclusive}" in tex
    assert '"ci_high": "inf"' in (tmp_path / "c.json").read_text()


def test_paper_numbers_come_from_configs_and_results():
    numbers = report.paper_numbers({}, verdicts())
    assert numbers["numClaimsEvaluated"] == "2" and numbers["numClaimsContradicted"] == "1"
    assert numbers["numClaimsInconclusive"] == "1" and numbers["numClaimsRawSupported"] == "1"
    assert numbers["numPSpec"] == "9"  # dim 2, cond_dim 2: 4 + 2 + 3
    assert numbers["numScPGenMin"] == "--"


def test_calibration_summary_reads_the_design_seeds_and_the_ladder():
    rows = []
    for claim_id in claims.REGISTRY:
        seeds = report.load_experiment(claims.REGISTRY[claim_id].experiment).replicates
        # (scenario, rate, mcse, seeds): size and power at the design, power at twice its seeds
        for scenario, rate, mcse, at in (
            ("size", 0.03, 0.005, seeds),
            ("power", 0.5, 0.016, seeds),
            ("power", 0.85, 0.011, 2 * seeds),
        ):
            rows.append(
                dict(claim=claim_id, scenario=scenario, rate=rate, mcse=mcse, seeds=at)
                | dict(simulations=1000, note="")
                # as the harness decides: size <= 0.05 + 1.645 MCSE, power >= 0.8
                | dict(passes=rate <= 0.05 + 1.645 * mcse if scenario == "size" else rate >= 0.8)
            )
    summary = report.calibration_summary(pd.DataFrame(rows))
    first = summary.iloc[0]
    assert first["size"] == 0.03 and first["power"] == 0.5 and not first["passes"]
    assert first["seeds_for_power"] == str(2 * first["seeds"])
    assert f"| `{next(iter(claims.REGISTRY))}` |" in report.calibration_markdown(summary)
    assert r"\newcommand{\calibrationTable}" in report.calibration_tex(summary)


def test_restoration_pilot_table_averages_tasks_then_replicates():
    # two replicates of two tasks: replicate PSNRs (10 + 12) / 2 = 11 and (14 + 16) / 2 = 15,
    # so mean 13 and sd sqrt(8) = 2.83; the oracle (n = 0) has one replicate and no sd
    rows = [
        dict(method="ridge", n=8, replicate=r, task=k, psnr=p, ssim=0.5)
        for r, pair in enumerate([(10.0, 12.0), (14.0, 16.0)])
        for k, p in enumerate(pair)
    ]
    rows += [
        dict(method="conv_oracle", n=0, replicate=0, task=k, psnr=20.0, ssim=0.9) for k in range(2)
    ]
    summary = report.restoration_pilot_summary(pd.DataFrame(rows))
    assert list(summary.method) == ["conv_oracle", "ridge"]  # the table's row order
    md = report.restoration_markdown(summary)
    assert "| ridge per task | 13.00 ± 2.83 (0.500) |  |" in md
    assert md.splitlines()[2].endswith("|  | 20.00 (0.900) |")
    tex = report.restoration_tex(summary)
    assert r"13.00 $\pm$ 2.83 (0.500)" in tex and tex.startswith("% Generated")
    assert "no table" in report.restoration_tex(None)


def test_restoration_table_adds_the_specialists_and_puts_the_oracle_last():
    """restoration_summary of an experiment table: the two-stage rows' specialists become rows
    of their own (lambda-weighted SSIM of the tasks), the oracle's n is 0."""
    base = dict(m=600, weights_index=0, weights="0.25,0.75")
    rows = [
        dict(
            base,
            method="two_stage",
            n=8,
            replicate=r,
            psnr=15.0 + r,
            ssim=0.8,
            psnr_specialist=16.0,
            ssim_specialist_task0=0.6,
            ssim_specialist_task1=1.0,
        )
        for r in range(2)
    ]
    rows += [dict(base, method="oracle", n=None, replicate=0, psnr=18.0, ssim=0.9)]
    summary = report.restoration_summary(pd.DataFrame(rows))
    assert list(summary.method) == ["oracle", "two_stage", "specialist"]
    own = summary[summary.method == "specialist"].iloc[0]
    assert own.psnr == 16.0 and own.ssim == pytest.approx(0.25 * 0.6 + 0.75 * 1.0)
    ts = summary[summary.method == "two_stage"].iloc[0]
    assert ts.psnr == 15.5 and ts.psnr_sd == pytest.approx(2**-0.5)
    assert int(summary[summary.method == "oracle"].n.iloc[0]) == 0
    md = report.restoration_markdown(summary)
    assert md.splitlines()[2] == "| oracle (m true pairs per task) |  | 18.00 (0.900) |"
