"""Sweeps give the same table on a Dask cluster and through submitit as in one process."""

import pandas as pd
import pytest

from mol_diffusion.config import load_experiment
from mol_diffusion.executors import SubmititExecutor, dask_executor
from mol_diffusion.kinds.gaussian import GAUSSIAN
from mol_diffusion.sweeps import comparable, run_sweep

SMALL = """
kind = "gaussian"
seed = 5
replicates = 2
methods = ["two_stage", "labeled_only", "oracle"]
n = [8]
m = [32]
[family]
num_tasks = 2
[specialist]
kind = "linear"
[generalist]
kind = "random_features"
capacities = [4]
[pseudo_labels]
steps = 20
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("exp") / "small.toml"
    path.write_text(SMALL)
    return load_experiment(path)


@pytest.fixture(scope="module")
def reference(config):
    return run_sweep(config, workers=1, progress=False)


def same(a, b):
    pd.testing.assert_frame_equal(comparable(a, GAUSSIAN), comparable(b, GAUSSIAN))


def test_dask_local_cluster_gives_the_same_table(config, reference):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        table = run_sweep(config, executor=dask_executor(client), progress=False)
    same(table, reference)


def test_dask_workers_with_several_threads_are_refused():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        pytest.raises(ValueError, match="one thread each"),
    ):
        dask_executor(client)


def test_submitit_local_jobs_give_the_same_table(config, reference, tmp_path):
    submitit = pytest.importorskip("submitit")
    local = submitit.LocalExecutor(folder=tmp_path / "jobs")
    local.update_parameters(timeout_min=10)
    executor = SubmititExecutor(local, poll_seconds=0.2)
    table = run_sweep(config, executor=executor, progress=False)
    executor.shutdown()
    same(table, reference)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(print, 1)
    with pytest.raises(ValueError, match="poll_seconds must be > 0"):
        SubmititExecutor(local, poll_seconds=0)
