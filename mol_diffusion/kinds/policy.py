r"""The policy kind (``kind = "policy"``): diffusion policies scored by rollouts.

A cell is (n, replicate). It collects n noisy expert demonstrations per environment (the
paired data) and m noisy expert trajectories per environment whose actions are dropped (the
offline unlabeled states), fits the K specialists, then three generalists without an
environment id: labeled-only (behaviour cloning on the pooled demonstrations), two-stage
offline (pseudo-actions on the m offline trajectories) and two-stage on-policy (pseudo-actions
on m / (R + 1) offline trajectories, then R rounds of m / (R + 1) generalist rollouts per
environment: the same budget of unlabeled trajectories). Beside them, per environment and on
the same n demonstrations, the baselines a reader compares with: 1-nearest-neighbour and a
deterministic MLP behaviour cloning (``policy.baselines``), and a uniformly random policy.
Every policy, the specialists, the expert and the random policy are evaluated on the same
evaluation seeds (``eval_seed`` + i, disjoint from every training seed) for H = max(horizons)
steps; rows report each environment and each H in ``horizons``, with the normalized score
(random 0, expert 1; ``policy.evaluation``).

Seeds: demonstrations of environment k in replicate r use reset seeds r * 10^4 + k * 10^3 + i
(nested across n), offline trajectories r * 10^4 + k * 10^3 + 500 + i, on-policy episodes of
round j 10^5 + r * 10^4 + k * 10^3 + 100 j + i; the torch generators of every fit derive from
the experiment seed and the cell with ``numpy.random.SeedSequence``, so the table does not depend
on the executor or the order of cells. The cells of one replicate run as one task
(``run_policy_cells``), which rolls out once what they share: the expert's and the random
policy's evaluation episodes and the replicate's offline trajectories and demonstrations (every
episode depends only on its own seed, so the rows are those of cells run one by one).

Columns (one row per method, environment and horizon H of a cell): experiment, method, n,
replicate, env, horizon, episodes, return_mean, return_se, expert_return, gap, gap_se,
random_return, normalized_score, normalized_se, successes, success_trials, success_rate,
success_low, success_high, env_id, weight, num_params, num_windows, fit_seconds, latency_ms (the
last two vary between identical runs). Experiments: diffusion_policy (point navigation) and
diffusion_policy_reacher (gymnasium's Reacher in three physics variants); their claims are in
``claims.policy``. Reset seeds do not depend on the experiment seed: two runs of one config with
different seeds share their episodes' reset seeds (demonstrations, offline, evaluation) and
differ in every torch generator (fits, pseudo-labels, sampling).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from mol_diffusion._validation import check_simplex
from mol_diffusion.kinds.base import (
    apply_quick,
    check_keys,
    fingerprint,
    generator,
    is_number,
    one_thread,
)
from mol_diffusion.policy.baselines import (
    BCConfig,
    BCPolicy,
    NearestNeighbourConfig,
    NearestNeighbourPolicy,
    fit_bc_batched,
)
from mol_diffusion.policy.diffusion_policy import DiffusionPolicyConfig
from mol_diffusion.policy.evaluation import evaluation_rows, latency_ms_per_action
from mol_diffusion.policy.rollout import ExpertAgent, PolicyAgent, RandomAgent, rollout
from mol_diffusion.policy.two_stage import (
    fit_pooled,
    fit_specialists,
    labeled_only_windows,
    offline_windows,
    on_policy_rounds,
)

__all__ = [
    "FAMILIES",
    "POLICY",
    "POLICY_METHODS",
    "PolicyCell",
    "PolicyExperimentConfig",
    "PolicyKind",
    "parse_policy_config",
    "policy_cells",
    "run_policy_cell",
    "run_policy_cells",
]

POLICY_METHODS = (
    "expert",
    "random",
    "specialist",
    "nearest_neighbour",
    "bc",
    "labeled_only",
    "two_stage_offline",
    "two_stage_on_policy",
)
EVAL_SEED = 10**6
_DEMO, _FIT, _EVAL = 0, 1, 2  # first spawn_key entry: what the generator is for


def _family_ids(name: str) -> tuple[str, ...]:
    if name == "point_nav":
        from mol_diffusion.policy.envs import POINT_NAV_IDS

        return POINT_NAV_IDS
    if name == "reacher":
        from mol_diffusion.policy.envs import REACHER_IDS

        return REACHER_IDS
    if name == "arm_reach":
        from mol_diffusion.policy.envs import ARM_REACH_IDS

        return ARM_REACH_IDS
    raise ValueError(f"envs must be one of {FAMILIES}, got {name!r}")


FAMILIES = ("point_nav", "reacher", "arm_reach")


@dataclass(frozen=True)
class PolicyExperimentConfig:
    """A diffusion-policy experiment (``experiments/diffusion_policy.toml``,
    ``experiments/diffusion_policy_reacher.toml``).

    Args:
        name: file stem; results go to ``experiments/results/<name>.csv``.
        seed: experiment seed.
        replicates: independent repetitions of every cell (>= 2 for the paired tests).
        n: demonstrations per environment (grid, each <= 400).
        m: unlabeled trajectories per environment (a multiple of rounds + 1, <= 100 per round).
        rounds: R, on-policy rounds.
        horizon: H of demonstrations, rollouts and evaluation.
        horizons: evaluation horizons reported (each <= ``horizon``).
        eval_episodes: evaluation episodes per environment (reset seeds ``eval_seed`` + i).
        eval_seed: first evaluation seed; above every training seed (the on-policy rounds' reach
            10^5 + replicates 10^4), and different from the pilot seeds the defaults were chosen
            on (``experiments/search_policy_defaults.py``: 2 10^6 + i).
        action_noise: std of the noise injected into the expert's executed actions when it
            collects demonstrations and offline trajectories.
        envs: the environment family: ``"point_nav"`` (``policy.envs``), ``"reacher"``
            (gymnasium's MuJoCo Reacher in three physics variants, ``policy.reacher``) or
            ``"arm_reach"`` (``policy.arm``).
        weights: lambda over the K environments.
        specialist, generalist: the two policies' configs.
        nearest_neighbour, bc: the baselines' configs (their own To, Tp, Ta).
        quick: True when the ``[quick]`` overrides were applied.
    """

    name: str
    seed: int
    replicates: int
    n: tuple[int, ...]
    m: int
    rounds: int
    horizon: int
    horizons: tuple[int, ...]
    eval_episodes: int
    action_noise: float
    envs: str
    weights: tuple[float, ...]
    specialist: DiffusionPolicyConfig
    generalist: DiffusionPolicyConfig
    eval_seed: int = EVAL_SEED
    nearest_neighbour: NearestNeighbourConfig = field(default_factory=NearestNeighbourConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    quick: bool = False
    methods: tuple[str, ...] = field(default=POLICY_METHODS)

    def __post_init__(self) -> None:
        where = f"experiment {self.name!r}"
        if self.envs not in FAMILIES:
            raise ValueError(f"{where}: envs must be one of {FAMILIES}, got {self.envs!r}")
        for key in ("seed", "replicates", "m", "rounds", "horizon", "eval_episodes", "eval_seed"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}: {key} must be an integer >= 0, got {value!r}")
        if self.replicates < 2:
            raise ValueError(f"{where}: replicates must be >= 2 (paired tests across seeds)")
        if not self.n or any(
            isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 400 for v in self.n
        ):
            raise ValueError(f"{where}: n must be integers in [1, 400], got {self.n!r}")
        if self.m <= 0 or self.m % (self.rounds + 1) or self.m // (self.rounds + 1) > 100:
            raise ValueError(
                f"{where}: m must be a positive multiple of rounds + 1 = {self.rounds + 1} with "
                f"at most 100 per round, got {self.m}"
            )
        if self.horizon <= 0 or not self.horizons or self.horizon not in self.horizons:
            raise ValueError(f"{where}: horizons must be non-empty and include horizon")
        if any(not 0 < h <= self.horizon for h in self.horizons):
            raise ValueError(f"{where}: horizons must lie in [1, horizon], got {self.horizons}")
        if not is_number(self.action_noise) or not (0 <= self.action_noise < math.inf):
            raise ValueError(
                f"{where}: action_noise must be a finite number >= 0, got {self.action_noise!r}"
            )
        if self.eval_episodes < 1:
            raise ValueError(f"{where}: eval_episodes must be >= 1, got {self.eval_episodes}")
        if self.eval_seed < 10**5 + self.replicates * 10**4:
            raise ValueError(
                f"{where}: eval_seed must be >= 10^5 + replicates 10^4 = "
                f"{10**5 + self.replicates * 10**4} (above every training seed), got "
                f"{self.eval_seed}"
            )
        check_simplex(self.weights, self.num_envs, name="weights")
        for role, expected in (
            ("specialist", DiffusionPolicyConfig),
            ("generalist", DiffusionPolicyConfig),
            ("nearest_neighbour", NearestNeighbourConfig),
            ("bc", BCConfig),
        ):
            if not isinstance(getattr(self, role), expected):
                raise ValueError(f"{where}: {role} must be a {expected.__name__}")
        unknown = set(self.methods) - set(POLICY_METHODS)
        if not self.methods or unknown:
            raise ValueError(
                f"{where}: methods must be a non-empty subset of {POLICY_METHODS}, got "
                f"{self.methods!r}"
            )

    @property
    def env_ids(self) -> tuple[str, ...]:
        return _family_ids(self.envs)

    @property
    def num_envs(self) -> int:
        return len(self.env_ids)

    @property
    def kind(self) -> PolicyKind:
        return POLICY

    def fingerprint(self) -> str:
        """The results-cache key (``kinds.base.fingerprint``)."""
        return fingerprint(self)


def parse_policy_config(raw: dict, name: str, quick: bool) -> PolicyExperimentConfig:
    """Build the config from a TOML table (``[quick]`` overrides applied when ``quick``)."""
    raw = apply_quick(raw, quick)
    family = dict(raw.pop("family", {}))
    check_keys(family, {"envs"}, set(), f"experiment {name!r}: family")
    shared = raw.pop("policy", {})
    roles = {role: {**shared, **raw.pop(role, {})} for role in ("specialist", "generalist")}
    baselines = {role: dict(raw.pop(role, {})) for role in ("nearest_neighbour", "bc")}
    known = {f.name for f in fields(PolicyExperimentConfig)} - {
        "name",
        "quick",
        "envs",
        "weights",
        "specialist",
        "generalist",
        "nearest_neighbour",
        "bc",
        "methods",
    }
    check_keys(raw, known | {"weights"}, known, f"experiment {name!r}")
    envs = family.get("envs", "point_nav")
    k = len(_family_ids(envs))
    weights = raw.pop("weights", "uniform")
    if weights != "uniform" and not (
        isinstance(weights, list) and all(is_number(w) for w in weights)
    ):
        raise ValueError(
            f'experiment {name!r}: weights must be "uniform" or a list of numbers, got {weights!r}'
        )
    weights = (1.0 / k,) * k if weights == "uniform" else tuple(float(w) for w in weights)
    try:
        policies = {role: DiffusionPolicyConfig(**opts) for role, opts in roles.items()}
    except (TypeError, ValueError) as err:
        raise ValueError(f"experiment {name!r}: policy options: {err}") from err
    for role, make in (("nearest_neighbour", NearestNeighbourConfig), ("bc", BCConfig)):
        try:
            policies[role] = make(**baselines[role])
        except (TypeError, ValueError) as err:
            raise ValueError(f"experiment {name!r}: {role} options: {err}") from err
    for key in ("n", "horizons"):
        if not isinstance(raw[key], list):
            raise ValueError(
                f"experiment {name!r}: {key} must be a list of integers, got {raw[key]!r}"
            )
    return PolicyExperimentConfig(
        name=name,
        envs=envs,
        weights=weights,
        quick=quick,
        n=tuple(raw.pop("n")),
        horizons=tuple(raw.pop("horizons")),
        **raw,
        **policies,
    )


@dataclass(frozen=True)
class PolicyCell:
    """One (n, replicate) of the grid; every method is fitted and evaluated in it."""

    n: int
    replicate: int

    @property
    def label(self) -> str:
        return f"policy/n={self.n}/rep{self.replicate}"


def policy_cells(config: PolicyExperimentConfig) -> list[PolicyCell]:
    """All cells in canonical order (replicate-major)."""
    return [PolicyCell(n, r) for r in range(config.replicates) for n in config.n]


def _expert_trajectories(config, seeds_of) -> list:
    """Noisy expert rollouts per environment, seeds ``seeds_of(k)``."""
    return [
        rollout(
            ExpertAgent(),
            config.env_ids,
            np.full(len(seeds_of(k)), k),
            seeds_of(k),
            config.horizon,
            action_noise=config.action_noise,
        )
        for k in range(config.num_envs)
    ]


def _replicate_data(config: PolicyExperimentConfig, rep: int, n: int) -> tuple[list, list]:
    """Replicate ``rep``'s first n demonstrations and its m offline trajectories, per
    environment (reset seeds in the module docstring)."""
    base = lambda k: rep * 10**4 + k * 10**3  # noqa: E731
    return (
        _expert_trajectories(config, lambda k: base(k) + np.arange(n)),
        _expert_trajectories(config, lambda k: base(k) + 500 + np.arange(config.m)),
    )


def run_policy_cell(config: PolicyExperimentConfig, cell: PolicyCell) -> list[dict]:
    """Fit and evaluate every method of one cell with one torch thread (so reductions are the
    same on every worker); returns the cell's rows (see the module docstring)."""
    return run_policy_cells(config, [cell])[0]


def run_policy_cells(config: PolicyExperimentConfig, cells: Sequence[PolicyCell]) -> list[list]:
    """``run_policy_cell`` for several cells, rolling out what they share once: the expert's
    and the random policy's evaluation episodes (the same in every cell) and, per replicate,
    the offline trajectories and the demonstrations of the largest n (a smaller n's are their
    first n episodes: every episode's rollout depends only on its own seed)."""
    with one_thread():
        env_index = np.repeat(np.arange(config.num_envs), config.eval_episodes)
        seeds = np.tile(config.eval_seed + np.arange(config.eval_episodes), config.num_envs)
        references = tuple(
            rollout(agent, config.env_ids, env_index, seeds, config.horizon)
            for agent in (ExpertAgent(), RandomAgent())
        )
        shared = {
            rep: _replicate_data(config, rep, max(c.n for c in cells if c.replicate == rep))
            for rep in sorted({cell.replicate for cell in cells})
        }
        out = []
        for cell in cells:
            demos, offline = shared[cell.replicate]
            first = [d.select(np.arange(len(d)) < cell.n) for d in demos]
            out.append(_run_cell(config, cell, first, offline, references))
        return out


COLUMNS = (
    "experiment",
    "method",
    "n",
    "replicate",
    "env",
    "horizon",
    "episodes",
    "return_mean",
    "return_se",
    "expert_return",
    "gap",
    "gap_se",
    "random_return",
    "normalized_score",
    "normalized_se",
    "successes",
    "success_trials",
    "success_rate",
    "success_low",
    "success_high",
    "env_id",
    "weight",
    "num_params",
    "num_windows",
    "fit_seconds",
    "latency_ms",
)


class PolicyKind:
    """Diffusion policies on a gymnasium environment family (see the module docstring)."""

    name = "policy"
    timing_columns = ("fit_seconds", "latency_ms")
    integer_columns = ("n",)

    def parse(self, raw: dict, name: str, quick: bool) -> PolicyExperimentConfig:
        return parse_policy_config(raw, name, quick)

    def cells(self, config: PolicyExperimentConfig) -> list[PolicyCell]:
        return policy_cells(config)

    def batch_key(self, config: PolicyExperimentConfig, cell: PolicyCell) -> int:
        # the cells of one replicate share their offline trajectories and demonstrations
        return cell.replicate

    def run_cells(
        self, config: PolicyExperimentConfig, cells: Sequence[PolicyCell]
    ) -> list[list[dict]]:
        return run_policy_cells(config, cells)

    def columns(self, config: PolicyExperimentConfig) -> tuple[str, ...]:
        return COLUMNS

    def key_columns(self, config: PolicyExperimentConfig) -> tuple[str, ...]:
        return ("method", "n", "replicate", "env", "horizon")

    def cell_key(self, config: PolicyExperimentConfig, cell: PolicyCell) -> dict:
        return {"n": cell.n, "replicate": cell.replicate}


POLICY = PolicyKind()


def _baselines(config: PolicyExperimentConfig, cell: PolicyCell, demos) -> dict[str, list]:
    """1-NN and BC per environment on the cell's demonstrations (each with its own To, Tp); the
    K BC policies are fitted as one stack (bit-for-bit the one-at-a-time fits)."""
    out = {}
    gens = lambda: [  # noqa: E731
        generator(config, _FIT, cell.replicate, cell.n, 4, k) for k in range(config.num_envs)
    ]
    if "nearest_neighbour" in config.methods:
        cfg = config.nearest_neighbour
        obs, actions = labeled_only_windows(demos, cfg)  # each environment's, its To and Tp
        out["nearest_neighbour"] = [
            NearestNeighbourPolicy(cfg).fit(o, a, generator=g)
            for o, a, g in zip(obs, actions, gens(), strict=True)
        ]
    if "bc" in config.methods:
        cfg = config.bc
        obs, actions = labeled_only_windows(demos, cfg)
        out["bc"] = fit_bc_batched(
            [BCPolicy(cfg) for _ in obs],
            [(o, a, None) for o, a in zip(obs, actions, strict=True)],
            gens(),
            run_names=[f"{config.name}/{cell.label}/bc/{env}" for env in config.env_ids],
        )
    return out


def _run_cell(config: PolicyExperimentConfig, cell: PolicyCell, demos, offline, references):
    """One cell's rows from its demonstrations and offline trajectories (per environment) and
    the (expert, random) evaluation episodes."""
    n, rep, k_envs = cell.n, cell.replicate, config.num_envs
    base = lambda k: rep * 10**4 + k * 10**3  # noqa: E731
    share = config.m // (config.rounds + 1)
    specialists = fit_specialists(
        demos,
        config.specialist,
        [generator(config, _FIT, rep, n, 0, k) for k in range(k_envs)],
        run_name=f"{config.name}/{cell.label}/specialist",
    )
    # labeled-only, offline two-stage and on-policy round 0 share one config: fitted as one
    # stacked network (each from its own generator in its single fit's order)
    gen_offline, gen_on_policy = (generator(config, _FIT, rep, n, j) for j in (2, 3))
    timer = time.perf_counter
    marks = [timer()]
    windows = [labeled_only_windows(demos, config.generalist)]
    marks.append(timer())
    windows.append(offline_windows(specialists, offline, gen_offline))
    marks.append(timer())
    first_share = [o.select(np.arange(len(o)) < share) for o in offline]
    windows.append(offline_windows(specialists, first_share, gen_on_policy))
    marks.append(timer())
    labeled, two_stage, round0 = fit_pooled(
        windows,
        config.weights,
        config.generalist,
        [generator(config, _FIT, rep, n, 1), gen_offline, gen_on_policy],
        run_names=[
            f"{config.name}/{cell.label}/{m}"
            for m in ("labeled_only", "offline", "two_stage_on_policy/round0")
        ],
        seconds=np.diff(marks).tolist(),
    )
    fits = {"labeled_only": labeled, "two_stage_offline": two_stage}
    fits["two_stage_on_policy"] = on_policy_rounds(
        specialists,
        windows[2],
        round0.generalist,
        config.weights,
        config.generalist,
        gen_on_policy,
        env_ids=config.env_ids,
        rounds=config.rounds,
        round_seeds=lambda r, k: 10**5 + base(k) + 100 * r + np.arange(share),
        horizon=config.horizon,
        run_name=f"{config.name}/{cell.label}/two_stage_on_policy",
        seconds=round0.fit_seconds,
    )
    expert, random = references
    env_index, seeds = expert.env_index, expert.seeds
    agents = {"expert": None, "random": None, "specialist": specialists}
    agents.update(_baselines(config, cell, demos))
    agents.update({method: fit.generalist for method, fit in fits.items()})
    rows = []
    for method, policy in agents.items():
        if method not in config.methods:
            continue
        if policy is None:
            trajectories = expert if method == "expert" else random
            latency, params, windows, seconds = np.nan, 0, 0, 0.0
        else:
            eval_generator = generator(config, _EVAL, rep, n)  # common to every method
            trajectories = rollout(
                PolicyAgent(policy, generator=eval_generator),
                config.env_ids,
                env_index,
                seeds,
                config.horizon,
            )
            one = list(policy) if isinstance(policy, list) else [policy]
            latency = latency_ms_per_action(
                one[0],
                expert.observations[:1, :1].repeat(one[0].config.obs_horizon, axis=1),
                generator=generator(config, _EVAL, rep, n, 1),
            )
            params = max(p.num_params for p in one)
            fit = fits.get(method)
            windows = fit.num_windows if fit else sum(len(d) * config.horizon for d in demos)
            seconds = fit.fit_seconds if fit else sum(p.fit_seconds for p in one)
        for row in evaluation_rows(trajectories, expert, config.horizons, random):
            rows.append(
                {
                    "experiment": config.name,
                    "method": method,
                    "n": n,
                    "replicate": rep,
                    **row,
                    "env_id": config.env_ids[row["env"]],
                    "weight": config.weights[row["env"]],
                    "num_params": params,
                    "num_windows": windows,
                    "fit_seconds": seconds,
                    "latency_ms": latency,
                }
            )
    return rows
