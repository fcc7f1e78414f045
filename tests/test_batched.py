"""Batched fitting of many MLPScore models or diffusion policies gives, bit for bit, the models
fitted one at a time."""

import pytest
import torch

from mol_diffusion import DivergenceError, MLPScore, make_gaussian_family
from mol_diffusion.scores.mlp import fit_batched


def problems(count, n=200, seed=0):
    fam = make_gaussian_family(count, 2, 3, seed=seed)
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(count):
        c, x = fam.sample(k, n + 20 * k, g)  # different data sizes per model
        w = torch.rand(c.shape[0], generator=g, dtype=torch.float64) if k % 2 else None
        out.append((c, x, w))
    return out


@pytest.mark.parametrize("preconditioning", ["eps", "edm"])
def test_batched_fit_follows_the_one_at_a_time_fits(preconditioning):
    count, kwargs = 4, dict(steps=150, batch_size=64, preconditioning=preconditioning)
    data = problems(count)
    single = [
        MLPScore(32, 2, **kwargs).fit(c, x, w, generator=torch.Generator().manual_seed(10 + b))
        for b, (c, x, w) in enumerate(data)
    ]
    batch = fit_batched(
        [MLPScore(32, 2, **kwargs) for _ in range(count)],
        data,
        [torch.Generator().manual_seed(10 + b) for b in range(count)],
    )
    g = torch.Generator().manual_seed(99)
    x_t = torch.randn(50, 2, generator=g, dtype=torch.float64)
    c = torch.randn(50, 3, generator=g, dtype=torch.float64)
    t = torch.rand(50, generator=g, dtype=torch.float64) * 0.9 + 0.05
    for one, many in zip(single, batch, strict=True):
        assert one.num_params == many.num_params
        # MLPScore.fit is the stacked fit of one model: same draws, same operations per model.
        for p, q in zip(one.net.parameters(), many.net.parameters(), strict=True):
            assert torch.equal(p, q)
        assert torch.equal(one.eps(x_t, c, t), many.eps(x_t, c, t))
        assert many.final_loss == one.final_loss


def test_batched_fit_checks_its_inputs_and_names_a_diverging_model():
    data = problems(2)
    gens = [torch.Generator().manual_seed(b) for b in range(2)]
    with pytest.raises(ValueError, match="share one config"):
        fit_batched([MLPScore(8, 1), MLPScore(16, 1)], data, gens)
    with pytest.raises(ValueError, match="one entry per model"):
        fit_batched([MLPScore(8, 1)] * 2, data[:1], gens)
    bad = [(c * 1e3, x * 1e3, w) for c, x, w in data]
    with pytest.raises(DivergenceError, match=r"cell-[ab]: training loss became"):
        fit_batched(
            [MLPScore(8, 1, steps=200, lr=1e12) for _ in range(2)],
            bad,
            gens,
            run_names=["cell-a", "cell-b"],
        )


def test_bench_reports_every_comparison_and_writes_them(capsys, tmp_path):
    import json

    from mol_diffusion.__main__ import main

    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    for needle in (
        "stacked vs (a) loop",
        "stacked vs (b) plain torch",
        "stacked vs (c) vmap",
        "DiffusionPolicy(",
        "posterior means of",
        "rollouts of one DiffusionPolicy",
        "random-feature fit:",
    ):
        assert needle in out
    assert out.count("largest parameter gap 0.0e+00") == 2  # the stacked fits are the loops'
    record = json.loads(path.read_text())
    assert record["finite"] and record["machine"]["cores"] >= 1
    assert "torch" in record["machine"]["libraries"]
    assert set(record["targets"]) <= set(record)  # every target has its measurement
    assert all(record[key] > 0 for key in record["targets"])
    # every speed-up comes with its per-round ratios (the quick config runs 2 rounds); with two
    # rounds the ratio of the medians (means) lies between them (the mediant)
    rounds = {key: record[f"{key}_rounds"] for key in record["targets"] if not key.startswith("rf")}
    assert len(rounds) == 6 and all(len(r) == 2 for r in rounds.values())
    for key, r in rounds.items():
        assert min(r) * (1 - 1e-9) <= record[key] <= max(r) * (1 + 1e-9), key
    assert out.count("; rounds ") == 6


