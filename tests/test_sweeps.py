"""Sweeps: configs validated on load, canonical cells, identical tables for any worker count."""

import pandas as pd
import pytest

from mol_diffusion.config import load_experiment
from mol_diffusion.sweeps import TIMING_COLUMNS, cells, load_or_run, run_sweep

EXPERIMENTS = [
    "sample_complexity",
    "unlabeled_scaling",
    "pareto_front",
    "misspecified",
    "neural_generalist",
]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_shipped_config_loads_in_both_sizes(name):
    full, quick = load_experiment(name), load_experiment(name, quick=True)
    assert quick.quick and not full.quick
    assert len(cells(quick)) < len(cells(full))
    assert full.fingerprint() != quick.fingerprint()


def write(tmp_path, text):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


BASE = """
seed = 1
replicates = 2
methods = ["two_stage", "labeled_only", "oracle"]
n = [8, 16]
m = [64]
[family]
num_tasks = 2
[specialist]
kind = "linear"
[generalist]
kind = "random_features"
capacities = [4, 8]
[pseudo_labels]
steps = 20
"""


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (("n = [8, 16]", "n = [0, 16]"), "n: must hold positive integers"),
        (("methods = [", 'methods = ["magic", '), "methods must be a non-empty subset"),
        (('kind = "random_features"', 'kind = "transformer"'), "kind must be one of"),
        (("capacities = [4, 8]", "capacities = [4, 8]\nwidth = 3"), "bad option"),
        (
            ("seed = 1", "seed = 1\nweights = [[0.5, 0.6]]"),
            "weights.0. must sum to 1",
        ),
        (("seed = 1", "seed = 1\ncolour = 3"), "unknown keys"),
        (
            ("[family]\nnum_tasks = 2", "[family]\nnum_tasks = 0"),
            "num_tasks must be a positive integer",
        ),
        (("steps = 20", 'sampler = "euler"'), "sampler must be one of"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, change, match):
    old, new = change
    assert old in BASE
    with pytest.raises(ValueError, match=match):
        load_experiment(write(tmp_path, BASE.replace(old, new, 1)))


def test_missing_config_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"available: .*sample_complexity"):
        load_experiment("no_such_experiment")


def test_same_seed_same_table_with_one_and_two_workers_and_cache(tmp_path):
    config = load_experiment(write(tmp_path, BASE))
    grid = cells(config)
    assert len(grid) == 2 * (2 * 2 + 2 * 2 + 2)  # replicates x capacities x (ts n + lo n + oracle)
    one = run_sweep(config, workers=1, progress=False)
    two = run_sweep(config, workers=2, progress=False)
    keep = [c for c in one.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(one[keep], two[keep])
    assert one.n.isna().sum() == 4 and set(one.method) == {"two_stage", "labeled_only", "oracle"}
    # the cache returns the stored table for the same config and reruns for a changed one
    first = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    again = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)
    assert (tmp_path / "exp.csv").is_file() and (tmp_path / "exp.meta.json").is_file()
    changed = load_experiment(write(tmp_path, BASE.replace("seed = 1", "seed = 2")))
    rerun = load_or_run(changed, workers=1, progress=False, results_dir=tmp_path)
    assert not rerun.risk.equals(first.risk)
