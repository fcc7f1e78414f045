"""Proposition 2's specialist term (``kinds.gaussian.specialist_error``, the spec_risk column)
and the least-squares capacity claims that read it (``claims.gaussian``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mol_diffusion import claims
from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.gaussian import specialist_error
from mol_diffusion.kinds.grid import ModelSpec, PseudoLabelSpec
from mol_diffusion.metrics import make_risk_draws
from mol_diffusion.scores import LinearGaussianScore
from mol_diffusion.tasks import make_gaussian_family


@dataclasses.dataclass
class Conditional:
    """A stand-in specialist: the parameters a fitted LinearGaussianScore exposes."""

    A: torch.Tensor
    b: torch.Tensor
    Sigma: torch.Tensor


@pytest.fixture(scope="module")
def family_and_draws():
    fam = make_gaussian_family(3, 2, 2, seed=0)
    return fam, make_risk_draws(fam, 2048, torch.Generator().manual_seed(1))


def _truth(fam, scale=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Conditional(
            fam.A[k] + scale * torch.randn(fam.A[k].shape, generator=g, dtype=torch.float64),
            fam.b[k],
            fam.noise_cov[k],
        )
        for k in range(fam.num_tasks)
    ]


def test_specialist_error_is_zero_at_the_truth_and_quadratic_in_the_error(family_and_draws):
    fam, draws = family_and_draws
    w = (1 / 3, 1 / 3, 1 / 3)
    assert specialist_error(fam, _truth(fam), w, draws=draws).scalarized == 0.0
    small = specialist_error(fam, _truth(fam, 0.01), w, draws=draws).scalarized
    double = specialist_error(fam, _truth(fam, 0.02), w, draws=draws).scalarized
    assert small > 0
    # an error of the mean map enters the score linearly, its square the risk: the delta
    # method's second order (paper, Proposition 2, "Dependence on n")
    assert 3.6 < double / small < 4.4


def test_specialist_error_of_fitted_specialists_falls_like_one_over_n(family_and_draws):
    # maximum-likelihood specialists: n ||theta_hat - theta||^2 is O(1), so the term is O(1/n)
    fam, draws = family_and_draws
    w = (1 / 3, 1 / 3, 1 / 3)
    means = {}
    for n in (64, 1024):
        values = []
        for rep in range(6):
            g = torch.Generator().manual_seed(100 + rep)
            fitted = [
                LinearGaussianScore().fit(*fam.sample(k, n, g), generator=g) for k in range(3)
            ]
            values.append(specialist_error(fam, fitted, w, draws=draws).scalarized)
        means[n] = np.mean(values)
    assert 8 < means[64] / means[1024] < 32  # 16 for an exact 1/n


def test_specialist_error_names_a_wrong_task_count(family_and_draws):
    fam, draws = family_and_draws
    with pytest.raises(ValueError, match="one model per task"):
        specialist_error(fam, _truth(fam)[:2], (0.5, 0.5, 0.0), draws=draws)


def test_specialist_error_config_is_checked():
    config = load_experiment("capacity_regime", quick=True)
    assert config.specialist_error is True
    with pytest.raises(ValueError, match="specialist_error must be true or false"):
        dataclasses.replace(config, specialist_error=1)
    with pytest.raises(ValueError, match="needs linear specialists"):
        dataclasses.replace(
            config, specialist=ModelSpec("mlp", (), (16,)), pseudo_labels=PseudoLabelSpec()
        )
    # the field at its default stays out of the results-cache key
    plain = load_experiment("sample_complexity", quick=True)
    assert "specialist_error" in plain.fingerprint_omit
    assert "specialist_error" not in config.fingerprint_omit


def test_quick_run_has_spec_risk_on_two_stage_rows_only(tmp_path):
    from mol_diffusion.sweeps import load_or_run

    config = dataclasses.replace(
        load_experiment("capacity_regime", quick=True), replicates=1, m=(256,)
    )
    tab = load_or_run(config, workers=1, results_dir=tmp_path)
    ts = tab[tab.method == "two_stage"]
    assert (ts.spec_risk > 0).all()
    assert tab[tab.method != "two_stage"].spec_risk.isna().all()


# ---------------------------------------------------------------- the claim rules
P_GEN = [40, 80, 160, 320, 640]


def ls_table(*, lo_slope=1.0, ratio=0.5, ratio_slope=0.0, reps=8, noise=0.02, seed=0):
    """capacity_regime rows at n = 128: oracle risk 0.1 (p_gen/40)^-0.5, labeled-only excess
    0.01 (p_gen/40)^lo_slope, two-stage excess (ratio + ratio_slope log2(p_gen/40)) x spec_risk
    with spec_risk 0.003, each with multiplicative per-cell noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        spec = 0.003 * np.exp(rng.normal(0, noise))
        for p in P_GEN:
            oracle = 0.1 * (p / 40) ** -0.5 * np.exp(rng.normal(0, noise))
            lo = 0.01 * (p / 40) ** lo_slope * np.exp(rng.normal(0, noise))
            r = (ratio + ratio_slope * np.log2(p / 40)) * np.exp(rng.normal(0, noise))
            for method, risk, sr, n in (
                ("oracle", oracle, np.nan, None),
                ("labeled_only", oracle + lo, np.nan, 128),
                ("two_stage", oracle + r * spec, spec, 128),
            ):
                rows.append(
                    dict(
                        method=method,
                        n=n,
                        m=16384,
                        capacity=p // 10,
                        num_params=p,
                        weights_index=0,
                        replicate=rep,
                        risk=risk,
                        spec_risk=sr,
                    )
                )
    out = pd.DataFrame(rows)
    for col in ("n", "capacity"):
        out[col] = out[col].astype("Int64")
    return out


