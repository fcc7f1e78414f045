"""Sweeps: configs validated on load, canonical cells, identical tables for any worker count."""

import pandas as pd
import pytest
import torch

from mol_diffusion import sweeps
from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.grid import Cell, fit_cell, fit_cells, replicate_data
from mol_diffusion.kinds.restoration import RESTORATION as RESTORATION_KIND
from mol_diffusion.sweeps import comparable, load_or_run, run_sweep


def cells(config):
    return config.kind.cells(config)


def run_cell(config, cell):
    """The one row of a grid cell, run alone."""
    (rows,) = config.kind.run_cells(config, [cell])
    assert len(rows) == 1
    return rows[0]


EXPERIMENTS = [
    "sample_complexity",
    "unlabeled_scaling",
    "pareto_front",
    "misspecified",
    "neural_generalist",
    "image_restoration",
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
kind = "gaussian"
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
        (('kind = "gaussian"\n', ""), "missing key 'kind'"),
        (('kind = "gaussian"', 'kind = "quantum"'), "unknown experiment kind 'quantum'"),
        (("[family]\n", '[family]\nkind = "gaussian"\n'), "family: unknown keys \\['kind'\\]"),
        (("num_tasks = 2", "num_task = 2"), r"family: unknown keys \['num_task'\]; known"),
        (
            ('methods = ["two_stage", "labeled_only", "oracle"]', 'methods = "oracle"'),
            "methods must be a list",
        ),
        (("seed = 1", 'seed = 1\nweights = "equal"'), 'weights must be "uniform" or a list'),
        (("steps = 20", "steps = 20\n[quick]\nreplicats = 1"), r"unknown keys \['replicats'\]"),
        (
            ("steps = 20", "steps = 20\n[quick]\ngeneralist = { capacites = [4] }"),
            "bad option.*capacites.*with its .quick. overrides",
        ),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, change, match):
    old, new = change
    assert old in BASE
    with pytest.raises(ValueError, match=match):
        load_experiment(write(tmp_path, BASE.replace(old, new, 1)))


def test_an_old_style_config_is_told_where_the_kind_moved(tmp_path):
    old = RESTORATION.replace('kind = "restoration"\n', "", 1).replace(
        "[family]\n", '[family]\nkind = "restoration"\n'
    )
    with pytest.raises(ValueError, match=r"moved from \[family\] to the top of the file"):
        load_experiment(write(tmp_path, old))


def test_missing_config_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"available: .*sample_complexity"):
        load_experiment("no_such_experiment")


def test_same_seed_same_table_with_one_and_two_workers_and_cache(tmp_path):
    config = load_experiment(write(tmp_path, BASE))
    grid = cells(config)
    assert len(grid) == 2 * (2 * 2 + 2 * 2 + 2)  # replicates x capacities x (ts n + lo n + oracle)
    one = run_sweep(config, workers=1, progress=False)
    two = run_sweep(config, workers=2, progress=False)
    pd.testing.assert_frame_equal(comparable(one, config.kind), comparable(two, config.kind))
    assert one.n.isna().sum() == 4 and set(one.method) == {"two_stage", "labeled_only", "oracle"}
    # the cache returns the stored table for the same config and reruns for a changed one
    first = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    again = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)
    assert (tmp_path / "exp.csv").is_file() and (tmp_path / "exp.meta.json").is_file()
    changed = load_experiment(write(tmp_path, BASE.replace("seed = 1", "seed = 2")))
    rerun = load_or_run(changed, workers=1, progress=False, results_dir=tmp_path)
    assert not rerun.risk.equals(first.risk)


