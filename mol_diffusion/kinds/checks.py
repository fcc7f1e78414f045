"""``check_kind``: does an experiment kind keep the contract the sweep engine relies on?

In the spirit of gymnasium's ``check_env`` and scikit-learn's ``check_estimator``: one call
runs a kind's small config through the real engine and checks what every kind must guarantee.

1. The kind implements ``kinds.base.ExperimentKind`` and survives pickling (workers receive it).
2. Parsing gives a frozen dataclass config with ``name``, ``seed``, ``quick`` and ``kind``;
   its fingerprint is stable, survives pickling, and changes with the seed; an unknown key is
   a ``ValueError`` that names it.
3. Cells are a non-empty list, hashable and picklable, with unique string labels, in a stable
   order.
4. Through ``sweeps.load_or_run``, rows have exactly ``kind.columns(config)`` (the engine checks
   every row), ``kind.key_columns`` identify rows uniquely, ``kind.cell_key`` traces every row
   to exactly one cell, and the table is the same, timing
   columns aside, on 1 and on ``workers`` processes, loaded back from the cache, and cell by
   cell without batching.
5. Seeds come from the cell: the first and the last cell, run alone in this process, give the
   rows they have in the full table.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mol_diffusion.kinds.base import ExperimentKind, fingerprint
from mol_diffusion.sweeps import cell_rows, comparable, load_or_run, rows_table, run_sweep

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


def check_kind(
    kind: ExperimentKind,
    raw: dict,
    *,
    results_dir,
    workers: int = 2,
    name: str = "kind_check",
) -> KindCheck:
    """Run ``kind`` on the TOML table ``raw`` (without its ``kind`` key; make it small) through
    the engine and check the contract (module docstring). Tables go under ``results_dir``.

    Returns a ``KindCheck`` summary; raises ``KindContractError`` at the first broken promise.
    """
    started = time.perf_counter()
    passed = []
    _require(
        isinstance(kind, ExperimentKind),
        f"{type(kind).__name__} does not implement ExperimentKind (name, timing_columns, parse, "
        f"cells, batch_key, run_cells, columns, key_columns, cell_key)",
    )
    label = f"kind {kind.name!r}"
    clone = pickle.loads(pickle.dumps(kind))
    _require(type(clone) is type(kind) and clone.name == kind.name, f"{label}: pickling changes it")
    passed.append("protocol and pickling")

    config = kind.parse(dict(raw), name, False)
    _require(
        dataclasses.is_dataclass(config) and type(config).__dataclass_params__.frozen,
        f"{label}: parse must return a frozen dataclass, got {type(config).__name__}",
    )
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
        fingerprint(pickle.loads(pickle.dumps(config))) == key,
        f"{label}: pickling the config changes its fingerprint",
    )
    if isinstance(raw.get("seed"), int):
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
    _require(pickle.loads(pickle.dumps(cells)) == cells, f"{label}: cells do not survive pickling")
    _require(kind.cells(config) == cells, f"{label}: the cell order is not stable")
    passed.append("cells")

    directory = Path(results_dir)
    one = load_or_run(config, workers=1, progress=False, results_dir=directory / "one")
    columns = tuple(kind.columns(config))
    _require(tuple(one.columns) == columns, f"{label}: table columns {tuple(one.columns)}")
    keys = list(kind.key_columns(config))
    _require(set(keys) <= set(columns), f"{label}: key columns {keys} are not all columns")
    _require(
        not one.duplicated(subset=keys).any(), f"{label}: key columns {keys} repeat in the table"
    )
    passed.append("declared columns")

    many = load_or_run(config, workers=workers, progress=False, results_dir=directory / "many")
    _same(one, many, kind, f"1 worker vs {workers} workers")
    again = load_or_run(config, workers=1, progress=False, results_dir=directory / "one")
    _same(one, again, kind, "the cached table")
    if any(kind.batch_key(config, cell) is not None for cell in cells):
        single = run_sweep(config, workers=1, progress=False, batch=False)
        _same(one, single, kind, "batched vs cell by cell")
    passed.append(f"identical tables on 1 and {workers} workers, cached and unbatched")

    counts = [len(cell_rows(one, config, cell)) for cell in cells]
    _require(
        all(counts) and sum(counts) == len(one),
        f"{label}: cell_key must select each cell's rows, and every row belongs to one cell "
        f"(rows per cell {counts[:5]}..., table {len(one)})",
    )
    for cell in {0: cells[0], -1: cells[-1]}.values():
        (rows,) = kind.run_cells(config, [cell])
        ran = cell_rows(one, config, cell)
        _same(rows_table(rows, columns), ran, kind, f"cell {cell.label} alone vs in the sweep")
    passed.append("seeds from the cell")
    return KindCheck(
        kind=kind.name,
        cells=len(cells),
        rows=len(one),
        columns=columns,
        seconds=time.perf_counter() - started,
        passed=tuple(passed),
    )
