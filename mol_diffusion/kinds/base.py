"""What every experiment kind shares: the protocol the sweep engine calls, seeds, the cache key.

An *experiment kind* (Gaussian families scored by exact risk, image restoration scored by PSNR,
diffusion policies scored by rollouts, or a user's own) is one object that implements
``ExperimentKind``. The engine (``mol_diffusion.sweeps``) knows only this protocol: it never
asks which kind it runs. A kind

- parses and validates its section of a TOML file into a frozen dataclass config,
- lists the config's cells (hashable, picklable, each with a unique ``label``),
- runs a batch of cells into table rows (a list of rows per cell),
- names its results columns, the columns that identify a row (and which of their values a
  cell's rows share), and the columns that vary between identical runs (timings).

Configs expose ``name``, ``seed``, ``quick`` and ``kind`` (the kind object that parsed them).
The engine passes kind objects, not names, to its workers, so a kind defined outside the library
(registered at run time, in a test, in a notebook) travels to spawned workers as it is.
``kinds.checks.check_kind`` runs a kind through the engine and checks the contract.

Seeds: every seed of a cell derives from the experiment seed and a key naming the cell
(``numpy.random.SeedSequence`` spawn keys, ``seed`` / ``generator``), never from execution
order, so tables are the same on any number of workers and in any order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

__all__ = [
    "ExperimentKind",
    "apply_quick",
    "check_keys",
    "config_error",
    "fingerprint",
    "generator",
    "is_number",
    "one_thread",
    "positive_ints",
    "seed",
]


@runtime_checkable
class ExperimentKind(Protocol):
    """The interface between one kind of experiment and the sweep engine.

    Attributes:
        name: the value of ``kind = "..."`` in a TOML file that selects this kind.
        timing_columns: columns whose values vary between identical runs (wall-clock times);
            every other column is a pure function of the config and the cell.
        integer_columns: integer columns that may be missing (pandas Int64, <NA>).
    """

    name: str
    timing_columns: tuple[str, ...]
    integer_columns: tuple[str, ...]

    def parse(self, raw: dict, name: str, quick: bool) -> Any:
        """A validated, frozen dataclass config from a TOML table (without its ``kind`` key);
        ``quick`` applies the table's ``[quick]`` overrides. Raises ``ValueError`` naming the
        offending key on bad input, unknown keys included."""
        ...

    def cells(self, config: Any) -> list[Hashable]:
        """Every cell of the grid in canonical order; each has a unique ``label`` (str)."""
        ...

    def batch_key(self, config: Any, cell: Hashable) -> Hashable | None:
        """Cells with one key (not None) may run as one task (``run_cells`` on all of them)."""
        ...

    def run_cells(self, config: Any, cells: Sequence[Hashable]) -> list[list[dict]]:
        """The rows of each cell (one list per cell, in order), the same whichever cells run
        together: a batch must give each cell the rows it gives alone."""
        ...

    def columns(self, config: Any) -> tuple[str, ...]:
        """The results table's columns, in order; every row has exactly these keys."""
        ...

    def key_columns(self, config: Any) -> tuple[str, ...]:
        """Columns whose values identify one row of the table."""
        ...

    def cell_key(self, config: Any, cell: Hashable) -> dict[str, Any]:
        """Values of key columns that every row of ``cell`` has (None for a missing value):
        how a table's rows are traced back to the cell that made them."""
        ...


def _canonical(value):
    """JSON for what json.dumps does not know: sets in sorted order; anything else is an error
    (``str`` of an arbitrary object may change between processes, and the key with it)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(
        f"a config field holds a {type(value).__name__}, which has no stable fingerprint; "
        "use numbers, strings, booleans, None, tuples, dataclasses or sets of these"
    )


def fingerprint(config, omit: tuple[str, ...] = ()) -> str:
    """sha256 (16 hex digits) of a config dataclass: which experiment a results table is of.

    Only the dataclass fields count, not its class; ``omit`` leaves fields out (a field added
    later, at the value that reproduces the tables computed before it existed); a config's
    ``fingerprint_omit`` property adds to it. The code that computed a table is recorded
    beside it (``provenance.code_record``) and checked on load, so no hand-bumped numerics
    version is needed: a change to the code makes its tables stale by itself.
    """
    omit = (*omit, *getattr(config, "fingerprint_omit", ()))
    fields_ = {k: v for k, v in asdict(config).items() if k not in omit}
    key = {"config": fields_}
    blob = json.dumps(key, sort_keys=True, default=_canonical)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def seed(config, *key: int) -> int:
    """A 63-bit seed from ``config.seed`` and ``key`` (a SeedSequence spawn key)."""
    state = np.random.SeedSequence(
        config.seed, spawn_key=tuple(int(k) for k in key)
    ).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def generator(config, *key: int) -> torch.Generator:
    """A torch generator seeded with ``seed(config, *key)``."""
    return torch.Generator().manual_seed(seed(config, *key))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread and one thread in numpy's and scipy's BLAS (so
    reductions are the same on every worker and workers do not oversubscribe the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- parsing helpers
def is_number(value) -> bool:
    """A TOML number (int or float), not a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def config_error(where: str, message: str) -> ValueError:
    """``ValueError("<where>: <message>")``."""
    return ValueError(f"{where}: {message}")


def positive_ints(value: Any, where: str) -> tuple[int, ...]:
    """A sorted tuple of distinct positive integers from an int or a non-empty list of them."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise config_error(where, f"must be a non-empty list of positive integers, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise config_error(where, f"must hold positive integers, got {v!r}")
    if len(set(value)) != len(value):
        raise config_error(where, f"must not repeat values, got {value!r}")
    return tuple(sorted(value))


def apply_quick(raw: dict, quick: bool) -> dict:
    """A copy of a TOML table without its ``[quick]`` table, whose overrides are applied when
    ``quick`` (sub-tables are merged key by key)."""
    raw = dict(raw)
    overrides = raw.pop("quick", {})
    if quick:
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
    return raw


def check_keys(raw: dict, known: set[str], required: set[str], where: str) -> None:
    """Raise a ValueError naming unknown or missing keys of a TOML table."""
    unknown = set(raw) - known
    if unknown:
        raise config_error(where, f"unknown keys {sorted(unknown)}; known: {sorted(known)}")
    missing = required - set(raw)
    if missing:
        raise config_error(where, f"missing keys {sorted(missing)}")
