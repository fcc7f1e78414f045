"""Falsifiable claims and their verdicts: the registry (``claims.registry``) and each experiment
kind's rules, one module per kind (``claims.gaussian``, ``claims.restoration``,
``claims.policy``). Importing the package registers every claim, in this order.
"""

# isort: off
# Import order is registration order, the order of every claims table: Gaussian, restoration,
# policy.
from mol_diffusion.claims.gaussian import excess_at_smallest_n, excess_over_oracle
from mol_diffusion.claims.restoration import psnr_gain
from mol_diffusion.claims.policy import policy_gap

# isort: on
from mol_diffusion.claims.registry import (
    ALPHA,
    REGISTRY,
    VERDICTS,
    Claim,
    Component,
    Estimate,
    Region,
    Verdict,
    describe,
    evaluate,
    evaluate_all,
    load_calibration,
    load_results,
    register,
    registry_fingerprint,
    rule_fingerprint,
    tex_escape,
    verdict_frame,
    write_outputs,
)

__all__ = [
    "ALPHA",
    "REGISTRY",
    "VERDICTS",
    "Claim",
    "Component",
    "Estimate",
    "Region",
    "Verdict",
    "describe",
    "evaluate",
    "evaluate_all",
    "excess_at_smallest_n",
    "excess_over_oracle",
    "load_calibration",
    "load_results",
    "policy_gap",
    "psnr_gain",
    "register",
    "registry_fingerprint",
    "rule_fingerprint",
    "tex_escape",
    "verdict_frame",
    "write_outputs",
]
