"""The verdict machinery (``claims.registry``): three-way decisions on per-seed estimates, the
calibration cap, the status of a verdict, and the declarations it checks.

Reference values: the t-interval of a mean, mean +- t_{S-1, 1 - alpha} s / sqrt(S), with
alpha = ALPHA = 0.05 per side (a 90% two-sided interval); Welch's interval for a difference of
means with Satterthwaite's degrees of freedom (both as in any statistics text, e.g. Casella &
Berger, Statistical Inference, 2nd ed., sections 9.2 and 8.3 exercises).
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from mol_diffusion import claims, stats
from mol_diffusion.claims import registry
from mol_diffusion.claims.registry import Claim, Component, Estimate, Region, decide
from mol_diffusion.config import Preregistration, load_experiment

finite = st.floats(-5, 5, allow_nan=False)
samples = st.lists(finite, min_size=2, max_size=12).filter(lambda v: np.std(v) > 1e-6)


POSITIVE = Region(low=0.0)


def toy_claim(region=POSITIVE, effect=1.0, **kw):
    return Claim(
        id="toy",
        experiment="toy",
        statement="toy",
        estimand="x",
        region=region,
        effect=effect,
        effect_reason="a test",
        rule=lambda table, results: None,
        **kw,
    )


def test_t_interval_matches_the_textbook_formula():
    v = np.array([0.3, 1.1, 0.7, 0.2, 0.9])
    mean, low, high = Component("", v).interval(1 - 2 * claims.ALPHA)
    half = sps.t.ppf(0.95, 4) * v.std(ddof=1) / math.sqrt(5)
    assert mean == pytest.approx(v.mean())
    assert (low, high) == pytest.approx((v.mean() - half, v.mean() + half))


def test_welch_interval_matches_the_textbook_formula():
    a, b = np.array([1.0, 1.4, 0.8, 1.2]), np.array([0.1, 0.5, 0.2, 0.6, 0.3, 0.0])
    _, low, high = Component("", a, control=b).interval(0.9)
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 6
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 5)
    half = sps.t.ppf(0.95, df) * math.sqrt(va + vb)
    d = a.mean() - b.mean()
    assert (low, high) == pytest.approx((d - half, d + half))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(samples, min_size=1, max_size=4), edge=finite)
def test_decide_is_consistent_with_its_intervals(values, edge):
    claim = toy_claim(region=Region(low=edge), effect=edge + 1)
    comps = tuple(Component(f"k{i}", np.array(v)) for i, v in enumerate(values))
    out = decide(claim, Estimate(comps))
    k = len(comps)
    inside = [c.interval(0.9)[1] > edge for c in comps]
    outside = [c.interval(1 - 0.1 / k)[2] <= edge for c in comps]
    expected = "contradicted" if any(outside) else "supported" if all(inside) else "inconclusive"
    assert out["raw_verdict"] == expected
    assert out["raw_verdict"] in claims.VERDICTS
    # the reported interval is the deciding component's
    assert any(
        (p["ci_low"], p["ci_high"]) == (out["ci_low"], out["ci_high"]) for p in out["components"]
    )


@settings(max_examples=40, deadline=None)
@given(v=samples, shift=finite, perm_seed=st.integers(0, 1000))
def test_decide_ignores_seed_order_and_follows_a_shift(v, shift, perm_seed):
    claim = toy_claim(region=Region(-1.0, 1.0), effect=0.0)
    v = np.array(v)
    perm = np.random.default_rng(perm_seed).permutation(len(v))
    a = decide(claim, Estimate((Component("", v),)))
    b = decide(claim, Estimate((Component("", v[perm]),)))
    assert a["raw_verdict"] == b["raw_verdict"]
    assert a["ci_low"] == pytest.approx(b["ci_low"]) and a["ci_high"] == pytest.approx(b["ci_high"])
    c = decide(claim, Estimate((Component("", v + shift),)))
    assert c["estimate"] == pytest.approx(a["estimate"] + shift, abs=1e-9)


def test_an_equivalence_region_needs_the_whole_interval_inside():
    claim = toy_claim(region=Region(-1.25, -0.75), effect=-1.0)
    near = np.array([-1.0, -1.02, -0.98, -1.01])
    assert decide(claim, Estimate((Component("", near),)))["raw_verdict"] == "supported"
    wide = np.array([-0.2, -1.8, -1.0, -0.9])
    assert decide(claim, Estimate((Component("", wide),)))["raw_verdict"] == "inconclusive"
    off = np.array([-0.5, -0.52, -0.48, -0.51])
    assert decide(claim, Estimate((Component("", off),)))["raw_verdict"] == "contradicted"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(region=Region(low=0.0), effect=-1.0), "outside"),
        (dict(effect_reason=" "), "effect_reason"),
        (dict(region={"a": Region(low=0.0)}, effect={"b": 1.0}), "must name the components"),
    ],
)
def test_declarations_are_checked(kwargs, match):
    base = dict(
        id="toy",
        experiment="toy",
        statement="toy",
        estimand="x",
        region=Region(low=0.0),
        effect=1.0,
        effect_reason="a test",
        rule=None,
    )
    with pytest.raises(ValueError, match=match):
        Claim(**{**base, **kwargs})


def test_regions_and_components_are_validated():
    with pytest.raises(ValueError, match="low < high"):
        Region(1.0, 0.0)
    with pytest.raises(stats.InsufficientDataError, match=">= 2 seeds"):
        Component("", np.array([1.0]))
    with pytest.raises(stats.InsufficientDataError, match="not finite"):
        Component("", np.array([1.0, math.nan]))


def test_every_registered_claim_declares_region_effect_and_reason():
    assert len(claims.REGISTRY) >= 14
    for claim in claims.REGISTRY.values():
        assert claim.effect_reason and claim.estimand
        assert claim.region_text() and claim.effect_text()


# ---------------------------------------------------------------- the calibration cap
def _calibration(claim_id, seeds, size=0.04, power=0.9, rule=None):
    rule = claims.rule_fingerprint(claim_id) if rule is None else rule
    return pd.DataFrame(
        [
            dict(claim=claim_id, scenario="size", rate=size, mcse=0.006, seeds=seeds, rule=rule)
            | dict(passes=size <= 0.05 + 1.645 * 0.006),  # as the harness decides
            dict(claim=claim_id, scenario="power", rate=power, mcse=0.01, seeds=seeds, rule=rule)
            | dict(passes=power >= 0.8),
        ]
    )


def _restoration_table(reps=4):
    """Two-stage PSNR gain 3 - 1.5 log(n / 8) dB over labeled-only, 0.1 dB noise, 3 tasks."""
    rng = np.random.default_rng(0)
    rows = []
    for rep in range(reps):
        for method in ("two_stage", "labeled_only"):
            for n in (8, 16, 32, 64):
                gain = 3.0 - 1.5 * np.log(n / 8) if method == "two_stage" else 0.0
                tasks = 12 + gain + rng.normal(0, 0.1, size=3)
                row = dict(method=method, n=n, m=600, weights_index=0, replicate=rep)
                row.update(psnr=tasks.mean(), **{f"psnr_task{j}": v for j, v in enumerate(tasks)})
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("calibration", "verdict", "why"),
    [
        (lambda c: _calibration(c, 4), "supported", None),
        (lambda c: _calibration(c, 4, power=0.5), "inconclusive", "design power 0.50"),
        (lambda c: _calibration(c, 4, size=0.2), "inconclusive", "size 0.200"),
        (lambda c: _calibration(c, 8), "inconclusive", "not calibrated at 4 seeds"),
        (lambda c: _calibration(c, 4, rule="0" * 16), "inconclusive", "stale"),
        (lambda c: None, "inconclusive", "no calibration"),
    ],
)
def test_a_rule_that_fails_calibration_is_at_most_inconclusive(calibration, verdict, why):
    claim = "restoration_advantage_shrinks"
    v = claims.evaluate(claim, _restoration_table(), calibration=calibration(claim))
    assert v.raw_verdict == "supported" and v.verdict == verdict
    if why:
        assert why in v.detail
    else:
        assert v.design_power == 0.9 and v.size == 0.04


# ---------------------------------------------------------------- status
@pytest.mark.parametrize(
    ("prereg", "status"),
    [
        (None, "pilot"),
        (
            lambda c, seed: Preregistration(seed, "x", {c: claims.rule_fingerprint(c)}),
            "confirmatory",
        ),
        (lambda c, seed: Preregistration(seed, "x", {c: "0" * 16}), "post hoc"),
        (lambda c, seed: Preregistration(seed + 1, "x", {c: claims.rule_fingerprint(c)}), "pilot"),
    ],
)
def test_status_follows_the_preregistration(monkeypatch, prereg, status):
    claim = "restoration_advantage_shrinks"
    seed = load_experiment("image_restoration").seed
    found = None if prereg is None else prereg(claim, seed)
    monkeypatch.setattr(registry, "_registration", lambda experiment, stamp: (found, seed))
    v = claims.evaluate(claim, _restoration_table(), calibration=None)
    assert v.status == status
    assert claims.evaluate(claim, _restoration_table(), quick=True, calibration=None).status == (
        "pilot"
    )


def test_per_seed_estimates_that_do_not_vary_are_not_evaluable(monkeypatch):
    """A zero-width interval would decide anything: constant per-seed estimates (or a constant
    estimand and control) are not evaluable."""
    claim = claims.REGISTRY["restoration_advantage_shrinks"]
    constant = Estimate((Component("", np.array([-1.0, -1.0, -1.0])),))
    monkeypatch.setitem(
        claims.REGISTRY,
        claim.id,
        Claim(**{**claim.__dict__, "rule": lambda table, results: constant}),
    )
    # quick: the status of a pilot, as the stand-in rule has no fingerprint of its own to
    # check against the experiment's pre-registration
    v = claims.evaluate(claim.id, _restoration_table(), calibration=None, quick=True)
    assert v.verdict == "not evaluable" and "do not vary" in v.detail


def test_components_report_the_interval_that_decides_contradiction():
    v = claims.evaluate(
        "restoration_scarce_label_advantage", _restoration_table(), calibration=None
    )
    for part in v.components:
        assert part["contra_low"] < part["ci_low"] < part["ci_high"] < part["contra_high"]
