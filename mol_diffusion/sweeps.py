"""The sweep engine: an experiment's cells -> one tidy results table, on any Executor.

The engine knows one protocol, ``kinds.base.ExperimentKind``, and no kind by name: a config
carries its kind (``config.kind``), the kind lists the cells, runs a batch of cells into rows
and names the table's columns. What the engine adds:

- **Tasks.** Cells with one batch key (``kind.batch_key``) run as one task (for example the
  replicates of a grid point whose neural generalists train as one stacked network, or the
  cells of a policy replicate, which share their expert rollouts); every other cell is a task
  of its own. Rows are the same either way (a kind's contract).
- **Executors.** Tasks go to any process-based ``concurrent.futures.Executor`` (by default a
  local pool of spawned workers with one torch thread each, kept across sweeps of the same code
  by ``shared_executor``; Dask and submitit in
  ``mol_diffusion.executors``). Workers receive the kind object with the config, so a kind
  defined outside the library needs no registry in the child.
- **Reproducibility.** Every seed derives from the experiment seed and the cell
  (``kinds.base.seed``), never from execution order, so results do not depend on the
  executor, the number of workers or the order in which tasks finish.
- **Cache and resume.** With a ``cache_dir`` (``load_or_run`` uses ``cell_cache_dir``), every
  finished cell's rows are written at once to their own JSON file, atomically (a temporary file
  renamed into place), under a directory keyed by the config's fingerprint and the code's
  (``provenance.code_record``: the kind's modules and the numeric libraries' versions). A cell
  file holds its cell's label, the code fingerprint, its row count and a checksum of its rows;
  a sweep that is interrupted (Ctrl-C, a killed process, a lost machine) and started again
  computes only the cells without a valid file: a file that does not parse, fails its checksum,
  or whose rows lack the kind's columns is recomputed, never read as a result.
- **Tables that know their code.** A table's meta file records the config's fingerprint, row
  count, checksum, the code record and the platform (``platform_stamp``). A stored table whose
  code record differs from the running code's is *stale* (``provenance.stale_reason``):
  ``load_or_run`` recomputes it, or with ``reuse_stale=True`` returns it with a
  ``StaleResultsWarning``; ``table_status`` says which tables are current, stale or missing.
- **Checked rows.** Every row a kind returns must have exactly its declared columns; the table's
  columns are in the declared order.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from mol_diffusion import paths
from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.base import ExperimentKind, fingerprint
from mol_diffusion.provenance import code_record, library_versions, stale_reason

__all__ = [
    "StaleResultsWarning",
    "cached_table",
    "cell_cache_dir",
    "cell_file",
    "cell_rows",
    "comparable",
    "default_executor",
    "describe_source",
    "load_or_run",
    "platform_stamp",
    "read_table",
    "results_path",
    "rows_table",
    "run_experiment",
    "run_sweep",
    "table_staleness",
    "table_status",
]


class StaleResultsWarning(UserWarning):
    """A results table computed by other code (or other library versions) was used."""


def comparable(table: pd.DataFrame, kind: ExperimentKind) -> pd.DataFrame:
    """``table`` without the kind's timing columns: what identical runs reproduce exactly."""
    return table.drop(columns=[c for c in kind.timing_columns if c in table])


def rows_table(rows: Sequence[dict], columns: Sequence[str], integers=()) -> pd.DataFrame:
    """A results table from rows, columns in the given order; the ``integers`` columns (a
    kind's ``integer_columns``) as pandas Int64, so a missing value stays <NA>."""
    return _integers(pd.DataFrame(list(rows), columns=list(columns)), integers)


def _integers(table: pd.DataFrame, integers) -> pd.DataFrame:
    for col in integers:
        if col in table:
            table[col] = table[col].astype("Int64")
    return table


def cell_rows(table: pd.DataFrame, config, cell) -> pd.DataFrame:
    """The rows of ``table`` that ``cell`` produced (``kind.cell_key``), in table order."""
    mask = pd.Series(True, index=table.index)
    for column, value in config.kind.cell_key(config, cell).items():
        if column not in table:
            raise ValueError(f"cell_key of {cell.label} names {column!r}, not a table column")
        same = table[column].isna() if _missing(value) else (table[column] == value).fillna(False)
        mask &= same.astype(bool)
    return table[mask]


