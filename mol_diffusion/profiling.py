"""Where one cell's time goes (``python -m mol_diffusion profile NAME``): one cell of an
experiment run under ``cProfile``, with the functions that take the most time of their own
printed first.

The cell is run through its kind's ``run_cells``, as a sweep worker runs it (the shipped kinds
set one torch thread and one BLAS thread there themselves; the rows it gives are those of the
sweep and are discarded); nothing is stored, so a profile never touches a results table. Read the
``tottime`` column: for torch operators it is the time inside the operator, so the top entries
say whether a cell is bound by training (``run_backward``, ``baddbmm``), sampling or
environment steps.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from dataclasses import dataclass

from mol_diffusion._validation import check_positive_int

__all__ = ["CellProfile", "profile_cell"]


@dataclass(frozen=True)
class CellProfile:
    """One profiled cell: its label, wall seconds and the top of the profile (text)."""

    experiment: str
    cell: str
    seconds: float
    top: str

    def __str__(self) -> str:
        return f"{self.experiment}: cell {self.cell}, {self.seconds:.1f} s\n{self.top}"


def profile_cell(
    experiment: str, *, index: int | None = None, quick: bool = False, top: int = 15
) -> CellProfile:
    """Profile one cell of ``experiment``.

    Args:
        experiment: a config name in ``experiments/`` or a path to a TOML file.
        index: which cell of the config's canonical order (default: the middle one, which on
            the shipped grids is neither the cheapest nor the most expensive).
        quick: use the config's ``[quick]`` overrides.
        top: how many functions to print, >= 1.
    Returns:
        a ``CellProfile``; ``top`` holds the profile's first ``top`` rows sorted by own time.
    """
    from mol_diffusion.config import load_experiment

    check_positive_int(top, "top")
    config = load_experiment(experiment, quick=quick)
    kind = config.kind
    cells = kind.cells(config)
    if index is None:
        index = len(cells) // 2
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cells):
        raise ValueError(f"index must be an integer in [0, {len(cells)}), got {index!r}")
    cell = cells[index]
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    kind.run_cells(config, [cell])
    profiler.disable()
    seconds = time.perf_counter() - start
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    lines = [line for line in text.getvalue().splitlines() if line.strip()]
    # drop pstats' preamble (call counts and the sort order), keep the header row and the table
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return CellProfile(str(experiment), str(cell.label), seconds, "\n".join(lines[first:]))
