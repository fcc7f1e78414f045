"""Every repository path in one place (code never builds these paths itself)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
RESULTS = EXPERIMENTS / "results"
FIGURES = ROOT / "figures"
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = NOTEBOOKS / "executed"
PAPER = ROOT / "paper"
PAPER_GENERATED = PAPER / "generated"
CLAIMS_JSON = RESULTS / "claims.json"
CALIBRATION_CSV = RESULTS / "calibration.csv"
PILOTS = RESULTS / "pilot"  # pilot tables kept when a confirmatory run replaced them
CLAIMS_TEX = PAPER_GENERATED / "claims.tex"
