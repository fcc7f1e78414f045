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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mol_diffusion._validation import (
    NotFittedError,
    check_generator,
    check_positive_float,
    check_positive_int,
)
from mol_diffusion.nets import MLP, StackedMLPs, pad_stack
from mol_diffusion.objectives import eps_loss
from mol_diffusion.policy.diffusion_policy import RangeNormalizer

__all__ = [
    "BCConfig",
    "BCPolicy",
    "NearestNeighbourConfig",
    "NearestNeighbourPolicy",
    "fit_bc_batched",
]


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
        started = time.perf_counter()
        z_obs, z_act, w, norms = self._prepare(obs, actions, weights, generator)
        self._fit(z_obs, z_act, w, generator)
        self.obs_normalizer, self.action_normalizer = norms  # fitted only once the fit is done
        self.fit_seconds = time.perf_counter() - started
        return self

    def _prepare(
        self, obs, actions, weights, generator, name: str = "", generator_name: str = "generator"
    ) -> tuple:
        """Check one fit's inputs (their names prefixed by ``name``; the generator's is
        ``generator_name``): (z_obs (N, To O), z_act (N, Tp A), weights (N,) of mean 1, (obs
        normalizer, action normalizer))."""
        check_generator(generator, generator_name)
        obs = self._check_obs(obs, f"{name}obs")
        actions = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        tp = self.config.pred_horizon
        if actions.dim() != 3 or actions.shape[:2] != (obs.shape[0], tp):
            raise ValueError(
                f"{name}actions must have shape (N={obs.shape[0]}, Tp={tp}, A), got "
                f"{tuple(actions.shape)}"
            )
        if obs.shape[0] == 0:
            raise ValueError(f"{name}obs and actions must hold at least one window, got 0")
        if not torch.isfinite(actions).all():
            raise ValueError(f"{name}actions must be finite")
        n = obs.shape[0]
        if weights is None:
            w = torch.ones(n)
        else:
            w = torch.as_tensor(np.asarray(weights), dtype=torch.float32)
            if w.shape != (n,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    f"{name}weights must be {n} finite numbers >= 0 with a positive sum, got shape "
                    f"{tuple(w.shape)}"
                )
            w = w / w.mean()
        obs_norm = RangeNormalizer(obs.shape[2]).fit(obs.reshape(-1, obs.shape[2]))
        act_norm = RangeNormalizer(actions.shape[2]).fit(actions.reshape(-1, actions.shape[2]))
        z_obs = obs_norm.normalize(obs).reshape(n, -1)
        z_act = act_norm.normalize(actions).reshape(n, -1)
        return z_obs, z_act, w, (obs_norm, act_norm)

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
        _fit_stacked([self], [(z_obs, z_act, weights)], [generator], ["BCPolicy"])

    def _chunk(self, z_obs: torch.Tensor) -> torch.Tensor:
        return self.mlp(z_obs).clamp(-1.0, 1.0)  # the demonstrated range, as the DDPM's clip


