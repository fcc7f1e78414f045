"""Bad input gets a clear error naming the argument and what was expected; nothing is coerced."""

import pytest
import torch

from mol_diffusion import (
    LinearGaussianScore,
    MLPScore,
    RandomFeatureScore,
    linear_scalarization,
    make_gaussian_family,
    make_misspecified_family,
)

FAM = make_gaussian_family(3, 2, 2, seed=0)
X = torch.zeros(4, 2, dtype=torch.float64)
T = torch.full((4,), 0.5, dtype=torch.float64)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0.5, 0.5, 0.5], "sum to 1"),
        ([0.6, 0.6, -0.2], "non-negative"),
        ([0.5, 0.5], r"shape \(3,\)"),
        ([float("nan"), 0.5, 0.5], "finite"),
        ("abc", "be a sequence of 3 numbers"),
    ],
)
def test_weights_off_the_simplex_are_rejected(weights, match):
    with pytest.raises(ValueError, match=f"weights must .*{match}"):
        FAM.pareto_score(X, X, T, weights)


@pytest.mark.parametrize("count", [0, -3, 2.5, True])
def test_sample_counts_must_be_positive_integers(count):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match=r"^n must be a positive integer"):
        FAM.sample(0, count, g)
    with pytest.raises(ValueError, match=r"^m must be a positive integer"):
        FAM.sample_conditions(0, count, g)


def test_task_index_and_query_shapes_are_checked():
    with pytest.raises(ValueError, match=r"k must be a task index in \[0, 3\)"):
        FAM.task_score(3, X, X, T)
    with pytest.raises(ValueError, match="x_t must have 2 columns"):
        FAM.task_score(0, torch.zeros(4, 3, dtype=torch.float64), X, T)
    with pytest.raises(ValueError, match="same number of rows"):
        FAM.pareto_score(X, X[:3], T, [1 / 3] * 3)
    with pytest.raises(ValueError, match=r"t must have shape \(4,\)"):
        FAM.pareto_score(X, X, T[:2], [1 / 3] * 3)
    with pytest.raises(ValueError, match="x_t must be finite"):
        FAM.task_score(0, X + float("inf"), X, T)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: make_gaussian_family(0), "num_tasks must be a positive integer"),
        (
            lambda: make_gaussian_family(2, condition_separation=-1.0),
            "condition_separation must be >= 0",
        ),
        (lambda: make_gaussian_family(2, noise_scale=0.0), "noise_scale must be > 0"),
        (lambda: make_gaussian_family(2, seed=-1), "seed must be a non-negative integer"),
        (lambda: make_misspecified_family(2, nonlinearity=0.0), "nonlinearity must be > 0"),
        (lambda: RandomFeatureScore(0), "num_features must be a positive integer"),
        (lambda: RandomFeatureScore(8, ridge=0.0), "ridge must be > 0"),
        (lambda: MLPScore(16, 0), "depth must be a positive integer"),
        (lambda: MLPScore(16, 1, ema_decay=1.0), "ema_decay must be a number in"),
        (lambda: MLPScore(16, 1, time_features=5), "time_features must be even"),
        (lambda: LinearGaussianScore(ridge=-1.0), "ridge must be >= 0"),
    ],
)
def test_configs_are_validated(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_linear_specialist_needs_enough_pairs():
    g = torch.Generator().manual_seed(0)
    c, x = FAM.sample(0, 3, g)
    with pytest.raises(ValueError, match=r"ridge=0.0 needs at least 4 pairs"):
        LinearGaussianScore().fit(c, x, generator=g)
    # with a ridge the Gram matrix is invertible: two pairs suffice, one does not
    LinearGaussianScore(ridge=1e-3).fit(c[:2], x[:2], generator=g)
    with pytest.raises(ValueError, match=r"ridge=0.001 needs at least 2 pairs"):
        LinearGaussianScore(ridge=1e-3).fit(c[:1], x[:1], generator=g)


def test_integer_data_is_not_silently_coerced():
    with pytest.raises(ValueError, match="c must be a floating-point tensor"):
        LinearGaussianScore().fit(
            torch.zeros(5, 2, dtype=torch.long), X[:1].expand(5, 2), generator=torch.Generator()
        )


def test_scalarization_checks_weights():
    with pytest.raises(ValueError, match="weights must sum to 1"):
        linear_scalarization(torch.ones(2, 5), [0.5, 0.6])


def test_every_random_draw_needs_an_explicit_generator():
    from mol_diffusion import draw_dsm, make_risk_draws, reverse_sde

    with pytest.raises(ValueError, match="generator must be a torch"):
        FAM.sample(0, 5, None)
    with pytest.raises(ValueError, match="generator must be a torch"):
        draw_dsm(X, FAM.schedule, None)
    with pytest.raises(ValueError, match="generator must be a torch"):
        make_risk_draws(FAM, 4, None)
    with pytest.raises(ValueError, match="generator must be a torch"):
        reverse_sde(lambda x, c, t: x, X, 2, FAM.schedule, None, steps=2)


def test_float32_weights_on_the_simplex_are_accepted():
    w32 = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float32)  # sums to 1.0000000149 in float32
    assert FAM.pareto_score(X, X, T, w32).shape == (4, 2)


def test_wrongly_shaped_scores_are_rejected():
    from mol_diffusion import excess_risk, reverse_sde

    g = torch.Generator().manual_seed(0)
    narrow = lambda x_t, c, t: x_t[:, :1]  # noqa: E731
    with pytest.raises(ValueError, match=r"score must have shape \(\d+, 2\)"):
        excess_risk(narrow, FAM, [1 / 3] * 3, num_per_task=4, generator=g)
    with pytest.raises(ValueError, match=r"score_fn must return shape \(4, 2\)"):
        reverse_sde(narrow, X, 2, FAM.schedule, g, steps=2)


def test_schedule_mismatch_is_caught_through_a_bound_method():
    from mol_diffusion import VPSchedule, excess_risk

    g = torch.Generator().manual_seed(0)
    model = RandomFeatureScore(8, schedule=VPSchedule(beta_max=10.0)).fit(
        *FAM.sample(0, 20, g), generator=g
    )
    with pytest.raises(ValueError, match="schedule"):
        excess_risk(model.score, FAM, [1 / 3] * 3, num_per_task=4, generator=g)


def test_gaussian_distances_reject_non_positive_definite_covariances():
    from mol_diffusion import kl_gaussian, w2_gaussian

    m, eye = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="cov_p must be positive definite"):
        kl_gaussian(m, -eye, m, eye)
    with pytest.raises(ValueError, match="cov_q must be symmetric"):
        w2_gaussian(m, eye, m, eye + torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64))


def test_mlp_fit_leaves_the_global_rng_alone():
    g = torch.Generator().manual_seed(0)
    c, x = FAM.sample(0, 16, g)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    MLPScore(8, 1, steps=2, batch_size=4).fit(c, x, generator=g)
    assert torch.equal(before, torch.random.get_rng_state())
