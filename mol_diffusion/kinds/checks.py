"""``check_kind``: does an experiment kind keep the contract the sweep engine relies on?

In the spirit of gymnasium's ``check_env`` and scikit-learn's ``check_estimator``: one call
runs a kind's small config through the real engine and checks what every kind must guarantee.

1. The kind implements ``kinds.base.ExperimentKind`` and survives pickling (workers receive it).
2. Parsing gives a frozen, hashable dataclass config with ``name``, ``seed``, ``quick`` and
   ``kind``; its fingerprint is the same on a rerun, after pickling and in a spawned process
   (no dependence on hash randomization), and changes with the seed; an unknown key is a
   ``ValueError`` that names it.
3. Cells are a non-empty list, hashable and picklable, with unique string labels, in a stable
   order.
4. Through ``sweeps.load_or_run`` (always recomputed, never an old table in ``results_dir``),
   rows have exactly ``kind.columns(config)`` and their cell's ``kind.cell_key`` values (the
   engine checks every row), ``kind.key_columns`` identify rows uniquely, and ``cell_key``
   selects every row for exactly one cell.
5. The same table, timing columns aside: on ``workers`` processes that each run one task in a
   fresh process; loaded back from the cache; resumed from a cell cache with every other cell
   missing; cell by cell without batching; and cell by cell in reverse order in this process
   (seeds come from the cell, never from what ran before).
6. The experiment seed matters: the first cell with ``seed + 1`` gives other numbers.
"""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mol_diffusion.kinds.base import ExperimentKind, fingerprint
from mol_diffusion.sweeps import (
    cell_file,
    cell_rows,
    comparable,
    default_executor,
    load_or_run,
    rows_table,
    run_sweep,
)

__all__ = ["KindCheck", "KindContractError", "check_kind"]


class KindContractError(AssertionError):
    """An experiment kind breaks the engine's contract; the message says which part."""


@dataclass(frozen=True)
class KindCheck:
    """What ``check_kind`` ran: the kind, the grid it ran and the checks that passed."""

    kind: str
    cells: int
    rows: int
    columns: tuple[str, ...]
    seconds: float
    passed: tuple[str, ...]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise KindContractError(message)


def _same(a: pd.DataFrame, b: pd.DataFrame, kind, what: str) -> None:
    try:
        pd.testing.assert_frame_equal(
            comparable(a, kind).reset_index(drop=True), comparable(b, kind).reset_index(drop=True)
        )
    except AssertionError as err:
        raise KindContractError(f"kind {kind.name!r}: {what}: {err}") from err


def _pickled(obj, what: str, label: str):
    try:
        return pickle.loads(pickle.dumps(obj))
    except Exception as err:  # any pickling failure breaks the contract
        raise KindContractError(f"{label}: {what} cannot be pickled for workers: {err!r}") from err


