"""Every rule can return each of its three verdicts: synthetic results tables where the claim is
true (supported), false (contradicted), and where the seeds disagree (inconclusive).

Tables are generated from a known law with multiplicative log-normal noise per replicate, in the
schema the sweeps write (method, n, m, capacity, num_params, weights_index, replicate, risk,
risk_task*). Verdicts are read before the calibration cap (``raw_verdict``, calibration=None):
the cap is tested on its own. An inconclusive table takes one replicate from a table where the
claim is true and one from a table (with other noise) where it is false: two seeds that
disagree, so the interval is wide and covers the region's edge whatever the noise.
"""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mol_diffusion import claims

CAPS = [16, 32, 64, 128, 256]
P_GEN = {c: c * 10 for c in CAPS}
N_GRID = [8, 16, 32, 64, 128, 256]


def table(
    law,
    *,
    methods,
    n=N_GRID,
    m=(4096,),
    caps=CAPS,
    weights=1,
    reps=6,
    noise=0.03,
    seed=0,
    k=3,
    base=None,
):
    """Rows for every cell; law(method, n, m, p_gen, w) -> (risk, per-task risks or None).

    Noise mimics common random numbers: the part ``base(p_gen, w)`` shared by all methods (the
    oracle's risk) gets one log-normal factor per (replicate, capacity, w); the rest of each
    risk gets an independent factor per cell.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        for w in range(weights):
            for cap in caps:
                shared = np.exp(rng.normal(0, noise))
                for mm in m:
                    for method in methods:
                        for nn in [None] if method == "oracle" else n:
                            risk, tasks = law(method, nn, mm, P_GEN[cap], w)
                            b = 0.0 if base is None else min(base(P_GEN[cap], w), risk)
                            noisy = b * shared + (risk - b) * np.exp(rng.normal(0, noise))
                            factor = noisy / risk
                            row = dict(
                                method=method,
                                n=nn,
                                m=mm,
                                capacity=cap,
                                num_params=P_GEN[cap],
                                weights_index=w,
                                replicate=rep,
                                risk=noisy,
                            )
                            tasks = tasks if tasks is not None else [risk] * k
                            row.update({f"risk_task{i}": v * factor for i, v in enumerate(tasks)})
                            rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("n", "capacity"):
        out[col] = out[col].astype("Int64")
    return out


def raw(claim_id, tab, results=None):
    """The interval's verdict (before the calibration cap)."""
    return claims.evaluate(claim_id, tab, results=results, calibration=None).raw_verdict


def disagree(true_table, false_table):
    """Replicate 0 of each table as replicates 0 and 1 of one table."""
    a = true_table[true_table.replicate == 0]
    b = false_table[false_table.replicate == 0].assign(replicate=1)
    return pd.concat([a, b], ignore_index=True)


APPROX = lambda p: 0.05 * (p / 160) ** -0.3  # noqa: E731  approximation error falls with p_gen


def sample_complexity_law(*, ts_capacity=0.0, lo_capacity=1.0, rate=-1.0, lo_over_ts=None):
    """Excess over the oracle: two-stage 0.5 n^rate (p_gen/160)^ts_capacity, labeled-only
    2.4 (p_gen/160)^lo_capacity / n (or ``lo_over_ts`` times two-stage's risk)."""

    def law(method, n, m, p, w):
        oracle = APPROX(p)
        if method == "oracle":
            return oracle, None
        ts = oracle + 0.5 * n**rate * (p / 160) ** ts_capacity
        if method == "two_stage":
            return ts, None
        if lo_over_ts is not None:
            return ts * lo_over_ts, None
        return oracle + 0.3 * (p / 160) ** lo_capacity * 8 / n, None

    return law


METHODS3 = ("two_stage", "labeled_only", "oracle")


def sc(law, **kw):
    return table(base=lambda p, w: APPROX(p), law=law, methods=METHODS3, **kw)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.001, 0.05))
