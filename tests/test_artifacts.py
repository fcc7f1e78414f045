"""Committed artifacts agree: claims.json, the generated TeX, README's tables, the executed
notebooks and paper/main.pdf all come from the committed results and the running code.

Each test recomputes what an artifact should hold from the committed tables (or reads what
computed it) and compares; a result changed without regenerating its artifacts fails here
(the way out: ``make figures``, which also rebuilds the paper when TeX is installed).
"""

import json
import os
import re

import nbformat
import pytest

from mol_diffusion import artifacts, claims, paths, report
from mol_diffusion.config import load_experiment
from mol_diffusion.sweeps import results_path

EXECUTED = sorted(paths.EXECUTED.glob("*.ipynb"))


@pytest.fixture(scope="module")
def verdicts():
    return claims.evaluate_all()


def test_write_if_changed_keeps_an_unchanged_file_and_its_time(tmp_path):
    path = tmp_path / "out" / "a.json"
    assert artifacts.write_if_changed(path, '{"a": 1}\n')
    os.utime(path, ns=(10**18, 10**18))
    assert not artifacts.write_if_changed(path, '{"a": 1}\n')
    assert path.stat().st_mtime_ns == 10**18
    assert artifacts.write_if_changed(path, b'{"a": 2}\n') and path.read_text() == '{"a": 2}\n'
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary left behind


def test_claims_json_is_what_the_committed_tables_give(verdicts, tmp_path):
    claims.write_outputs(verdicts, json_path=tmp_path / "c.json", tex_path=tmp_path / "c.tex")
    assert (tmp_path / "c.json").read_text() == paths.CLAIMS_JSON.read_text(), (
        "claims.json is not what the committed tables give: python -m mol_diffusion report"
    )
    assert (tmp_path / "c.tex").read_text() == paths.CLAIMS_TEX.read_text()
    assert not any(v.stale for v in verdicts), [v.claim for v in verdicts if v.stale]


def test_readme_tables_are_the_generated_ones(verdicts):
    text = paths.ROOT.joinpath("README.md").read_text()
    block = text.split(report.README_BEGIN)[1].split(report.README_END)[0]
    assert block.strip() == report.readme_table(verdicts).strip(), "python -m mol_diffusion report"
    calibration = claims.load_calibration()
    summary = report.calibration_markdown(report.calibration_summary(calibration))
    block = text.split(report.CALIBRATION_BEGIN)[1].split(report.CALIBRATION_END)[0]
    assert block.strip() == summary.strip()
    _, policy = report.policy_outputs(claims.load_results())
    assert policy is not None, "no policy table"
    block = text.split(report.POLICY_BEGIN)[1].split(report.POLICY_END)[0]
    assert block.strip() == policy.strip(), "python -m mol_diffusion report"


def outputs(notebook, kind: str):
    for index, cell in enumerate(notebook.cells):
        for out in cell.get("outputs", []):
            if kind == "stderr" and out.get("name") == "stderr":
                yield index, out["text"]
            elif kind == "stdout" and out.get("name") == "stdout":
                yield index, out["text"]
            elif kind == "image" and "image/png" in out.get("data", {}):
                yield index, None


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: p.stem)
def test_executed_notebooks_were_run_on_the_committed_tables(path):
    """Each run_experiment call prints ``sweeps.describe_source``; its rows and code fingerprint
    must be those of the committed table, and the run must not be a quick one."""
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["papermill"]["parameters"].get("quick", False) is False
    assert notebook.metadata["papermill"].get("duration") is not None  # budgets read it
    source = (paths.NOTEBOOKS / f"{path.stem}.py").read_text()
    names = re.findall(r'run_experiment\("(\w+)"', source)
    text = "".join(t for _, t in outputs(notebook, "stderr"))
    for name in names:
        config = load_experiment(name)
        meta = json.loads(results_path(config).with_suffix(".meta.json").read_text())
        line = next(  # the table line, not the sweep's progress bar (same prefix)
            (ln for ln in text.splitlines() if ln.startswith(f"{name}: ") and " rows, " in ln),
            None,
        )
        assert line is not None, f"{path.name}: no table line for {name}"
        assert f", {meta['rows']} rows, " in line and line.endswith(
            f", code {meta['code']['fingerprint']}"
        ), f"{path.name} was executed on another {name} table: make figures ({line})"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: p.stem)
def test_executed_notebooks_show_the_committed_verdicts(path):
    notebook = nbformat.read(path, as_version=4)
    shown = re.findall(
        r"^\[([a-z ]+)\] \(([a-z ,A-Z]+)\) (\w+):",
        "".join(t for _, t in outputs(notebook, "stdout")),
        flags=re.M,
    )
    assert shown, f"{path.name} prints no verdict"
    committed = {r["claim"]: r for r in json.loads(paths.CLAIMS_JSON.read_text())}
    for verdict, status, claim in shown:
        assert (verdict, status) == (committed[claim]["verdict"], committed[claim]["status"]), (
            f"{path.name} shows {claim} as {verdict} ({status}): make figures"
        )


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: p.stem)
def test_executed_notebooks_show_every_figure_and_no_flood_of_progress(path):
    notebook = nbformat.read(path, as_version=4)
    shown = {index for index, _ in outputs(notebook, "image")}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "plotting.savefig(" in cell.source:
            assert index in shown, f"{path.name}, cell {index} makes a figure it does not show"
    streams = sum(1 for _ in outputs(notebook, "stderr"))
    assert streams <= 40, f"{path.name}: {streams} stderr outputs (progress bars flood it)"


def test_the_committed_pdf_was_built_from_the_committed_inputs():
    stamp = json.loads(artifacts.PAPER_STAMP.read_text())
    now = artifacts.paper_stamp()
    assert now["pdf"] == stamp["pdf"], "paper/main.pdf is not the PDF the stamp was made for"
    changed = sorted(
        k
        for k in {*now["inputs"], *stamp["inputs"]}
        if now["inputs"].get(k) != stamp["inputs"].get(k)
    )
    assert not changed, f"paper/main.pdf was built from other inputs: {changed}; make paper"
