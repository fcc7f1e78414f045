"""Experiment grids -> tidy results tables, on any ``concurrent.futures.Executor``.

A sweep expands an ``ExperimentConfig`` into cells (method, n, m, capacity, lambda, replicate),
runs each cell independently and returns one row per fitted generalist. Reproducibility:

- Every seed is derived from the experiment seed and the cell with ``numpy.random.SeedSequence``
  (``spawn_key``), never from execution order, so results do not depend on the executor, the
  number of workers or the order in which cells finish.
- Common random numbers: within a replicate the data (n labeled pairs per task, nested across n;
  m unlabeled conditions, nested across m, with hidden true labels for the oracle) and the
  generalist's own seed are shared by all methods and all n, and the specialists' seed (and so
  the pseudo-labels) is shared by all generalist capacities, so comparisons across methods and
  across capacities are paired. The risk is evaluated on one set of draws per experiment.
- Each cell runs with one torch thread, so floating-point reductions are the same everywhere.
- Batching: with a neural (``mlp``) generalist, the cells of one grid point that differ only by
  replicate run as one task and their generalists are fitted as one stacked network
  (``two_stage.fit_generalists``). A single fit is a stack of one, so a cell's row is the same
  bit for bit whether it ran alone, in a batch, or in a batch cut short by an interruption.

Resumable runs: with a ``cache_dir`` (``load_or_run`` uses ``cell_cache_dir``), every finished
cell's row is written at once to its own JSON file, atomically (a temporary file renamed into
place), under a directory keyed by the config's fingerprint (config, library version and
``NUMERICS_VERSION``). A sweep that is interrupted (Ctrl-C, a killed process, a lost machine)
and started again computes only the cells without a file; a file that does not parse is
recomputed, never read as a result.

Columns: experiment, method, n (<NA> for the oracle, which uses no scarce pairs), m, capacity,
num_params, weights_index, weights, replicate, then the scores, num_pairs, fit_seconds.
Gaussian families are scored by exact excess risk: risk, risk_se, risk_task0..K-1.
Restoration tasks are scored on the test split by PSNR (dB) of the posterior-mean estimate:
psnr (lambda-weighted), psnr_task<k>, psnr_se_task<k>, mse_task<k>, and for two-stage rows the
specialists' own psnr_specialist_task<k> (NaN for other methods). ``fit_seconds`` is the only
column that varies between identical runs (``TIMING_COLUMNS``).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mol_diffusion import paths
from mol_diffusion.config import ExperimentConfig, load_experiment
from mol_diffusion.metrics import RiskDraws, excess_risk, make_risk_draws, restoration_score
from mol_diffusion.tasks import GaussianTaskFamily, RestorationTasks
from mol_diffusion.two_stage import (
    FitResult,
    GeneralistProblem,
    fit_generalists,
    supervised_problem,
    two_stage_problem,
)

__all__ = [
    "TIMING_COLUMNS",
    "Cell",
    "cell_cache_dir",
    "cells",
    "fit_cell",
    "fit_cells",
    "load_or_run",
    "restoration_test_sets",
    "results_path",
    "risk_draws",
    "run_cell",
    "run_cells",
    "run_experiment",
    "run_sweep",
]

TIMING_COLUMNS = ("fit_seconds", "latency_ms")
_DATA, _FIT, _RISK, _SPECIALIST = 0, 1, 2, 3  # first spawn_key entry: what the seed is for


@dataclass(frozen=True)
class Cell:
    """One fit: a method at one grid point and replicate. ``n`` is None for the oracle."""

    method: str
    n: int | None
    m: int
    capacity_index: int
    weights_index: int
    replicate: int

    @property
    def label(self) -> str:
        return (
            f"{self.method}/n={self.n}/m={self.m}/cap{self.capacity_index}"
            f"/w{self.weights_index}/rep{self.replicate}"
        )


def cells(config: ExperimentConfig) -> list[Cell]:
    """All cells of the grid in canonical order (replicate-major)."""
    caps = range(max(len(config.capacities), 1))
    out = []
    for rep in range(config.replicates):
        for w in range(len(config.weights)):
            for cap in caps:
                for m in config.m:
                    for method in config.methods:
                        for n in (None,) if method == "oracle" else config.n:
                            out.append(Cell(method, n, m, cap, w, rep))
    return out


def _seed(config: ExperimentConfig, *key: int) -> int:
    """A 63-bit seed from the experiment seed and ``key`` (SeedSequence spawn key)."""
    state = np.random.SeedSequence(
        config.seed, spawn_key=tuple(int(k) for k in key)
    ).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def _generator(config: ExperimentConfig, *key: int) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(config, *key))


def _replicate_data(config: ExperimentConfig, family, replicate: int):
    """Labeled pools (max n per task) and unlabeled conditions with hidden labels (max m)."""
    g = _generator(config, _DATA, replicate)
    labeled = [family.sample(k, max(config.n), g) for k in range(family.num_tasks)]
    unlabeled = [family.sample_unlabeled(k, max(config.m), g) for k in range(family.num_tasks)]
    return labeled, unlabeled


def risk_draws(config: ExperimentConfig, family: GaussianTaskFamily | None = None) -> RiskDraws:
    """The experiment's evaluation draws (common to every cell)."""
    family = config.family.build() if family is None else family
    return make_risk_draws(family, config.risk_draws, _generator(config, _RISK))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _capacity(config: ExperimentConfig, cell: Cell) -> int | None:
    return config.capacities[cell.capacity_index] if config.capacities else None