def test_later_sweeps_reuse_the_pool_and_an_interrupted_one_drops_it(tmp_path, monkeypatch):
    config = load_experiment(write(tmp_path, BASE))
    one = run_sweep(config, workers=1, progress=False)
    two = run_sweep(config, workers=2, progress=False)
    (pool,) = sweeps._SHARED_POOL.values()
    again = run_sweep(config, workers=2, progress=False)
    assert list(sweeps._SHARED_POOL.values()) == [pool]  # no second start-up
    for table in (two, again):
        pd.testing.assert_frame_equal(comparable(one, config.kind), comparable(table, config.kind))

    # a sweep that stops with an error leaves no pool (and no task) behind
    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps, "_checked", fail)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, workers=2, progress=False)
    assert not sweeps._SHARED_POOL


NEURAL = BASE.replace(
    'kind = "random_features"\ncapacities = [4, 8]',
    'kind = "mlp"\ncapacities = [8, 16]\ndepth = 1\nsteps = 30\nbatch_size = 32',
)


def test_batched_sweep_is_bit_for_bit_the_cell_by_cell_sweep(tmp_path):
    config = load_experiment(write(tmp_path, NEURAL))
    assert config.generalist.kind == "mlp"
    batched = comparable(run_sweep(config, workers=1, progress=False), config.kind)
    single = run_sweep(config, workers=1, progress=False, batch=False)
    pd.testing.assert_frame_equal(batched, comparable(single, config.kind))
    two = run_sweep(config, workers=2, progress=False)
    pd.testing.assert_frame_equal(batched, comparable(two, config.kind))
    # the generalists of both replicates, fitted together, are the ones fitted alone
    pair = [Cell("two_stage", 8, 64, 1, 0, rep) for rep in (0, 1)]
    together = fit_cells(config, pair)
    for cell, fit in zip(pair, together, strict=True):
        alone = fit_cell(config, cell).generalist
        for p, q in zip(alone.net.parameters(), fit.generalist.net.parameters(), strict=True):
            assert torch.equal(p, q)
    with pytest.raises(ValueError, match="one capacity"):
        fit_cells(config, [pair[0], Cell("two_stage", 8, 64, 0, 0, 1)])


RESTORATION = """
kind = "restoration"
seed = 3
replicates = 1
methods = ["two_stage", "labeled_only", "oracle"]
n = [4, 8]
m = [16]
[family]
posterior_samples = 2
sampler_steps = 5
test_images = 12
tasks = [{ kind = "denoise", sigma = 0.3 }, { kind = "inpaint", fraction = 0.5 }]
[specialist]
kind = "conv_gaussian"
image_shape = [8, 8]
kernel = 3
[generalist]
kind = "mlp"
capacities = [16]
depth = 1
steps = 10
batch_size = 16
preconditioning = "edm"
[pseudo_labels]
steps = 5
"""


def test_restoration_cells_give_psnr_columns_and_repeat_exactly(tmp_path):
    config = load_experiment(write(tmp_path, RESTORATION))
    assert config.family.num_tasks == 2 and config.family.image_shape == (8, 8)
    row = run_cell(config, Cell("two_stage", 4, 16, 0, 0, 0))
    again = run_cell(config, Cell("two_stage", 4, 16, 0, 0, 0))
    for key in ("psnr", "psnr_task0", "psnr_task1", "psnr_specialist_task1", "mse_task0"):
        assert row[key] == again[key] and 0 < row[key] < 60
    assert row["psnr"] == pytest.approx((row["psnr_task0"] + row["psnr_task1"]) / 2)
    assert row["num_pairs"] == 2 * 16  # the generalist sees the m pseudo-pairs per task
    lo = run_cell(config, Cell("labeled_only", 4, 16, 0, 0, 0))
    assert lo["num_pairs"] == 2 * 4 and pd.isna(lo["psnr_specialist_task0"])


RESTORATION_CONV = """
kind = "restoration"
seed = 5
replicates = 1
methods = [
  "two_stage", "labeled_only", "degraded", "ridge", "classical", "blind_ridge", "blind_cnn",
]
n = [6]
m = [10]
[family]
estimator = "one_pass"
test_images = 12
cnn_steps = 5
tasks = [{ kind = "denoise", sigma = 0.3 }, { kind = "deblur", width = 1.0, sigma = 0.02 }]
[specialist]
kind = "gaussian_prior"
image_shape = [8, 8]
[generalist]
kind = "conv"
image_shape = [8, 8]
capacities = [8]
steps = 5
batch_size = 16
[pseudo_labels]
kind = "exact"
draws = 3
"""


