"""Generated text for the README and the paper."""

import pytest

from mol_diffusion import claims, report


def verdicts():
    good = claims.Verdict(
        "paired_rate",
        "sample_complexity",
        "decays like 1/n.",
        "slope",
        "CI inside [-1.25, -0.75]",
        statistic=-1.1,
        ci_low=-1.6,
        ci_high=float("inf"),
        p_value=0.004,
        passed=False,
        n_seeds=6,
        detail="HC3 CI [-1.6, -0.6]; 50% < x_1 & y^2",
    )
    missing = claims.Verdict("pareto_front", "pareto_front", "close.", "ratio", "CI low >= 0.9")
    return [good, missing]


def test_readme_table_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_BEGIN}\nold table\n{report.README_END}\noutro\n")
    report.update_readme(verdicts(), readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert "| `paired_rate` | sample_complexity | -1.1 | [-1.6, ∞] | 0.004 | **fail** | 6 |" in text
    assert "| `pareto_front` | pareto_front | – | – | – | not run | – |" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="claims:begin"):
        report.update_readme(verdicts(), readme)


def test_discussion_escapes_latex_and_lists_only_failures():
    text = report.discussion_items(verdicts())
    assert r"\texttt{paired\_rate}" in text and "pareto" not in text
    assert r"50\% $<$ x\_1 \& y\^{}2" in text
    assert report.discussion_items(verdicts()[1:]) == "Every evaluated claim passed.\n"


def test_claims_tex_macros_handle_infinite_bounds(tmp_path):
    claims.write_outputs(verdicts(), json_path=tmp_path / "c.json", tex_path=tmp_path / "c.tex")
    tex = (tmp_path / "c.tex").read_text()
    assert r"\newcommand{\claimPairedRateHigh}{$\infty$}" in tex
    assert r"\newcommand{\claimParetoFrontStatistic}{--}" in tex
    assert '"ci_high": "inf"' in (tmp_path / "c.json").read_text()


def test_paper_numbers_come_from_configs_and_results():
    numbers = report.paper_numbers({}, verdicts())
    assert numbers["numClaimsEvaluated"] == "1" and numbers["numClaimsFailed"] == "1"
    assert numbers["numPSpec"] == "9"  # dim 2, cond_dim 2: 4 + 2 + 3
    assert numbers["numScPGenMin"] == "--"
