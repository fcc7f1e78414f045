r"""A convolutional conditional score network for images: the degraded image is an input channel.

    F = Net([z_x, z_c], emb(t)),   x0_hat = mu_x + c_skip (x_t / alpha - mu_x) + c_out F,
    eps_hat = (x_t - alpha x0_hat) / sigma,   s = -eps_hat / sigma,

with (z_x, z_c) the per-pixel scaled inputs of ``InputScaler`` reshaped to two (H, W) channels,
emb(t) the sinusoidal time embedding and (c_skip, c_out) the preconditioning of Karras et al.
(2022), Table 1, as in ``scores.mlp``. ``backbone`` picks the network:

- ``unet``: a small U-Net written here: a 3 x 3 stem, ``blocks`` residual blocks at full
  resolution, 2 x 2 average pooling, ``blocks`` blocks at twice the channels, nearest-neighbour
  upsampling, the full-resolution skip concatenated, ``blocks`` blocks and a zero-initialized
  3 x 3 output. Each residual block is GroupNorm - SiLU - conv - (+ a per-channel shift from
  emb(t)) - GroupNorm - SiLU - conv, plus its input (Ho et al., 2020, Appendix B, in miniature).
- ``diffusers``: diffusers' ``UNet2DModel`` (two down and two up ``DownBlock2D`` /
  ``UpBlock2D`` of ``channels`` and 2 ``channels``, one layer per block), built from its config,
  nothing downloaded; its timestep input is 1000 t.

Training minimises the per-sample DSM loss, times ``loss_weighting``: ``dsm`` (weight 1, the
score-matching loss) or ``edm`` (weight (s^2 + v) / v with s = sigma / alpha and v the mean
per-pixel data variance, which makes the loss on F equally weighted at every noise level where
a pixel's variance is v, Karras et al., 2022, Sec. 5; the clean-image prediction at the largest
noise level, where x_t carries almost no information (alpha(1)^2 = 4e-5 at the default
schedule), is then a least-squares fit of E[x | c]: ``posterior_mean_one_pass``; under ``dsm``
that level has weight about v / s^2 and its prediction is fitted far less well).
Adam with the cosine schedule of ``nets.cosine_lr`` and an EMA of the weights; every draw comes
from the generator passed to ``fit``. float32 computation.

p_gen = the network's parameter count (``num_params``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from mol_diffusion._image_checks import check_image_shape
from mol_diffusion._validation import DivergenceError, check_matrix
from mol_diffusion.nets import (
    EXPLOSION,
    check_training_options,
    cosine_lr,
    ema_warmup,
    time_embedding,
)
from mol_diffusion.objectives import dsm_loss
from mol_diffusion.schedules import VPSchedule, check_schedule
from mol_diffusion.scores.base import InputScaler, ScoreModelBase

__all__ = ["ConvScore", "ConvScoreConfig"]

BACKBONES = ("unet", "diffusers")
WEIGHTINGS = ("dsm", "edm")


@dataclass(frozen=True)
class ConvScoreConfig:
    """Args:
    image_shape: (H, W), both even (one 2 x 2 pooling); dim = cond_dim = H W.
    width: channels at full resolution (twice that after pooling); a multiple of 8
        (GroupNorm with 8 groups).
    depth: residual blocks per resolution stage (``unet``); ``diffusers`` uses one.
    steps, batch_size, lr, ema_decay, time_features: as in ``MLPScoreConfig``.
    backbone: ``unet`` or ``diffusers`` (module docstring).
    loss_weighting: ``dsm`` or ``edm`` (module docstring).
    schedule: the forward process.
    """

    image_shape: tuple[int, int]
    width: int = 32
    depth: int = 1
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    ema_decay: float | None = 0.995
    time_features: int = 32
    backbone: str = "unet"
    loss_weighting: str = "edm"
    schedule: VPSchedule = field(default_factory=VPSchedule)

    def __post_init__(self) -> None:
        shape = check_image_shape(self.image_shape, minimum=2, even=True)
        object.__setattr__(self, "image_shape", shape)
        check_training_options(self)
        if self.width % 8:
            raise ValueError(f"width must be a multiple of 8 (GroupNorm), got {self.width}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.loss_weighting not in WEIGHTINGS:
            raise ValueError(
                f"loss_weighting must be one of {WEIGHTINGS}, got {self.loss_weighting!r}"
            )
        check_schedule(self.schedule)


def _clean_prediction(out, x_t, alpha, sigma, mu, var) -> torch.Tensor:
    """x0_hat = mu + c_skip (x_t / alpha - mu) + c_out F, float64 (module docstring); alpha,
    sigma (B, 1) float64, mu and var the per-pixel data statistics (``InputScaler``)."""
    s2 = (sigma / alpha) ** 2
    c_skip, c_out = var / (s2 + var), (s2 * var / (s2 + var)).sqrt()
    return mu + c_skip * (x_t.to(torch.float64) / alpha - mu) + c_out * out.to(torch.float64)


class _Block(nn.Module):
    def __init__(self, channels: int, emb: int):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(8, channels), nn.GroupNorm(8, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shift = nn.Linear(emb, channels)

    def forward(self, h, emb):
        out = self.conv1(nn.functional.silu(self.norm1(h))) + self.shift(emb)[:, :, None, None]
        return h + self.conv2(nn.functional.silu(self.norm2(out)))


class _UNet(nn.Module):
    """The ``unet`` backbone: (B, 2, H, W), (B, time_features) -> (B, 1, H, W)."""

    def __init__(self, width: int, depth: int, time_features: int):
        super().__init__()
        emb = 4 * width
        self.embed = nn.Sequential(
            nn.Linear(time_features, emb), nn.SiLU(), nn.Linear(emb, emb), nn.SiLU()
        )
        self.stem = nn.Conv2d(2, width, 3, padding=1)
        self.down = nn.ModuleList(_Block(width, emb) for _ in range(depth))
        self.widen = nn.Conv2d(width, 2 * width, 1)
        self.mid = nn.ModuleList(_Block(2 * width, emb) for _ in range(depth))
        self.merge = nn.Conv2d(3 * width, width, 1)
        self.up = nn.ModuleList(_Block(width, emb) for _ in range(depth))
        self.norm = nn.GroupNorm(8, width)
        self.head = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, z, emb_t):
        emb = self.embed(emb_t)
        h = self.stem(z)
        for block in self.down:
            h = block(h, emb)
        low = self.widen(nn.functional.avg_pool2d(h, 2))
        for block in self.mid:
            low = block(low, emb)
        up = nn.functional.interpolate(low, scale_factor=2, mode="nearest")
        h2 = self.merge(torch.cat([h, up], 1))
        for block in self.up:
            h2 = block(h2, emb)
        return self.head(nn.functional.silu(self.norm(h2)))


class _Diffusers(nn.Module):
    """The ``diffusers`` backbone, same signature as ``_UNet`` (t is recovered from the
    caller's raw times, passed as ``emb_t``)."""

    def __init__(self, width: int, image_shape: tuple[int, int]):
        super().__init__()
        from diffusers import UNet2DModel

        self.net = UNet2DModel(
            sample_size=image_shape,
            in_channels=2,
            out_channels=1,
            block_out_channels=(width, 2 * width),
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            layers_per_block=1,
            norm_num_groups=8,
        )

    def forward(self, z, t):
        return self.net(z, 1000 * t).sample


class ConvScore(ScoreModelBase):
    """Convolutional conditional score network for images; see the module docstring."""

    def __init__(self, image_shape: tuple[int, int], **options):
        super().__init__()
        self.config = ConvScoreConfig(image_shape, **options)

    def _build(self) -> nn.Module:
        cfg = self.config
        if cfg.backbone == "diffusers":
            return _Diffusers(cfg.width, cfg.image_shape)
        return _UNet(cfg.width, cfg.depth, cfg.time_features)

    def _output(self, net, x_t, c, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network output F (B, dim) and alpha, sigma (B, 1) float64, at float32 x_t, c, t."""
        h, w = self.config.image_shape
        alpha, sigma = self.schedule.alpha_sigma(t.to(torch.float64))
        z_x, z_c = self.scaler(x_t, c, alpha, sigma)
        z = torch.stack([z_x, z_c], 1).to(torch.float32).reshape(-1, 2, h, w)
        if self.config.backbone == "diffusers":
            emb = t.to(torch.float32)
        else:
            emb = time_embedding(t, self.config.time_features)
        return net(z, emb).reshape(len(t), -1), alpha[:, None], sigma[:, None]

    def _forward(self, net, x_t, c, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(eps_hat (B, dim) float32, alpha, sigma (B, 1) float64) at float32 x_t, c, t."""
        out, a, s = self._output(net, x_t, c, t)
        x0_hat = _clean_prediction(out, x_t, a, s, self.scaler.mu_x, self.scaler.var_x)
        return ((x_t.to(torch.float64) - a * x0_hat) / s).to(torch.float32), a, s

    def _fit(self, c, x, weights, generator, run_name) -> None:
        cfg = self.config
        h, w = cfg.image_shape
        if c.shape[1] != h * w or x.shape[1] != h * w:
            raise ValueError(
                f"{run_name}: ConvScore for images {cfg.image_shape} needs c and x with "
                f"{h * w} columns, got {c.shape[1]} and {x.shape[1]}"
            )
        self.scaler = InputScaler.fit(c, x, weights)
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # initialisation from the fit's generator
            net = self._build()
        ema = copy.deepcopy(net).requires_grad_(False) if cfg.ema_decay is not None else net
        c32, x32 = c.to(torch.float32), x.to(torch.float32)
        scale = (
            torch.ones(len(x)) if weights is None else (weights / weights.mean()).to(torch.float32)
        )
        v = float(self.scaler.var_x.mean())
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        bs, t_min, n = cfg.batch_size, cfg.schedule.t_min, len(x)
        first = None
        for step in range(cfg.steps):
            idx = torch.randint(n, (bs,), generator=generator)
            t = t_min + (1 - t_min) * torch.rand(bs, generator=generator)
            eps = torch.randn(bs, h * w, generator=generator)
            alpha, sigma = cfg.schedule.alpha_sigma(t)
            x_t = alpha[:, None] * x32[idx] + sigma[:, None] * eps
            eps_hat, a64, s64 = self._forward(net, x_t, c32[idx], t)
            per_sample = dsm_loss(-eps_hat / sigma[:, None], eps, sigma)
            if cfg.loss_weighting == "edm":
                s2 = ((s64 / a64) ** 2)[:, 0].to(torch.float32)
                per_sample = per_sample * (s2 + v) / v
            loss = (scale[idx] * per_sample).mean()
            value = float(loss.detach())
            first = value if first is None else first
            if not torch.isfinite(loss) or value > EXPLOSION * max(first, 1.0):
                raise DivergenceError(
                    f"{run_name}: training loss became {value} at step {step} (first step: "
                    f"{first:.3g}); lower lr (got {cfg.lr:g})"
                )
            for group in opt.param_groups:
                group["lr"] = cosine_lr(cfg.lr, step, cfg.steps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if cfg.ema_decay is not None:
                with torch.no_grad():
                    decay = ema_warmup(cfg.ema_decay, step)
                    for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                        pe.lerp_(p, 1 - decay)
        self.net = ema.requires_grad_(False).eval()
        self.final_loss = value

    def eps(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise, shape (B, dim), float32."""
        self._require_fitted()
        with torch.no_grad():
            return self._forward(self.net, x_t.to(torch.float32), c.to(torch.float32), t)[0]

    def _score(self, x_t, c, t) -> torch.Tensor:
        sigma = self.schedule.sigma(t.to(torch.float64))[:, None]
        return -self.eps(x_t, c, t).to(torch.float64) / sigma

    def posterior_mean_one_pass(self, c: torch.Tensor, *, block: int = 512) -> torch.Tensor:
        """The clean-image prediction x0_hat at t = 1 from x_t = 0, (B, cond_dim) -> (B, dim)
        float64: at the largest noise level x_t carries (almost) no information about x_0, so
        x0_hat estimates E[x | c] in one network pass (module docstring)."""
        dim, cond_dim = self._require_fitted()
        c = check_matrix(c, "c", cols=cond_dim)
        outs = []
        for start in range(0, len(c), block):
            cb = c[start : start + block].to(torch.float32)
            t, x_t = torch.ones(len(cb)), torch.zeros(len(cb), dim)
            with torch.no_grad():
                out, a, s = self._output(self.net, x_t, cb, t)
            outs.append(_clean_prediction(out, x_t, a, s, self.scaler.mu_x, self.scaler.var_x))
        return torch.cat(outs)

    @property
    def num_params(self) -> int:
        self._require_fitted()
        return sum(p.numel() for p in self.net.parameters())
