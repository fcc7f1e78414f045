"""Point-restorer baselines, their metrics and the validation split (mol_diffusion/restorers.py)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from restoration_data import digit_pairs

from mol_diffusion.kinds.restoration import RestorationSpec
from mol_diffusion.metrics import psnr
from mol_diffusion.restorers import (
    BlindCNNRestorer,
    ClassicalRestorer,
    DegradedInput,
    RidgeRestorer,
    restoration_metrics,
    validation_split,
)
from mol_diffusion.tasks import Deblur, Denoise, Inpaint


@settings(max_examples=10, deadline=None)
@given(n=st.integers(4, 12), seed=st.integers(0, 10_000))
def test_ridge_leave_one_out_error_is_the_refit_without_each_pair(n, seed):
    # reference: refit without pair i, n times, with the same penalty (intercept unpenalized)
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, 3, generator=g, dtype=torch.float64)
    x = c @ torch.randn(3, 2, generator=g, dtype=torch.float64) + 0.3 * torch.randn(
        n, 2, generator=g, dtype=torch.float64
    )
    model = RidgeRestorer(alphas=(0.1, 2.0)).fit(c, x)
    for a, loo in zip(model.alphas, model.loo_mse, strict=True):
        errors = []
        for i in range(n):
            keep = torch.arange(n) != i
            m = RidgeRestorer(alphas=(a,)).fit(c[keep], x[keep])
            errors.append(((m.restore(c[i : i + 1]) - x[i]) ** 2).mean())
        assert loo == pytest.approx(float(torch.stack(errors).mean()), rel=1e-8)
    assert model.alpha == model.alphas[int(np.argmin(model.loo_mse))]


def test_ridge_recovers_a_noise_free_linear_map():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(50, 4, generator=g, dtype=torch.float64)
    W = torch.randn(3, 4, generator=g, dtype=torch.float64)
    model = RidgeRestorer(alphas=(1e-8,)).fit(c, c @ W.T + 0.5)
    torch.testing.assert_close(model.W, W, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.b, torch.full((3,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("operator", [Denoise(0.3), Deblur(1.0, 0.02)])
def test_classical_methods_improve_on_the_degraded_input(operator):
    c, x, _ = digit_pairs(operator, 40, 1)
    model = ClassicalRestorer(operator, (8, 8)).fit(c[:20], x[:20])
    assert model.parameter in model.grid
    restored = model.restore(c[20:]).clamp(0, 1)
    assert psnr(restored, x[20:]).mean() > psnr(c[20:].clamp(0, 1), x[20:]).mean() + 0.5


def test_biharmonic_inpainting_restores_a_constant_image():
    x = torch.full((2, 64), 0.5, dtype=torch.float64)
    c = Inpaint(0.5)(x.reshape(2, 8, 8), torch.Generator().manual_seed(0)).reshape(2, -1)
    model = ClassicalRestorer(Inpaint(0.5), (8, 8)).fit(c, x)
    torch.testing.assert_close(model.restore(c), x, atol=1e-6, rtol=0)


def test_blind_cnn_is_reproducible_and_learns_to_denoise():
    c, x, _ = digit_pairs(Denoise(0.3), 200, 2)
    fits = [
        BlindCNNRestorer((8, 8), channels=8, depth=3, steps=150).fit(
            c[:150], x[:150], generator=torch.Generator().manual_seed(3)
        )
        for _ in range(2)
    ]
    out = [f.restore(c[150:]) for f in fits]
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=0)
    assert psnr(out[0].clamp(0, 1), x[150:]).mean() > psnr(c[150:].clamp(0, 1), x[150:]).mean()


def test_metrics_agree_with_psnr_and_ssim_is_one_for_the_clean_image():
    c, x, _ = digit_pairs(Denoise(0.1), 5, 4)
    values, ssim = restoration_metrics(c, x, (8, 8))
    torch.testing.assert_close(torch.as_tensor(values), psnr(c.clamp(0, 1), x))
    assert ssim.shape == (5,) and (ssim < 1).all()
    _, same = restoration_metrics(x + 1e-9, x, (8, 8))
    np.testing.assert_allclose(same, 1.0, atol=1e-6)
    torch.testing.assert_close(DegradedInput().fit(c, x).restore(c), c, rtol=0, atol=0)


def test_validation_split_is_a_partition_of_the_train_split_by_source():
    spec = RestorationSpec(tasks=(("denoise", (("sigma", 0.3),)),), dataset="patches")
    fam = spec.build()
    fit, val = validation_split(fam, 0.25, seed=1)
    assert set(fit) | set(val) == set(fam.splits["train"]) and not set(fit) & set(val)
    assert not set(fam.sources[fit]) & set(fam.sources[val])


def test_clear_errors():
    with pytest.raises(ValueError, match="alphas must be positive"):
        RidgeRestorer(alphas=(0.0,))
    with pytest.raises(ValueError, match="operator must be a Denoise, Deblur or Inpaint"):
        ClassicalRestorer("blur", (8, 8))
    with pytest.raises(ValueError, match="depth must be >= 2"):
        BlindCNNRestorer((8, 8), depth=1)
    with pytest.raises(ValueError, match="alphas must be positive"):
        RidgeRestorer(alphas=(True,))
    with pytest.raises(ValueError, match="image_shape must be two positive integers"):
        BlindCNNRestorer((8,))
    with pytest.raises(ValueError, match="fraction must be in"):
        validation_split(RestorationSpec(tasks=(("denoise", ()),)).build(), 1.0)