def test_capacity_claims_three_verdicts(seed, noise):
    good = sc(sample_complexity_law(), seed=seed, noise=noise)
    bad = sc(sample_complexity_law(ts_capacity=0.6, lo_capacity=-0.5), seed=seed, noise=noise)
    for claim in ("neural_capacity_free_two_stage", "neural_capacity_cost_labeled_only"):
        assert raw(claim, good) == "supported"
        assert raw(claim, bad) == "contradicted"
        assert raw(claim, disagree(good, bad)) == "inconclusive"


def test_capacity_claims_read_the_excess_over_the_oracle():
    # total two-stage risk falls with p_gen (approximation error falls fast) while its excess
    # over the oracle rises: the claim is about the excess, so it is contradicted
    def law(method, n, m, p, w):
        oracle = (p / 160) ** -0.5
        return (oracle if method == "oracle" else oracle + 0.02 * (p / 160) ** 0.6), None

    tab = table(law, methods=("two_stage", "oracle"), noise=0.01)
    ts = tab[(tab.method == "two_stage") & (tab.n == 8)].groupby("num_params").risk.mean()
    assert ts.iloc[-1] < 0.5 * ts.iloc[0]
    assert raw("neural_capacity_free_two_stage", tab) == "contradicted"


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_scarce_advantage_three_verdicts(seed):
    good = sc(sample_complexity_law(), seed=seed, noise=0.05)
    assert raw("scarce_advantage", good) == "supported"
    worse = sc(sample_complexity_law(lo_over_ts=0.5), seed=seed, noise=0.05)
    assert raw("scarce_advantage", worse) == "contradicted"
    assert raw("scarce_advantage", disagree(good, worse)) == "inconclusive"


def test_intersection_union_one_capacity_decides():
    """Every capacity must show the advantage; one capacity where labeled-only is better
    contradicts the claim although the others are far ahead."""

    def law(method, n, m, p, w):
        risk, _ = sample_complexity_law()(method, n, m, p, w)
        if method == "labeled_only" and p == P_GEN[64]:
            risk = sample_complexity_law()("two_stage", n, m, p, w)[0] * 0.5
        return risk, None

    v = claims.evaluate("scarce_advantage", sc(law, noise=0.02), calibration=None)
    assert v.raw_verdict == "contradicted"
    by = {c["label"]: c["verdict"] for c in v.components}
    assert by.pop("capacity 64") == "contradicted" and set(by.values()) == {"supported"}
    assert v.estimate < 0  # the deciding component is reported


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.001, 0.03))
def test_paired_rate_is_an_equivalence_test(seed, noise):
    def crn(law, **kw):  # the rule's detail reports the specialist error (spec_risk) per n
        tab = sc(law, **kw)
        return tab.assign(spec_risk=tab.risk)

    rate = "crn_paired_rate"
    assert raw(rate, crn(sample_complexity_law(rate=-1.0), seed=seed, noise=noise)) == "supported"
    for wrong in (-0.4, -1.7):
        tab = crn(sample_complexity_law(rate=wrong), seed=seed, noise=noise)
        assert raw(rate, tab) == "contradicted", wrong
    mixed = disagree(
        crn(sample_complexity_law(rate=-0.5), seed=seed), crn(sample_complexity_law(rate=-1.5))
    )
    assert raw(rate, mixed) == "inconclusive"


def test_neural_claims_use_their_own_experiment_and_need_an_oracle():
    kw = dict(n=[8, 64], noise=0.02)
    good, bad = (
        sc(sample_complexity_law(), **kw),
        sc(sample_complexity_law(ts_capacity=0.6, lo_capacity=-0.5), **kw),
    )
    for suffix in ("", "_d4"):
        for claim in ("neural_capacity_free_two_stage", "neural_capacity_cost_labeled_only"):
            claim += suffix
            assert claims.REGISTRY[claim].experiment == f"neural_generalist{suffix}"
            assert raw(claim, good) == "supported"
            assert raw(claim, bad) == "contradicted"
            v = claims.evaluate(claim, good[good.method != "oracle"], calibration=None)
            assert v.verdict == "not evaluable" and "no oracle rows" in v.detail


