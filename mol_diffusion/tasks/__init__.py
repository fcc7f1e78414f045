"""Task families with exact (or known) ground truth."""

from mol_diffusion.tasks.gaussian import (
    GaussianTaskFamily,
    make_gaussian_family,
    make_misspecified_family,
)
from mol_diffusion.tasks.restoration import (
    Deblur,
    Denoise,
    Inpaint,
    RestorationTasks,
    load_digits_images,
    load_image_patches,
)

__all__ = [
    "Deblur",
    "Denoise",
    "GaussianTaskFamily",
    "Inpaint",
    "RestorationTasks",
    "load_digits_images",
    "load_image_patches",
    "make_gaussian_family",
    "make_misspecified_family",
]