def test_one_pass_restoration_scores_exact_specialists_and_fits_the_baselines(tmp_path):
    """estimator = one_pass: specialists scored by their exact posterior mean (so the score
    does not depend on any evaluation noise), the conv generalist by its one-pass mean; draws
    pseudo-labels per condition; every baseline a row on the same pairs."""
    from mol_diffusion.metrics import score_estimates
    from mol_diffusion.restorers import RidgeRestorer

    config = load_experiment(write(tmp_path, RESTORATION_CONV))
    row = run_cell(config, Cell("two_stage", 6, 10, 0, 0, 0))
    assert row["num_pairs"] == 2 * 10 * 3  # m conditions per task, 3 draws each
    assert row["ssim"] == pytest.approx((row["ssim_task0"] + row["ssim_task1"]) / 2)
    assert row["psnr_specialist"] == pytest.approx(
        (row["psnr_specialist_task0"] + row["psnr_specialist_task1"]) / 2
    )
    # the specialist's score is that of its exact mean, refitted here on the same pairs
    fit = fit_cell(config, Cell("two_stage", 6, 10, 0, 0, 0))
    tests = RESTORATION_KIND.prepare(config, config.family.build())
    own = score_estimates(
        [s.mean(c) for s, (c, _) in zip(fit.specialists, tests, strict=True)],
        tests,
        (0.5, 0.5),
        (8, 8),
    )
    assert row["psnr_specialist"] == own.psnr and row["ssim_specialist_task1"] == own.ssim[1]
    # a baseline row: the per-task ridge on the replicate's first n pairs, scored alike
    ridge = run_cell(config, Cell("ridge", 6, 10, 0, 0, 0))
    labeled, _ = replicate_data(config, config.family.build(), 0)
    ests = [
        RidgeRestorer().fit(c[:6], x[:6]).restore(tc)
        for (c, x), (tc, _) in zip(labeled, tests, strict=True)
    ]
    assert ridge["psnr"] == score_estimates(ests, tests, (0.5, 0.5), (8, 8)).psnr
    assert ridge["num_pairs"] == 12 and pd.isna(ridge["psnr_specialist"])
    degraded = run_cell(config, Cell("degraded", 6, 10, 0, 0, 0))
    assert degraded["num_params"] == 0
    assert degraded["psnr"] == score_estimates([c for c, _ in tests], tests, (0.5, 0.5)).psnr


def test_one_pass_needs_models_with_a_one_pass_mean(tmp_path):
    text = RESTORATION_CONV.replace('kind = "conv"\nimage_shape = [8, 8]', 'kind = "mlp"', 1)
    with pytest.raises(ValueError, match=r"one_pass.*generalist with posterior_mean_one_pass"):
        load_experiment(write(tmp_path, text))
    text = RESTORATION_CONV.replace('"blind_cnn",\n]', '"blind_cnn", "nearest",\n]', 1)
    assert text != RESTORATION_CONV
    with pytest.raises(ValueError, match="methods must be a non-empty subset"):
        load_experiment(write(tmp_path, text))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (('kind = "denoise"', 'kind = "upscale"'), r"tasks\[0\].kind must be one of"),
        (("sigma = 0.3", "radius = 2"), r"tasks\[0\] \(denoise\)"),
        (("image_shape = [8, 8]", "image_shape = [16, 16]"), "must match the family's images"),
        (("[family]\n", '[family]\ndataset = "faces"\n'), "dataset must"),
        (("test_images = 12", "test_images = 0"), "test_images: must hold positive"),
    ],
)
def test_bad_restoration_configs_name_the_problem(tmp_path, change, match):
    old, new = change
    assert old in RESTORATION
    with pytest.raises(ValueError, match=match):
        load_experiment(write(tmp_path, RESTORATION.replace(old, new, 1)))