def raw(claim_id, tab):
    return claims.evaluate(claim_id, tab, calibration=None).raw_verdict


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_least_squares_claims_three_verdicts(seed):
    good = ls_table(seed=seed)
    bad = ls_table(lo_slope=0.3, ratio=2.6, ratio_slope=0.3, seed=seed)
    for suffix in ("", "_d4"):
        for rule in (
            "ls_capacity_cost_labeled_only",
            "specialist_bound",
            "ls_capacity_free_two_stage",
        ):
            assert raw(rule + suffix, good) == "supported", rule
            assert raw(rule + suffix, bad) == "contradicted", rule


def test_specialist_bound_reads_the_ratio_to_the_specialist_error():
    tab = ls_table(ratio=0.5, noise=1e-6)
    verdict = claims.evaluate("specialist_bound", tab, calibration=None)
    assert [c["estimate"] for c in verdict.components] == pytest.approx([0.5] * 5, rel=1e-4)
    slope = claims.evaluate(
        "ls_capacity_free_two_stage", ls_table(ratio_slope=0.05, noise=1e-6), calibration=None
    )
    assert slope.estimate == pytest.approx(0.05, rel=1e-3)


def test_least_squares_claims_need_spec_risk():
    tab = ls_table().drop(columns="spec_risk")
    assert claims.evaluate("specialist_bound", tab, calibration=None).raw_verdict == (
        "not evaluable"
    )


def test_every_claim_has_a_tex_macro_name_of_letters():
    # TeX macro names are letters only: a digit (specialist_bound_d4) would end the name
    from mol_diffusion.claims.registry import _macro_name

    names = [_macro_name(claim_id) for claim_id in claims.REGISTRY]
    assert all(name.isalpha() for name in names), [n for n in names if not n.isalpha()]
    assert len(set(names)) == len(names)
    assert _macro_name("specialist_bound_d4") == "claimSpecialistBoundDFour"


def test_a_registered_run_that_is_not_evaluable_keeps_its_status_and_seeds():
    # the committed confirmatory capacity_regime table: one seed's labeled-only excess at the
    # smallest p_gen is negative, so the log-scale rule cannot evaluate it; the verdict still
    # says it is the registered run, with its seeds
    from mol_diffusion.claims.registry import load_results

    tab = load_results()["capacity_regime"]
    verdict = claims.evaluate("ls_capacity_cost_labeled_only", tab)
    assert verdict.verdict == "not evaluable"
    assert "non-positive" in verdict.detail
    assert verdict.status == "confirmatory"
    assert verdict.n_seeds == tab.replicate.nunique() == 32