def restoration_test_sets(config: ExperimentConfig, family: RestorationTasks) -> list:
    """The experiment's degraded test pairs per task (common to every cell)."""
    g = _generator(config, _RISK)
    limit = config.family.test_images
    return [
        tuple(part[:limit] for part in family.test_pairs(k, g)) for k in range(family.num_tasks)
    ]


def _problem(config: ExperimentConfig, cell: Cell, family, pools) -> GeneralistProblem:
    """One cell's generalist training pairs (for two-stage, its specialists and pseudo-labels)."""
    labeled_pool, unlabeled_pool = pools
    weights = config.weights[cell.weights_index]
    generator = _generator(
        config, _FIT, cell.replicate, cell.m, cell.capacity_index, cell.weights_index
    )
    run_name = f"{config.name}/{cell.label}"
    unlabeled = [(c[: cell.m], x[: cell.m]) for c, x in unlabeled_pool]
    if cell.method == "oracle":
        return supervised_problem(
            "oracle", unlabeled, weights, generator=generator, run_name=run_name
        )
    labeled = [(c[: cell.n], x[: cell.n]) for c, x in labeled_pool]
    if cell.method == "two_stage":
        return two_stage_problem(
            labeled,
            [c for c, _ in unlabeled],
            weights,
            specialist=config.specialist.build,
            generator=generator,
            pseudo_labels=config.pseudo_labels.build(),
            specialist_generator=_generator(
                config, _SPECIALIST, cell.replicate, cell.n, cell.m, cell.weights_index
            ),
            run_name=run_name,
        )
    return supervised_problem(
        "labeled_only", labeled, weights, generator=generator, run_name=run_name
    )


def fit_cells(config: ExperimentConfig, cells_: Sequence[Cell], family=None) -> list[FitResult]:
    """Fit the generalists of several cells of one capacity exactly as the sweep does (neural
    generalists as one stacked network, bit-for-bit the one-at-a-time fits); ``family``
    defaults to ``config.family.build()``."""
    cells_ = list(cells_)
    if not cells_ or len({cell.capacity_index for cell in cells_}) != 1:
        raise ValueError("cells must be a non-empty sequence of cells of one capacity")
    family = config.family.build() if family is None else family
    pools = {}
    for rep in sorted({cell.replicate for cell in cells_}):
        pools[rep] = _replicate_data(config, family, rep)
    problems = [_problem(config, cell, family, pools[cell.replicate]) for cell in cells_]
    capacity = _capacity(config, cells_[0])
    return fit_generalists(problems, lambda: config.generalist.build(capacity))


def fit_cell(config: ExperimentConfig, cell: Cell, family=None) -> FitResult:
    """Fit one cell's generalist (and, for two-stage, its specialists) exactly as the sweep
    does; ``family`` defaults to ``config.family.build()``."""
    return fit_cells(config, [cell], family)[0]


def _restoration_columns(config, family, weights, result: FitResult) -> dict:
    spec = config.family
    tests = restoration_test_sets(config, family)

    def score(models):
        return restoration_score(
            models,
            tests,
            weights,
            samples=spec.posterior_samples,
            steps=spec.sampler_steps,
            generator=_generator(config, _RISK, 1),  # the same evaluation noise for every model
        )

    main = score(result.generalist)
    own = score(list(result.specialists)) if result.specialists else None
    row = {"psnr": main.psnr}
    for k in range(family.num_tasks):
        row[f"psnr_task{k}"] = main.per_task[k]
        row[f"psnr_se_task{k}"] = main.per_task_se[k]
        row[f"mse_task{k}"] = main.mse[k]
        row[f"psnr_specialist_task{k}"] = own.per_task[k] if own else float("nan")
    return row