KILLABLE = """
import sys
from mol_diffusion.config import load_experiment
from mol_diffusion.sweeps import load_or_run

if __name__ == "__main__":
    load_or_run(load_experiment(sys.argv[1]), workers=1, progress=False, results_dir=sys.argv[2])
"""


def test_a_killed_sweep_resumes_with_only_the_missing_cells(tmp_path, monkeypatch):
    import json
    import signal
    import subprocess
    import sys
    import time

    from mol_diffusion import sweeps

    config_path = write(tmp_path, BASE.replace("steps = 20", "steps = 400"))
    config = load_experiment(config_path)
    total = len(cells(config))
    results = tmp_path / "results"
    cache = sweeps.cell_cache_dir(config, results)
    script = tmp_path / "sweep.py"
    script.write_text(KILLABLE)
    proc = subprocess.Popen([sys.executable, str(script), str(config_path), str(results)])
    deadline = time.monotonic() + 120
    while len(list(cache.glob("*.json"))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.name: p.read_text() for p in cache.glob("*.json")}
    assert 3 <= len(done) < total and not (results / "exp.csv").exists()
    # a torn write (what a kill mid-write would leave without the rename) is not a result
    torn = sorted(cache.glob("*.json"))[-1]
    torn.write_text(torn.read_text()[:25])
    computed = []
    real_run_cells = config.kind.run_cells
    monkeypatch.setattr(
        config.kind, "run_cells", lambda c, some: computed.extend(some) or real_run_cells(c, some)
    )
    resumed = load_or_run(config, workers=1, progress=False, results_dir=results)
    assert len(computed) == total - len(done) + 1  # the missing cells and the torn one
    assert resumed.attrs["source"] == f"resumed ({len(done) - 1} of {total} cells cached)"
    assert not cache.exists()  # the table holds everything now
    fresh = run_sweep(config, workers=1, progress=False)
    pd.testing.assert_frame_equal(comparable(resumed, config.kind), comparable(fresh, config.kind))
    assert json.loads((results / "exp.meta.json").read_text())["rows"] == total


# ---------------------------------------------------------------- damaged caches
def damage_truncate(path):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))


@pytest.mark.parametrize(
    ("target", "damage", "match"),
    [
        ("csv", damage_truncate, "do not match the checksum"),
        ("csv", lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "checksum"),
        ("meta", lambda p: p.write_bytes(b"\xff\xfe{not json"), "not a results meta file"),
        ("meta", lambda p: p.write_text("[1, 2]"), "not a JSON object"),
    ],
)
def test_a_damaged_table_is_rejected_with_the_file_and_the_way_out(tmp_path, target, damage, match):
    config = load_experiment(write(tmp_path, BASE))
    load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    path = tmp_path / ("exp.csv" if target == "csv" else "exp.meta.json")
    damage(path)
    with pytest.raises(ValueError, match=match) as err:
        load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    assert str(path) in str(err.value) and "--force" in str(err.value)
    again = load_or_run(config, workers=1, progress=False, results_dir=tmp_path, force=True)
    assert again.attrs["source"] == "computed" and len(again) == len(cells(config))


def test_a_meta_file_without_a_checksum_or_with_another_row_count_is_rejected(tmp_path):
    import json

    config = load_experiment(write(tmp_path, BASE))
    table = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    meta_path = tmp_path / "exp.meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "rows": len(table) + 1}))
    with pytest.raises(ValueError, match=f"{len(table)} rows, but exp.meta.json says"):
        load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    del meta["sha256"]  # as in tables written before checksums were recorded
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"exp.meta.json: no checksum.*--force"):
        load_or_run(config, workers=1, progress=False, results_dir=tmp_path)