def read_table(path, integers=()) -> pd.DataFrame:
    """A results CSV, its ``integers`` columns as pandas Int64 (missing values <NA>)."""
    return _integers(pd.read_csv(path), integers)


def platform_stamp() -> dict:
    """The machine and numeric libraries a table is computed with (stored in its meta file).

    Same stamp, same numbers: every cell runs on one thread, so a table recomputed on a machine
    with the same stamp is bit-identical. Across stamps, floating-point kernels differ (SIMD
    width, BLAS), so numbers agree only to rounding, or less where training or rollouts
    amplify rounding (see ``tests/test_drift.py``).
    """
    info = ""
    with contextlib.suppress(OSError):
        info = Path("/proc/cpuinfo").read_text()

    def cpuinfo(field: str) -> str:
        line = next((ln for ln in info.splitlines() if ln.startswith(field)), ":")
        return line.split(":", 1)[1].strip()

    flags = " ".join(sorted(cpuinfo("flags").split()))
    return {
        "machine": platform.machine(),
        "cpu": cpuinfo("model name") or platform.processor() or None,
        "cpu_flags": hashlib.sha256(flags.encode()).hexdigest()[:16],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        **library_versions(),
    }


# When stderr is not a terminal (a notebook, a log), the progress bar refreshes at most once
# per PROGRESS_INTERVAL seconds and once per PROGRESS_STEPS-th of the cells, so a saved
# notebook holds a few lines per sweep however long it runs.
PROGRESS_INTERVAL = 60.0
PROGRESS_STEPS = 10


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _check_not_bootstrapping() -> None:
    """A clear error in place of multiprocessing's when a spawned worker, while importing the
    user's script, reaches an unguarded sweep call."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "a sweep was started while a worker process was importing the main script: put "
            'the call under `if __name__ == "__main__":` in the script (workers are spawned '
            "and import it again), or pass workers=1"
        )


def _init_worker() -> None:
    torch.set_num_threads(1)


def default_executor(workers: int | None = None, *, fresh: bool = False) -> Executor:
    """A local process pool (spawned workers, one torch thread each); ``fresh``: every task in
    a new process, so no task sees state another one left."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        max_tasks_per_child=1 if fresh else None,
    )


_SHARED_POOL: dict = {}  # at most one entry: (workers, code fingerprint) -> the pool


def shared_executor(workers: int | None, code: str) -> Executor:
    """The process's local pool of ``workers`` spawned workers for kinds whose code has
    fingerprint ``code`` (``provenance.code_record``), started on first use and kept for the
    sweeps that follow, so the sweeps of a notebook pay the worker start-up (about 3 s for two
    workers here) once. Code that changed on disk, or another pool size, starts a new pool (the
    old one is shut down): workers never run code other than what the table records."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    key = (workers, code)
    if key not in _SHARED_POOL:
        _shutdown_shared()
        _SHARED_POOL[key] = default_executor(workers)
    return _SHARED_POOL[key]


def _shutdown_shared() -> None:
    while _SHARED_POOL:
        _, pool = _SHARED_POOL.popitem()
        pool.shutdown(cancel_futures=True)


atexit.register(_shutdown_shared)


def cell_cache_dir(config, results_dir=None) -> Path:
    """Where ``load_or_run`` keeps finished cells while a sweep runs:
    ``<results_dir>/cells/<name>[-quick]-<config fingerprint>-<code fingerprint>/``, so cells
    computed by other code are never resumed from."""
    directory = paths.RESULTS if results_dir is None else Path(results_dir)
    code = code_record(config.kind)["fingerprint"]
    stem = f"{config.name}{'-quick' if config.quick else ''}-{fingerprint(config)}-{code}"
    return directory / "cells" / stem


def cell_file(cache_dir, cell) -> Path:
    """The cache file of one cell: its label made safe for a file name, plus a hash of the
    label itself, so two labels never share a file."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", cell.label)[:80]
    tag = hashlib.sha256(cell.label.encode()).hexdigest()[:10]
    return Path(cache_dir) / f"{safe}-{tag}.json"


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str | bytes) and bool(pd.isna(value)))


