"""Noise schedules: the continuous-time VP process and discrete DDPM/DDIM schedulers.

Continuous time (Song et al., 2021, "Score-Based Generative Modeling through SDEs", eq. 11,
the VP SDE) with a linear rate beta(t) = beta_min + t (beta_max - beta_min), t in [0, 1]:

    dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW,
    x_t | x_0 ~ N(alpha(t) x_0, sigma(t)^2 I),
    alpha(t) = exp(-1/2 int_0^t beta(s) ds),   sigma(t)^2 = 1 - alpha(t)^2.

Discrete time (Ho et al., 2020, "Denoising Diffusion Probabilistic Models"; Song et al., 2021,
"Denoising Diffusion Implicit Models"): a scheduler holds ``betas`` and ``alphas_cumprod``;
training uses ``add_noise(x0, noise, timesteps)``; sampling calls ``set_timesteps(n)``, iterates
``timesteps`` and calls ``step(model_output, t, sample, generator)``. The network never sees
the schedule: it predicts epsilon and the scheduler turns that into the previous sample.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import torch

from mol_diffusion._validation import check_finite, check_generator, check_positive_int

__all__ = [
    "DDIMScheduler",
    "DDPMScheduler",
    "SchedulerOutput",
    "VPSchedule",
    "check_schedule",
    "cosine_betas",
    "linear_betas",
]


@dataclass(frozen=True)
class VPSchedule:
    """Variance-preserving schedule with linear beta(t) on t in [0, 1].

    Args:
        beta_min: rate at t = 0; must be > 0.
        beta_max: rate at t = 1; must be >= beta_min.
        t_min: smallest time used anywhere (training draws, samplers, risk): the score of
            p_t blows up as t -> 0, so time is truncated to [t_min, 1]. Must lie in (0, 1).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("beta_min", "beta_max", "t_min"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if not (math.isfinite(self.beta_min) and self.beta_min > 0):
            raise ValueError(f"beta_min must be a finite number > 0, got {self.beta_min}")
        if not (math.isfinite(self.beta_max) and self.beta_max >= self.beta_min):
            raise ValueError(
                f"beta_max must be finite and >= beta_min={self.beta_min}, got {self.beta_max}"
            )
        if not 0 < self.t_min < 1:
            raise ValueError(f"t_min must lie in (0, 1), got {self.t_min}")

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """beta(t) = beta_min + t (beta_max - beta_min)."""
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """log alpha(t) = -1/2 (beta_min t + 1/2 (beta_max - beta_min) t^2)."""
        return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Signal scale alpha(t); shape of ``t``."""
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise scale sigma(t) = sqrt(1 - alpha(t)^2), computed stably for small t."""
        return torch.sqrt(-torch.expm1(2.0 * self.log_alpha(t)))

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha(t), sigma(t)) from one log alpha(t): the values ``alpha`` and ``sigma`` give,
        for the inner loops that need both."""
        log_alpha = self.log_alpha(t)
        return torch.exp(log_alpha), torch.sqrt(-torch.expm1(2.0 * log_alpha))

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = alpha(t) x0 + sigma(t) noise.

        Args:
            x0: clean samples, shape (B, d).
            t: times in [0, 1], shape (B,).
            noise: standard normal draws, shape (B, d).
        """
        if x0.shape != noise.shape:
            raise ValueError(
                f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}"
            )
        if t.shape != x0.shape[:1]:
            raise ValueError(f"t must have shape ({x0.shape[0]},), got {tuple(t.shape)}")
        return self.alpha(t)[:, None] * x0 + self.sigma(t)[:, None] * noise


def linear_betas(num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02):
    """Linear betas of Ho et al. (2020), Sec. 4: beta_1 = 1e-4 ... beta_T = 0.02 for T = 1000.

    For other T both ends are scaled by 1000 / T, the end clipped at 0.999 (the scaling used by
    Nichol & Dhariwal, 2021), so abar_T stays ~4e-5 and x_T ~ N(0, I) holds for T near 1000.
    """
    t = check_positive_int(num_train_timesteps, "num_train_timesteps")
    scale = 1000.0 / t
    start, end = scale * beta_start, min(scale * beta_end, 0.999)  # clipped as in cosine_betas
    if not 0 < start <= end < 1:
        raise ValueError(
            f"need 0 < beta_start <= beta_end < 1 after scaling by 1000/T, "
            f"got beta_start={start}, beta_end={end}"
        )
    return torch.linspace(start, end, t, dtype=torch.float64)


