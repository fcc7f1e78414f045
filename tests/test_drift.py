"""Guard against silent numeric drift: one cell of every shipped config, recomputed now, must
reproduce its rows in the committed table.

For each ``experiments/*.toml`` (the full config, as committed) the guard picks the cell whose
committed rows took the least fitting time (``fit_seconds``), runs it alone with the current
code, and compares every non-timing column with the committed rows. A refactor that changes a
number, and every later change that does, fails here until its tables are recomputed.

Tolerance. Cells run on one thread, so on a machine with the table's platform stamp
(``sweeps.platform_stamp``, in its meta file) the match must be exact. A table computed on
another CPU, or before tables carried a stamp, is compared at its kind's ``CROSS_CPU_RTOL``.
Measured on 2026-12-01 (committed tables from an earlier machine against this one, the same
code on both: running the pre-refactor code here reproduced today's numbers bit for bit):
largest relative difference 2.2e-14 for the float64 random-feature experiments, 2.1e-7 for
float32 networks (neural_generalist, image_restoration), and for the policy 3.2e-2: the expert
differs by 3e-15 and the float32 specialists by 1.5e-5, and on-policy rollouts turn that into
different visited states. The policy tolerance still has teeth: changing the replicate (a seed
change) moves half of a cell's returns and gaps by more than 10%.
"""

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from mol_diffusion import paths
from mol_diffusion.config import load_experiment
from mol_diffusion.sweeps import (
    cell_rows,
    comparable,
    platform_stamp,
    read_table,
    results_path,
    rows_table,
)

CROSS_CPU_RTOL = {"gaussian": 1e-5, "restoration": 1e-5, "policy": 0.1}
SHIPPED = sorted(p.stem for p in paths.EXPERIMENTS.glob("*.toml"))


def cheapest_cell(config, table):
    cells = config.kind.cells(config)
    costs = [cell_rows(table, config, cell).fit_seconds.sum() for cell in cells]
    return cells[int(np.argmin(costs))]


def meta(config) -> dict:
    return json.loads(results_path(config).with_suffix(".meta.json").read_text())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_has_a_committed_table_of_its_fingerprint(name):
    config = load_experiment(name)
    assert meta(config)["fingerprint"] == config.fingerprint(), f"{name}: the table is stale"
    assert meta(config)["rows"] == len(read_table(results_path(config)))


def check_cell(name: str, config) -> None:
    """Recompute the cheapest committed cell of ``name`` with ``config``; AssertionError when
    it does not reproduce the committed rows."""
    kind = config.kind
    committed = read_table(results_path(config))
    cell = cheapest_cell(config, committed)
    (rows,) = kind.run_cells(config, [cell])
    now = comparable(rows_table(rows, kind.columns(config)), kind).reset_index(drop=True)
    then = comparable(cell_rows(committed, config, cell), kind).reset_index(drop=True)
    assert len(now) == len(then) > 0, (
        f"{name}, {cell.label}: {len(now)} rows, {len(then)} committed"
    )
    same_platform = meta(config).get("platform") == platform_stamp()
    rtol = 0.0 if same_platform else CROSS_CPU_RTOL[kind.name]
    if not same_platform:
        warnings.warn(
            f"{name}: the committed table was computed on another platform; compared at "
            f"rtol {rtol:g}",
            stacklevel=1,
        )
    keys = list(kind.key_columns(config))
    numeric = [c for c in now.columns if c not in keys and pd.api.types.is_numeric_dtype(then[c])]
    exact = [c for c in now.columns if c not in numeric]
    where = f"{name}, cell {cell.label}: the current code drifted from the committed table"
    try:
        pd.testing.assert_frame_equal(now[exact], then[exact], check_dtype=False)
    except AssertionError as err:
        raise AssertionError(f"{where}: {err}") from err
    np.testing.assert_allclose(
        now[numeric].to_numpy(float),
        then[numeric].to_numpy(float),
        rtol=rtol,
        atol=0,
        equal_nan=True,
        err_msg=where,
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_one_cell_of_every_shipped_config_reproduces_the_committed_table(name):
    check_cell(name, load_experiment(name))


@pytest.mark.parametrize("name", ["sample_complexity", "diffusion_policy"])
def test_the_guard_catches_a_changed_number(name):
    """A different experiment seed (standing in for a change of numerics) fails the guard, also
    at the loosest tolerance."""
    config = load_experiment(name)
    with pytest.raises(AssertionError, match="drifted"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_cell(name, dataclasses.replace(config, seed=config.seed + 1))
