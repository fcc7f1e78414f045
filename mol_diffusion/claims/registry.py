r"""The claims registry and its verdict machinery: register, evaluate, write outputs.

Each claim is registered in code, before any result exists, by the rules module of its
experiment kind (``claims.gaussian``, ``claims.restoration``, ``claims.policy``): a statement,
the experiment that tests it, the statistic, and a threshold. A verdict (statistic, 95% CI,
p-value where one applies, pass / fail) is computed from the experiment's results table;
nothing is typed in. A claim whose experiment has not been run gets ``passed = None``.
Thresholds change only with a written reason beside them.

Outputs: ``experiments/results/claims.json``, ``paper/generated/claims.tex``; ``python -m
mol_diffusion claims`` prints the table.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mol_diffusion import paths, stats
from mol_diffusion.config import load_experiment
from mol_diffusion.provenance import code_fingerprint
from mol_diffusion.sweeps import read_table

__all__ = [
    "REGISTRY",
    "Claim",
    "Verdict",
    "describe",
    "evaluate",
    "evaluate_all",
    "load_results",
    "register",
    "registry_fingerprint",
    "rule_fingerprint",
    "tex_escape",
    "verdict_frame",
    "write_outputs",
]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim on one results table.

    Attributes:
        claim, experiment, statement, statistic_name, threshold: copied from the claim.
        statistic, ci_low, ci_high, p_value: computed (None where not applicable / not run).
        passed: True / False, or None when the experiment has not been run.
        n_seeds: replicates behind the statistic.
        detail: secondary numbers and how the verdict was reached.
        quick: computed from a quick (small) run.
    """

    claim: str
    experiment: str
    statement: str
    statistic_name: str
    threshold: str
    statistic: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    passed: bool | None = None
    n_seeds: int | None = None
    detail: str = ""
    quick: bool = False


@dataclass(frozen=True)
class Claim:
    """A registered claim: evaluate(table) -> dict of Verdict fields."""

    id: str
    experiment: str
    statement: str
    statistic_name: str
    threshold: str
    evaluate: Callable[[pd.DataFrame, dict], dict]  # (own table, all tables) -> verdict fields


REGISTRY: dict[str, Claim] = {}


def register(id: str, experiment: str, statement: str, statistic_name: str, threshold: str):
    """Decorator: register ``fn(table, results) -> verdict fields`` as claim ``id``."""

    def wrap(fn):
        if id in REGISTRY:
            raise ValueError(f"claim {id!r} is registered twice")
        REGISTRY[id] = Claim(id, experiment, statement, statistic_name, threshold, fn)
        return fn

    return wrap


# ---------------------------------------------------------------- evaluation and outputs
def load_results(quick: bool = False, results_dir=None) -> dict[str, pd.DataFrame]:
    """Results tables found under ``results_dir`` (default ``experiments/results``;
    ``<name>-quick.csv`` when quick)."""
    directory = paths.RESULTS if results_dir is None else Path(results_dir)
    tables = {}
    for experiment in sorted({c.experiment for c in REGISTRY.values()}):
        path = directory / f"{experiment}{'-quick' if quick else ''}.csv"
        if path.is_file():
            kind = load_experiment(experiment, quick=quick).kind
            tables[experiment] = read_table(path, kind.integer_columns)
    return tables