def run_cells(config: ExperimentConfig, cells_: Sequence[Cell]) -> list[dict]:
    """Fit the generalists of several cells of one capacity together (``fit_cells``) and score
    each (exact excess risk, or PSNR for restoration); returns one table row per cell, the
    rows ``run_cell`` gives one at a time."""
    with _one_thread():
        family = config.family.build()
        results = fit_cells(config, cells_, family)
        restoration = isinstance(family, RestorationTasks)
        draws = None if restoration else risk_draws(config, family)
        rows = []
        for cell, result in zip(cells_, results, strict=True):
            weights = config.weights[cell.weights_index]
            if restoration:
                scores = _restoration_columns(config, family, weights, result)
            else:
                risk = excess_risk(result.generalist, family, weights, draws=draws)
                scores = {"risk": risk.scalarized, "risk_se": risk.scalarized_se}
                scores.update({f"risk_task{k}": v for k, v in enumerate(risk.per_task)})
            rows.append(_row(config, cell, result, scores))
    return rows


def run_cell(config: ExperimentConfig, cell: Cell) -> dict:
    """Fit one cell's generalist and score it; returns one table row."""
    return run_cells(config, [cell])[0]


def _row(config: ExperimentConfig, cell: Cell, result: FitResult, scores: dict) -> dict:
    weights = config.weights[cell.weights_index]
    row = {
        "experiment": config.name,
        "method": cell.method,
        "n": cell.n,
        "m": cell.m,
        "capacity": _capacity(config, cell),
        "num_params": result.generalist.num_params,
        "weights_index": cell.weights_index,
        "weights": ",".join(f"{w:.6g}" for w in weights),
        "replicate": cell.replicate,
        **scores,
    }
    row.update({"num_pairs": result.num_pairs, "fit_seconds": result.fit_seconds})
    return row


def _init_worker() -> None:
    torch.set_num_threads(1)


def default_executor(workers: int | None = None) -> Executor:
    """A local process pool (spawned workers, one torch thread each)."""
    workers = workers or os.cpu_count() or 1
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
    )


def cell_cache_dir(config: ExperimentConfig, results_dir=None) -> Path:
    """Where ``load_or_run`` keeps finished cells while a sweep runs:
    ``<results_dir>/cells/<name>[-quick]-<fingerprint>/``."""
    directory = paths.RESULTS if results_dir is None else Path(results_dir)
    stem = f"{config.name}{'-quick' if config.quick else ''}-{config.fingerprint()}"
    return directory / "cells" / stem


def _cell_path(cache_dir: Path, cell: Cell) -> Path:
    return cache_dir / (cell.label.replace("/", "_").replace("=", "") + ".json")


def _read_cell(path: Path) -> dict | None:
    """A cached row, or None when the file is missing or not a complete row."""
    try:
        row = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return row if _complete(row) else None


def _write_cell(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(row))
    os.replace(tmp, path)  # readers see the old state or the whole row, never a part


def _plan(config) -> tuple[list, Callable, Callable]:
    """An experiment's grid, its runner ``(config, cells) -> one result per cell`` and its batch
    key ``cell -> key``: cells with one key (not None) may run as one task."""
    from mol_diffusion.policy.experiment import (
        PolicyExperimentConfig,
        policy_cells,
        run_policy_cells,
    )

    if isinstance(config, PolicyExperimentConfig):
        return policy_cells(config), run_policy_cells, lambda cell: None
    if config.generalist.kind == "mlp":  # every replicate of a grid point in one stacked fit
        return (
            cells(config),
            run_cells,
            lambda c: (c.method, c.n, c.m, c.capacity_index, c.weights_index),
        )
    return cells(config), run_cells, lambda cell: None


def _tasks(todo: list[int], grid: list, key: Callable, batch: bool) -> list[list[int]]:
    """Group the indices of cells still to run into tasks, in canonical order."""
    if not batch:
        return [[i] for i in todo]
    groups: dict = {}
    for i in todo:
        k = key(grid[i])
        groups.setdefault(("cell", i) if k is None else ("key", k), []).append(i)
    return list(groups.values())


def _complete(row) -> bool:
    if isinstance(row, list):
        return bool(row) and all(_complete(r) for r in row)
    return isinstance(row, dict) and "fit_seconds" in row