M_GRID = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


@pytest.mark.parametrize("claim", ["unlabeled_decay", "unlabeled_decay_d4"])
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_unlabeled_decay_three_verdicts(claim, seed):
    def law(floor_of_n):
        return lambda method, n, m, p, w: (floor_of_n(n if n else 1e9) + 2.0 / m, None)

    kw = dict(methods=("two_stage", "oracle"), n=[8, 32, 128], m=M_GRID, caps=[64], seed=seed)
    grows = table(law(lambda n: 0.02 + 0.5 / n), **kw)
    assert raw(claim, grows) == "supported"
    shrinks = table(law(lambda n: 0.02 + 0.0005 * n), **kw)
    assert raw(claim, shrinks) == "contradicted"
    assert raw(claim, disagree(grows, shrinks)) == "inconclusive"


WEIGHTS = [(1.0, 0.0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.0, 1.0)]


def pareto_law(ts_factor, lo_factor):
    def law(method, n, m, p, w):
        lam = WEIGHTS[w][0]
        front = np.array([0.01 + 0.2 * (1 - lam) ** 2, 0.01 + 0.2 * lam**2])
        factor = {"oracle": 1.0, "two_stage": ts_factor, "labeled_only": lo_factor}[method]
        tasks = front * factor
        return float(tasks.mean()), list(tasks)

    return law


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_pareto_claim_three_verdicts(seed):
    kw = dict(methods=METHODS3, n=[16], caps=[128], weights=len(WEIGHTS), k=2, seed=seed, reps=5)
    good = table(pareto_law(1.02, 2.0), **kw)
    assert raw("pareto_front", good) == "supported"
    far = table(pareto_law(2.0, 2.0), **kw)
    assert raw("pareto_front", far) == "contradicted"
    assert raw("pareto_front", table(pareto_law(1.02, 1.0), **kw)) == "contradicted"
    # a front 5.6x worse than the oracle's everywhere is far on the log scale
    assert raw("pareto_front", table(pareto_law(5.6, 5.6), **kw)) == "contradicted"
    far_other = table(pareto_law(2.0, 2.0), **{**kw, "seed": seed + 1})
    assert raw("pareto_front", disagree(good, far_other)) == "inconclusive"


@pytest.mark.parametrize(
    ("claim", "control_name"),
    [("misspecified_floor", "sample_complexity"), ("misspecified_floor_d4", "capacity_regime_d4")],
)
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_misspecified_floor_three_verdicts(claim, control_name, seed):
    def law(floor):
        return lambda method, n, m, p, w: (
            0.05 if method == "oracle" else 0.05 + floor + 1.0 / n,
            None,
        )

    kw = dict(
        methods=("two_stage", "oracle"),
        n=[8, 16, 32, 64, 128, 256, 512],
        caps=[128],
        seed=seed,
        base=lambda p, w: 0.05,  # the oracle part is shared across methods (common random numbers)
    )
    control = table(law(0.001), **{**kw, "seed": seed + 1, "n": [8, 16, 32, 64, 128, 256]})
    assert claims.REGISTRY[claim].control == control_name
    results = {control_name: control}
    floor = table(law(0.02), **kw)
    assert raw(claim, floor, results) == "supported"
    below = table(law(-0.0005), **kw)
    assert raw(claim, below, results) == "contradicted"
    assert raw(claim, disagree(floor, below), results) == "inconclusive"
    # without its control the claim is not evaluable, never supported; the other family's
    # control does not stand in for it
    other = {"sample_complexity": "capacity_regime_d4", "capacity_regime_d4": "sample_complexity"}
    for given_results in ({}, {other[control_name]: control}):
        v = claims.evaluate(claim, floor, results=given_results, calibration=None)
        assert v.verdict == "not evaluable" and control_name in v.detail


