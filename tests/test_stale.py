"""Results that know their code: a table computed by other code is stale, and says so.

Every stored table's meta file records ``provenance.code_record`` (the kind's modules'
fingerprint and the numeric libraries' versions). These tests change that record the two ways
it changes in practice, by editing the meta file (a table computed elsewhere, or before tables
recorded their code) and by changing the running code's fingerprint, and check that the sweep
engine, the CLI and the claims all notice.
"""

import json

import pytest
from tiny_configs import TINY

from mol_diffusion import claims, provenance, sweeps
from mol_diffusion.__main__ import main
from mol_diffusion.config import load_experiment
from mol_diffusion.sweeps import StaleResultsWarning, load_or_run


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    config = load_experiment(path)
    first = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    return config, first, tmp_path


def edit_meta(results, change) -> None:
    path = results / "tiny.meta.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_a_new_table_records_the_code_that_computed_it(tiny):
    config, first, results = tiny
    meta = json.loads((results / "tiny.meta.json").read_text())
    assert meta["code"] == provenance.code_record(config.kind)
    assert set(meta["code"]["libraries"]) == set(provenance.LIBRARIES)
    assert first.attrs == {"source": "computed", "code": meta["code"]["fingerprint"], "stale": None}
    again = load_or_run(config, workers=1, progress=False, results_dir=results)
    assert again.attrs["source"] == "loaded" and again.attrs["stale"] is None
    assert sweeps.table_status(config, results) == "current"


def older_torch(meta):
    meta["code"]["libraries"]["torch"] = "1.0.0"
    meta["code"]["fingerprint"] = "0" * 16


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda meta: meta.pop("code"), "unrecorded code"),
        (older_torch, "torch 1.0.0 -> "),
    ],
)
def test_a_table_computed_by_other_code_is_recomputed_and_says_why(tiny, change, why, capsys):
    config, first, results = tiny
    edit_meta(results, change)
    assert sweeps.table_status(config, results).startswith("stale: ")
    assert why in sweeps.table_status(config, results)
    table = load_or_run(config, workers=1, progress=True, results_dir=results)
    assert table.attrs["source"].startswith("recomputed (stale: ") and why in table.attrs["source"]
    assert "tiny.csv is stale" in capsys.readouterr().err
    assert sweeps.table_status(config, results) == "current"
    assert table.drop(columns="fit_seconds").equals(first.drop(columns="fit_seconds"))


def test_a_stale_table_is_reused_only_when_asked_and_then_with_a_warning(tiny):
    config, first, results = tiny
    edit_meta(results, older_torch)
    with pytest.warns(StaleResultsWarning, match="STALE results reused.*torch 1.0.0"):
        table = load_or_run(
            config, workers=1, progress=False, results_dir=results, reuse_stale=True
        )
    assert table.attrs["source"].startswith("loaded stale (") and table.attrs["stale"]
    assert table.equals(first)  # the stored table, not a recomputed one


def test_a_change_of_the_running_code_makes_stored_tables_stale(tiny, monkeypatch):
    config, _, results = tiny
    monkeypatch.setattr(provenance, "kind_code_fingerprint", lambda kind: "f" * 16)
    why = sweeps.table_status(config, results)
    assert why.startswith("stale: the code of its experiment kind changed")
    assert "-> ffffffffffffffff" in why


def test_cells_written_by_other_code_are_not_resumed_from(tmp_path, monkeypatch):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    config = load_experiment(path)
    cache = tmp_path / "cells"
    first = sweeps.run_sweep(config, workers=1, progress=False, cache_dir=cache)
    again = sweeps.run_sweep(config, workers=1, progress=False, cache_dir=cache)
    assert again.attrs["cached_cells"] == len(first)  # same code: every cell resumed
    monkeypatch.setattr(provenance, "kind_code_fingerprint", lambda kind: "f" * 16)
    other = sweeps.run_sweep(config, workers=1, progress=False, cache_dir=cache)
    assert other.attrs["cached_cells"] == 0  # the same files, written by other code
    # and load_or_run keys its cell directory by the code, so it never even looks there
    assert sweeps.cell_cache_dir(config, tmp_path).name.endswith(
        "-" + provenance.code_record(config.kind)["fingerprint"]
    )


def test_a_table_of_another_config_is_not_reusable_and_says_so(tiny, capsys):
    config, _, results = tiny
    edit_meta(results, lambda meta: meta.update(fingerprint="0" * 16))
    assert sweeps.table_status(config, results).startswith("other config: ")
    table = load_or_run(config, workers=1, progress=True, results_dir=results, reuse_stale=True)
    assert table.attrs["source"] == "computed"
    assert "tiny.csv: computed from another config" in capsys.readouterr().err


