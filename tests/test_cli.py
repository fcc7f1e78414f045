"""The command line: run lists the experiments, takes --results-dir, says what it did."""

import pytest
from tiny_configs import TINY

from mol_diffusion.__main__ import main


def test_run_without_an_experiment_lists_them_with_their_kinds(capsys):
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "sample_complexity" in out and "policy" in out and "restoration" in out


def test_run_says_whether_it_computed_or_loaded_and_writes_where_told(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    results = tmp_path / "out"
    assert main(["run", str(config), "--workers", "1", "--results-dir", str(results)]) == 0
    assert capsys.readouterr().out.startswith("tiny: computed, 2 rows")
    assert (results / "tiny.csv").is_file()
    assert main(["run", str(config), "--workers", "1", "--results-dir", str(results)]) == 0
    assert capsys.readouterr().out.startswith("tiny: loaded, 2 rows")


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_run_rejects_a_bad_worker_count(workers, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "pareto_front", "--workers", workers])
    assert stop.value.code == 2
    assert "--workers: must be a positive integer" in capsys.readouterr().err


def test_bad_input_is_one_line_not_a_traceback(tmp_path, capsys):
    from mol_diffusion.__main__ import cli

    config = tmp_path / "bad.toml"
    config.write_text(TINY.replace("num_tasks = 2", "num_task = 2"))
    assert cli(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: experiment 'bad': family: unknown keys ['num_task']")
    assert "Traceback" not in err and err.count("\n") == 1


def test_profile_names_the_cell_and_lists_where_its_time_went(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    assert main(["profile", str(config), "--index", "0", "--top", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{config}: cell ") and out[0].endswith(" s")
    assert "ncalls" in out[1] and "tottime" in out[1]
    assert len(out) == 2 + 5  # the header row and the five functions asked for
    assert not (tmp_path / "tiny.csv").exists()  # a profile stores nothing


def test_profile_rejects_a_cell_index_outside_the_grid(tmp_path):
    from mol_diffusion.profiling import profile_cell

    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    with pytest.raises(ValueError, match=r"index must be an integer in \[0, 2\), got 2"):
        profile_cell(str(config), index=2)
