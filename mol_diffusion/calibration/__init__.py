"""Calibration of claim rules by simulation: the harness (``calibration.harness``) and
generative models of results tables fitted on pilot tables (``calibration.models``)."""

from mol_diffusion.calibration.harness import (
    POWER_TARGET,
    SIZE_LIMIT,
    Calibration,
    Scenario,
    calibrate,
    calibration_frame,
)
from mol_diffusion.calibration.models import PilotModel

__all__ = [
    "POWER_TARGET",
    "SIZE_LIMIT",
    "Calibration",
    "PilotModel",
    "Scenario",
    "calibrate",
    "calibration_frame",
]
