"""mol_diffusion: multi-objective learning for diffusion models under semi-supervised learning.

A theory-and-experiments companion to arXiv 2605.25210. Paper symbols and code names:

    K        number of tasks                  family.num_tasks
    lambda   scalarization weights (simplex)  weights
    n        paired samples per task          n
    m        unlabeled conditions per task    m
    t        diffusion time in [t_min, 1]     t
    s_k      task k's true score              family.task_score(k, ...)
    s*       lambda-Pareto (mixture) score    family.pareto_score(..., weights)

Experiments: a TOML in experiments/ names its kind (``mol_diffusion.kinds``: gaussian,
restoration, policy; the protocol is ``kinds.base.ExperimentKind``), ``config.load_experiment``
parses it, the engine ``sweeps.load_or_run`` runs it into a results table, and
``claims`` (one rules module per kind) turns the tables into verdicts.
"""

from mol_diffusion import policy  # noqa: F401  (registers the environments under "mol_diffusion/")
from mol_diffusion._validation import DivergenceError, NotFittedError
from mol_diffusion.metrics import (
    RiskDraws,
    RiskResult,
    energy_distance,
    excess_risk,
    kl_gaussian,
    make_risk_draws,
    w2_gaussian,
)
from mol_diffusion.objectives import (
    chebyshev_scalarization,
    draw_dsm,
    dsm_loss,
    linear_scalarization,
)
from mol_diffusion.samplers import affine_moments, ddim, probability_flow, reverse_sde
from mol_diffusion.schedules import DDIMScheduler, DDPMScheduler, SchedulerOutput, VPSchedule
from mol_diffusion.scores import (
    LinearGaussianScore,
    MLPScore,
    RandomFeatureScore,
    ScoreModel,
)
from mol_diffusion.tasks import GaussianTaskFamily, make_gaussian_family, make_misspecified_family
from mol_diffusion.version import VERSION

__version__ = VERSION

__all__ = [
    "DDIMScheduler",
    "DDPMScheduler",
    "DivergenceError",
    "GaussianTaskFamily",
    "LinearGaussianScore",
    "MLPScore",
    "NotFittedError",
    "RandomFeatureScore",
    "RiskDraws",
    "RiskResult",
    "SchedulerOutput",
    "ScoreModel",
    "VPSchedule",
    "affine_moments",
    "chebyshev_scalarization",
    "ddim",
    "draw_dsm",
    "dsm_loss",
    "energy_distance",
    "excess_risk",
    "kl_gaussian",
    "linear_scalarization",
    "make_gaussian_family",
    "make_misspecified_family",
    "make_risk_draws",
    "probability_flow",
    "reverse_sde",
    "w2_gaussian",
]
