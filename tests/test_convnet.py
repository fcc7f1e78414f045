"""The convolutional conditional score network (mol_diffusion/scores/convnet.py)."""

import pytest
import torch
from restoration_data import digit_pairs

from mol_diffusion import ScoreModel
from mol_diffusion.metrics import psnr
from mol_diffusion.scores.convnet import ConvScore
from mol_diffusion.tasks import Denoise

TINY = dict(width=8, depth=1, steps=40, batch_size=32, time_features=8)


@pytest.mark.parametrize("backbone", ["unet", "diffusers"])
def test_contract_shapes_dtypes_and_reproducibility(backbone):
    c, x = digit_pairs(Denoise(0.3), 64, 0)[:2]
    fits = [
        ConvScore((8, 8), backbone=backbone, **TINY).fit(
            c, x, generator=torch.Generator().manual_seed(1)
        )
        for _ in range(2)
    ]
    model = fits[0]
    assert isinstance(model, ScoreModel) and model.num_params > 0
    t = torch.linspace(0.05, 1.0, 5, dtype=torch.float64)
    s = model.score(x[:5], c[:5], t)
    assert s.shape == (5, 64) and s.dtype == torch.float64 and torch.isfinite(s).all()
    torch.testing.assert_close(s, fits[1].score(x[:5], c[:5], t), rtol=0, atol=0)
    draws = model.sample(c[:3], generator=torch.Generator().manual_seed(2), steps=5)
    assert draws.shape == (3, 64) and torch.isfinite(draws).all()
    other = ConvScore((8, 8), backbone=backbone, **TINY).fit(
        c, x, generator=torch.Generator().manual_seed(3)
    )
    assert not torch.equal(other.score(x[:5], c[:5], t), s)


def test_one_pass_mean_is_the_clean_prediction_the_score_implies_at_t_1():
    # two routes to x0_hat at t = 1, x_t = 0: the preconditioned output directly, and the
    # score's noise prediction, x0 = (x_t - sigma eps_hat) / alpha (float32 eps_hat, amplified
    # by 1 / alpha(1) ~ 150 at the default schedule)
    c, x = digit_pairs(Denoise(0.3), 64, 4)[:2]
    model = ConvScore((8, 8), **TINY).fit(c, x, generator=torch.Generator().manual_seed(5))
    one_pass = model.posterior_mean_one_pass(c[:6])
    t = torch.ones(6, dtype=torch.float64)
    eps = model.eps(torch.zeros(6, 64), c[:6], t).to(torch.float64)
    alpha, sigma = model.schedule.alpha_sigma(t)
    torch.testing.assert_close(one_pass, -sigma[:, None] * eps / alpha[:, None], atol=1e-4, rtol=0)


def test_one_pass_mean_distills_a_known_posterior_mean():
    # a teacher with an exact posterior: the one-pass mean of a ConvScore fitted on its exact
    # draws (4 per condition) must approach the teacher's E[x | c], far closer than the
    # degraded input is
    from mol_diffusion.scores.prior import GaussianPriorScore

    c, x = digit_pairs(Denoise(0.3), 664, 8)[:2]
    teacher = GaussianPriorScore((8, 8), operator="denoise").fit(
        c[:64], x[:64], generator=torch.Generator().manual_seed(0)
    )
    cond = c[64:564].repeat(4, 1)
    labels = teacher.sample_exact(cond, generator=torch.Generator().manual_seed(1))
    model = ConvScore((8, 8), width=16, steps=300, batch_size=64).fit(
        cond, labels, generator=torch.Generator().manual_seed(2)
    )
    target = teacher.mean(c[564:])
    err = ((model.posterior_mean_one_pass(c[564:]) - target) ** 2).mean()
    assert err < 0.25 * ((c[564:] - target) ** 2).mean()


def test_trained_with_edm_weighting_the_one_pass_mean_denoises():
    c, x = digit_pairs(Denoise(0.3), 600, 6)[:2]
    model = ConvScore((8, 8), width=16, steps=300, batch_size=64).fit(
        c[:500], x[:500], generator=torch.Generator().manual_seed(7)
    )
    est = model.posterior_mean_one_pass(c[500:]).clamp(0, 1)
    # noise 0.3 leaves the input at about 13 dB; a blind mean estimate must do better than the
    # input and than the data mean (about 11 dB on digits)
    assert psnr(est, x[500:]).mean() > psnr(c[500:].clamp(0, 1), x[500:]).mean() + 1.0
    mean_image = x[:500].mean(0).expand(100, -1)
    assert psnr(est, x[500:]).mean() > psnr(mean_image, x[500:]).mean() + 1.0


def test_clear_errors():
    with pytest.raises(ValueError, match="image_shape must be two even integers"):
        ConvScore((7, 8))
    with pytest.raises(ValueError, match="width must be a multiple of 8"):
        ConvScore((8, 8), width=12)
    with pytest.raises(ValueError, match="backbone must be one of"):
        ConvScore((8, 8), backbone="resnet")
    with pytest.raises(ValueError, match="loss_weighting must be one of"):
        ConvScore((8, 8), loss_weighting="sigma")
    c, x = digit_pairs(Denoise(0.3), 8, 0)[:2]
    with pytest.raises(ValueError, match=r"images \(4, 4\) needs c and x with 16 columns"):
        ConvScore((4, 4), **TINY).fit(c, x, generator=torch.Generator().manual_seed(0))
