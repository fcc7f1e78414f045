r"""Trajectories and the (observation history, action chunk) windows a diffusion policy fits.

At step t the policy sees the last To observations and predicts Tp actions that start at the
oldest of them (the convention of Chi et al., 2023, "Diffusion Policy", Sec. 3.1):

    obs window     o[t-To+1] ... o[t]
    action chunk   a[t-To+1] ... a[t] ... a[t-To+Tp]

Indices before 0 repeat the first observation or action and indices past the end repeat the
last action, so every step of every trajectory gives one window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mol_diffusion._validation import check_positive_int

__all__ = ["Trajectories", "action_windows", "observation_windows"]


@dataclass(frozen=True)
class Trajectories:
    """A batch of B equal-length episodes of T steps.

    Attributes:
        observations: (B, T + 1, O) float32; o[t] is seen before action t (o[T] after the last).
        actions: (B, T, A) float32 action labels (the expert's clean actions for demonstrations,
            the executed actions for policy rollouts).
        rewards: (B, T) float64.
        success: (B, T) bool, the environment's ``success`` flag after each step.
        goals: (B, T) int, the environment's ``clean_goals`` after each step (goals or targets
            reached without contact on the way, so far in the episode).
        env_index: (B,) int, which environment of the family each episode ran in.
        seeds: (B,) int, the reset seed of each episode.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    env_index: np.ndarray
    seeds: np.ndarray
    goals: np.ndarray

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, np.ndarray):
                raise ValueError(
                    f"{name} must be a numpy array, got {type(value).__name__} (use np.asarray)"
                )
        if self.observations.ndim != 3:
            raise ValueError(
                f"observations must have shape (B, T + 1, O), got {self.observations.shape}"
            )
        b, t1, _ = self.observations.shape
        if self.actions.ndim != 3:
            raise ValueError(f"actions must have shape (B, T, A), got {self.actions.shape}")
        if t1 < 2:
            raise ValueError(
                "observations must hold at least one step (T + 1 >= 2), got "
                f"{self.observations.shape}"
            )
        if self.actions.shape[:2] != (b, t1 - 1):
            raise ValueError(
                f"actions must have shape ({b}, {t1 - 1}, A), got {self.actions.shape}"
            )
        for name in ("rewards", "success", "goals"):
            if getattr(self, name).shape != (b, t1 - 1):
                raise ValueError(f"{name} must have shape ({b}, {t1 - 1})")
        for name in ("env_index", "seeds"):
            if getattr(self, name).shape != (b,):
                raise ValueError(f"{name} must have shape ({b},)")

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]

    def __len__(self) -> int:
        return self.observations.shape[0]

    def select(self, mask: np.ndarray) -> Trajectories:
        """The episodes where ``mask`` (B,) is true."""
        return Trajectories(**{k: getattr(self, k)[mask] for k in self.__dataclass_fields__})

    def returns(self, horizon: int | None = None) -> np.ndarray:
        """Undiscounted return over the first ``horizon`` steps (default all), shape (B,)."""
        return self.rewards[:, : self.horizon if horizon is None else horizon].sum(axis=1)

    @staticmethod
    def concatenate(parts: list[Trajectories]) -> Trajectories:
        fields = Trajectories.__dataclass_fields__
        return Trajectories(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in fields})


def _check_episodes(array, name: str, min_steps: int) -> None:
    """``array`` is a (B, steps, features) numpy array with B >= 1 and steps >= min_steps."""
    if not isinstance(array, np.ndarray) or array.ndim != 3:
        raise ValueError(
            f"{name} must be a numpy array of shape (episodes, steps, features), got "
            f"{getattr(array, 'shape', type(array).__name__)}"
        )
    if array.shape[0] < 1 or array.shape[1] < min_steps:
        raise ValueError(
            f"{name} must hold at least one episode of at least {min_steps} steps, got shape "
            f"{array.shape}"
        )


def _window_index(steps: int, start: int, length: int, limit: int) -> np.ndarray:
    """(steps, length) indices t + start + j, clipped to [0, limit - 1]."""
    t = np.arange(steps)[:, None] + start + np.arange(length)[None, :]
    return np.clip(t, 0, limit - 1)


def observation_windows(observations: np.ndarray, obs_horizon: int) -> np.ndarray:
    """(B, T + 1, O) -> (B * T, To, O): the To observations ending at each step t < T."""
    to = check_positive_int(obs_horizon, "obs_horizon")
    _check_episodes(observations, "observations", min_steps=2)
    b, t1, o = observations.shape
    idx = _window_index(t1 - 1, 1 - to, to, t1)
    return observations[:, idx].reshape(b * (t1 - 1), to, o)


def action_windows(actions: np.ndarray, obs_horizon: int, pred_horizon: int) -> np.ndarray:
    """(B, T, A) -> (B * T, Tp, A): the Tp actions starting at t - To + 1 for each step t."""
    to = check_positive_int(obs_horizon, "obs_horizon")
    tp = check_positive_int(pred_horizon, "pred_horizon")
    _check_episodes(actions, "actions", min_steps=1)
    b, t, a = actions.shape
    idx = _window_index(t, 1 - to, tp, t)
    return actions[:, idx].reshape(b * t, tp, a)
