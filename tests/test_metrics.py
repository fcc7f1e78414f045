"""Metrics: reference values from closed forms and independent libraries."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import linalg, stats

from mol_diffusion import (
    RandomFeatureScore,
    VPSchedule,
    energy_distance,
    excess_risk,
    kl_gaussian,
    make_gaussian_family,
    make_risk_draws,
    w2_gaussian,
)


def spd(seed, d):
    a = np.random.default_rng(seed).normal(size=(d, d))
    return torch.tensor(a @ a.T + 0.5 * np.eye(d))


def test_kl_and_w2_one_dimensional_closed_forms():
    # KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2
    m1, s1, m2, s2 = 0.3, 0.7, -1.1, 1.9
    ref = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    kl = kl_gaussian(t(m1), t(s1**2)[None], t(m2), t(s2**2)[None])
    assert float(kl) == pytest.approx(ref, rel=1e-12)
    # W2 between 1-d Gaussians = sqrt((m1-m2)^2 + (s1-s2)^2)
    w2 = w2_gaussian(t(m1), t(s1**2)[None], t(m2), t(s2**2)[None])
    assert float(w2) == pytest.approx(math.hypot(m1 - m2, s1 - s2), rel=1e-10)


@given(seed=st.integers(0, 10_000), d=st.integers(1, 4))
def test_w2_matches_scipy_sqrtm(seed, d):
    # Independent reference: scipy.linalg.sqrtm in the Dowson–Landau formula.
    cp, cq = spd(seed, d), spd(seed + 1, d)
    mp = torch.tensor(np.random.default_rng(seed + 2).normal(size=d))
    mq = torch.zeros(d, dtype=torch.float64)
    rq = linalg.sqrtm(cq.numpy())
    cross = linalg.sqrtm(rq @ cp.numpy() @ rq).real
    ref = math.sqrt(float(mp @ mp) + np.trace(cp.numpy() + cq.numpy() - 2 * cross))
    assert float(w2_gaussian(mp, cp, mq, cq)) == pytest.approx(ref, rel=1e-7)
    assert float(w2_gaussian(mp, cp, mp, cp)) == pytest.approx(0.0, abs=1e-6)


def test_kl_matches_monte_carlo_with_scipy_densities():
    # Independent reference: E_p[log p - log q] with scipy's logpdf, 200k draws; tolerance 5 se.
    cp, cq = spd(0, 3), spd(1, 3)
    mp, mq = torch.tensor([0.5, -0.2, 0.1]), torch.tensor([0.0, 0.3, -0.4])
    mp, mq = mp.to(torch.float64), mq.to(torch.float64)
    p = stats.multivariate_normal(mp.numpy(), cp.numpy())
    q = stats.multivariate_normal(mq.numpy(), cq.numpy())
    x = p.rvs(200_000, random_state=0)
    diff = p.logpdf(x) - q.logpdf(x)
    kl = float(kl_gaussian(mp, cp, mq, cq))
    assert abs(kl - diff.mean()) < 5 * diff.std() / math.sqrt(len(diff))


def test_energy_distance_matches_scipy_in_one_dimension():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=80), rng.normal(0.4, 1.3, size=60)
    ours = energy_distance(torch.tensor(a)[:, None], torch.tensor(b)[:, None])
    assert float(ours) == pytest.approx(stats.energy_distance(a, b), rel=1e-10)
    x = torch.tensor(rng.normal(size=(50, 3)))
    assert float(energy_distance(x, x)) == 0.0
    # Exact distances far from the origin: a permutation of the same sample is at distance ~0
    # (sqrt of summation-order rounding, ~1e-8; the matmul shortcut of cdist gave ~4e-6).
    far = x + 100.0
    assert float(energy_distance(far, far.flip(0))) < 1e-6


def test_excess_risk_is_zero_for_the_truth_and_uses_common_random_numbers():
    fam = make_gaussian_family(3, 2, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    draws = make_risk_draws(fam, 512, g)
    lam = [0.5, 0.25, 0.25]
    truth = excess_risk(lambda x_t, c, t: fam.pareto_score(x_t, c, t, lam), fam, lam, draws=draws)
    assert truth.scalarized == 0.0 and truth.scalarized_se == 0.0
    # Task k's own score has zero k-th objective.
    own = excess_risk(lambda x_t, c, t: fam.task_score(1, x_t, c, t), fam, lam, draws=draws)
    assert own.per_task[1] == 0.0 and own.per_task[0] > 0
    model = RandomFeatureScore(32).fit(*fam.sample(0, 50, g), generator=g)
    a, b = excess_risk(model, fam, lam, draws=draws), excess_risk(model, fam, lam, draws=draws)
    assert a.scalarized == b.scalarized > 0 and a.per_task == b.per_task
    # lambda = e_k: the scalarized risk is the k-th objective.
    e0 = excess_risk(model, fam, [1.0, 0.0, 0.0], draws=draws)
    assert e0.scalarized == pytest.approx(e0.per_task[0], rel=1e-12)


def test_excess_risk_rejects_mismatched_inputs():
    fam = make_gaussian_family(2, 2, 2, seed=0)
    g = torch.Generator().manual_seed(0)
    model = RandomFeatureScore(8, schedule=VPSchedule(beta_max=10.0)).fit(
        *fam.sample(0, 20, g), generator=g
    )
    with pytest.raises(ValueError, match="schedule"):
        excess_risk(model, fam, [0.5, 0.5], generator=g)
    with pytest.raises(ValueError, match="draws"):
        excess_risk(lambda x, c, t: x, fam, [0.5, 0.5])
    with pytest.raises(ValueError, match="draws hold 3 tasks"):
        excess_risk(
            lambda x, c, t: x,
            fam,
            [0.5, 0.5],
            draws=make_risk_draws(make_gaussian_family(3, 2, 2), 4, g),
        )