def rule_fingerprint(claim_id: str) -> str:
    """sha256 (16 hex digits) of a claim's declaration (experiment, statement, statistic,
    threshold) and the code of its rule: the module that registers it and what that imports,
    normalized (``provenance.code_fingerprint``), without the registry's own machinery."""
    if claim_id not in REGISTRY:
        raise ValueError(f"unknown claim {claim_id!r}; registered: {sorted(REGISTRY)}")
    claim = REGISTRY[claim_id]
    code = code_fingerprint([claim.evaluate.__module__], exclude=(__name__,))
    blob = json.dumps(
        [claim.id, claim.experiment, claim.statement, claim.statistic_name, claim.threshold, code]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def registry_fingerprint() -> str:
    """sha256 (16 hex digits) of every claim's ``rule_fingerprint``, in registration order: what
    a confirmatory config records before its run."""
    blob = json.dumps([[cid, rule_fingerprint(cid)] for cid in REGISTRY])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def evaluate(
    claim_id: str, table: pd.DataFrame | None, *, quick: bool = False, results: dict | None = None
) -> Verdict:
    """The verdict of one claim on its experiment's table (``None``: not run). ``results`` holds
    every experiment's table, for claims that compare with a control experiment."""
    if claim_id not in REGISTRY:
        raise ValueError(f"unknown claim {claim_id!r}; registered: {sorted(REGISTRY)}")
    claim = REGISTRY[claim_id]
    base = dict(
        claim=claim.id,
        experiment=claim.experiment,
        statement=claim.statement,
        statistic_name=claim.statistic_name,
        threshold=claim.threshold,
        quick=quick,
    )
    if table is None:
        return Verdict(**base, detail=f"not run: no results for experiment {claim.experiment!r}")
    try:
        values = claim.evaluate(table, results or {})
    except stats.InsufficientDataError as err:
        return Verdict(**base, detail=f"not evaluable on this table: {err}")
    for key in ("statistic", "ci_low", "ci_high", "p_value"):
        value = values.get(key)
        if value is None:
            continue
        # an unbounded interval (+/- inf) is a legitimate answer; NaN never is
        if math.isnan(value) or (key in ("statistic", "p_value") and not math.isfinite(value)):
            raise ValueError(f"claim {claim_id}: {key} is not finite ({value})")
    return Verdict(**base, **values)


def evaluate_all(
    results: dict[str, pd.DataFrame] | None = None, *, quick: bool = False, results_dir=None
) -> list[Verdict]:
    """Verdicts of every registered claim; ``results`` maps experiment -> table (default: load
    from ``results_dir``)."""
    results = load_results(quick, results_dir) if results is None else results
    return [
        evaluate(cid, results.get(claim.experiment), quick=quick, results=results)
        for cid, claim in REGISTRY.items()
    ]


def describe(verdict: Verdict) -> str:
    """A verdict in words: status, claim, statement, and the numbers behind it."""
    status = {True: "pass", False: "FAIL", None: "----"}[verdict.passed]
    return f"[{status}] {verdict.claim}: {verdict.statement}\n       {verdict.detail}"


def verdict_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per claim: claim, experiment, statistic, CI, p-value, verdict, seeds."""
    frame = pd.DataFrame([asdict(v) for v in verdicts])
    none = frame.detail.str.startswith("not evaluable").map(
        {True: "not evaluable", False: "not run"}
    )
    frame["verdict"] = frame.passed.map({True: "pass", False: "FAIL"}).fillna(none)
    return frame[
        [
            "claim",
            "experiment",
            "statistic",
            "ci_low",
            "ci_high",
            "p_value",
            "verdict",
            "n_seeds",
            "threshold",
        ]
    ]


def _json_value(value):
    """Standard JSON: NaN -> null, +/-inf -> "inf" / "-inf", numpy scalars -> Python numbers."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def tex_escape(text: str) -> str:
    """Escape text for LaTeX: backslash, & % _ # ^, and < > (wrong glyphs in the default font)."""
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("^", r"\^{}"),
        ("<", "$<$"),
        (">", "$>$"),
    ):
        text = text.replace(a, b)
    return text


def _fmt(value: float | None) -> str:
    """A number for LaTeX (math mode), ``--`` when absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if math.isinf(value):
        return r"$\infty$" if value > 0 else r"$-\infty$"
    return f"${value:.3g}$"


def _macro_name(claim_id: str) -> str:
    return "claim" + "".join(part.capitalize() for part in claim_id.split("_"))


def write_outputs(verdicts: list[Verdict], *, json_path=None, tex_path=None) -> None:
    """Write ``claims.json`` and ``claims.tex``: per claim the macros ``\\claim<Name>Statistic``,
    ``Low``, ``High``, ``PValue`` and ``Verdict`` (e.g. ``\\claimPairedRateVerdict``), and the
    whole table as ``\\claimsTable``."""
    json_path = json_path or paths.CLAIMS_JSON
    tex_path = tex_path or paths.CLAIMS_TEX
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tex_path.parent.mkdir(parents=True, exist_ok=True)
    records = [{k: _json_value(v) for k, v in asdict(verdict).items()} for verdict in verdicts]
    json_path.write_text(json.dumps(records, indent=2, allow_nan=False) + "\n")
    lines = [
        "% Generated by mol_diffusion.claims.write_outputs from experiments/results; do not edit."
    ]
    for v in verdicts:
        name = _macro_name(v.claim)
        word = {True: "pass", False: "fail", None: "not run"}[v.passed]
        values = {"Statistic": v.statistic, "Low": v.ci_low, "High": v.ci_high, "PValue": v.p_value}
        lines += [rf"\newcommand{{\{name}{key}}}{{{_fmt(val)}}}" for key, val in values.items()]
        lines.append(rf"\newcommand{{\{name}Verdict}}{{{word}}}")
    rows = []
    for v in verdicts:
        verdict = {True: "pass", False: r"\textbf{fail}", None: "not run"}[v.passed]
        ci = f"[{_fmt(v.ci_low)}, {_fmt(v.ci_high)}]" if v.ci_low is not None else "--"
        cells = [tex_escape(v.claim), tex_escape(v.experiment), _fmt(v.statistic), ci, verdict]
        rows.append(" & ".join(cells) + r" \\")
    lines += [
        r"\newcommand{\claimsTable}{%",
        r"\begin{tabular}{llrrl}",
        r"\hline",
        r"claim & experiment & statistic & 95\% CI & verdict \\",
        r"\hline",
        *rows,
        r"\hline",
        r"\end{tabular}}",
    ]
    tex_path.write_text("\n".join(lines) + "\n")
