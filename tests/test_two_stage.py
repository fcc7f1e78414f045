"""The two-stage procedure and its baselines."""

from typing import ClassVar

import pytest
import torch

from mol_diffusion import (
    LinearGaussianScore,
    RandomFeatureScore,
    excess_risk,
    make_gaussian_family,
    make_risk_draws,
)
from mol_diffusion.two_stage import (
    DiffusionPseudoLabels,
    ExactPseudoLabels,
    labeled_only,
    oracle,
    two_stage,
)

FAM = make_gaussian_family(3, 2, 2, seed=0)
W = [0.5, 0.3, 0.2]


def data(n, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    labeled = [FAM.sample(k, n, g) for k in range(3)]
    unlabeled = [FAM.sample(k, m, g) for k in range(3)]
    return labeled, unlabeled


class Recorder(RandomFeatureScore):
    """A generalist that records what it was fitted on."""

    seen: ClassVar[dict] = {}

    def _fit(self, c, x, weights, generator, run_name):
        Recorder.seen = {"c": c, "x": x, "weights": weights}
        super()._fit(c, x, weights, generator, run_name)


def test_generalist_sees_pooled_pseudo_pairs_with_lambda_weights_and_no_task_id():
    labeled, unlabeled = data(20, 50)
    res = two_stage(
        labeled,
        [c for c, _ in unlabeled],
        W,
        specialist=LinearGaussianScore,
        generalist=lambda: Recorder(8),
        generator=torch.Generator().manual_seed(1),
    )
    seen = Recorder.seen
    assert seen["c"].shape == (150, 2) and seen["x"].shape == (150, 2)  # (c, x) only: no task id
    torch.testing.assert_close(seen["c"], torch.cat([c for c, _ in unlabeled]))
    # task k carries total weight lambda_k, spread over its m pseudo-pairs
    totals = seen["weights"].reshape(3, 50).sum(1)
    torch.testing.assert_close(totals, torch.tensor(W, dtype=torch.float64))
    assert res.method == "two_stage" and len(res.specialists) == 3 and res.num_pairs == 150
    # pseudo-samples are not the hidden true labels
    assert not torch.allclose(seen["x"], torch.cat([x for _, x in unlabeled]))


def test_pseudo_labels_follow_the_specialists():
    """Exact pseudo-labels of a specialist fitted on many pairs match the task's law."""
    labeled, unlabeled = data(4000, 4000)
    two_stage(
        labeled,
        [c for c, _ in unlabeled],
        W,
        specialist=LinearGaussianScore,
        generalist=lambda: Recorder(8),
        generator=torch.Generator().manual_seed(2),
        pseudo_labels=ExactPseudoLabels(),
    )
    x0 = Recorder.seen["x"][:4000]
    resid = x0 - FAM.conditional_mean(0, unlabeled[0][0])
    torch.testing.assert_close(torch.cov(resid.T), FAM.noise_cov[0], atol=0.02, rtol=0.05)


def test_two_stage_beats_labeled_only_and_approaches_the_oracle():
    labeled, unlabeled = data(10, 2000, seed=3)
    draws = make_risk_draws(FAM, 1024, torch.Generator().manual_seed(9))
    gen = lambda: RandomFeatureScore(32)  # noqa: E731
    risks = {}
    for name, fn in {
        "two_stage": lambda g: two_stage(
            labeled,
            [c for c, _ in unlabeled],
            W,
            specialist=LinearGaussianScore,
            generalist=gen,
            generator=g,
            pseudo_labels=DiffusionPseudoLabels(steps=100),
        ),
        "labeled_only": lambda g: labeled_only(labeled, W, generalist=gen, generator=g),
        "oracle": lambda g: oracle(unlabeled, W, generalist=gen, generator=g),
    }.items():
        risks[name] = excess_risk(
            fn(torch.Generator().manual_seed(4)).generalist, FAM, W, draws=draws
        ).scalarized
    assert risks["oracle"] <= risks["two_stage"] < risks["labeled_only"], risks


def test_same_generator_gives_the_same_generalist_features_across_methods():
    labeled, unlabeled = data(10, 100)
    a = labeled_only(
        labeled,
        W,
        generalist=lambda: RandomFeatureScore(8),
        generator=torch.Generator().manual_seed(5),
    )
    b = oracle(
        unlabeled,
        W,
        generalist=lambda: RandomFeatureScore(8),
        generator=torch.Generator().manual_seed(5),
    )
    c = two_stage(
        labeled,
        [c for c, _ in unlabeled],
        W,
        specialist=LinearGaussianScore,
        generalist=lambda: RandomFeatureScore(8),
        generator=torch.Generator().manual_seed(5),
        pseudo_labels=ExactPseudoLabels(),
        specialist_generator=torch.Generator().manual_seed(6),
    )
    torch.testing.assert_close(a.generalist.omega, b.generalist.omega)
    torch.testing.assert_close(a.generalist.omega, c.generalist.omega)


def test_bad_inputs_are_named():
    labeled, unlabeled = data(10, 20)
    g = torch.Generator()
    kw = dict(specialist=LinearGaussianScore, generalist=lambda: RandomFeatureScore(8), generator=g)
    with pytest.raises(ValueError, match="unlabeled must hold one tensor per task"):
        two_stage(labeled, [unlabeled[0][0]], W, **kw)
    with pytest.raises(ValueError, match=r"unlabeled\[1\] must have 2 columns"):
        two_stage(
            labeled,
            [unlabeled[0][0], torch.zeros(5, 3, dtype=torch.float64), unlabeled[2][0]],
            W,
            **kw,
        )
    with pytest.raises(ValueError, match="weights must sum to 1"):
        two_stage(labeled, [c for c, _ in unlabeled], [0.5, 0.5, 0.5], **kw)
    with pytest.raises(ValueError, match=r"labeled\[0\] must be a \(c, x\) pair"):
        labeled_only(
            [labeled[0][0], *labeled[1:]], W, generalist=lambda: RandomFeatureScore(8), generator=g
        )
    with pytest.raises(ValueError, match="no exact sampler"):
        ExactPseudoLabels()(RandomFeatureScore(8).fit(*labeled[0], generator=g), labeled[0][0], g)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        DiffusionPseudoLabels(steps=0)
