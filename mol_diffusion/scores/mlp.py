r"""Neural score network: an MLP with a sinusoidal time embedding, trained by DSM with Adam.

    eps_hat(x_t, c, t) = MLP([z_x, z_c, emb(t)]),    s = -eps_hat / sigma(t),

where (z_x, z_c) are the scaled inputs of ``InputScaler`` and emb(t) holds sin/cos of t at
``time_features / 2`` geometric frequencies (Vaswani et al., 2017, Sec. 3.5, applied to t).

``preconditioning="edm"`` keeps the inputs and the loss but reads the network output F as a
preconditioned prediction of the clean sample (Karras et al., 2022, Table 1, written for the VP
process with noise level s = sigma / alpha and per-coordinate data variance v = ``var_x``):

    x0_hat = mu_x + c_skip (x_t / alpha - mu_x) + c_out F,
    c_skip = v / (s^2 + v),   c_out = s sqrt(v) / sqrt(s^2 + v),
    eps_hat = (x_t - alpha x0_hat) / sigma.

(c_in (x_t / alpha - mu_x) is exactly z_x.) With eps-prediction a sharp posterior, where c
nearly fixes x_0 (deblurring with little noise), makes the network cancel z_x against a function
of c and amplify the remainder by 1 / sigma; the preconditioned form predicts x_0 directly at
small noise and eps at large noise, so the same network fits such posteriors much better.
Training minimises the weighted per-sample DSM loss ||eps_hat - eps||^2 over random minibatches
with fresh (t, eps) draws; an exponential moving average (EMA) of the weights is used for
evaluation when ``ema_decay`` is set. Every random draw (initialisation, minibatches, noise) comes
from the ``torch.Generator`` passed to ``fit``. Computation is float32; outputs are returned in
the caller's dtype.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from mol_diffusion._validation import DivergenceError, check_positive_float, check_positive_int
from mol_diffusion.objectives import dsm_loss
from mol_diffusion.schedules import VPSchedule
from mol_diffusion.scores.base import InputScaler, ScoreModelBase

__all__ = ["MLPScore", "MLPScoreConfig", "time_embedding"]

PRECONDITIONINGS = ("eps", "edm")


@dataclass(frozen=True)
class MLPScoreConfig:
    """Args:
    width: hidden units per layer.
    depth: number of hidden layers (>= 1).
    steps: Adam steps.
    batch_size: pairs per minibatch.
    lr: peak learning rate (cosine decay to 10% over ``steps``).
    ema_decay: EMA decay in [0, 1) (with warm-up), or None to evaluate the raw weights.
    time_features: size of the sinusoidal time embedding (even).
    preconditioning: ``"eps"`` (the network predicts the noise) or ``"edm"`` (preconditioned
        clean-sample prediction; see the module docstring).
    schedule: the forward process.
    """

    width: int = 128
    depth: int = 3
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    ema_decay: float | None = 0.995
    time_features: int = 16
    preconditioning: str = "eps"
    schedule: VPSchedule = field(default_factory=VPSchedule)

    def __post_init__(self) -> None:
        if self.preconditioning not in PRECONDITIONINGS:
            raise ValueError(
                f"preconditioning must be one of {PRECONDITIONINGS}, got {self.preconditioning!r}"
            )
        for name in ("width", "depth", "steps", "batch_size", "time_features"):
            check_positive_int(getattr(self, name), name)
        if self.time_features % 2:
            raise ValueError(f"time_features must be even, got {self.time_features}")
        check_positive_float(self.lr, "lr")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {self.ema_decay!r}")


def time_embedding(t: torch.Tensor, size: int) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1]: (B,) -> (B, size), frequencies 1 .. 1000 (geometric)."""
    half = size // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), half, dtype=torch.float32))
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class _Network(nn.Module):
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