def windows(count, seed=0):
    """Random (obs (N, 2, 3), actions (N, 6, 2), weights) per policy, N differing."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(count):
        n = 60 + 10 * b
        obs = torch.randn(n, 2, 3, generator=g)
        actions = torch.tanh(obs[:, -1:, :2] + 0.1 * torch.randn(n, 6, 2, generator=g))
        w = torch.rand(n, generator=g) if b % 2 else None
        out.append((obs, actions, w))
    return out


@pytest.mark.parametrize("prediction", ["sample", "epsilon"])
def test_batched_policies_follow_the_one_at_a_time_fits(prediction):
    from mol_diffusion.policy.diffusion_policy import DiffusionPolicy, fit_batched

    options = dict(
        obs_horizon=2, pred_horizon=6, action_horizon=3, width=32, depth=2, steps=120,
        batch_size=32, prediction=prediction,
    )  # fmt: skip
    data = windows(3)
    single = [
        DiffusionPolicy(**options).fit(*d[:2], d[2], generator=torch.Generator().manual_seed(b))
        for b, d in enumerate(data)
    ]
    batch = fit_batched(
        [DiffusionPolicy(**options) for _ in data],
        data,
        [torch.Generator().manual_seed(b) for b in range(len(data))],
    )
    obs = torch.randn(20, 2, 3, generator=torch.Generator().manual_seed(5))
    for one, many in zip(single, batch, strict=True):
        # DiffusionPolicy.fit is the stacked fit of one policy: bit-for-bit the same.
        for p, q in zip(one.net.state_dict().values(), many.net.state_dict().values(), strict=True):
            assert torch.equal(p, q)
        a = one.predict_chunk(obs, generator=torch.Generator().manual_seed(7))
        assert torch.equal(a, many.predict_chunk(obs, generator=torch.Generator().manual_seed(7)))
        assert many.final_loss == one.final_loss


def test_batched_policies_check_their_inputs():
    from mol_diffusion.policy.diffusion_policy import DiffusionPolicy, fit_batched

    data = windows(2)
    gens = [torch.Generator().manual_seed(b) for b in range(2)]
    small = dict(obs_horizon=2, pred_horizon=6, action_horizon=3, width=8, depth=1, steps=5)
    with pytest.raises(ValueError, match="share one config"):
        fit_batched([DiffusionPolicy(**small), DiffusionPolicy(**small, lr=1e-2)], data, gens)
    with pytest.raises(ValueError, match="one entry per policy"):
        fit_batched([DiffusionPolicy(**small)] * 2, data[:1], gens)
    with pytest.raises(ValueError, match=r"data\[1\]: actions must have shape"):
        fit_batched(
            [DiffusionPolicy(**small) for _ in range(2)],
            [data[0], (data[1][0], data[1][1][:, :4], None)],
            gens,
        )
    with pytest.raises(ValueError, match=r"data\[1\]: weights must be"):
        bad = [data[0], (*data[1][:2], torch.full((data[1][0].shape[0],), float("nan")))]
        fit_batched([DiffusionPolicy(**small) for _ in range(2)], bad, gens)
    huge = {**small, "lr": 1e12, "steps": 50}
    with pytest.raises(DivergenceError, match=r"pol-[ab]: training loss became"):
        fit_batched(
            [DiffusionPolicy(**huge) for _ in range(2)], data, gens, run_names=["pol-a", "pol-b"]
        )


@pytest.mark.parametrize("preconditioning", ["eps", "edm"])
def test_stacked_posterior_means_are_the_one_at_a_time_means(preconditioning):
    """metrics.posterior_means samples M models on K condition sets in one stacked pass. Each
    entry must not depend on the other models (a stack of one gives it bit for bit), must be
    posterior_mean of that model alone on an identically seeded generator (to float32
    rounding: the stacked products see more rows), and the generator must end where those
    calls leave it."""
    from mol_diffusion.metrics import posterior_mean, posterior_means

    count, kwargs = 3, dict(steps=40, batch_size=64, preconditioning=preconditioning)
    data = problems(count)
    models = fit_batched(
        [MLPScore(32, 2, **kwargs) for _ in range(count)],
        data,
        [torch.Generator().manual_seed(b) for b in range(count)],
    )
    g = torch.Generator().manual_seed(3)
    conds = [torch.randn(rows, 3, generator=g, dtype=torch.float64) for rows in (17, 5)]
    options = dict(samples=3, steps=12)
    stacked_gen = torch.Generator().manual_seed(99)
    stacked = posterior_means(models, conds, generator=stacked_gen, **options)
    for m, model in enumerate(models):
        alone = torch.Generator().manual_seed(99)
        for k, c in enumerate(conds):
            expected = posterior_mean(model, c, generator=alone, **options)
            torch.testing.assert_close(stacked[m][k], expected, rtol=1e-5, atol=1e-4)
        one = posterior_means(
            [model], conds, generator=torch.Generator().manual_seed(99), **options
        )
        assert all(torch.equal(a, b) for a, b in zip(one[0], stacked[m], strict=True))
    assert torch.equal(stacked_gen.get_state(), alone.get_state())


def test_stacked_eps_is_each_models_eps_and_rescales_a_changed_condition():
    """stacked_eps keeps the scaled conditions of the c it was last given; it must give each
    model's eps (to float32 rounding) and recompute them when c is another tensor or the same
    tensor changed in place. StackedMLPs.forward runs its activations in place when no graph is
    recorded: the same values as with one."""
    from mol_diffusion.nets import StackedMLPs
    from mol_diffusion.scores.mlp import stacked_eps

    count = 2
    models = fit_batched(
        [MLPScore(16, 2, steps=20, batch_size=32) for _ in range(count)],
        problems(count),
        [torch.Generator().manual_seed(b) for b in range(count)],
    )
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(count, 7, 2, generator=g, dtype=torch.float64)
    c = torch.randn(7, 3, generator=g, dtype=torch.float64)
    t = torch.rand(7, generator=g, dtype=torch.float64)
    eps = stacked_eps(models)

    def expected(cond):
        return stacked_eps(models)(x_t, cond, t)  # a fresh stack: nothing kept

    first = eps(x_t, c, t)
    for b, model in enumerate(models):
        torch.testing.assert_close(first[b], model.eps(x_t[b], c, t).float(), rtol=1e-5, atol=1e-5)
    assert torch.equal(eps(x_t, c, t), first)
    c.mul_(-1.5)
    assert torch.equal(eps(x_t, c, t), expected(c))
    other = c.clone() + 1
    assert torch.equal(eps(x_t, other, t), expected(other))

    params = [torch.randn(4, 3, 5, generator=g), torch.randn(4, 5, generator=g)]
    params += [torch.randn(4, 5, 2, generator=g), torch.randn(4, 2, generator=g)]
    z = torch.randn(4, 6, 3, generator=g)
    with torch.no_grad():
        sampled = StackedMLPs.forward(z, params)
    assert torch.equal(sampled, StackedMLPs.forward(z, params))


def test_stacked_posterior_means_check_their_inputs():
    from mol_diffusion import LinearGaussianScore
    from mol_diffusion.metrics import posterior_means

    (c, x, _), *_ = problems(1)
    linear = LinearGaussianScore().fit(c, x, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="models must be a non-empty sequence of MLPScore"):
        posterior_means([linear], [c], samples=2, steps=3, generator=g)
    small = MLPScore(8, 1, steps=5).fit(c, x, generator=torch.Generator().manual_seed(0))
    wide = MLPScore(16, 1, steps=5).fit(c, x, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="share one config"):
        posterior_means([small, wide], [c], samples=2, steps=3, generator=g)
    with pytest.raises(ValueError, match="conds\\[0\\]"):
        posterior_means([small], [c[:, :2]], samples=2, steps=3, generator=g)


def test_restoration_scores_of_a_stack_are_each_models_alone():
    """The restoration kind scores a batch's generalists with one stacked pass
    (metrics.restoration_scores); each entry must be, exactly, restoration_score of that
    generalist alone on an identically seeded generator, with test sets of different sizes."""
    from mol_diffusion.metrics import restoration_score, restoration_scores

    count = 3
    models = fit_batched(
        [MLPScore(16, 1, steps=30, batch_size=32, preconditioning="edm") for _ in range(count)],
        problems(count),
        [torch.Generator().manual_seed(b) for b in range(count)],
    )
    g = torch.Generator().manual_seed(5)
    test_sets = [
        (
            torch.randn(rows, 3, generator=g, dtype=torch.float64),
            torch.rand(rows, 2, generator=g, dtype=torch.float64),
        )
        for rows in (9, 4)
    ]
    options = dict(samples=2, steps=6)
    stacked = restoration_scores(
        models, test_sets, (0.3, 0.7), generator=torch.Generator().manual_seed(8), **options
    )
    for model, score in zip(models, stacked, strict=True):
        alone = restoration_score(
            model, test_sets, (0.3, 0.7), generator=torch.Generator().manual_seed(8), **options
        )
        assert alone == score  # every field, exactly


@pytest.mark.parametrize("steps", [1, 40])
def test_flat_adam_is_torch_adam_bit_for_bit(steps):
    """nets.FlatAdam on one flat buffer equals torch.optim.Adam (defaults, per-tensor path) on
    the tensors that view it, under a changing learning rate (the stacked trainer's cosine)."""
    from mol_diffusion.nets import FlatAdam, cosine_lr

    g = torch.Generator().manual_seed(3)
    shapes = [(4, 5, 7), (4, 7), (4, 7, 2)]
    ref = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
    flat = torch.cat([p.detach().reshape(-1) for p in ref])
    adam, torch_adam = FlatAdam(flat), torch.optim.Adam(ref, lr=3e-3, foreach=False)
    for step in range(steps):
        grads = [torch.randn(s, generator=g) * 10 ** (step % 3 - 1) for s in shapes]
        lr = cosine_lr(3e-3, step, steps)
        for group in torch_adam.param_groups:
            group["lr"] = lr
        for p, grad in zip(ref, grads, strict=True):
            p.grad = grad.clone()
        torch_adam.step()
        adam.step(torch.cat([grad.reshape(-1) for grad in grads]), lr)
    assert torch.equal(flat, torch.cat([p.detach().reshape(-1) for p in ref]))


def test_pad_stack_pads_each_model_to_the_longest():
    from mol_diffusion.nets import pad_stack

    out = pad_stack([torch.ones(2, 3), 2 * torch.ones(4, 3)])
    assert out.shape == (2, 4, 3)
    assert torch.equal(out[0, :2], torch.ones(2, 3)) and torch.equal(out[0, 2:], torch.zeros(2, 3))
    assert torch.equal(out[1], 2 * torch.ones(4, 3))


def test_stacked_posterior_means_run_under_inference_mode():
    # inference tensors have no version counter: stacked_eps scales their conditions each call
    from mol_diffusion.metrics import posterior_means

    models = fit_batched(
        [MLPScore(8, 1, steps=3, batch_size=16) for _ in range(2)],
        problems(2, n=30),
        [torch.Generator().manual_seed(b) for b in range(2)],
    )
    c = torch.randn(4, 3, dtype=torch.float64)
    expected = posterior_means(
        models, [c], samples=1, steps=3, generator=torch.Generator().manual_seed(0)
    )
    with torch.inference_mode():
        got = posterior_means(
            models, [c.clone()], samples=1, steps=3, generator=torch.Generator().manual_seed(0)
        )
    assert all(torch.equal(a[0], b[0]) for a, b in zip(expected, got, strict=True))


def test_stacked_posterior_means_of_many_rows_are_a_stack_of_ones():
    """More rows than one block (and a leftover block of one row): the blocks do not depend on
    how many models are stacked, so a stack of one gives each model's means bit for bit (at
    this width; narrow stacks can differ by float32 rounding, as before the blocks)."""
    from mol_diffusion.metrics import _BLOCK_ROWS, posterior_means

    count = 16
    models = fit_batched(
        [MLPScore(64, 2, steps=5, batch_size=32) for _ in range(count)],
        problems(count, n=50),
        [torch.Generator().manual_seed(b) for b in range(count)],
    )
    g = torch.Generator().manual_seed(3)
    conds = [torch.randn(_BLOCK_ROWS + 1, 3, generator=g, dtype=torch.float64)]
    options = dict(samples=1, steps=4)
    stacked = posterior_means(models, conds, generator=torch.Generator().manual_seed(9), **options)
    for m in (0, 7, 15):
        one = posterior_means(
            [models[m]], conds, generator=torch.Generator().manual_seed(9), **options
        )
        assert torch.equal(one[0][0], stacked[m][0])


def test_stacked_params_hold_the_trained_raw_weights_after_training():
    """After train, StackedMLPs.params are the raw weights Adam reached (the EMA goes to the
    MLPs), so a second train continues from them rather than from the initial weights."""
    from mol_diffusion.nets import MLP, StackedMLPs

    torch.manual_seed(0)
    mlps = [MLP(3, 2, width=8, depth=1) for _ in range(2)]
    stacked = StackedMLPs(mlps)
    initial = [p.detach().clone() for p in stacked.params]
    z, target = torch.randn(2, 16, 3), torch.randn(2, 16, 2)

    def losses(step, forward):
        return ((forward(z) - target) ** 2).mean(dim=(1, 2))

    stacked.train(losses, steps=5, lr=1e-2, ema_decay=0.9, run_names=["a", "b"])
    assert not any(torch.equal(p, q) for p, q in zip(stacked.params, initial, strict=True))
    ema_weight = torch.stack([m.body[0].weight.detach().T for m in mlps])
    assert not torch.equal(stacked.params[0].detach(), ema_weight)  # raw, not the EMA
    stacked.train(losses, steps=5, lr=1e-2, ema_decay=None, run_names=["a", "b"])
    raw_weight = torch.stack([m.body[0].weight.detach().T for m in mlps])
    assert torch.equal(stacked.params[0].detach(), raw_weight)