def test_missing_experiments_are_not_run_and_outputs_are_written(tmp_path):
    verdicts = claims.evaluate_all({}, calibration=None)
    assert {v.verdict for v in verdicts} == {"not run"}
    assert all(v.detail.startswith("not run") for v in verdicts)
    good = sc(sample_complexity_law(), noise=0.02)
    good = good.assign(spec_risk=good.risk)
    verdicts = claims.evaluate_all({"paired_rate_crn": good}, calibration=None)
    claims.write_outputs(
        verdicts, json_path=tmp_path / "claims.json", tex_path=tmp_path / "claims.tex"
    )
    data = json.loads((tmp_path / "claims.json").read_text())
    assert {d["claim"] for d in data} == set(claims.REGISTRY)
    by = {d["claim"]: d for d in data}
    assert by["crn_paired_rate"]["raw_verdict"] == "supported"
    # without a calibration no verdict can be more than inconclusive
    assert by["crn_paired_rate"]["verdict"] == "inconclusive"
    assert "no calibration" in by["crn_paired_rate"]["detail"]
    tex = (tmp_path / "claims.tex").read_text()
    assert r"\newcommand{\claimCrnPairedRateVerdict}{inconclusive}" in tex
    assert r"\newcommand{\claimParetoFrontVerdict}{not run}" in tex
    frame = claims.verdict_frame(verdicts)
    assert set(frame.verdict) == {"inconclusive", "not run"}


def test_too_few_points_is_not_evaluable_not_a_pass():
    small = sc(sample_complexity_law(), caps=[16], noise=0.02)
    v = claims.evaluate("neural_capacity_free_two_stage", small, calibration=None)
    assert v.verdict == "not evaluable" and "fewer than two values" in v.detail
    with pytest.raises(ValueError, match="unknown claim"):
        claims.evaluate("no_such_claim", small)


# ---------------------------------------------------------------- image restoration
def restoration_table(gain_at, *, n=N_GRID, reps=4, noise=0.3, seed=0, k=3):
    """PSNR rows: labeled-only follows 12 + 1.5 log(n / 8) dB; two-stage adds ``gain_at(n, task)``
    dB; independent Gaussian noise (sd ``noise`` dB) per cell and task."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        for method in ("two_stage", "labeled_only", "oracle"):
            for nn in [None] if method == "oracle" else n:
                base = 16.0 if nn is None else 12 + 1.5 * np.log(nn / 8)
                tasks = [
                    base + (gain_at(nn, j) if method == "two_stage" else 0.0) + rng.normal(0, noise)
                    for j in range(k)
                ]
                row = dict(method=method, n=nn, m=600, capacity=256, weights_index=0)
                row.update(replicate=rep, weights=",".join(["0.333333"] * k), psnr=np.mean(tasks))
                row.update({f"psnr_task{j}": v for j, v in enumerate(tasks)})
                row.update({f"psnr_specialist_task{j}": 14.0 for j in range(k)})
                rows.append(row)
    out = pd.DataFrame(rows)
    out["n"] = out["n"].astype("Int64")
    return out


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_restoration_claims_three_verdicts(seed):
    adv, shrink = "restoration_scarce_label_advantage", "restoration_advantage_shrinks"
    # two-stage 3 dB ahead at n = 8, the lead falling by 1.5 dB per e-fold of n
    fading = restoration_table(lambda n, j: 3.0 - 1.5 * np.log(n / 8), seed=seed)
    assert raw(adv, fading) == "supported" and raw(shrink, fading) == "supported"
    v = claims.evaluate(shrink, fading, calibration=None)
    assert abs(v.estimate + 1.5) < 0.2 and "first negative" in v.detail
    # one task where two-stage is behind at small n (the others keep their lead): contradicted
    one_task = restoration_table(lambda n, j: -2.0 if j == 1 else 3.0 - np.log(n / 8), seed=seed)
    assert raw(adv, one_task) == "contradicted"
    other = restoration_table(lambda n, j: -2.0 if j == 1 else 3.0 - np.log(n / 8), seed=seed + 1)
    assert raw(adv, disagree(fading, other)) == "inconclusive"
    # a lead that grows with n contradicts the second claim
    growing = restoration_table(lambda n, j: 1.0 + 0.5 * np.log(n / 8), seed=seed)
    assert raw(shrink, growing) == "contradicted"
    other = restoration_table(lambda n, j: 1.0 + 0.5 * np.log(n / 8), seed=seed + 1)
    assert raw(shrink, disagree(fading, other)) == "inconclusive"


# ---------------------------------------------------------------- diffusion policy
def policy_table(
    gap_at, *, n=(2, 5, 12, 30), horizons=(25, 50, 100, 200), reps=4, noise=0.05, seed=0, k=3
):
    """Rows in the schema of ``kinds.policy``: gap_at(method, n, H, env) is the true gap,
    observed with multiplicative log-normal noise (sd ``noise``) per (cell, env, H)."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        for nn in n:
            for method in ("labeled_only", "two_stage_offline", "two_stage_on_policy"):
                for env in range(k):
                    for h in horizons:
                        gap = gap_at(method, nn, h, env) * np.exp(rng.normal(0, noise))
                        rows.append(
                            dict(
                                method=method,
                                n=nn,
                                replicate=rep,
                                env=env,
                                horizon=h,
                                gap=gap,
                                weight=1 / k,
                                return_mean=h / 20 - gap,
                            )
                        )
    out = pd.DataFrame(rows)
    out["n"] = out["n"].astype("Int64")
    return out


