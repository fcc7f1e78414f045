"""The unlabeled-rate design: one generalist seed per replicate (``generalist_seed =
"per_replicate"``, ``kinds.gaussian``), so a sweep in m keeps the random-feature class, and the
rule that reads the excess over the large-m limit (``claims.gaussian.excess_over_limit``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from mol_diffusion import claims
from mol_diffusion.claims.gaussian import excess_over_limit
from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.grid import Cell, fit_cells


def _omegas(config, ms):
    cells = [Cell("two_stage", config.n[0], m, 0, 0, 0) for m in ms]
    return [r.generalist.omega for r in fit_cells(config, cells)]


def test_a_seed_per_replicate_keeps_the_class_across_m_and_the_default_does_not():
    config = load_experiment("unlabeled_rate", quick=True)
    assert config.generalist_seed == "per_replicate"
    ms = config.m[:2]
    same = _omegas(config, ms)
    torch.testing.assert_close(same[0], same[1], rtol=0, atol=0)
    per_cell = _omegas(dataclasses.replace(config, generalist_seed="per_cell"), ms)
    assert not torch.equal(per_cell[0], per_cell[1])


def test_the_default_seed_key_is_the_one_every_committed_table_was_computed_with():
    config = load_experiment("capacity_shared", quick=True)
    cell = Cell("oracle", None, 2048, 1, 0, 3)
    assert config.generalist_seed_key(cell) == (3, 2048, 1, 0)  # (replicate, m, capacity, lambda)
    assert "generalist_seed" in config.fingerprint_omit  # so its results key did not change


def test_a_bad_generalist_seed_is_named():
    config = load_experiment("unlabeled_rate", quick=True)
    with pytest.raises(ValueError, match="generalist_seed must be one of"):
        dataclasses.replace(config, generalist_seed="per_m")


def _law_table(slope: float, seeds: int = 6, limit: float = 0.05, noise: float = 0.0, seed=0):
    """Two-stage rows with risk = limit + c m^slope (times log-normal noise) below the largest
    m and risk = limit at it."""
    rng = np.random.default_rng(seed)
    ms = [512, 1024, 2048, 4096, 65536]
    rows = []
    for rep in range(seeds):
        for m in ms:
            excess = 0.0 if m == ms[-1] else 5.0 * m**slope * np.exp(noise * rng.normal())
            rows.append(
                dict(
                    method="two_stage",
                    n=1536,
                    m=m,
                    capacity=16,
                    num_params=160,
                    weights_index=0,
                    replicate=rep,
                    risk=limit + excess,
                )
            )
    return pd.DataFrame(rows)


def test_the_excess_over_the_limit_is_the_risk_minus_the_seeds_largest_m_risk():
    table = _law_table(-1.0)
    ex = excess_over_limit(table)
    assert sorted(ex.m.unique()) == [512, 1024, 2048, 4096]
    np.testing.assert_allclose(ex.excess, 5.0 / ex.m)


@pytest.mark.parametrize(("slope", "verdict"), [(-1.0, "supported"), (-0.5, "contradicted")])
def test_the_unlabeled_rate_rule_tells_1_over_m_from_1_over_sqrt_m(slope, verdict):
    table = _law_table(slope, seeds=8, noise=0.05, seed=1)
    v = claims.evaluate("unlabeled_rate", table, calibration=None)
    assert v.raw_verdict == verdict, v.detail


def test_the_unlabeled_rate_rule_needs_two_values_of_m_below_the_limit():
    table = _law_table(-1.0)
    table = table[table.m.isin([512, 65536])]
    v = claims.evaluate("unlabeled_rate", table, calibration=None)
    assert v.verdict == "not evaluable"
