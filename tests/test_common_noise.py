"""Common-noise pseudo-labels (``kinds.gaussian.CommonNoisePseudoLabels``): exact specialist
draws that share the hidden true labels' noise, per-task labelers in ``two_stage_problem``, the
config checks, the paired-rate rule that reads those runs, and the pairs-needed curves
(``plotting.pairs_needed``) the notebook draws from them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mol_diffusion import claims, plotting
from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.gaussian import CommonNoisePseudoLabels
from mol_diffusion.kinds.grid import Cell, PseudoLabelSpec, _problem, replicate_data
from mol_diffusion.scores import LinearGaussianScore
from mol_diffusion.tasks import make_gaussian_family
from mol_diffusion.two_stage import ExactPseudoLabels, two_stage_problem


@dataclasses.dataclass
class Conditional:
    """A stand-in specialist: the mean map and covariance a fitted LinearGaussianScore has."""

    A: torch.Tensor
    b: torch.Tensor
    Sigma: torch.Tensor

    def mean(self, c):
        return c.to(torch.float64) @ self.A.T + self.b


@pytest.fixture(scope="module")
def task():
    fam = make_gaussian_family(3, 2, 2, seed=0)
    c, x = fam.sample(0, 100_000, torch.Generator().manual_seed(0))
    return fam, CommonNoisePseudoLabels(fam.A[0], fam.b[0], fam.noise_cov[0], c, x), c, x


def test_at_the_true_conditional_the_labels_are_the_hidden_ones(task):
    fam, labels, c, x = task
    truth = Conditional(fam.A[0], fam.b[0], fam.noise_cov[0])
    torch.testing.assert_close(labels(truth, c, torch.Generator()), x, rtol=0, atol=1e-12)


def test_the_labels_are_exact_draws_of_the_specialist_and_close_to_the_hidden_ones(task):
    fam, labels, c, x = task
    g = torch.Generator().manual_seed(1)
    specialist = LinearGaussianScore().fit(*fam.sample(0, 64, g), generator=g)
    pseudo = labels(specialist, c, g)
    residual = pseudo - specialist.mean(c)
    # the residuals are the transported true noise: law N(0, Sigma_hat); with 1e5 draws the
    # sample covariance is within 0.01 of it and the mean within 0.01 of 0
    torch.testing.assert_close(torch.cov(residual.T), specialist.Sigma, atol=0.01, rtol=0.02)
    assert residual.mean(0).abs().max() < 0.01
    # common noise: a pseudo-label differs from its hidden label by the specialist's error
    # only, far less than an independent exact draw does
    independent = ExactPseudoLabels()(specialist, c, g)
    assert (pseudo - x).pow(2).mean() < 0.1 * (independent - x).pow(2).mean()


def test_other_conditions_are_refused(task):
    fam, labels, c, _ = task
    truth = Conditional(fam.A[0], fam.b[0], fam.noise_cov[0])
    with pytest.raises(ValueError, match="label the conditions whose hidden labels they hold"):
        labels(truth, c[:10], torch.Generator())


W = (1 / 3, 1 / 3, 1 / 3)


def test_two_stage_problem_takes_one_labeler_per_task():
    fam = make_gaussian_family(3, 2, 2, seed=0)
    g = torch.Generator().manual_seed(2)
    labeled = [fam.sample(k, 16, g) for k in range(3)]
    unlabeled = [fam.sample(k, 32, g)[0] for k in range(3)]
    kwargs = dict(specialist=LinearGaussianScore, generator=torch.Generator().manual_seed(0))
    one = two_stage_problem(labeled, unlabeled, W, pseudo_labels=ExactPseudoLabels(), **kwargs)
    kwargs["generator"] = torch.Generator().manual_seed(0)
    each = two_stage_problem(
        labeled, unlabeled, W, pseudo_labels=[ExactPseudoLabels()] * 3, **kwargs
    )
    assert torch.equal(one.x, each.x)  # the same labeler for every task: the same labels
    with pytest.raises(ValueError, match="one labeler per task"):
        two_stage_problem(labeled, unlabeled, W, pseudo_labels=[ExactPseudoLabels()], **kwargs)
    with pytest.raises(ValueError, match="must be a callable"):
        two_stage_problem(labeled, unlabeled, W, pseudo_labels=[1, 2, 3], **kwargs)


def test_draws_repeat_each_condition_and_keep_each_task_s_weight():
    """draws = 3: every unlabeled condition three times, each with its own exact draw, and the
    pseudo-pairs of task k still weigh lambda_k in all; the first m labels are not those of
    draws = 1 (the draws come in one call), but their conditions are."""
    fam = make_gaussian_family(3, 2, 2, seed=0)
    g = torch.Generator().manual_seed(2)
    labeled = [fam.sample(k, 16, g) for k in range(3)]
    unlabeled = [fam.sample(k, 20, g)[0] for k in range(3)]
    weights = (0.5, 0.3, 0.2)
    kwargs = dict(specialist=LinearGaussianScore, pseudo_labels=ExactPseudoLabels())
    three = two_stage_problem(
        labeled, unlabeled, weights, generator=torch.Generator().manual_seed(0), draws=3, **kwargs
    )
    assert three.c.shape == (3 * 3 * 20, 2)
    for k in range(3):
        block = slice(60 * k, 60 * (k + 1))
        assert torch.equal(three.c[block], unlabeled[k].repeat(3, 1))
        assert float(three.weights[block].sum()) == pytest.approx(weights[k])
        first, second = three.x[block][:20], three.x[block][20:40]
        assert not torch.equal(first, second)  # independent draws for the repeated conditions
    with pytest.raises(ValueError, match="draws"):
        two_stage_problem(
            labeled, unlabeled, weights, generator=torch.Generator(), draws=0, **kwargs
        )


def test_a_cell_s_pseudo_labels_share_the_oracle_labels_noise():
    # the grid's own data path (as experiments/class_mismatch.py uses it): the two-stage cell
    # labels the oracle's conditions, its labels differing by the specialists' error only
    config = load_experiment("paired_rate_crn", quick=True)
    exact = dataclasses.replace(config, pseudo_labels=PseudoLabelSpec(kind="exact"))
    m, n = config.m[0], max(config.n)
    family = config.family.build()
    pools = replicate_data(config, family, 0)
    truth = _problem(config, Cell("oracle", None, m, 0, 0, 0), pools, family)
    crn, free = (
        _problem(c, Cell("two_stage", n, m, 0, 0, 0), pools, family) for c in (config, exact)
    )
    assert torch.equal(truth.c, crn.c) and torch.equal(truth.c, free.c)
    assert (crn.x - truth.x).pow(2).mean() < 0.1 * (free.x - truth.x).pow(2).mean()


def test_common_noise_config_errors_name_what_is_missing():
    with pytest.raises(ValueError, match="built by the experiment kind"):
        PseudoLabelSpec(kind="common_noise").build()
    config = load_experiment("paired_rate_crn", quick=True)
    with pytest.raises(ValueError, match="need linear specialists on the linear family"):
        dataclasses.replace(
            config,
            family=dataclasses.replace(config.family, nonlinearity=0.5),
            input_scaling="data",
            specialist_error=False,
        )
    restoration = load_experiment("image_restoration", quick=True)
    with pytest.raises(ValueError, match="pseudo-labels"):
        dataclasses.replace(restoration, pseudo_labels=PseudoLabelSpec(kind="common_noise"))


def test_the_rule_recovers_a_known_rate():
    rng = np.random.default_rng(0)
    ns = np.array([96, 192, 384, 768, 1536])
    rows = []
    for rep in range(6):
        scale = np.exp(rng.normal(0, 0.3))
        for n in ns:
            common = dict(m=16384, capacity=64, num_params=640, weights_index=0, replicate=rep)
            excess = 0.3 * scale / n  # slope -1 exactly, a per-seed level
            rows += [
                dict(method="two_stage", n=n, risk=1 + excess, spec_risk=2 * excess) | common,
                dict(method="labeled_only", n=n, risk=2.0, spec_risk=np.nan) | common,
            ]
        rows.append(dict(method="oracle", n=pd.NA, risk=1.0, spec_risk=np.nan) | common)
    estimate = claims.REGISTRY["crn_paired_rate"].rule(pd.DataFrame(rows), {})
    np.testing.assert_allclose(estimate.components[0].values, -1.0, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(1e-3, 10.0),
    rate=st.floats(0.3, 2.0),
    eps_fraction=st.floats(0.0, 1.0),
)
def test_pairs_needed_inverts_a_power_law_inside_the_grid(a, rate, eps_fraction):
    # on a power law a n^-rate, log-log interpolation is exact: n(eps) = (a / eps)^(1 / rate)
    ns = np.array([96.0, 192, 384, 768, 1536])
    excess = pd.DataFrame({"n": ns, "excess": a * ns**-rate})
    low, high = excess.excess.min(), excess.excess.max()
    eps = float(np.exp(np.log(low) + eps_fraction * (np.log(high) - np.log(low))))
    need = plotting.pairs_needed(excess, np.array([eps]))
    np.testing.assert_allclose(need.iloc[0], (a / eps) ** (1 / rate), rtol=1e-8)


def test_pairs_needed_does_not_extrapolate():
    excess = pd.DataFrame({"n": [10.0, 20, 40], "excess": [0.4, 0.2, 0.1]})
    need = plotting.pairs_needed(excess, np.array([1.0, 0.05, 0.2]))
    assert np.isnan(need.iloc[0]) and np.isnan(need.iloc[1])  # above and below the grid
    np.testing.assert_allclose(need.iloc[2], 20.0)
    with pytest.raises(ValueError, match="targets must be > 0"):
        plotting.pairs_needed(excess, np.array([0.0]))