def check_kind(
    kind: ExperimentKind,
    raw: dict,
    *,
    results_dir,
    workers: int = 2,
    name: str = "kind_check",
) -> KindCheck:
    """Run ``kind`` on the TOML table ``raw`` through the engine and check the contract
    (module docstring). ``raw`` is a kind's section without its ``kind`` key, with an integer
    ``seed``; keep it small, every check runs the whole grid. Tables go under ``results_dir``
    (overwritten).

    Returns a ``KindCheck`` summary; raises ``KindContractError`` at the first broken promise.
    """
    started = time.perf_counter()
    passed = []
    _require(
        isinstance(kind, ExperimentKind),
        f"{type(kind).__name__} does not implement ExperimentKind (name, timing_columns, "
        f"integer_columns, parse, cells, batch_key, run_cells, columns, key_columns, cell_key)",
    )
    label = f"kind {kind.name!r}"
    clone = _pickled(kind, "the kind", label)
    _require(type(clone) is type(kind) and clone.name == kind.name, f"{label}: pickling changes it")
    _require(isinstance(raw.get("seed"), int), f"{label}: raw needs an integer 'seed' to vary")
    passed.append("protocol and pickling")

    config = kind.parse(dict(raw), name, False)
    _require(
        dataclasses.is_dataclass(config) and type(config).__dataclass_params__.frozen,
        f"{label}: parse must return a frozen dataclass, got {type(config).__name__}",
    )
    try:
        hash(config)
    except TypeError as err:
        raise KindContractError(f"{label}: its config holds a mutable value ({err})") from err
    for attr in ("name", "seed", "quick", "kind"):
        _require(hasattr(config, attr), f"{label}: its config has no {attr!r}")
    _require(config.name == name and config.quick is False, f"{label}: name or quick not kept")
    _require(
        type(config.kind) is type(kind) and config.kind.name == kind.name,
        f"{label}: config.kind is {config.kind!r}, not the kind that parsed it",
    )
    key = fingerprint(config)
    _require(fingerprint(kind.parse(dict(raw), name, False)) == key, f"{label}: unstable config")
    _require(
        fingerprint(_pickled(config, "its config", label)) == key,
        f"{label}: pickling the config changes its fingerprint",
    )
    with default_executor(1, fresh=True) as pool:
        elsewhere = pool.submit(fingerprint, config).result()
    _require(elsewhere == key, f"{label}: the fingerprint differs in another process")
    other = kind.parse({**raw, "seed": raw["seed"] + 1}, name, False)
    _require(fingerprint(other) != key, f"{label}: the fingerprint ignores the seed")
    bogus = "no_such_key_for_check_kind"
    try:
        kind.parse({**raw, bogus: 1}, name, False)
    except ValueError as err:
        _require(
            bogus in str(err), f"{label}: the error for an unknown key does not name it: {err}"
        )
    else:
        raise KindContractError(f"{label}: parse accepts an unknown key ({bogus!r})")
    passed.append("validated config")

    cells = kind.cells(config)
    _require(isinstance(cells, list) and cells, f"{label}: cells must be a non-empty list")
    labels = [cell.label for cell in cells]
    _require(
        all(isinstance(x, str) and x for x in labels) and len(set(labels)) == len(labels),
        f"{label}: cell labels must be unique non-empty strings, got {labels[:5]}...",
    )
    _require(len(set(cells)) == len(cells), f"{label}: cells must be hashable and distinct")
    _require(_pickled(cells, "its cells", label) == cells, f"{label}: cells change when pickled")
    _require(kind.cells(config) == cells, f"{label}: the cell order is not stable")
    passed.append("cells")

    directory = Path(results_dir)
    one = load_or_run(config, workers=1, progress=False, results_dir=directory / "one", force=True)
    columns = tuple(kind.columns(config))
    _require(tuple(one.columns) == columns, f"{label}: table columns {tuple(one.columns)}")
    keys = list(kind.key_columns(config))
    _require(set(keys) <= set(columns), f"{label}: key columns {keys} are not all columns")
    _require(
        not one.duplicated(subset=keys).any(), f"{label}: key columns {keys} repeat in the table"
    )
    owners = pd.Series(0, index=one.index)
    for cell in cells:
        owners[cell_rows(one, config, cell).index] += 1
    _require(
        (owners == 1).all(),
        f"{label}: cell_key must select every row for exactly one cell "
        f"({int((owners == 0).sum())} rows for none, {int((owners > 1).sum())} for several)",
    )
    passed.append("declared columns and cell keys")

    with default_executor(workers, fresh=True) as pool:
        many = load_or_run(
            config, executor=pool, progress=False, results_dir=directory / "many", force=True
        )
    _same(one, many, kind, f"1 worker vs {workers} workers")
    again = load_or_run(config, workers=1, progress=False, results_dir=directory / "one")
    _require(again.attrs.get("source") == "loaded", f"{label}: the table was not cached")
    _same(one, again, kind, "the cached table")
    cache = directory / "resume"
    shutil.rmtree(cache, ignore_errors=True)
    run_sweep(config, workers=1, progress=False, cache_dir=cache)
    for cell in cells[::2]:
        cell_file(cache, cell).unlink()
    resumed = run_sweep(config, workers=1, progress=False, cache_dir=cache)
    _require(resumed.attrs["cached_cells"] == len(cells) // 2, f"{label}: the cell cache missed")
    _same(one, resumed, kind, "resumed from the cell cache")
    if any(kind.batch_key(config, cell) is not None for cell in cells):
        single = run_sweep(config, workers=1, progress=False, batch=False)
        _same(one, single, kind, "batched vs cell by cell")
    passed.append(f"the same table on {workers} fresh workers, cached, resumed and unbatched")

    backwards = {cell: kind.run_cells(config, [cell])[0] for cell in reversed(cells)}
    alone = rows_table(
        [row for cell in cells for row in backwards[cell]], columns, kind.integer_columns
    )
    _same(one, alone, kind, "cell by cell in reverse order (seeds must come from the cell)")
    first = rows_table(kind.run_cells(other, [cells[0]])[0], columns, kind.integer_columns)
    measured = [c for c in columns if c not in keys and c not in kind.timing_columns]
    _require(
        not comparable(first, kind)[measured].equals(
            comparable(cell_rows(one, config, cells[0]), kind)[measured].reset_index(drop=True)
        ),
        f"{label}: seed + 1 gives the same rows for {cells[0].label}: the seed is ignored",
    )
    passed.append("seeds from the cell and the experiment seed")
    return KindCheck(
        kind=kind.name,
        cells=len(cells),
        rows=len(one),
        columns=columns,
        seconds=time.perf_counter() - started,
        passed=tuple(passed),
    )
