"""One feature class for every method: a fixed input scaling of the random-feature generalist
(``RandomFeatureScore(input_scaler=...)``) and the Gaussian kind's ``input_scaling =
"population"`` (``kinds.gaussian.population_scaler``), and the rules that read those runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from mol_diffusion import claims
from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.gaussian import population_scaler
from mol_diffusion.kinds.grid import Cell, fit_cells
from mol_diffusion.scores import InputScaler, RandomFeatureScore
from mol_diffusion.tasks import make_gaussian_family


@pytest.mark.parametrize("dim", [2, 4])
def test_population_scaler_is_the_limit_of_the_fitted_one(dim):
    # the law of total variance over the equal-weight mixture; reference: InputScaler.fit on
    # 200000 pairs per task, whose standard errors are below 0.01 for these moments
    fam = make_gaussian_family(3, dim, dim, seed=0)
    g = torch.Generator().manual_seed(0)
    cs, xs = zip(*[fam.sample(k, 200_000, g) for k in range(3)], strict=True)
    fitted, exact = InputScaler.fit(torch.cat(cs), torch.cat(xs), None), population_scaler(fam)
    for name in ("mu_x", "var_x", "mu_c", "sd_c"):
        torch.testing.assert_close(
            getattr(exact, name), getattr(fitted, name), atol=0.02, rtol=0.01
        )


def test_population_scaler_refuses_a_nonlinear_family():
    fam = make_gaussian_family(3, 2, 2, seed=0, nonlinearity=0.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        population_scaler(fam)


def test_a_fixed_scaler_makes_the_class_independent_of_the_data():
    fam = make_gaussian_family(3, 2, 2, seed=0)
    scaler = population_scaler(fam)
    g = torch.Generator().manual_seed(3)
    small, large = fam.sample(0, 32, g), fam.sample(1, 4096, g)
    models = [
        RandomFeatureScore(8, input_scaler=scaler).fit(c, x, generator=torch.Generator())
        for c, x in (small, large)
    ]
    for model in models:
        assert model.scaler is scaler
    torch.testing.assert_close(models[0].omega, models[1].omega)  # same seed, same gates
    free = RandomFeatureScore(8).fit(*small, generator=torch.Generator())
    assert not torch.equal(free.scaler.mu_x, scaler.mu_x)  # the default fits it to the data


def test_a_fixed_scaler_of_the_wrong_shape_or_type_is_named():
    fam = make_gaussian_family(3, 2, 2, seed=0)
    wide = make_gaussian_family(3, 4, 2, seed=0)
    model = RandomFeatureScore(8, input_scaler=population_scaler(wide))
    with pytest.raises(ValueError, match="input_scaler has statistics of shapes"):
        model.fit(*fam.sample(0, 16, torch.Generator()), generator=torch.Generator())
    with pytest.raises(TypeError, match="input_scaler must be an InputScaler"):
        RandomFeatureScore(8, input_scaler={"mu_x": 0})


def test_population_scaling_gives_every_method_of_a_cell_the_same_class():
    config = load_experiment("capacity_shared", quick=True)
    assert config.input_scaling == "population"
    cells = [
        Cell("oracle", None, config.m[0], 0, 0, 0),
        Cell("labeled_only", config.n[0], config.m[0], 0, 0, 0),
        Cell("two_stage", config.n[0], config.m[0], 0, 0, 0),
    ]
    models = [r.generalist for r in fit_cells(config, cells)]
    for model in models[1:]:
        for name in ("mu_x", "var_x", "mu_c", "sd_c"):
            assert torch.equal(getattr(model.scaler, name), getattr(models[0].scaler, name))
        assert torch.equal(model.omega, models[0].omega)
        assert torch.equal(model.offset, models[0].offset)
    data = dataclasses.replace(config, input_scaling="data")
    scaled = [r.generalist for r in fit_cells(data, cells)]
    assert not torch.equal(scaled[1].scaler.mu_x, scaled[0].scaler.mu_x)  # the first design


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(input_scaling="fixed"), "input_scaling must be one of"),
        (dict(generalist="mlp"), "needs a random_features generalist"),
        (dict(nonlinearity=0.5), "needs the linear family"),
    ],
)
def test_population_scaling_config_errors_name_the_field(change, message):
    config = load_experiment("capacity_shared", quick=True)
    fields = {"input_scaling": change.get("input_scaling", "population")}
    if "generalist" in change:
        fields["generalist"] = dataclasses.replace(
            config.generalist, kind="mlp", options=(), capacities=(8,)
        )
    if "nonlinearity" in change:
        fields["family"] = dataclasses.replace(config.family, nonlinearity=0.5)
        fields["specialist_error"] = False
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(config, **fields)


def test_the_default_scaling_keeps_the_first_design_s_cache_key():
    # input_scaling is left out of the fingerprint at "data": the tables computed before it
    # existed keep their key (capacity_regime's committed meta.json records it)
    config = load_experiment("capacity_regime")
    assert config.input_scaling == "data"
    assert "input_scaling" in config.fingerprint_omit
    assert "input_scaling" not in load_experiment("capacity_shared").fingerprint_omit


def _table(excess_lo, excess_ts, spec, *, extra_lambda=False):
    """A synthetic capacity_shared table: per-seed excesses at n = 256 over an oracle of risk 1
    (arrays (seeds, capacities)); with ``extra_lambda`` a second lambda whose rows would change
    every estimate if a rule read them."""
    rows = []
    caps = [4, 8, 16, 32, 64]
    for w in (0, 1) if extra_lambda else (0,):
        for rep in range(excess_lo.shape[0]):
            for j, cap in enumerate(caps):
                common = dict(m=16384, capacity=cap, num_params=10 * cap, weights_index=w)
                bump = 10.0 * w
                rows += [
                    dict(method="oracle", n=pd.NA, replicate=rep, risk=1.0, spec_risk=np.nan)
                    | common,
                    dict(
                        method="labeled_only",
                        n=256,
                        replicate=rep,
                        risk=1 + excess_lo[rep, j] + bump,
                        spec_risk=np.nan,
                    )
                    | common,
                    dict(
                        method="two_stage",
                        n=256,
                        replicate=rep,
                        risk=1 + excess_ts[rep, j] + bump,
                        spec_risk=spec,
                    )
                    | common,
                ]
    return pd.DataFrame(rows)


def test_the_shared_rules_recover_known_slopes_and_ratios():
    rng = np.random.default_rng(0)
    p = 10.0 * np.array([4, 8, 16, 32, 64])
    seeds = 6
    lo = 1e-4 * p * np.exp(rng.normal(0, 0.05, (seeds, 5)))  # slope 1 in p_gen
    ratio = 0.3 + 0.1 * np.log2(p / p[0])  # 0.3 .. 0.7: slope 0.1 per doubling
    ts = 0.002 * np.tile(ratio, (seeds, 1))
    table = _table(lo, ts, 0.002, extra_lambda=True)
    cost = claims.REGISTRY["shared_capacity_cost_labeled_only"].rule(table, {})
    np.testing.assert_allclose(cost.components[0].values.mean(), 1.0, atol=0.03)
    bound = claims.REGISTRY["shared_specialist_bound"].rule(table, {})
    np.testing.assert_allclose([c.values.mean() for c in bound.components], ratio, rtol=1e-9)
    slope = claims.REGISTRY["shared_capacity_free_two_stage"].rule(table, {})
    np.testing.assert_allclose(slope.components[0].values, 0.1, rtol=1e-9)
