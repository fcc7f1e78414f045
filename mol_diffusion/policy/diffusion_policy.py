r"""A diffusion policy: a DDPM over action chunks, conditioned on an observation history.

Timeline at control step t (To observations, Tp predicted actions, Ta executed actions; the
chunk starts at the oldest observation, as in Chi et al., 2023, "Diffusion Policy", Fig. 3):

    step       t-To+1 ........ t ........................ t-To+Tp
    observed   |---- To ------|
    predicted  |------------------------ Tp -------------------|
    executed                  |---- Ta ----|

so the executed actions are chunk[To-1 : To-1+Ta] and Ta <= Tp - To + 1 must hold. After Ta
steps the policy observes again and predicts a new chunk (receding horizon).

Training (Ho et al., 2020, Alg. 1): actions and observations are mapped to [-1, 1] per
coordinate by ``RangeNormalizer`` (saved with the weights); for a chunk a_0 (Tp * A numbers),
k ~ U{0, ..., T-1} and eps ~ N(0, I), the network eps_theta([a_k, obs, emb(k / T)]) is fitted
to eps by the per-sample loss ||eps_theta - eps||^2, weighted by the caller's sample weights
(the objective's lambda_k / n_k). Evaluation uses an exponential moving average of the
weights. Inference runs DDPM (ancestral) or DDIM (deterministic) over ``inference_steps`` of
the T training steps with the predicted chunk clipped to [-1, 1]; every draw comes from the
``torch.Generator`` passed in. Computation is float32.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mol_diffusion._validation import (
    NotFittedError,
    check_generator,
    check_positive_int,
)
from mol_diffusion.nets import (
    MLP,
    StackedMLPs,
    check_training_options,
    pad_stack,
    time_embedding,
)
from mol_diffusion.objectives import eps_loss
from mol_diffusion.schedules import DDIMScheduler, DDPMScheduler

__all__ = ["DiffusionPolicy", "DiffusionPolicyConfig", "RangeNormalizer", "fit_batched"]

INFERENCE = ("ddpm", "ddim")
PREDICTIONS = ("sample", "epsilon")
BETA_SCHEDULES = ("linear", "cosine")  # the DDPM schedules of schedules.DDPMScheduler


@dataclass(frozen=True)
class DiffusionPolicyConfig:
    """Args:
    obs_horizon: To, observations the policy conditions on.
    pred_horizon: Tp, actions per predicted chunk.
    action_horizon: Ta, actions executed per chunk; Ta <= Tp - To + 1.
    width, depth: the noise-prediction MLP (``depth`` hidden layers of ``width`` units).
    steps, batch_size, lr: Adam steps, windows per minibatch, peak learning rate (cosine decay
        to lr / 10).
    ema_decay: EMA decay in [0, 1) for the evaluation weights (with warm-up), or None.
    num_train_timesteps: T, the DDPM noise levels.
    beta_schedule: ``"cosine"`` or ``"linear"`` (see ``schedules``).
    inference: ``"ddim"`` or ``"ddpm"``.
    inference_steps: denoising steps at inference (<= T).
    time_features: size of the sinusoidal embedding of k / T (even).
    prediction: what the network outputs: ``"sample"`` (the clean chunk a_0, fitted by
        ||a0_hat - a_0||^2) or ``"epsilon"`` (the noise, fitted by ||eps_hat - eps||^2).
    """

    obs_horizon: int = 2
    pred_horizon: int = 8
    action_horizon: int = 4
    width: int = 256
    depth: int = 3
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    ema_decay: float | None = 0.995
    num_train_timesteps: int = 100
    beta_schedule: str = "cosine"
    inference: str = "ddim"
    inference_steps: int = 10
    time_features: int = 16
    prediction: str = "sample"

    def __post_init__(self) -> None:
        check_training_options(self)
        for name in (
            "obs_horizon",
            "pred_horizon",
            "action_horizon",
            "num_train_timesteps",
            "inference_steps",
        ):
            check_positive_int(getattr(self, name), name)
        limit = self.pred_horizon - self.obs_horizon + 1
        if self.action_horizon > limit:
            raise ValueError(
                f"action_horizon (Ta={self.action_horizon}) must be <= pred_horizon - obs_horizon"
                f" + 1 = {limit} (Tp={self.pred_horizon}, To={self.obs_horizon})"
            )
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(
                f"beta_schedule must be one of {BETA_SCHEDULES}, got {self.beta_schedule!r}"
            )
        if self.inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {self.inference!r}")
        if self.inference_steps > self.num_train_timesteps:
            raise ValueError(
                f"inference_steps must be <= num_train_timesteps={self.num_train_timesteps}, "
                f"got {self.inference_steps}"
            )


class RangeNormalizer(nn.Module):
    """Maps each coordinate's [min, max] on the fitting data to [-1, 1] (a coordinate that does
    not vary is only centred). Buffers ``low`` and ``high`` travel in the state dict."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("low", torch.zeros(dim))
        self.register_buffer("high", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> RangeNormalizer:
        """x: (N, dim)."""
        self.low.copy_(x.min(dim=0).values)
        self.high.copy_(x.max(dim=0).values)
        return self

    def _center_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        half = (self.high - self.low) / 2
        return (self.high + self.low) / 2, torch.where(half > 1e-6, half, torch.ones_like(half))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        center, scale = self._center_scale()
        return (x - center) / scale

    def unnormalize(self, z: torch.Tensor) -> torch.Tensor:
        center, scale = self._center_scale()
        return z * scale + center


class _Denoiser(nn.Module):
    """eps_theta([a_k (Tp A), obs (To O), emb(k / T)]) with the two normalizers."""

    def __init__(self, cfg: DiffusionPolicyConfig, obs_dim: int, action_dim: int):
        super().__init__()
        chunk = cfg.pred_horizon * action_dim
        self.obs_normalizer = RangeNormalizer(obs_dim)
        self.action_normalizer = RangeNormalizer(action_dim)
        self.mlp = MLP(
            chunk + cfg.obs_horizon * obs_dim + cfg.time_features, chunk, cfg.width, cfg.depth
        )
        self.time_features = cfg.time_features
        self.num_train_timesteps = cfg.num_train_timesteps

    def forward(self, noisy: torch.Tensor, obs: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """noisy: (B, Tp * A) normalized; obs: (B, To * O) normalized; k: (B,) int."""
        emb = time_embedding(k.to(torch.float32) / self.num_train_timesteps, self.time_features)
        return self.mlp(torch.cat([noisy, obs, emb], dim=1))


class DiffusionPolicy:
    """Observation history -> action chunk by reverse diffusion; see the module docstring.

    Args:
        config: a ``DiffusionPolicyConfig`` (or its fields as keyword arguments).
    """

    def __init__(self, config: DiffusionPolicyConfig | None = None, **options):
        if config is not None and options:
            raise ValueError("pass either config or keyword options, not both")
        self.config = config if config is not None else DiffusionPolicyConfig(**options)
        self.net: _Denoiser | None = None
        self.final_loss = float("nan")
        self.fit_seconds = float("nan")

    # ------------------------------------------------------------------ shapes and checks
    def _require_fitted(self) -> _Denoiser:
        if self.net is None:
            raise NotFittedError("this DiffusionPolicy is not fitted yet: call fit() first")
        return self.net

    @property
    def obs_dim(self) -> int:
        return self._require_fitted().obs_normalizer.low.shape[0]

    @property
    def action_dim(self) -> int:
        return self._require_fitted().action_normalizer.low.shape[0]

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self._require_fitted().mlp.parameters())

    def _check_obs(self, obs, name: str = "obs") -> torch.Tensor:
        obs = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        to = self.config.obs_horizon
        if obs.dim() != 3 or obs.shape[1] != to:
            raise ValueError(f"{name} must have shape (B, To={to}, O), got {tuple(obs.shape)}")
        if not torch.isfinite(obs).all():
            raise ValueError(f"{name} must be finite")
        return obs

    def _scheduler(self, kind: str) -> DDPMScheduler:
        cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
        return cls(
            num_train_timesteps=self.config.num_train_timesteps,
            beta_schedule=self.config.beta_schedule,
            clip_sample=True,
        )

    def _check_windows(self, obs, actions, weights, name: str = ""):
        """Validated (obs (N, To, O), actions (N, Tp, A), weights (N,) with mean 1), float32."""
        cfg = self.config
        obs = self._check_obs(obs, f"{name}obs")
        actions = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        if actions.dim() != 3 or actions.shape[:2] != (obs.shape[0], cfg.pred_horizon):
            raise ValueError(
                f"{name}actions must have shape (N={obs.shape[0]}, Tp={cfg.pred_horizon}, A), "
                f"got {tuple(actions.shape)}"
            )
        if not torch.isfinite(actions).all():
            raise ValueError(f"{name}actions must be finite")
        n = obs.shape[0]
        if n == 0:
            raise ValueError(f"{name}obs and {name}actions must hold at least one window, got 0")
        if weights is None:
            return obs, actions, torch.ones(n)
        w = torch.as_tensor(np.asarray(weights), dtype=torch.float32)
        if w.shape != (n,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"{name}weights must be {n} finite numbers >= 0 with a positive sum, "
                f"got shape {tuple(w.shape)}"
            )
        return obs, actions, w / w.mean()

    def _init(self, obs, actions, generator):
        """A fresh denoiser initialised from ``generator`` (its first draws), its normalizers
        fitted to the windows, and the normalized windows (N, To O) and (N, Tp A)."""
        n = obs.shape[0]
        with torch.random.fork_rng(devices=[]):  # nn.Linear's own init must not touch it
            net = _Denoiser(self.config, obs.shape[2], actions.shape[2])
        net.mlp.reset_parameters(generator)
        net.obs_normalizer.fit(obs.reshape(-1, obs.shape[2]))
        net.action_normalizer.fit(actions.reshape(-1, actions.shape[2]))
        z_obs = net.obs_normalizer.normalize(obs).reshape(n, -1)
        z_act = net.action_normalizer.normalize(actions).reshape(n, -1)
        return net, z_obs, z_act

    # ------------------------------------------------------------------ training
    def fit(
        self,
        obs,
        actions,
        weights=None,
        *,
        generator: torch.Generator,
        run_name: str = "diffusion policy",
    ) -> DiffusionPolicy:
        """Fit on N windows.

        Args:
            obs: observation histories, (N, To, O).
            actions: action chunks, (N, Tp, A).
            weights: per-window weights (N,) >= 0 with a positive sum, or None for equal weights
                (the objective's lambda_k / n_k when several environments are pooled).
            generator: seeds the initialisation, minibatches, noise levels and noise.
            run_name: names the fit in a ``DivergenceError``.
        """
        checked = self._check_windows(obs, actions, weights)
        _fit_stacked([self], [checked], [check_generator(generator)], [run_name])
        return self

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_chunk(
        self, obs, *, generator: torch.Generator, inference: str | None = None, steps=None
    ) -> torch.Tensor:
        """Sample one action chunk per observation history.

        Args:
            obs: (B, To, O) observation histories.
            generator: seeds the initial noise (and DDPM's per-step noise).
            inference: ``"ddim"`` or ``"ddpm"`` (default: the config's).
            steps: denoising steps (default: ``config.inference_steps``).
        Returns:
            (B, Tp, A) float32 actions in the environment's units.
        """
        net = self._require_fitted()
        obs = self._check_obs(obs)
        if obs.shape[2] != self.obs_dim:
            raise ValueError(f"obs must have O={self.obs_dim} features, got {obs.shape[2]}")
        kind = self.config.inference if inference is None else inference
        if kind not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {kind!r}")
        scheduler = self._scheduler(kind)
        scheduler.set_timesteps(
            self.config.inference_steps if steps is None else check_positive_int(steps, "steps")
        )
        generator = check_generator(generator)
        b, tp, a = obs.shape[0], self.config.pred_horizon, self.action_dim
        z_obs = net.obs_normalizer.normalize(obs).reshape(b, -1)
        x = torch.randn(b, tp * a, generator=generator)
        abar = scheduler.alphas_cumprod.to(torch.float32)
        for k in scheduler.timesteps.tolist():
            out = net(x, z_obs, torch.full((b,), k, dtype=torch.long))
            if self.config.prediction == "sample":  # the noise consistent with a0_hat
                out = (x - abar[k].sqrt() * out) / (1 - abar[k]).sqrt()
            x = scheduler.step(out, k, x, generator).prev_sample
        return net.action_normalizer.unnormalize(x.reshape(b, tp, a))

    def act(self, obs, *, generator: torch.Generator) -> torch.Tensor:
        """The Ta actions to execute now: ``predict_chunk(obs)[:, To-1 : To-1+Ta]``, (B, Ta, A)."""
        start = self.config.obs_horizon - 1
        return self.predict_chunk(obs, generator=generator)[
            :, start : start + self.config.action_horizon
        ]

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        """Config, dimensions and weights (normalizers included)."""
        net = self._require_fitted()
        return {
            "config": asdict(self.config),
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "weights": net.state_dict(),
        }

    def save(self, path) -> None:
        torch.save(self.state_dict(), Path(path))

    @classmethod
    def from_state_dict(cls, state: dict) -> DiffusionPolicy:
        keys = {"config", "obs_dim", "action_dim", "weights"}
        if not isinstance(state, dict) or not keys <= set(state):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"state must be a DiffusionPolicy.state_dict() with keys {sorted(keys)}, got {got}"
            )
        policy = cls(DiffusionPolicyConfig(**state["config"]))
        net = _Denoiser(policy.config, state["obs_dim"], state["action_dim"])
        net.load_state_dict(state["weights"])
        policy.net = net.requires_grad_(False).eval()
        return policy

    @classmethod
    def load(cls, path) -> DiffusionPolicy:
        """A policy saved with ``save``; a file that is not one raises ``ValueError`` naming it."""
        path = Path(path)
        try:
            state = torch.load(path, weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as err:  # torch raises many types for a damaged or foreign file
            raise ValueError(
                f"{path}: not a saved DiffusionPolicy (torch.load failed: "
                f"{type(err).__name__}); save policies with DiffusionPolicy.save"
            ) from err
        try:
            return cls.from_state_dict(state)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err


def fit_batched(
    policies: Sequence[DiffusionPolicy],
    data: Sequence[tuple],
    generators: Sequence[torch.Generator],
    *,
    run_names: Sequence[str] | None = None,
) -> list[DiffusionPolicy]:
    """Fit several diffusion policies at once as one stacked network (batched matrix products).

    Policy b is trained on its own windows with its own generator, drawing its initialisation,
    minibatches, noise levels and noise in the same order as ``policies[b].fit``. Adam and the
    EMA act elementwise, the policies share no parameter, and ``DiffusionPolicy.fit`` runs this
    stacked fit with one policy, so the result is bit-for-bit the one-at-a-time fit (tested in
    ``tests/test_batched.py``). Used for the K specialists of a cell.

    Args:
        policies: unfitted ``DiffusionPolicy`` instances with identical configs.
        data: per policy, (obs (N_b, To, O), actions (N_b, Tp, A), weights (N_b,) or None);
            O and A shared by all.
        generators: one ``torch.Generator`` per policy.
        run_names: names for error messages (default ``batch[b]``).
    Returns:
        the fitted policies (the same objects). Each one's ``fit_seconds`` is the batch's wall
        time divided by the number of policies.
    """
    policies = list(policies)
    if not policies or not all(isinstance(p, DiffusionPolicy) for p in policies):
        raise ValueError("policies must be a non-empty sequence of DiffusionPolicy")
    count = len(policies)
    if len(data) != count or len(generators) != count:
        raise ValueError(
            f"data and generators must hold one entry per policy ({count}), got "
            f"{len(data)} and {len(generators)}"
        )
    cfg = policies[0].config
    if any(p.config != cfg for p in policies):
        raise ValueError("policies must share one config to be fitted as a batch")
    names = list(run_names) if run_names is not None else [f"batch[{b}]" for b in range(count)]
    checked = []
    for b, item in enumerate(data):
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise ValueError(f"data[{b}] must be an (obs, actions, weights) triple")
        checked.append(policies[b]._check_windows(*item, name=f"data[{b}]: "))
        check_generator(generators[b], f"generators[{b}]")
    dims = {(o.shape[2], a.shape[2]) for o, a, _ in checked}
    if len(dims) != 1:
        raise ValueError(f"every policy's windows must share (O, A), got {sorted(dims)}")
    _fit_stacked(policies, checked, generators, names)
    return policies


def _fit_stacked(policies, checked, generators, names) -> None:
    """Train ``policies`` (one config) on validated (obs, actions, weights) windows as one
    stacked network; ``DiffusionPolicy.fit`` is the case of one policy, so single and batched
    fits run the same operations per policy."""
    cfg, count = policies[0].config, len(policies)
    started = time.perf_counter()
    prepared = [
        p._init(o, a, g) for p, (o, a, _), g in zip(policies, checked, generators, strict=True)
    ]
    nets = [net for net, _, _ in prepared]
    stacked = StackedMLPs([net.mlp for net in nets])
    scheduler = policies[0]._scheduler("ddpm")
    bs, steps_t, features = cfg.batch_size, cfg.num_train_timesteps, cfg.time_features

    # every policy's windows and weights padded to (B, N_max, .) and flattened, so one gather
    # per step draws all B minibatches (exact: the rows each policy would draw alone)
    sizes = [z_act.shape[0] for _, _, z_act in prepared]
    offsets = torch.arange(count)[:, None] * max(sizes)
    clean_all = pad_stack([z_act for _, _, z_act in prepared]).flatten(0, 1)
    obs_all = pad_stack([z_obs for _, z_obs, _ in prepared]).flatten(0, 1)
    scale_all = pad_stack([w for _, _, w in checked]).flatten(0, 1)
    chunk = clean_all.shape[1]
    idx = torch.empty(count, bs, dtype=torch.int64)
    k = torch.empty(count, bs, dtype=torch.int64)
    eps = torch.empty(count, bs, chunk)

    def losses(step, forward) -> torch.Tensor:
        for b, g in enumerate(generators):  # each policy's own draws, in fit's order
            torch.randint(sizes[b], (bs,), generator=g, out=idx[b])
            torch.randint(steps_t, (bs,), generator=g, out=k[b])
            torch.randn(bs, chunk, generator=g, out=eps[b])
        flat = (idx + offsets).reshape(-1)
        clean = clean_all.index_select(0, flat)  # (B bs, Tp A)
        obs = obs_all.index_select(0, flat).reshape(count, bs, -1)  # (B, bs, To O)
        k_flat = k.reshape(-1)
        noisy = scheduler.add_noise(clean, eps.reshape(-1, chunk), k_flat)
        emb = time_embedding(k_flat.to(torch.float32) / steps_t, features)
        z = torch.cat([noisy.reshape(count, bs, chunk), obs, emb.reshape(count, bs, -1)], dim=2)
        target = clean if cfg.prediction == "sample" else eps.reshape(-1, chunk)
        per_sample = eps_loss(forward(z).flatten(0, 1), target).reshape(count, bs)
        return (scale_all.index_select(0, flat).reshape(count, bs) * per_sample).mean(dim=1)

    final = stacked.train(
        losses, steps=cfg.steps, lr=cfg.lr, ema_decay=cfg.ema_decay, run_names=names
    )
    seconds = (time.perf_counter() - started) / count
    for b, (policy, net) in enumerate(zip(policies, nets, strict=True)):
        policy.net = net.requires_grad_(False).eval()
        policy.final_loss = float(final[b])
        policy.fit_seconds = seconds