def test_a_directory_in_place_of_a_cell_file_is_recomputed(tmp_path):
    from mol_diffusion import sweeps

    config = load_experiment(write(tmp_path, BASE))
    cache = sweeps.cell_cache_dir(config, tmp_path)
    sweeps.cell_file(cache, cells(config)[0]).mkdir(parents=True)
    table = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    assert table.attrs["source"] == "computed" and len(table) == len(cells(config))


def test_a_cell_file_whose_rows_fail_their_checksum_is_recomputed(tmp_path, monkeypatch):
    import json

    from mol_diffusion import sweeps

    config = load_experiment(write(tmp_path, BASE))
    grid = cells(config)
    cache = sweeps.cell_cache_dir(config, tmp_path)
    first = run_sweep(config, workers=1, progress=False, cache_dir=cache)
    path = sweeps.cell_file(cache, grid[0])
    stored = json.loads(path.read_text())
    assert set(stored) == {"cell", "code", "n_rows", "sha256", "rows"}
    stored["rows"][0]["risk"] = 123.0  # an edited number, the checksum left as it was
    path.write_text(json.dumps(stored))
    again = run_sweep(config, workers=1, progress=False, cache_dir=cache)
    assert again.attrs["cached_cells"] == len(grid) - 1  # every file but the edited one
    pd.testing.assert_frame_equal(comparable(again, config.kind), comparable(first, config.kind))


def test_a_cell_file_without_the_declared_columns_is_recomputed(tmp_path):
    import json

    from mol_diffusion import sweeps

    config = load_experiment(write(tmp_path, BASE))
    grid = cells(config)
    cache = sweeps.cell_cache_dir(config, tmp_path)
    cache.mkdir(parents=True)
    sweeps.cell_file(cache, grid[0]).write_text(json.dumps([{"fit_seconds": 1.0}]))
    table = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    assert table.attrs["source"] == "computed"  # the file was there, but not trusted
    assert table.risk.notna().all() and len(table) == len(grid)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_run_sweep_rejects_a_bad_worker_count(tmp_path, workers):
    config = load_experiment(write(tmp_path, BASE))
    with pytest.raises(ValueError, match="workers must be None"):
        run_sweep(config, workers=workers, progress=False)


def test_cell_files_of_labels_that_look_alike_do_not_collide(tmp_path):
    from types import SimpleNamespace

    from mol_diffusion.sweeps import cell_file

    names = ["x=1", "x1", "y/z", "y_z", "a b", "a_b"]
    files = {cell_file(tmp_path, SimpleNamespace(label=n)) for n in names}
    assert len(files) == len(names) and all(f.parent == tmp_path for f in files)


def test_a_cached_cell_of_another_cell_is_not_trusted(tmp_path):
    """A cell file holding another cell's rows (what a name collision would do) is recomputed."""
    import json

    from mol_diffusion import sweeps

    config = load_experiment(write(tmp_path, BASE))
    grid = cells(config)
    fresh = run_sweep(config, workers=1, progress=False)
    cache = tmp_path / "cells"
    run_sweep(config, workers=1, progress=False, cache_dir=cache)
    stolen = json.loads(sweeps.cell_file(cache, grid[1]).read_text())
    sweeps.cell_file(cache, grid[0]).write_text(json.dumps(stolen))
    resumed = run_sweep(config, workers=1, progress=False, cache_dir=cache)
    assert resumed.attrs["cached_cells"] == len(grid) - 1
    pd.testing.assert_frame_equal(comparable(resumed, config.kind), comparable(fresh, config.kind))


def test_progress_refreshes_rarely_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    """In a notebook or a log the bar refreshes once a minute, so saved outputs hold a few
    lines, not one per cell."""
    import io
    import sys

    config = load_experiment(write(tmp_path, BASE))
    stream = io.StringIO()  # not a terminal, like a kernel's stderr
    monkeypatch.setattr(sys, "stderr", stream)
    run_sweep(config, workers=1, progress=True)
    refreshes = stream.getvalue().count("\r")
    assert 1 <= refreshes <= 3, stream.getvalue()  # the first and the last state