def _row_problem(row, columns: set[str], key: dict) -> str | None:
    """Why ``row`` is not a row of the cell with ``key`` (None when it is)."""
    if not isinstance(row, dict):
        return f"a {type(row).__name__}, not a dict"
    if set(row) != columns:
        missing, extra = sorted(columns - set(row)), sorted(set(row) - columns)
        return f"columns missing {missing}, unexpected {extra}"
    for column, value in key.items():
        got = row[column]
        if _missing(value) != _missing(got) or (not _missing(value) and got != value):
            return f"{column} = {got!r}, but the cell's key says {value!r}"
    return None


def _rows_problem(rows, columns: set[str], key: dict) -> str | None:
    if not isinstance(rows, list) or not rows:
        return "not a non-empty list of rows"
    for i, row in enumerate(rows):
        problem = _row_problem(row, columns, key)
        if problem:
            return f"row {i}: {problem}"
    return None


def _rows_digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _read_cell(path: Path, columns: set[str], key: dict, label: str, code: str):
    """A cell's cached rows, or None when the file is missing, does not parse, is not this
    cell's (label), was written by other code, fails its row count or checksum, or does not
    hold rows of this cell with the kind's columns."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):  # missing, a directory, ...
        return None
    if not isinstance(stored, dict) or set(stored) != {"cell", "code", "rows", "n_rows", "sha256"}:
        return None
    rows = stored["rows"]
    if (
        stored["cell"] != label
        or stored["code"] != code
        or not isinstance(rows, list)
        or len(rows) != stored["n_rows"]
        or _rows_digest(rows) != stored["sha256"]
    ):
        return None
    return None if _rows_problem(rows, columns, key) else rows


def _write_cell(path: Path, rows: list[dict], label: str, code: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():  # not a cell file: the cache directory is the engine's own
        shutil.rmtree(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    stored = {
        "cell": label,
        "code": code,
        "n_rows": len(rows),
        "sha256": _rows_digest(rows),
        "rows": rows,
    }
    tmp.write_text(json.dumps(stored))
    os.replace(tmp, path)  # readers see the old state or the whole file, never a part


def _check_config(config) -> None:
    if not isinstance(getattr(config, "kind", None), ExperimentKind):
        named = type(config) is str
        raise ValueError(
            "config must be an experiment config (load_experiment(name) returns one), got "
            f"{type(config).__name__}"
            + (f" {config!r}: use load_experiment({config!r})" if named else "")
        )


def _tasks(todo: list[int], grid: list, key, batch: bool) -> list[list[int]]:
    """Group the indices of cells still to run into tasks, in canonical order."""
    if not batch:
        return [[i] for i in todo]
    groups: dict = {}
    for i in todo:
        k = key(grid[i])
        groups.setdefault(("cell", i) if k is None else ("key", k), []).append(i)
    return list(groups.values())


def _checked(kind, config, cells: Sequence, out, columns: set[str]) -> list[list[dict]]:
    """The rows a kind returned for ``cells``, checked against its declared columns and the
    cells' keys."""
    if not isinstance(out, list) or len(out) != len(cells):
        raise RuntimeError(
            f"experiment kind {kind.name!r}: run_cells must return one list of rows per cell "
            f"({len(cells)}), got {type(out).__name__!r}"
            + (f" of length {len(out)}" if isinstance(out, list) else "")
        )
    for cell, rows in zip(cells, out, strict=True):
        problem = _rows_problem(rows, columns, kind.cell_key(config, cell))
        if problem:
            raise RuntimeError(
                f"experiment kind {kind.name!r}, cell {cell.label}: {problem} (every row must "
                f"have exactly the columns {sorted(columns)} and the cell's key values)"
            )
    return out


