"""Calibration of claim rules by simulation: the harness (``calibration.harness``), generative
models of results tables fitted on pilot tables (``calibration.models``) and the scenarios of
today's rules (``calibration.scenarios``; ``python -m mol_diffusion calibrate``)."""

from mol_diffusion.calibration.harness import (
    POWER_TARGET,
    SIZE_LIMIT,
    Calibration,
    Scenario,
    calibrate,
    calibration_frame,
)
from mol_diffusion.calibration.models import PilotModel
from mol_diffusion.calibration.scenarios import calibration_table, claim_scenarios

__all__ = [
    "POWER_TARGET",
    "SIZE_LIMIT",
    "Calibration",
    "PilotModel",
    "Scenario",
    "calibrate",
    "calibration_frame",
    "calibration_table",
    "claim_scenarios",
]
