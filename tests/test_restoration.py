"""Image-restoration tasks: data that ships inside packages, degradation operators, splits."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mol_diffusion import metrics
from mol_diffusion.tasks import (
    Deblur,
    Denoise,
    Inpaint,
    RestorationTasks,
    load_digits_images,
    load_image_patches,
)

DIGITS, DIGIT_SOURCES = load_digits_images()


def images(seed, b=4, h=8, w=8):
    return torch.rand(b, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_shipped_data_shapes_ranges_and_determinism():
    assert (
        DIGITS.shape == (1797, 8, 8) and float(DIGITS.min()) == 0.0 and float(DIGITS.max()) == 1.0
    )
    patches, sources = load_image_patches(patch=16)
    assert patches.shape[1:] == (16, 16) and len(np.unique(sources)) == 12
    assert float(patches.min()) >= 0.0 and float(patches.max()) <= 1.0
    again, _ = load_image_patches(patch=16)
    torch.testing.assert_close(patches, again, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"photos\[0\] = 'nonexistent'"):
        load_image_patches(photos=("nonexistent",))


@given(seed=st.integers(0, 10_000), a=st.floats(-2, 2), b=st.floats(-2, 2))
def test_blur_and_inpaint_are_linear_for_fixed_randomness(seed, a, b):
    x, y = images(seed), images(seed + 1)
    for op in (Deblur(width=1.0, sigma=0.0), Inpaint(0.4)):
        g = lambda: torch.Generator().manual_seed(seed)  # noqa: E731  same mask / noise draws
        torch.testing.assert_close(op(a * x + b * y, g()), a * op(x, g()) + b * op(y, g()))


@given(seed=st.integers(0, 10_000), width=st.floats(0.3, 2.0))
def test_blur_preserves_constants_and_the_unit_range(seed, width):
    op = Deblur(width=width, sigma=0.0)
    const = torch.full((2, 8, 8), 0.37, dtype=torch.float64)
    torch.testing.assert_close(op.blur(const), const)  # normalized kernel, reflecting borders
    out = op.blur(images(seed))
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0  # a convex combination of pixels


def test_denoise_adds_noise_of_the_stated_scale_independent_of_the_image():
    op = Denoise(0.3)
    x = images(0, b=200, h=16, w=16)
    noise = op(x, torch.Generator().manual_seed(1)) - x
    torch.testing.assert_close(noise, op(torch.zeros_like(x), torch.Generator().manual_seed(1)))
    # 51200 draws: the sample std is within 1% of 0.3 (5 standard errors of sqrt(1/2N))
    assert float(noise.std()) == pytest.approx(0.3, rel=5 / math.sqrt(2 * noise.numel()) + 1e-3)


def test_inpaint_hides_exactly_the_stated_fraction_and_keeps_the_rest():
    op = Inpaint(0.25)
    x = images(2) + 0.1  # strictly positive, so hidden pixels are recognizable
    y = op(x, torch.Generator().manual_seed(3))
    hidden = y == 0
    assert (hidden.flatten(1).sum(1) == 16).all()  # round(0.25 * 64) per image
    torch.testing.assert_close(y[~hidden], x[~hidden])


def test_splits_are_disjoint_by_source_and_fixed_by_the_seed():
    tasks = RestorationTasks(DIGITS, DIGIT_SOURCES, (Denoise(), Inpaint(), Deblur()), split_seed=5)
    parts = [set(DIGIT_SOURCES[tasks.splits[name]]) for name in ("train", "unlabeled", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(p) for p in parts) == len(DIGIT_SOURCES)
    same = RestorationTasks(DIGITS, DIGIT_SOURCES, (Denoise(),), split_seed=5)
    other = RestorationTasks(DIGITS, DIGIT_SOURCES, (Denoise(),), split_seed=6)
    assert np.array_equal(same.splits["test"], tasks.splits["test"])
    assert not np.array_equal(other.splits["test"], tasks.splits["test"])
    patches, sources = load_image_patches()
    by_photo = RestorationTasks(patches, sources, (Denoise(),), split_seed=0)
    photos = [set(sources[by_photo.splits[name]]) for name in ("train", "unlabeled", "test")]
    assert not (photos[0] & photos[2] or photos[1] & photos[2] or photos[0] & photos[1])


def test_task_sampling_matches_the_gaussian_family_interface():
    tasks = RestorationTasks(DIGITS, DIGIT_SOURCES, (Denoise(0.3), Inpaint(0.5), Deblur(1.0)))
    g = torch.Generator().manual_seed(0)
    c, x = tasks.sample(1, 10, g)
    assert c.shape == x.shape == (10, 64) and tasks.dim == tasks.cond_dim == 64
    train_images = {tuple(v.tolist()) for v in tasks.images[tasks.splits["train"]].reshape(-1, 64)}
    assert all(tuple(v.tolist()) in train_images for v in x)
    assert tasks.sample_conditions(2, 7, g).shape == (7, 64)
    c_test, x_test = tasks.test_pairs(0, g)
    assert c_test.shape == x_test.shape == (len(tasks.splits["test"]), 64)


def test_psnr_matches_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    x = images(4, b=3)
    y = (x + 0.05 * images(5, b=3)).clamp(0, 1)
    ours = metrics.psnr(y.reshape(3, -1), x.reshape(3, -1))
    ref = [peak_signal_noise_ratio(x[i].numpy(), y[i].numpy(), data_range=1.0) for i in range(3)]
    torch.testing.assert_close(ours, torch.tensor(ref, dtype=torch.float64))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Denoise(0.0), "sigma must be > 0"),
        (lambda: Inpaint(1.0), r"fraction must be a number in \(0, 1\)"),
        (lambda: Deblur(width=-1.0), "width must be > 0"),
        (
            lambda: RestorationTasks(DIGITS, DIGIT_SOURCES[:5], (Denoise(),)),
            "sources must have shape",
        ),
        (lambda: RestorationTasks(DIGITS, DIGIT_SOURCES, ()), "at least one degradation"),
        (
            lambda: RestorationTasks(
                DIGITS, DIGIT_SOURCES, (Denoise(),), fractions=(0.5, 0.5, 0.5)
            ),
            "fractions",
        ),
        (
            lambda: RestorationTasks(DIGITS, DIGIT_SOURCES, (Denoise(),)).sample(
                0, 10_000, torch.Generator()
            ),
            "n = 10000 exceeds",
        ),
        (
            lambda: RestorationTasks(DIGITS, DIGIT_SOURCES, (Denoise(),)).sample(
                1, 2, torch.Generator()
            ),
            "k must be a task index",
        ),
        (
            lambda: Deblur(width=3.0)(torch.zeros(1, 8, 8, dtype=torch.float64), torch.Generator()),
            "blur radius",
        ),
        (lambda: metrics.psnr(torch.zeros(2, 3), torch.zeros(2, 4)), "share a shape"),
    ],
)
def test_bad_inputs_are_named(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()
