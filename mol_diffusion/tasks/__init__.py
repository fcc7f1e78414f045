"""Task families with exact (or known) ground truth."""

from mol_diffusion.tasks.gaussian import (
    GaussianTaskFamily,
    make_gaussian_family,
    make_misspecified_family,
)

__all__ = ["GaussianTaskFamily", "make_gaussian_family", "make_misspecified_family"]
