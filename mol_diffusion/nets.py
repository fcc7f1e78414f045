"""Building blocks shared by the neural models: the MLP body, the sinusoidal time embedding,
the learning-rate schedule, the EMA warm-up and the stacked trainer that fits many MLPs at once
(used by ``scores.mlp`` and ``policy``)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mol_diffusion._validation import DivergenceError, check_positive_float, check_positive_int

__all__ = [
    "EXPLOSION",
    "MLP",
    "FlatAdam",
    "StackedMLPs",
    "check_training_options",
    "cosine_lr",
    "ema_warmup",
    "pad_stack",
    "time_embedding",
]

# A training loss above EXPLOSION times its first step's (at least 1) has diverged: stop with a
# DivergenceError instead of returning a model whose loss is finite but meaningless
# (lr = 1e6 reaches 1e13). DSM losses of every fit here stay within 10x of their first step.
EXPLOSION = 1e4


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
    decay = config.ema_decay
    if decay is not None and (
        isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0 <= decay < 1
    ):
        raise ValueError(f"ema_decay must be a number in [0, 1) or None, got {decay!r}")


def cosine_lr(lr: float, step: int, steps: int) -> float:
    """Cosine learning-rate decay from ``lr`` to ``lr / 10`` over ``steps``."""
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))


def ema_warmup(decay: float, step: int) -> float:
    """min(decay, (1 + step) / (10 + step)): the warm-up keeps short runs from averaging in the
    random initialisation."""
    return min(decay, (1 + step) / (10 + step))


def pad_stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """B tensors of shapes (N_b, ...) -> one (B, max N_b, ...) tensor, zero-padded, so the
    stacked trainers draw every model's minibatch rows with one gather (``x[rows, idx]`` with
    idx (B, bs) < N_b per row)."""
    size = max(x.shape[0] for x in tensors)
    out = tensors[0].new_zeros((len(tensors), size, *tensors[0].shape[1:]))
    for b, x in enumerate(tensors):
        out[b, : x.shape[0]] = x
    return out


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


class FlatAdam:
    """Adam (Kingma & Ba, 2015, Algorithm 1) on one flat float32 parameter tensor, with the
    defaults of ``torch.optim.Adam`` (betas (0.9, 0.999), eps 1e-8, no weight decay) and its
    elementwise operations in its order, so the updates equal ``torch.optim.Adam``'s bit for
    bit (``tests/test_batched.py``) at a few operator calls per step whatever the number of
    parameter tensors viewing ``param``.
    """

    def __init__(self, param: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999)):
        self.param, self.betas, self.eps, self.steps = param, betas, 1e-8, 0
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, lr: float) -> None:
        """One update of ``param`` (in place) by ``grad`` (its shape) at learning rate ``lr``."""
        beta1, beta2 = self.betas
        self.steps += 1
        step = float(self.steps)
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1**step)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)


class StackedMLPs:
    """B MLPs of one architecture as stacked parameters, trained together by batched products.

    Layer l holds weight (B, in_l, out_l) and bias (B, out_l); ``forward`` maps (B, rows, in)
    to (B, rows, out) with one ``baddbmm`` per layer, so B small fits cost about as many
    operator calls as one. Adam and the EMA act elementwise and the models share no parameter,
    so model b follows the trajectory it would have alone; the models' own ``fit`` trains a
    stack of one, so batched and single fits agree bit for bit (``tests/test_batched.py``).

    Args:
        mlps: B ``MLP`` instances with identical layer shapes, already initialised (their
            parameters are copied; ``train`` writes the result back into them).
    """

    def __init__(self, mlps: Sequence[MLP]):
        self.mlps = list(mlps)
        if not self.mlps:
            raise ValueError("mlps must hold at least one MLP")
        self.linears = [[m for m in mlp.body if isinstance(m, nn.Linear)] for mlp in self.mlps]
        shapes = {tuple(tuple(m.weight.shape) for m in ls) for ls in self.linears}
        if len(shapes) != 1:
            raise ValueError(f"every MLP must have the same layer shapes, got {sorted(shapes)}")
        self.params: list[torch.Tensor] = []
        for layer in range(len(self.linears[0])):
            weight = torch.stack([ls[layer].weight.detach().T for ls in self.linears])
            bias = torch.stack([ls[layer].bias.detach() for ls in self.linears])
            self.params += [weight.requires_grad_(), bias.requires_grad_()]

    def __len__(self) -> int:
        return len(self.mlps)

    @staticmethod
    def forward(z: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, rows, in) -> (B, rows, out) through the stacked layers ``params``."""
        h = z
        for layer in range(0, len(params), 2):
            h = torch.baddbmm(params[layer + 1][:, None, :], h, params[layer])
            if layer + 2 < len(params):
                # In place when no graph is recorded (sampling): one pass over h fewer.
                h = nn.functional.silu(h, inplace=not torch.is_grad_enabled())
        return h

    def train(
        self,
        losses: Callable[[int, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor],
        *,
        steps: int,
        lr: float,
        ema_decay: float | None,
        run_names: Sequence[str],
    ) -> torch.Tensor:
        """Adam with the cosine schedule and the EMA of the single fits, on all B models at once.

        Args:
            losses: ``(step, forward) -> (B,)`` each model's minibatch loss at ``step``, where
                ``forward`` maps (B, rows, in) inputs through the current parameters; it must
                draw each model's minibatch from that model's generator in the single fit's
                order.
            steps, lr, ema_decay: as in the models' configs.
            run_names: one name per model, for the ``DivergenceError`` of a model whose loss
                stops being finite or exceeds ``EXPLOSION`` times its first step's.
        Returns:
            the last step's losses (B,). The trained weights (the EMA when ``ema_decay`` is
            set) are written back into the MLPs.
        """
        if len(run_names) != len(self):
            raise ValueError(f"run_names must hold {len(self)} names, got {len(run_names)}")
        # Every parameter tensor is a view of one flat buffer, so Adam and the EMA, which act
        # elementwise, update all of them with a handful of operator calls per step (the
        # values are those of per-tensor updates, bit for bit).
        flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        params, offset = [], 0
        for p in self.params:
            params.append(flat[offset : offset + p.numel()].view(p.shape).requires_grad_())
            offset += p.numel()
        ema = flat.clone() if ema_decay is not None else None
        adam = FlatAdam(flat)
        value = torch.full((len(self),), float("nan"))
        for step in range(steps):
            value = losses(step, lambda z: self.forward(z, params))
            now = value.detach()
            if step == 0:
                scale = torch.where(torch.isfinite(now), now, 1.0).clamp(min=1.0)
            bad = ~torch.isfinite(now) | (now > EXPLOSION * scale)
            if bad.any():
                b = int(bad.nonzero()[0])
                if step == 0:
                    raise DivergenceError(
                        f"{run_names[b]}: training loss is {float(now[b])} at the first step: "
                        "the data or the initial network overflow (standardize c and x)"
                    )
                raise DivergenceError(
                    f"{run_names[b]}: training loss became {float(now[b])} at step {step} "
                    f"(first step: {float(scale[b]):.3g}); lower lr (got {lr:g})"
                )
            value.sum().backward()  # no shared parameters: each model gets its own gradient
            grad = torch.cat([p.grad.reshape(-1) for p in params])
            for p in params:
                p.grad = None
            adam.step(grad, cosine_lr(lr, step, steps))
            if ema is not None:
                ema.lerp_(flat, 1 - ema_warmup(ema_decay, step))
        self.params = params  # the trained (raw) weights, as when Adam updated them in place
        if ema is not None:
            params = [
                ema[p.storage_offset() : p.storage_offset() + p.numel()].view(p.shape)
                for p in params
            ]
        final = [p.detach() for p in params]
        with torch.no_grad():
            for b, linears in enumerate(self.linears):
                for layer, linear in enumerate(linears):
                    linear.weight.copy_(final[2 * layer][b].T)
                    linear.bias.copy_(final[2 * layer + 1][b])
        return value.detach()