def test_a_kind_outside_the_package_is_fingerprinted_by_its_source(tmp_path, monkeypatch):
    import sys

    (tmp_path / "outside_kind.py").write_text("class Kind:\n    name = 'k'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import outside_kind

    before = provenance.kind_code_fingerprint(outside_kind.Kind())
    assert before is not None and before.startswith("x")
    (tmp_path / "outside_kind.py").write_text("class Kind:\n    name = 'k2'\n")
    assert provenance.kind_code_fingerprint(outside_kind.Kind()) != before
    del sys.modules["outside_kind"]


def test_cli_lists_table_states_and_says_what_it_did_and_from_which_code(tiny, capsys):
    _, _, results = tiny
    config_path = results / "tiny.toml"
    assert main(["run", str(config_path), "--workers", "1", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    code = json.loads((results / "tiny.meta.json").read_text())["code"]["fingerprint"]
    assert out.startswith("tiny: loaded, 2 rows") and f"code {code}" in out
    edit_meta(results, older_torch)
    args = ["run", str(config_path), "--workers", "1", "--results-dir", str(results)]
    assert main([*args, "--reuse-stale"]) == 0
    assert "loaded stale (torch 1.0.0" in capsys.readouterr().out
    assert main(args) == 0
    assert "tiny: recomputed (stale: torch 1.0.0" in capsys.readouterr().out


def test_cli_stale_names_the_experiments_without_a_current_table(tmp_path, capsys):
    assert main(["stale", "--quick", "--results-dir", str(tmp_path)]) == 0
    names = capsys.readouterr().out.split()
    assert "sample_complexity" in names and "diffusion_policy" in names  # nothing there yet


def test_verdicts_on_a_stale_table_say_so(tiny):
    _, table, _ = tiny
    table.attrs["stale"] = "torch 1.0.0 -> 2.13.0"
    verdict = claims.evaluate("scarce_advantage", table, calibration=None)
    assert verdict.stale == "scarce_label: torch 1.0.0 -> 2.13.0"  # the table it reads
    assert verdict.status_label.endswith(", STALE TABLE")
    assert "STALE TABLE: scarce_label: torch 1.0.0" in claims.describe(verdict)
    assert claims.verdict_frame([verdict]).status[0].endswith("STALE TABLE")
    table.attrs["stale"] = None
    fresh = claims.evaluate("scarce_advantage", table, calibration=None)
    assert fresh.stale is None and "STALE" not in fresh.status_label


def test_a_stale_control_table_marks_the_verdict_that_compares_with_it(tiny):
    _, table, _ = tiny
    control = table.copy()
    control.attrs["stale"] = "torch 1.0.0 -> 2.13.0"
    verdict = claims.evaluate(
        "misspecified_floor", table, results={"sample_complexity": control}, calibration=None
    )
    assert verdict.stale == "sample_complexity: torch 1.0.0 -> 2.13.0"


def test_load_results_marks_each_table_current_or_stale(tmp_path):
    import shutil

    from mol_diffusion import paths

    for suffix in (".csv", ".meta.json"):
        shutil.copy(paths.RESULTS / f"pareto_front{suffix}", tmp_path)
    (table,) = claims.load_results(results_dir=tmp_path).values()
    assert table.attrs["stale"] is None, "the committed pareto_front table is stale"
    edit_meta_of = tmp_path / "pareto_front.meta.json"
    meta = json.loads(edit_meta_of.read_text())
    older_torch(meta)
    edit_meta_of.write_text(json.dumps(meta))
    (table,) = claims.load_results(results_dir=tmp_path).values()
    assert table.attrs["stale"].startswith("torch 1.0.0 -> ")


def test_load_results_loads_a_control_that_has_no_claims_of_its_own(tmp_path):
    # misspecified_floor compares with sample_complexity, whose own claims were retired
    import shutil

    from mol_diffusion import paths

    assert not any(c.experiment == "sample_complexity" for c in claims.REGISTRY.values())
    for name in ("misspecified", "sample_complexity"):
        for suffix in (".csv", ".meta.json"):
            shutil.copy(paths.RESULTS / f"{name}{suffix}", tmp_path)
    tables = claims.load_results(results_dir=tmp_path)
    assert set(tables) == {"misspecified", "sample_complexity"}
    verdict = claims.evaluate(
        "misspecified_floor", tables["misspecified"], results=tables, calibration=None
    )
    assert verdict.raw_verdict != "not evaluable", verdict.detail