def _offline_quadratic(method, n, h, env):
    """Labeled-only worst; offline gap ~ H^2 (compounding), on-policy ~ H; both fall with n."""
    scale = 1 / np.sqrt(n)
    if method == "labeled_only":
        return 3 * scale * (h / 25) ** 1.5
    if method == "two_stage_offline":
        return scale * (h / 25) ** 2 / 4
    return scale * h / 25


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_policy_claims_three_verdicts(seed):
    adv, hor, falls = (
        "policy_scarce_label_advantage",
        "policy_on_policy_horizon",
        "policy_gap_falls_with_n",
    )
    good = policy_table(_offline_quadratic, seed=seed)
    assert raw(adv, good) == "supported" and raw(hor, good) == "supported"

    def linear_fall(method, n, h, env):
        return (6 - 1.2 * np.log(n / 2)) * h / 200

    falling = policy_table(linear_fall, seed=seed)
    assert raw(falls, falling) == "supported"

    # labeled-only better than two-stage in one environment: contradicted
    def one_env(method, n, h, env):
        if method == "labeled_only" and env == 1:
            return 0.5 * _offline_quadratic("two_stage_on_policy", n, h, env)
        return _offline_quadratic(method, n, h, env)

    worse = policy_table(one_env, seed=seed)
    assert raw(adv, worse) == "contradicted"
    assert raw(adv, disagree(good, policy_table(one_env, seed=seed + 1))) == "inconclusive"

    # on-policy growing faster than offline: the interaction claim is contradicted
    def faster(method, n, h, env):
        if method == "two_stage_on_policy":
            return _offline_quadratic("two_stage_offline", n, h, env) * (h / 25) ** 0.5
        return _offline_quadratic(method, n, h, env)

    fast = policy_table(faster, seed=seed)
    assert raw(hor, fast) == "contradicted"
    assert raw(hor, disagree(good, policy_table(faster, seed=seed + 1))) == "inconclusive"

    # a gap that grows with n contradicts the third claim
    def rising(method, n, h, env):
        return (2 + 1.2 * np.log(n / 2)) * h / 200

    up = policy_table(rising, seed=seed)
    assert raw(falls, up) == "contradicted"
    assert raw(falls, disagree(falling, policy_table(rising, seed=seed + 1))) == "inconclusive"

    # a non-positive gap makes the log-H slope undefined: not evaluable, not a crash
    def negative(method, n, h, env):
        return -1.0 if method == "two_stage_offline" else _offline_quadratic(method, n, h, env)

    v = claims.evaluate(hor, policy_table(negative, seed=seed), calibration=None)
    assert v.verdict == "not evaluable" and "non-positive" in v.detail