class MLPScore(ScoreModelBase):
    """Neural epsilon-prediction score model; see the module docstring."""

    def __init__(
        self,
        width: int = 128,
        depth: int = 3,
        *,
        steps: int = 2000,
        batch_size: int = 256,
        lr: float = 2e-3,
        ema_decay: float | None = 0.995,
        time_features: int = 16,
        preconditioning: str = "eps",
        schedule: VPSchedule | None = None,
    ):
        super().__init__()
        self.config = MLPScoreConfig(
            width,
            depth,
            steps,
            batch_size,
            lr,
            ema_decay,
            time_features,
            preconditioning,
            schedule or VPSchedule(),
        )

    def _inputs(self, x_t, c, t) -> torch.Tensor:
        t64 = t.to(torch.float64)
        alpha, sigma = self.schedule.alpha(t64), self.schedule.sigma(t64)
        z_x, z_c = self.scaler(x_t, c, alpha, sigma)
        emb = time_embedding(t, self.config.time_features)
        return torch.cat([z_x.to(torch.float32), z_c.to(torch.float32), emb], dim=1)

    def _eps_hat(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network output (B, dim) -> predicted noise (B, dim), float32."""
        if self.config.preconditioning == "eps":
            return out
        t64 = t.to(torch.float64)
        alpha = self.schedule.alpha(t64)[:, None]
        sigma = self.schedule.sigma(t64)[:, None]
        s2, v, mu = (sigma / alpha) ** 2, self.scaler.var_x, self.scaler.mu_x
        c_skip, c_out = v / (s2 + v), (s2 * v / (s2 + v)).sqrt()
        x_t64 = x_t.to(torch.float64)
        x0_hat = mu + c_skip * (x_t64 / alpha - mu) + c_out * out.to(torch.float64)
        return ((x_t64 - alpha * x0_hat) / sigma).to(torch.float32)

    def _fit(self, c, x, weights, generator, run_name) -> None:
        cfg = self.config
        n, dim = x.shape
        self.scaler = InputScaler.fit(c, x, weights)
        with torch.random.fork_rng(
            devices=[]
        ):  # nn.Linear's own init must not touch the global RNG
            net = _Network(dim + c.shape[1] + cfg.time_features, dim, cfg.width, cfg.depth)
        net.reset_parameters(generator)
        ema = copy.deepcopy(net).requires_grad_(False) if cfg.ema_decay is not None else None
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        w = torch.ones(n) if weights is None else (weights / weights.mean()).to(torch.float32)
        x32, c32 = x.to(torch.float32), c.to(torch.float32)
        t_min = self.schedule.t_min
        for step in range(cfg.steps):
            # cosine learning-rate decay from lr to lr / 10
            for group in opt.param_groups:
                group["lr"] = cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * step / cfg.steps)))
            idx = torch.randint(n, (cfg.batch_size,), generator=generator)
            t = t_min + (1 - t_min) * torch.rand(cfg.batch_size, generator=generator)
            eps = torch.randn(cfg.batch_size, dim, generator=generator)
            sigma = self.schedule.sigma(t)
            x_t = self.schedule.add_noise(x32[idx], t, eps)
            eps_hat = self._eps_hat(net(self._inputs(x_t, c32[idx], t)), x_t, t)
            # eps_hat = -sigma s, so ||sigma s + eps||^2 = ||eps - eps_hat||^2
            loss = (w[idx] * dsm_loss(-eps_hat / sigma[:, None], eps, sigma)).mean()
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"{run_name}: training loss became {float(loss.detach())} at step {step}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                # warm-up: the effective decay min(decay, (1 + step) / (10 + step)) keeps short
                # runs from averaging in the random initialisation
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                        p_ema.lerp_(p, 1 - decay)
        self.net = (ema if ema is not None else net).eval()
        self.final_loss = float(loss.detach())

    def eps(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise, shape (B, dim), float32."""
        self._require_fitted()
        with torch.no_grad():
            return self._eps_hat(self.net(self._inputs(x_t, c, t)), x_t, t)

    def _score(self, x_t, c, t) -> torch.Tensor:
        sigma = self.schedule.sigma(t.to(torch.float64))[:, None]
        return -self.eps(x_t, c, t).to(torch.float64) / sigma

    @property
    def num_params(self) -> int:
        self._require_fitted()
        return sum(p.numel() for p in self.net.parameters())