def fit_bc_batched(
    policies: Sequence[BCPolicy],
    data: Sequence[tuple],
    generators: Sequence[torch.Generator],
    *,
    run_names: Sequence[str] | None = None,
) -> list[BCPolicy]:
    """Fit several BC policies of one config at once, as one stacked network.

    Policy b draws its initialisation and minibatches from ``generators[b]`` in the order of
    ``policies[b].fit``, which is this fit with one policy, so the weights are bit-for-bit the
    one-at-a-time fits' (``tests/test_policy_baselines.py``).

    Args:
        policies: unfitted ``BCPolicy`` instances with identical configs.
        data: per policy, (obs (N_b, To, O), actions (N_b, Tp, A), weights (N_b,) or None).
        generators: one ``torch.Generator`` per policy (distinct objects: a shared one would
            interleave the policies' draws).
        run_names: one name per policy for a ``DivergenceError`` (default ``BCPolicy[b]``).
    Returns:
        the fitted policies (the same objects); each one's ``fit_seconds`` is the batch's wall
        time divided by the number of policies.
    """
    policies = list(policies)
    if not policies or not all(isinstance(p, BCPolicy) for p in policies):
        raise ValueError("policies must be a non-empty sequence of BCPolicy")
    if len(data) != len(policies) or len(generators) != len(policies):
        raise ValueError(
            f"data and generators must hold one entry per policy ({len(policies)}), got "
            f"{len(data)} and {len(generators)}"
        )
    if any(p.config != policies[0].config for p in policies):
        raise ValueError("policies must share one config to be fitted as a batch")
    for what, items in (("policies", policies), ("generators", generators)):
        first_at: dict[int, int] = {}
        for b, item in enumerate(items):
            a = first_at.setdefault(id(item), b)
            if a != b:
                raise ValueError(f"{what}[{b}] is {what}[{a}]: pass a distinct object per policy")
    if run_names is None:
        run_names = [f"BCPolicy[{b}]" for b in range(len(policies))]
    elif len(run_names) != len(policies):
        raise ValueError(f"run_names must hold {len(policies)} names, got {len(run_names)}")
    started = time.perf_counter()
    prepared = []
    for b, (policy, item, g) in enumerate(zip(policies, data, generators, strict=True)):
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise ValueError(f"data[{b}] must be an (obs, actions, weights) triple")
        prepared.append(
            policy._prepare(*item, g, name=f"data[{b}]: ", generator_name=f"generators[{b}]")
        )
    dims = [(z_obs.shape[1], z_act.shape[1]) for z_obs, z_act, _, _ in prepared]
    for b, dim in enumerate(dims):
        if dim != dims[0]:
            raise ValueError(
                f"data[{b}]: windows of (To O, Tp A) = {dim}, but data[0]'s are {dims[0]}; "
                "every policy of a batch must share them"
            )
    _fit_stacked(policies, [p[:3] for p in prepared], generators, run_names)
    seconds = (time.perf_counter() - started) / len(policies)
    for policy, (_, _, _, norms) in zip(policies, prepared, strict=True):
        policy.obs_normalizer, policy.action_normalizer = norms
        policy.fit_seconds = seconds
    return policies


def _fit_stacked(policies, prepared, generators, run_names) -> None:
    """Train one MLP per policy on its normalized (z_obs, z_act, weights) as one stack; sets
    each policy's ``mlp``."""
    cfg, count = policies[0].config, len(policies)
    mlps = []
    for (z_obs, z_act, _), g in zip(prepared, generators, strict=True):
        with torch.random.fork_rng(devices=[]):  # nn.Linear's own init must not touch it
            mlp = MLP(z_obs.shape[1], z_act.shape[1], cfg.width, cfg.depth)
        mlp.reset_parameters(g)
        mlps.append(mlp)
    sizes = [z_obs.shape[0] for z_obs, _, _ in prepared]
    offsets = torch.arange(count)[:, None] * max(sizes)
    # padded stacks flattened, so one gather per step draws every policy's minibatch
    obs_all = pad_stack([z for z, _, _ in prepared]).flatten(0, 1)
    act_all = pad_stack([a for _, a, _ in prepared]).flatten(0, 1)
    weight_all = pad_stack([w for _, _, w in prepared]).flatten(0, 1)
    bs = cfg.batch_size
    idx = torch.empty(count, bs, dtype=torch.int64)

    def losses(step, forward) -> torch.Tensor:
        for b, g in enumerate(generators):  # each policy's own draws, in fit's order
            torch.randint(sizes[b], (bs,), generator=g, out=idx[b])
        flat = (idx + offsets).reshape(-1)
        pred = forward(obs_all.index_select(0, flat).reshape(count, bs, -1)).flatten(0, 1)
        per_window = eps_loss(pred, act_all.index_select(0, flat)).reshape(count, bs)
        return (weight_all.index_select(0, flat).reshape(count, bs) * per_window).mean(dim=1)

    StackedMLPs(mlps).train(
        losses,
        steps=cfg.steps,
        lr=cfg.lr,
        ema_decay=cfg.ema_decay,
        run_names=list(run_names),
    )
    for policy, mlp in zip(policies, mlps, strict=True):
        policy.mlp = mlp.requires_grad_(False).eval()
