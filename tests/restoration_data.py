"""Degraded digits pairs shared by the restoration tests."""

import torch

from mol_diffusion.tasks import load_digits_images


def digit_pairs(operator, n: int, seed: int):
    """n random digits degraded by ``operator``: (c (n, 64), x (n, 64), the generator used)."""
    images, _ = load_digits_images()
    g = torch.Generator().manual_seed(seed)
    x = images[torch.randperm(len(images), generator=g)[:n]]
    return operator(x, g).reshape(n, -1), x.reshape(n, -1), g