def cosine_betas(num_train_timesteps: int, s: float = 0.008, max_beta: float = 0.999):
    """Cosine schedule of Nichol & Dhariwal (2021), eq. 17:
    alphas_cumprod(t) = f(t) / f(0), f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2),
    betas clipped at ``max_beta`` to avoid a singularity at t = T.
    """
    check_positive_int(num_train_timesteps, "num_train_timesteps")
    steps = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = 1 - f[1:] / f[:-1]
    return betas.clamp(max=max_beta)


@dataclass(frozen=True)
class SchedulerOutput:
    """Result of one reverse step.

    Attributes:
        prev_sample: x_{t-1} (DDPM) or x_{t_prev} (DDIM), shape of the input sample.
        pred_original_sample: the model's estimate of x_0, same shape.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


@dataclass(eq=False)
class DDPMScheduler:
    """Discrete DDPM scheduler with an epsilon-predicting model.

    Args:
        num_train_timesteps: T, the number of training noise levels.
        beta_schedule: ``"linear"`` (Ho et al., 2020) or ``"cosine"`` (Nichol & Dhariwal, 2021).
        clip_sample: clip the predicted x_0 to [-clip_range, clip_range] (policies act in [-1, 1]).
        clip_range: bound used when ``clip_sample`` is true.
    """

    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    clip_sample: bool = False
    clip_range: float = 1.0
    betas: torch.Tensor = field(init=False, repr=False)
    alphas_cumprod: torch.Tensor = field(init=False, repr=False)
    timesteps: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_positive_int(self.num_train_timesteps, "num_train_timesteps")
        makers = {"linear": linear_betas, "cosine": cosine_betas}
        if self.beta_schedule not in makers:
            raise ValueError(
                f"beta_schedule must be one of {sorted(makers)}, got {self.beta_schedule!r}"
            )
        if not self.clip_range > 0:
            raise ValueError(f"clip_range must be > 0, got {self.clip_range}")
        self.betas = makers[self.beta_schedule](self.num_train_timesteps)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        self.timesteps = torch.arange(self.num_train_timesteps - 1, -1, -1)

    def add_noise(
        self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (Ho et al., 2020, eq. 4).

        Args:
            x0: clean samples, shape (B, ...).
            noise: standard normal draws, shape of ``x0``.
            timesteps: integer timesteps in [0, T), shape (B,).
        """
        if x0.shape != noise.shape:
            raise ValueError(
                f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}"
            )
        self._check_timesteps(timesteps)
        abar = self.alphas_cumprod.to(x0.dtype)[timesteps]
        abar = abar.reshape(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Use ``num_inference_steps`` evenly spaced timesteps starting at T-1 ("trailing"
        spacing: the first step always starts from the fully noised level)."""
        check_positive_int(num_inference_steps, "num_inference_steps")
        if num_inference_steps > self.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps must be <= num_train_timesteps={self.num_train_timesteps}, "
                f"got {num_inference_steps}"
            )
        ratio = self.num_train_timesteps / num_inference_steps
        steps = self.num_train_timesteps - (
            torch.arange(num_inference_steps, dtype=torch.float64) * ratio
        )
        self.timesteps = steps.round().long() - 1

    def previous_timestep(self, t: int) -> int:
        """The timestep after ``t`` in the current inference grid, or -1 after the last one."""
        idx = (self.timesteps == t).nonzero()
        if idx.numel() == 0:
            raise ValueError(f"timestep {t} is not in the scheduler's timesteps")
        i = int(idx[0, 0])
        return int(self.timesteps[i + 1]) if i + 1 < len(self.timesteps) else -1

    def _abar(self, t: int, dtype: torch.dtype) -> torch.Tensor:
        one = torch.ones((), dtype=torch.float64)
        return (self.alphas_cumprod[t] if t >= 0 else one).to(dtype)

    def _step_inputs(self, model_output: torch.Tensor, t: int, sample: torch.Tensor):
        """Check a step's inputs; return (t_prev, abar_t, abar_prev)."""
        if model_output.shape != sample.shape:
            raise ValueError(
                f"model_output must have the shape of sample {tuple(sample.shape)}, "
                f"got {tuple(model_output.shape)}"
            )
        check_finite(model_output, "model_output")
        t_prev = self.previous_timestep(t)
        return t_prev, self._abar(t, sample.dtype), self._abar(t_prev, sample.dtype)

    def _pred_x0(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        abar_t = self._abar(t, sample.dtype)
        # x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)   (Ho et al., 2020, eq. 15)
        x0 = (sample - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
        return x0.clamp(-self.clip_range, self.clip_range) if self.clip_sample else x0

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        """One ancestral step x_t -> x_{t_prev} of the posterior q(x_{t_prev} | x_t, x_0).

        Args:
            model_output: predicted noise eps, shape of ``sample``.
            t: current integer timestep (an element of ``timesteps``).
            sample: x_t, shape (B, ...).
            generator: seeds the added noise.
        """
        t_prev, abar_t, abar_prev = self._step_inputs(model_output, t, sample)
        beta_t = 1 - abar_t / abar_prev  # effective beta over the (possibly strided) step
        # 1. predict x_0 from the noise estimate
        x0 = self._pred_x0(model_output, t, sample)
        # 2. posterior mean coefficients (Ho et al., 2020, eq. 7)
        coef_x0 = abar_prev.sqrt() * beta_t / (1 - abar_t)
        coef_xt = (1 - beta_t).sqrt() * (1 - abar_prev) / (1 - abar_t)
        mean = coef_x0 * x0 + coef_xt * sample
        if t_prev < 0:
            return SchedulerOutput(prev_sample=mean, pred_original_sample=x0)
        # 3. posterior variance beta_tilde = (1 - abar_prev) / (1 - abar_t) beta_t
        var = (1 - abar_prev) / (1 - abar_t) * beta_t
        noise = torch.randn(sample.shape, generator=check_generator(generator), dtype=sample.dtype)
        return SchedulerOutput(prev_sample=mean + var.sqrt() * noise, pred_original_sample=x0)

    def _check_timesteps(self, timesteps: torch.Tensor) -> None:
        if timesteps.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"timesteps must be an integer tensor, got dtype {timesteps.dtype}")
        if timesteps.numel() and (
            timesteps.min() < 0 or timesteps.max() >= self.num_train_timesteps
        ):
            raise ValueError(
                f"timesteps must lie in [0, {self.num_train_timesteps}), got {timesteps}"
            )


@dataclass(eq=False)
class DDIMScheduler(DDPMScheduler):
    """Deterministic-by-default DDIM scheduler (Song et al., 2021, eq. 12).

    Args:
        eta: 0 gives the deterministic DDIM update; 1 recovers DDPM's posterior variance.
    """

    eta: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.eta) and self.eta >= 0):
            raise ValueError(f"eta must be a finite number >= 0, got {self.eta}")

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        """x_{t_prev} = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - s^2) eps_hat + s z."""
        t_prev, abar_t, abar_prev = self._step_inputs(model_output, t, sample)
        # 1. predicted x_0 and the noise consistent with it (after any clipping)
        x0 = self._pred_x0(model_output, t, sample)
        eps = (sample - abar_t.sqrt() * x0) / (1 - abar_t).sqrt()
        # 2. sigma_t(eta) of eq. 16
        s = (
            self.eta
            * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).clamp(min=0).sqrt()
        )
        # 3. direction pointing to x_t, then the optional fresh noise
        prev = abar_prev.sqrt() * x0 + (1 - abar_prev - s**2).clamp(min=0).sqrt() * eps
        if self.eta > 0 and t_prev >= 0:
            z = torch.randn(sample.shape, generator=check_generator(generator), dtype=sample.dtype)
            prev = prev + s * z
        return SchedulerOutput(prev_sample=prev, pred_original_sample=x0)


def check_schedule(schedule: object, name: str = "schedule") -> VPSchedule:
    """Return ``schedule`` if it is a ``VPSchedule``; raise ``ValueError`` otherwise."""
    if not isinstance(schedule, VPSchedule):
        raise ValueError(
            f"{name} must be a VPSchedule (e.g. VPSchedule(beta_min=0.1, beta_max=20.0)), "
            f"got {type(schedule).__name__}"
        )
    return schedule