def run_sweep(
    config: ExperimentConfig,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    progress: bool = True,
    cache_dir=None,
    batch: bool = True,
) -> pd.DataFrame:
    """Run every cell of ``config`` and return the tidy results table (canonical row order).

    Args:
        config: the experiment.
        executor: a process-based ``concurrent.futures.Executor`` (cells set torch's thread
            count, which is global to a process, so a thread pool would race); by default a
            local process pool with ``workers`` processes, or the current process when
            ``workers == 1``.
        workers: pool size for the default executor (default: all cores).
        progress: show a progress bar (cells done, elapsed, time left) on stderr.
        cache_dir: if given, reuse the rows of cells finished earlier under it and store each
            new row there as soon as its cell finishes (see the module docstring).
        batch: run the cells of one grid point that differ only by replicate as one task, their
            neural generalists fitted as one stacked network (bit-for-bit the single fits, so
            the table is the same either way). ``False`` gives one task per cell: more tasks
            for executors with many workers.
    """
    grid, runner, key = _plan(config)
    rows: dict[int, dict | list[dict]] = {}
    cell_files = [None] * len(grid)
    if cache_dir is not None:
        cell_files = [_cell_path(Path(cache_dir), cell) for cell in grid]
        for i, path in enumerate(cell_files):
            row = _read_cell(path)
            if row is not None:
                rows[i] = row
    bar = tqdm(
        total=len(grid),
        initial=len(rows),
        desc=config.name + (f" ({len(rows)} cached)" if rows else ""),
        unit="fit",
        disable=not progress,
        file=sys.stderr,
    )

    def finished(i: int, row: dict) -> None:
        rows[i] = row
        if cell_files[i] is not None:
            _write_cell(cell_files[i], row)
        bar.update()

    tasks = _tasks([i for i in range(len(grid)) if i not in rows], grid, key, batch)
    try:
        if executor is None and workers == 1:
            for task in tasks:
                for i, row in zip(task, runner(config, [grid[i] for i in task]), strict=True):
                    finished(i, row)
        elif tasks:
            owned = executor is None
            pool = default_executor(workers) if owned else executor
            try:
                futures = {pool.submit(runner, config, [grid[i] for i in t]): t for t in tasks}
                for future in as_completed(futures):
                    for i, row in zip(futures[future], future.result(), strict=True):
                        finished(i, row)
            finally:
                if owned:
                    pool.shutdown(cancel_futures=True)
    finally:
        bar.close()
    flat = []
    for i in range(len(grid)):  # a policy cell gives many rows, other cells one
        flat.extend(rows[i] if isinstance(rows[i], list) else [rows[i]])
    table = pd.DataFrame(flat)
    for col in ("n", "capacity"):
        if col in table:
            table[col] = table[col].astype("Int64")
    return table


def results_path(config: ExperimentConfig, results_dir=None):
    """``<results_dir>/<name>.csv`` (``<name>-quick.csv`` for quick runs); the default
    directory is ``experiments/results``."""
    directory = paths.RESULTS if results_dir is None else Path(results_dir)
    return directory / f"{config.name}{'-quick' if config.quick else ''}.csv"


def load_or_run(
    config: ExperimentConfig,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    results_dir=None,
) -> pd.DataFrame:
    """Load cached results when the config (and library version) is unchanged; else run and save.

    The cache key is ``config.fingerprint()``, stored beside the table as ``<table>.meta.json``.
    ``results_dir`` defaults to ``experiments/results``. While the sweep runs, finished cells
    are kept under ``cell_cache_dir(config, results_dir)``, so an interrupted call resumes
    where it stopped; they are removed once the table is written. ``force=True`` discards the
    cached table and cells.
    """
    path = results_path(config, results_dir)
    meta_path = path.with_suffix(".meta.json")
    cache_dir = cell_cache_dir(config, results_dir)
    if not force and path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == config.fingerprint():
            table = pd.read_csv(path)
            for col in ("n", "capacity"):
                if col in table:
                    table[col] = table[col].astype("Int64")
            return table
    if force:
        shutil.rmtree(cache_dir, ignore_errors=True)
    table = run_sweep(
        config, executor=executor, workers=workers, progress=progress, cache_dir=cache_dir
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)  # never leave a half-written table under the real name
    meta_path.write_text(
        json.dumps(
            {
                "fingerprint": config.fingerprint(),
                "experiment": config.name,
                "quick": config.quick,
                "rows": len(table),
            },
            indent=2,
        )
        + "\n"
    )
    shutil.rmtree(cache_dir, ignore_errors=True)  # the table now holds every cell
    return table


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    workers: int | None = None,
    force: bool = False,
    results_dir=None,
    progress: bool = True,
) -> tuple[ExperimentConfig, pd.DataFrame]:
    """Load ``experiments/<name>.toml`` and its results (cached, or run now): (config, table)."""
    config = load_experiment(name, quick=quick)
    table = load_or_run(
        config, workers=workers, force=force, progress=progress, results_dir=results_dir
    )
    return config, table
