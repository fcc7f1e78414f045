r"""Behaviour-cloning baselines beside the diffusion policy: what a reader compares it with.

Both fit the same (observation history, action chunk) windows as ``DiffusionPolicy`` (To
observations, Tp actions starting at the oldest, Ta executed; ``policy.data``) and act through
the same protocol (``config.obs_horizon``, ``config.action_horizon``, ``act(obs, generator=)``
-> (B, Ta, A)), so ``rollout.PolicyAgent`` runs them unchanged.

- ``NearestNeighbourPolicy``: the action chunk of the closest training window, in Euclidean
  distance between range-normalized observation histories (1-nearest-neighbour behaviour
  cloning; ties go to the first window). It has no parameters to fit and no randomness.
- ``BCPolicy``: a deterministic MLP from the normalized observation history to the normalized
  chunk, fitted by the per-window loss ||a_hat - a||^2 (weighted by the caller's window
  weights, as the diffusion policy's) with the same trainer: Adam, cosine decay to lr / 10,
  EMA of the weights (``nets.StackedMLPs``).

A deterministic policy regresses to the mean of the demonstrated actions: where the expert is
multimodal (point navigation passes the obstacle on either side) the mean can steer into the
obstacle. That is the failure mode the diffusion policy is meant to avoid, and the baselines
show whether it matters in a given environment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from mol_diffusion._validation import (
    NotFittedError,
    check_generator,
    check_positive_float,
    check_positive_int,
)
from mol_diffusion.nets import MLP, StackedMLPs
from mol_diffusion.objectives import eps_loss
from mol_diffusion.policy.diffusion_policy import RangeNormalizer

__all__ = ["BCConfig", "BCPolicy", "NearestNeighbourConfig", "NearestNeighbourPolicy"]


def _check_horizons(obs_horizon: int, pred_horizon: int, action_horizon: int) -> None:
    for name, value in (
        ("obs_horizon", obs_horizon),
        ("pred_horizon", pred_horizon),
        ("action_horizon", action_horizon),
    ):
        check_positive_int(value, name)
    limit = pred_horizon - obs_horizon + 1
    if action_horizon > limit:
        raise ValueError(
            f"action_horizon (Ta={action_horizon}) must be <= pred_horizon - obs_horizon + 1 = "
            f"{limit} (Tp={pred_horizon}, To={obs_horizon})"
        )


@dataclass(frozen=True)
class NearestNeighbourConfig:
    """Args:
    obs_horizon: To, observations compared.
    pred_horizon: Tp, actions per stored chunk.
    action_horizon: Ta, actions executed per chunk; Ta <= Tp - To + 1.
    """

    obs_horizon: int = 1
    pred_horizon: int = 8
    action_horizon: int = 2

    def __post_init__(self) -> None:
        _check_horizons(self.obs_horizon, self.pred_horizon, self.action_horizon)


@dataclass(frozen=True)
class BCConfig:
    """Args:
    obs_horizon, pred_horizon, action_horizon: To, Tp, Ta as in ``NearestNeighbourConfig``.
    width, depth: the MLP (``depth`` hidden layers of ``width`` SiLU units).
    steps, batch_size, lr: Adam steps, windows per minibatch, peak learning rate.
    ema_decay: EMA decay in [0, 1) of the evaluation weights (with warm-up), or None.

    The defaults are the pilot search's choice on point navigation
    (``experiments/search_policy_defaults.py``).
    """

    obs_horizon: int = 1
    pred_horizon: int = 8
    action_horizon: int = 1
    width: int = 128
    depth: int = 2
    steps: int = 3000
    batch_size: int = 256
    lr: float = 3e-3
    ema_decay: float | None = 0.995

    def __post_init__(self) -> None:
        _check_horizons(self.obs_horizon, self.pred_horizon, self.action_horizon)
        for name in ("width", "depth", "steps", "batch_size"):
            check_positive_int(getattr(self, name), name)
        check_positive_float(self.lr, "lr")
        decay = self.ema_decay
        if decay is not None and (
            isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 <= decay < 1
        ):
            raise ValueError(f"ema_decay must be a number in [0, 1) or None, got {decay!r}")


class _WindowPolicy:
    """Shared checks and the acting protocol; subclasses implement ``_fit`` and ``_chunk``."""

    config: NearestNeighbourConfig | BCConfig

    def __init__(self, config=None, **options):
        if config is not None and options:
            raise ValueError("pass either config or keyword options, not both")
        self.config = config if config is not None else self._config_type(**options)
        if not isinstance(self.config, self._config_type):
            raise ValueError(
                f"config must be a {self._config_type.__name__}, got {type(self.config).__name__}"
            )
        self.obs_normalizer: RangeNormalizer | None = None
        self.action_normalizer: RangeNormalizer | None = None
        self.fit_seconds = float("nan")

    def _require_fitted(self) -> RangeNormalizer:
        if self.obs_normalizer is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        return self.obs_normalizer

    @property
    def obs_dim(self) -> int:
        return self._require_fitted().low.shape[0]

    def _check_obs(self, obs, name: str = "obs") -> torch.Tensor:
        obs = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        to = self.config.obs_horizon
        if obs.dim() != 3 or obs.shape[1] != to:
            raise ValueError(f"{name} must have shape (B, To={to}, O), got {tuple(obs.shape)}")
        if not torch.isfinite(obs).all():
            raise ValueError(f"{name} must be finite")
        return obs

    def fit(self, obs, actions, weights=None, *, generator: torch.Generator):
        """Fit on N windows: obs (N, To, O), actions (N, Tp, A), optional weights (N,) >= 0
        with a positive sum (normalized to mean 1); ``generator`` seeds initialisation and
        minibatches (unused by the nearest neighbour, which still checks it)."""
        check_generator(generator)
        obs = self._check_obs(obs)
        actions = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        tp = self.config.pred_horizon
        if actions.dim() != 3 or actions.shape[:2] != (obs.shape[0], tp):
            raise ValueError(
                f"actions must have shape (N={obs.shape[0]}, Tp={tp}, A), got "
                f"{tuple(actions.shape)}"
            )
        if obs.shape[0] == 0:
            raise ValueError("obs and actions must hold at least one window, got 0")
        if not torch.isfinite(actions).all():
            raise ValueError("actions must be finite")
        n = obs.shape[0]
        if weights is None:
            w = torch.ones(n)
        else:
            w = torch.as_tensor(np.asarray(weights), dtype=torch.float32)
            if w.shape != (n,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    f"weights must be {n} finite numbers >= 0 with a positive sum, got shape "
                    f"{tuple(w.shape)}"
                )
            w = w / w.mean()
        started = time.perf_counter()
        obs_norm = RangeNormalizer(obs.shape[2]).fit(obs.reshape(-1, obs.shape[2]))
        act_norm = RangeNormalizer(actions.shape[2]).fit(actions.reshape(-1, actions.shape[2]))
        z_obs = obs_norm.normalize(obs).reshape(n, -1)
        z_act = act_norm.normalize(actions).reshape(n, -1)
        self._fit(z_obs, z_act, w, generator)
        self.obs_normalizer, self.action_normalizer = obs_norm, act_norm
        self.fit_seconds = time.perf_counter() - started
        return self

    @torch.no_grad()
    def predict_chunk(self, obs, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, To, O) -> (B, Tp, A) float32 actions in the environment's units (``generator``
        is accepted for the policy protocol; these policies are deterministic)."""
        norm = self._require_fitted()
        obs = self._check_obs(obs)
        if obs.shape[2] != self.obs_dim:
            raise ValueError(f"obs must have O={self.obs_dim} features, got {obs.shape[2]}")
        z = self._chunk(norm.normalize(obs).reshape(obs.shape[0], -1))
        a = self.action_normalizer.low.shape[0]
        return self.action_normalizer.unnormalize(z.reshape(obs.shape[0], -1, a))

    def act(self, obs, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The Ta actions to execute now: ``predict_chunk(obs)[:, To-1 : To-1+Ta]``."""
        start = self.config.obs_horizon - 1
        return self.predict_chunk(obs)[:, start : start + self.config.action_horizon]


class NearestNeighbourPolicy(_WindowPolicy):
    """1-nearest-neighbour behaviour cloning; see the module docstring.

    Args:
        config: a ``NearestNeighbourConfig`` (or its fields as keyword arguments).
    """

    _config_type = NearestNeighbourConfig

    @property
    def num_params(self) -> int:
        """Stored numbers (windows x (To O + Tp A)): the memory a nonparametric policy uses."""
        return int(self._keys.numel() + self._chunks.numel())

    def _fit(self, z_obs, z_act, weights, generator) -> None:
        keep = weights > 0  # a window of weight 0 is not part of the data
        self._keys, self._chunks = z_obs[keep], z_act[keep]

    def _chunk(self, z_obs: torch.Tensor) -> torch.Tensor:
        # exact differences (not the matrix-product expansion): same neighbour on every machine
        dist = torch.cdist(z_obs, self._keys, compute_mode="donot_use_mm_for_euclid_dist")
        return self._chunks[dist.argmin(dim=1)]


class BCPolicy(_WindowPolicy):
    """Deterministic MLP behaviour cloning; see the module docstring.

    Args:
        config: a ``BCConfig`` (or its fields as keyword arguments).
    """

    _config_type = BCConfig

    @property
    def num_params(self) -> int:
        self._require_fitted()
        return sum(p.numel() for p in self.mlp.parameters())

    def _fit(self, z_obs, z_act, weights, generator) -> None:
        cfg = self.config
        with torch.random.fork_rng(devices=[]):  # nn.Linear's own init must not touch it
            mlp = MLP(z_obs.shape[1], z_act.shape[1], cfg.width, cfg.depth)
        mlp.reset_parameters(generator)
        n, bs = z_obs.shape[0], cfg.batch_size
        idx = torch.empty(bs, dtype=torch.int64)

        def losses(step, forward) -> torch.Tensor:
            torch.randint(n, (bs,), generator=generator, out=idx)
            pred = forward(z_obs.index_select(0, idx)[None])[0]
            per_window = eps_loss(pred, z_act.index_select(0, idx))
            return (weights.index_select(0, idx) * per_window).mean()[None]

        StackedMLPs([mlp]).train(
            losses,
            steps=cfg.steps,
            lr=cfg.lr,
            ema_decay=cfg.ema_decay,
            run_names=[type(self).__name__],
        )
        self.mlp = mlp.requires_grad_(False).eval()

    def _chunk(self, z_obs: torch.Tensor) -> torch.Tensor:
        return self.mlp(z_obs).clamp(-1.0, 1.0)  # the demonstrated range, as the DDPM's clip