def run_sweep(
    config,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    progress: bool = True,
    cache_dir=None,
    batch: bool = True,
) -> pd.DataFrame:
    """Run every cell of ``config`` and return the tidy results table (canonical row order).

    Args:
        config: the experiment (a config parsed by its kind; ``config.kind`` runs it).
        executor: a process-based ``concurrent.futures.Executor`` (cells set torch's thread
            count, which is global to a process, so a thread pool would race); by default a
            local process pool with ``workers`` processes (``shared_executor``: kept for the
            next sweep with the same code), or the current process when ``workers == 1``.
        workers: pool size for the default executor (default: all cores).
        progress: show a progress bar (cells done, elapsed, time left) on stderr.
        cache_dir: if given, reuse the rows of cells finished earlier under it and store each
            new cell's rows there as soon as it finishes (see the module docstring); the
            number of cells reused is ``table.attrs["cached_cells"]`` (of
            ``table.attrs["cells"]``).
        batch: run the cells that share a batch key as one task (the same table either way).
            ``False`` gives one task per cell: more tasks for executors with many workers.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be None (all cores) or an integer >= 1, got {workers!r}")
    _check_config(config)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(
            "executor must be a concurrent.futures.Executor (something with submit), got "
            f"{type(executor).__name__}; for a local pool pass workers=N instead"
        )
    kind = config.kind
    grid = kind.cells(config)
    columns = kind.columns(config)
    wanted = set(columns)
    rows: dict[int, list[dict]] = {}
    cell_files = [None] * len(grid)
    code = code_record(kind)["fingerprint"]
    if cache_dir is not None:
        cell_files = [cell_file(cache_dir, cell) for cell in grid]
        for i, path in enumerate(cell_files):
            found = _read_cell(path, wanted, kind.cell_key(config, grid[i]), grid[i].label, code)
            if found is not None:
                rows[i] = found
    cached = len(rows)
    terminal = _is_terminal(sys.stderr)
    bar = tqdm(
        total=len(grid),
        initial=len(rows),
        desc=config.name + (f" ({len(rows)} cached)" if rows else ""),
        unit="cell",
        disable=not progress,
        file=sys.stderr,
        mininterval=0.1 if terminal else PROGRESS_INTERVAL,
        # tqdm's monitor would refresh every maxinterval seconds regardless of miniters
        maxinterval=10.0 if terminal else 1e9,
        miniters=None if terminal else max(1, math.ceil(len(grid) / PROGRESS_STEPS)),
    )

    def finished(task: list[int], out) -> None:
        cells = [grid[i] for i in task]
        for i, cell_rows in zip(task, _checked(kind, config, cells, out, wanted), strict=True):
            rows[i] = cell_rows
            if cell_files[i] is not None:
                _write_cell(cell_files[i], cell_rows, grid[i].label, code)
            bar.update()

    key = lambda cell: kind.batch_key(config, cell)  # noqa: E731
    tasks = _tasks([i for i in range(len(grid)) if i not in rows], grid, key, batch)
    try:
        if executor is None and workers == 1:
            for task in tasks:
                finished(task, kind.run_cells(config, [grid[i] for i in task]))
        elif tasks:
            owned = executor is None
            if owned:
                _check_not_bootstrapping()
            pool = shared_executor(workers, code) if owned else executor
            done = False
            try:
                futures = {
                    pool.submit(kind.run_cells, config, [grid[i] for i in t]): t for t in tasks
                }
                for future in as_completed(futures):
                    finished(futures[future], future.result())
                done = True
            except BrokenProcessPool as err:
                raise RuntimeError(
                    "a worker process died before finishing its cells. If this runs from a "
                    'script without `if __name__ == "__main__":` around the sweep, that is the '
                    "cause (spawned workers import the script again, and an unguarded call "
                    "starts a sweep in each of them): add the guard or pass workers=1. "
                    "Otherwise a worker crashed or ran out of memory (its error is above)"
                    + ("; the cells finished so far are kept" if cache_dir is not None else "")
                ) from err
            finally:
                if owned and not done:  # an error or an interrupt: no task outlives the sweep
                    _shutdown_shared()
    finally:
        bar.close()
    table = rows_table(
        [row for i in range(len(grid)) for row in rows[i]], columns, kind.integer_columns
    )
    table.attrs["cached_cells"] = cached
    table.attrs["cells"] = len(grid)
    return table


def results_path(config, results_dir=None) -> Path:
    """``<results_dir>/<name>.csv`` (``<name>-quick.csv`` for quick runs); the default
    directory is ``experiments/results``."""
    directory = paths.RESULTS if results_dir is None else Path(results_dir)
    return directory / f"{config.name}{'-quick' if config.quick else ''}.csv"


def load_or_run(
    config,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    force: bool = False,
    reuse_stale: bool = False,
    progress: bool = True,
    results_dir=None,
) -> pd.DataFrame:
    """The results table of ``config``: loaded when a current one is stored, else computed
    (resuming from finished cells) and saved.

    A stored table is current when its meta file (``<table>.meta.json``) holds the config's
    fingerprint (``kinds.base.fingerprint``) and the running code's record
    (``provenance.code_record``); ``cached_table`` also checks its row count, checksum and
    columns. ``results_dir`` defaults to ``experiments/results``. While the sweep runs,
    finished cells are kept under ``cell_cache_dir(config, results_dir)``, so an interrupted
    call resumes where it stopped; they are removed once the table is written.

    Args:
        force: discard the stored table and cells and recompute.
        reuse_stale: return a stored table of this config computed by other code (with a
            ``StaleResultsWarning``) instead of recomputing it.
        executor, workers, progress: as in ``run_sweep``.

    ``table.attrs["source"]`` says what happened: ``"loaded"``, ``"loaded stale (<why>)"``,
    ``"computed"``, ``"recomputed (stale: <why>)"`` or ``"resumed (k of N cells cached)"``;
    ``table.attrs["code"]`` is the code fingerprint of what computed it and
    ``table.attrs["stale"]`` the reason it is stale (None when current).
    """
    _check_config(config)
    path = results_path(config, results_dir)
    meta_path = path.with_suffix(".meta.json")
    cache_dir = cell_cache_dir(config, results_dir)
    stale = None
    if not force:
        table = cached_table(config, results_dir)
        if table is not None and table.attrs["stale"] is None:
            return table
        if table is None and path.is_file() and progress:
            why = table_staleness(config, path)
            print(f"{path.name}: {why}; recomputing", file=sys.stderr)
        if table is not None:
            stale = table.attrs["stale"]
            if reuse_stale:
                warnings.warn(
                    f"{path}: STALE results reused ({stale}); they are not what the running "
                    "code computes: recompute them with reuse_stale=False or force=True",
                    StaleResultsWarning,
                    stacklevel=2,
                )
                table.attrs["source"] = f"loaded stale ({stale})"
                return table
            if progress:
                print(f"{path.name} is stale ({stale}): recomputing", file=sys.stderr)
    else:
        shutil.rmtree(cache_dir, ignore_errors=True)
    table = run_sweep(
        config, executor=executor, workers=workers, progress=progress, cache_dir=cache_dir
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    table.to_csv(tmp, index=False)
    code = code_record(config.kind)
    meta = {
        "fingerprint": fingerprint(config),
        "experiment": config.name,
        "quick": config.quick,
        "rows": len(table),
        "sha256": hashlib.sha256(tmp.read_bytes()).hexdigest(),
        "code": code,
        "platform": platform_stamp(),
    }
    meta_tmp = meta_path.with_name(f"{meta_path.name}.tmp")
    meta_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # never leave a half-written table under the real name
    os.replace(meta_tmp, meta_path)
    # the table now holds every cell; cells of this config left by other code go too
    for old in cache_dir.parent.glob(f"{cache_dir.name.rsplit('-', 1)[0]}-*"):
        shutil.rmtree(old, ignore_errors=True)
    cached, total = table.attrs.pop("cached_cells"), table.attrs.pop("cells")
    if cached:
        source = f"resumed ({cached} of {total} cells cached)"
    else:
        source = "computed" if stale is None else f"recomputed (stale: {stale})"
    table.attrs.update(source=source, code=code["fingerprint"], stale=None)
    return table


def _damaged(path: Path, why: str) -> ValueError:
    return ValueError(
        f"{path}: {why}; recompute it with load_or_run(..., force=True) "
        f"(python -m mol_diffusion run <experiment> --force)"
    )


def _meta(meta_path: Path) -> dict:
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _damaged(meta_path, f"not a results meta file ({err})") from err
    if not isinstance(meta, dict):
        raise _damaged(meta_path, "not a results meta file (not a JSON object)")
    return meta


def stored_table(config, path) -> pd.DataFrame:
    """The table stored at ``path`` for ``config``, checked against its meta file (row count,
    checksum) and the kind's columns; a damaged or edited table raises ``ValueError`` naming
    the file. ``attrs["code"]`` is the code fingerprint recorded (None if none) and
    ``attrs["stale"]`` why the table is not what the running code computes from ``config``
    (``table_staleness``), None when it is current."""
    path = Path(path)
    meta_path = path.with_suffix(".meta.json")
    if not meta_path.is_file():
        raise _damaged(path, f"no meta file {meta_path.name} beside it")
    meta = _meta(meta_path)
    data = path.read_bytes()
    if "sha256" not in meta:
        raise _damaged(meta_path, "no checksum of the table (an older meta file)")
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise _damaged(path, f"its bytes do not match the checksum in {meta_path.name}")
    try:
        table = read_table(path, config.kind.integer_columns)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise _damaged(path, f"not a results table ({err})") from err
    if len(table) != meta.get("rows"):
        raise _damaged(path, f"{len(table)} rows, but {meta_path.name} says {meta.get('rows')}")
    columns = tuple(config.kind.columns(config))
    if tuple(table.columns) != columns:
        raise _damaged(path, f"columns {tuple(table.columns)}, expected {columns}")
    recorded = meta.get("code")
    table.attrs.update(
        source="loaded",
        code=recorded.get("fingerprint") if isinstance(recorded, dict) else None,
        stale=_staleness(config, meta),
    )
    return table


def cached_table(config, results_dir=None) -> pd.DataFrame | None:
    """The stored table of ``config`` (``stored_table``) when its meta file holds the config's
    fingerprint, else None (never run, or run with another config). The returned table has
    ``attrs["source"] == "loaded"`` and ``attrs["stale"]`` (None when current)."""
    path = results_path(config, results_dir)
    meta_path = path.with_suffix(".meta.json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    if _meta(meta_path).get("fingerprint") != fingerprint(config):
        return None
    return stored_table(config, path)


def _staleness(config, meta: dict) -> str | None:
    if meta.get("fingerprint") != fingerprint(config):
        return OTHER_CONFIG
    return stale_reason(meta.get("code"), config.kind)


# Why a stored table whose meta file names another config is not this config's results.
OTHER_CONFIG = "computed from another config (its meta file holds another config fingerprint)"


def table_staleness(config, path) -> str | None:
    """Why the table at ``path`` is not what the running code computes from ``config``: no
    meta file, another config (``OTHER_CONFIG``), other code (``provenance.stale_reason``);
    None when it is current. Reads the meta file only; ``stored_table`` checks the table."""
    meta_path = Path(path).with_suffix(".meta.json")
    if not meta_path.is_file():
        return f"no meta file {meta_path.name}"
    return _staleness(config, _meta(meta_path))


def table_status(config, results_dir=None) -> str:
    """``"current"``, ``"missing"`` (no table), ``"other config: <why>"`` (a table of another
    config, which ``reuse_stale`` cannot reuse) or ``"stale: <why>"`` (this config, other
    code)."""
    path = results_path(config, results_dir)
    if not path.is_file():
        return "missing"
    why = table_staleness(config, path)
    if why is None:
        return "current"
    return f"other config: {why}" if why == OTHER_CONFIG else f"stale: {why}"


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    workers: int | None = None,
    force: bool = False,
    reuse_stale: bool = False,
    results_dir=None,
    progress: bool = True,
) -> tuple[object, pd.DataFrame]:
    """Load ``experiments/<name>.toml`` and its results (``load_or_run``): (config, table).
    Says on stderr which table it used and how it got it (``describe_source``)."""
    config = load_experiment(name, quick=quick)
    table = load_or_run(
        config,
        workers=workers,
        force=force,
        reuse_stale=reuse_stale,
        progress=progress,
        results_dir=results_dir,
    )
    if progress:
        print(describe_source(config, table, results_dir), file=sys.stderr)
    return config, table


def describe_source(config, table: pd.DataFrame, results_dir=None) -> str:
    """One line: what ``load_or_run`` did, how many rows, where, and the code that made them."""
    where = results_path(config, results_dir)
    text = f"{config.name}: {table.attrs.get('source', 'computed')}, {len(table)} rows, {where}"
    return text + f", code {table.attrs.get('code')}"
