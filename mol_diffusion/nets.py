"""Building blocks shared by the neural models: the MLP body, the sinusoidal time embedding,
the learning-rate schedule and the EMA warm-up (used by ``scores.mlp`` and ``policy``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from mol_diffusion._validation import check_positive_float, check_positive_int

__all__ = ["MLP", "check_training_options", "cosine_lr", "ema_warmup", "time_embedding"]


def time_embedding(t: torch.Tensor, size: int) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1]: (B,) -> (B, size), frequencies 1 .. 1000 (geometric)
    (Vaswani et al., 2017, Sec. 3.5, applied to diffusion time)."""
    half = size // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), half, dtype=torch.float32))
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def check_training_options(config) -> None:
    """Validate the options every neural model shares: width, depth, steps, batch_size and
    time_features positive (time_features even), lr > 0, ema_decay in [0, 1) or None."""
    for name in ("width", "depth", "steps", "batch_size", "time_features"):
        check_positive_int(getattr(config, name), name)
    if config.time_features % 2:
        raise ValueError(f"time_features must be even, got {config.time_features}")
    check_positive_float(config.lr, "lr")
    if config.ema_decay is not None and not 0 <= config.ema_decay < 1:
        raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {config.ema_decay!r}")


def cosine_lr(lr: float, step: int, steps: int) -> float:
    """Cosine learning-rate decay from ``lr`` to ``lr / 10`` over ``steps``."""
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))


def ema_warmup(decay: float, step: int) -> float:
    """min(decay, (1 + step) / (10 + step)): the warm-up keeps short runs from averaging in the
    random initialisation."""
    return min(decay, (1 + step) / (10 + step))


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` SiLU units: (B, in_dim) -> (B, out_dim)."""

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_dim if i == 0 else width, width), nn.SiLU()]
        layers.append(nn.Linear(width, out_dim))
        self.body = nn.Sequential(*layers)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default Linear initialisation, drawn from ``generator``."""
        for layer in self.body:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
