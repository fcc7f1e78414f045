r"""The claims registry and its verdict machinery: declare, evaluate, write outputs.

A claim is declared in code, before its confirmatory results exist, by the rules module of its
experiment kind (``claims.gaussian``, ``claims.restoration``, ``claims.policy``):

- the *estimand*: a quantity estimated once per seed (a slope, a floor, a difference, a ratio);
- the *region* of the estimand where the claim holds (``Region``);
- the *effect* that matters, inside the region, with the substantive reason for it written
  beside it (the calibration's power is computed there; it is never changed to reach power);
- ``ALPHA``, the one nominal level of every claim.

Inference (seed as the unit). A rule returns per-seed estimates (``Component``); the verdict
uses the t-interval of their mean at level ``1 - 2 ALPHA`` (``statsmodels``
``DescrStatsW.tconfint_mean``), or the Welch interval of a difference of means when the claim
compares with an independent control experiment (``CompareMeans.tconfint_diff``):

- *supported*: the interval lies inside the region (each one-sided bound is a test at ALPHA, so
  an interval inside a bounded region is a TOST equivalence test at ALPHA);
- *contradicted*: the interval lies outside the region;
- *inconclusive*: neither.

"For every task / capacity / environment" claims have one component per k and are
intersection-union tests: supported when every component is supported, each at ALPHA (no
multiplicity correction is needed for support); contradicted when some component's interval at
level ``1 - 2 ALPHA / K`` lies outside its region (Bonferroni over the K ways of being wrong).

Design power. Each verdict reports the power of its rule at the declared effect, with the
table's number of seeds, from ``experiments/results/calibration.csv``
(``calibration.scenarios``); never power computed from the estimate. A rule whose calibration is
missing, stale (rule changed since) or fails (size above ALPHA + 1.645 MCSE, or power below
0.80) can only be *inconclusive*: its ``raw_verdict`` says what the interval alone would say.

Status. A verdict is *confirmatory* when its experiment's TOML pre-registers it (a
``[preregistration]`` table with the run's seed and the claim's ``rule_fingerprint``, committed
before the run: ``tests/test_preregistration.py``) and the rule is unchanged since; *post hoc*
when the rule changed after pre-registration (it confirms nothing); *pilot* otherwise.

Outputs: ``experiments/results/claims.json``, ``paper/generated/claims.tex``; ``python -m
mol_diffusion claims`` prints the table.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from mol_diffusion import paths, stats
from mol_diffusion.artifacts import write_if_changed
from mol_diffusion.config import load_experiment, load_preregistration
from mol_diffusion.provenance import function_fingerprint
from mol_diffusion.sweeps import stored_table

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
    "load_calibration",
    "load_results",
    "register",
    "registry_fingerprint",
    "rule_fingerprint",
    "tex_escape",
    "verdict_frame",
    "write_outputs",
]

ALPHA = 0.05  # the one nominal level of every claim: each one-sided bound is a test at ALPHA
VERDICTS = ("supported", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Region:
    """An open interval ``(low, high)`` of the estimand where the claim holds (+-inf allowed)."""

    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self) -> None:
        if math.isnan(self.low) or math.isnan(self.high) or not self.low < self.high:
            raise ValueError(f"Region needs low < high, got ({self.low}, {self.high})")

    def inside(self, ci_low: float, ci_high: float) -> bool:
        return self.low < ci_low and ci_high < self.high

    def outside(self, ci_low: float, ci_high: float) -> bool:
        return ci_high <= self.low or ci_low >= self.high

    def __contains__(self, value: float) -> bool:
        return self.low < value < self.high

    def __str__(self) -> str:
        if math.isinf(self.low):
            return f"< {self.high:g}"
        if math.isinf(self.high):
            return f"> {self.low:g}"
        return f"in ({self.low:g}, {self.high:g})"


@dataclass(frozen=True, eq=False)
class Component:
    """Per-seed estimates of one part of a claim (the whole claim, or one k of "every k").

    Attributes:
        label: "" for a single-component claim, else the k it is about ("capacity 8", "task 0").
        values: (seeds,) the estimand computed on each seed alone.
        control: (control seeds,) per-seed estimates from an independent control experiment;
            when given, the estimand is mean(values) - mean(control) (Welch interval).
    """

    label: str
    values: np.ndarray
    control: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("values", "control"):
            v = getattr(self, name)
            if v is None:
                continue
            v = np.asarray(v, dtype=float)
            if v.ndim != 1 or len(v) < 2:
                raise stats.InsufficientDataError(
                    f"{name} of {self.label or 'the estimand'} needs >= 2 seeds, got shape "
                    f"{v.shape}"
                )
            if not np.isfinite(v).all():
                raise stats.InsufficientDataError(
                    f"{name} of {self.label or 'the estimand'} is not finite on some seed: {v}"
                )
            object.__setattr__(self, name, v)

    def interval(self, level: float) -> tuple[float, float, float]:
        """(estimate, low, high) at confidence ``level`` (two-sided)."""
        a = 1 - level
        if self.control is None:
            d = DescrStatsW(self.values)
            low, high = d.tconfint_mean(alpha=a)
            return float(d.mean), float(low), float(high)
        cm = CompareMeans(DescrStatsW(self.values), DescrStatsW(self.control))
        low, high = cm.tconfint_diff(alpha=a, usevar="unequal")
        return float(self.values.mean() - self.control.mean()), float(low), float(high)


@dataclass(frozen=True)
class Estimate:
    """What a rule returns: its components (one, or one per k) and a sentence of detail."""

    components: tuple[Component, ...]
    detail: str = ""

    def __post_init__(self) -> None:
        if not self.components:
            raise ValueError("an Estimate needs at least one component")


@dataclass(frozen=True)
class Claim:
    """A declared claim (module docstring). ``region`` and ``effect`` are one value for every
    component, or a mapping from component label to value. ``rule(table, results) ->
    Estimate``; ``results`` holds every experiment's table (for control experiments)."""

    id: str
    experiment: str
    statement: str
    estimand: str
    region: Region | Mapping[str, Region]
    effect: float | Mapping[str, float]
    effect_reason: str
    rule: Callable[[pd.DataFrame, dict], Estimate]
    control: str | None = None

    def __post_init__(self) -> None:
        if not self.effect_reason.strip():
            raise ValueError(f"claim {self.id!r}: effect_reason must say why the effect matters")
        labels = list(self.region) if isinstance(self.region, Mapping) else [""]
        if isinstance(self.effect, Mapping) and set(self.effect) != set(labels):
            raise ValueError(f"claim {self.id!r}: effect must name the components {labels}")
        for label in labels:
            region = self.region_of(label)
            if not isinstance(region, Region):
                raise ValueError(f"claim {self.id!r}: region {label!r} must be a Region")
            effect = self.effect_of(label)
            if effect not in region:
                raise ValueError(f"claim {self.id!r}: effect {effect} lies outside {region}")

    def region_of(self, label: str) -> Region:
        return self.region[label] if isinstance(self.region, Mapping) else self.region

    def effect_of(self, label: str) -> float:
        return float(self.effect[label] if isinstance(self.effect, Mapping) else self.effect)

    def region_text(self) -> str:
        if isinstance(self.region, Mapping):
            return "; ".join(f"{k} {v}" for k, v in self.region.items())
        return str(self.region)

    def effect_text(self) -> str:
        if isinstance(self.effect, Mapping):
            return "; ".join(f"{k} {v:g}" for k, v in self.effect.items())
        return f"{self.effect:g}"


REGISTRY: dict[str, Claim] = {}


def register(
    id: str,
    experiment: str,
    statement: str,
    *,
    estimand: str,
    region,
    effect,
    effect_reason: str,
    control: str | None = None,
):
    """Decorator: declare ``rule(table, results) -> Estimate`` as claim ``id``."""

    def wrap(rule):
        if id in REGISTRY:
            raise ValueError(f"claim {id!r} is registered twice")
        REGISTRY[id] = Claim(
            id, experiment, statement, estimand, region, effect, effect_reason, rule, control
        )
        return rule

    return wrap


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim on one results table.

    Attributes:
        claim, experiment, statement, estimand, region, effect, effect_reason: the declaration.
        estimate, ci_low, ci_high: the deciding component's mean of per-seed estimates and its
            ``1 - 2 ALPHA`` interval (None when not run / not evaluable).
        raw_verdict: what the interval alone says (``VERDICTS``), or "not run" /
            "not evaluable".
        verdict: ``raw_verdict``, or "inconclusive" when the rule's calibration is missing,
            stale or fails (module docstring).
        design_power: the calibrated power at the declared effect with this many seeds.
        size: the calibrated size (worst least-favourable null) with this many seeds.
        status: "pilot", "confirmatory" or "post hoc".
        n_seeds: seeds behind the estimate.
        components: per component: label, estimate, ci_low, ci_high (the 1 - 2 ALPHA
            interval), verdict, contra_low, contra_high (the 1 - 2 ALPHA / K interval that
            decides contradiction).
        detail: secondary numbers and how the verdict was reached.
        quick: computed from a quick (small) run.
        stale: why the table is not what the running code computes (``load_results``),
            None when it is; shown beside the status (``status_label``).
    """

    claim: str
    experiment: str
    statement: str
    estimand: str
    region: str
    effect: str
    effect_reason: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    raw_verdict: str = "not run"
    verdict: str = "not run"
    design_power: float | None = None
    size: float | None = None
    status: str = "pilot"
    n_seeds: int | None = None
    components: tuple = field(default_factory=tuple)
    detail: str = ""
    quick: bool = False
    stale: str | None = None

    @property
    def status_label(self) -> str:
        """``status``, with ", STALE TABLE" when the verdict comes from a stale table."""
        return self.status + (", STALE TABLE" if self.stale else "")

    @property
    def evaluated(self) -> bool:
        return self.verdict in VERDICTS


# ---------------------------------------------------------------- inference
def decide(claim: Claim, estimate: Estimate) -> dict:
    """Verdict fields from per-seed estimates (module docstring): every component's interval at
    ``1 - 2 ALPHA`` and, for contradiction, at ``1 - 2 ALPHA / K``."""
    k = len(estimate.components)
    parts, deciding = [], None
    for comp in estimate.components:
        region = claim.region_of(comp.label)
        mean, low, high = comp.interval(1 - 2 * ALPHA)
        _, wide_low, wide_high = comp.interval(1 - 2 * ALPHA / k)
        if region.inside(low, high):
            verdict = "supported"
        elif region.outside(wide_low, wide_high):
            verdict = "contradicted"
        else:
            verdict = "inconclusive"
        margin = min(low - region.low, region.high - high)  # how far inside (< 0: not inside)
        parts.append(
            dict(label=comp.label, estimate=mean, ci_low=low, ci_high=high, verdict=verdict)
        )
        rank = (verdict != "contradicted", margin)  # a contradicting component decides first
        if deciding is None or rank < deciding[0]:
            deciding = (rank, parts[-1])
    verdicts = {p["verdict"] for p in parts}
    if "contradicted" in verdicts:
        raw = "contradicted"
    elif verdicts == {"supported"}:
        raw = "supported"
    else:
        raw = "inconclusive"
    top = deciding[1]
    seeds = {len(c.values) for c in estimate.components}
    return dict(
        estimate=top["estimate"],
        ci_low=top["ci_low"],
        ci_high=top["ci_high"],
        raw_verdict=raw,
        n_seeds=min(seeds),
        components=tuple(parts),
    )


def _check_variation(estimate: Estimate) -> None:
    """InsufficientDataError when a component's per-seed estimates do not vary (relative spread
    below 1e-12): a zero-width interval would decide anything."""
    for comp in estimate.components:
        for v in (comp.values, comp.control):
            if v is None:
                continue
            if float(np.std(v, ddof=1)) <= 1e-12 * max(1.0, float(np.abs(v).max())):
                raise stats.InsufficientDataError(
                    f"{comp.label or 'the estimand'}: the per-seed estimates do not vary "
                    f"({v[0]:.6g} on every seed), so there is no interval"
                )


# ---------------------------------------------------------------- calibration and status
def load_calibration(path=None) -> pd.DataFrame | None:
    """``calibration.csv`` (``calibration.scenarios.calibration_table``), or None if absent."""
    path = paths.CALIBRATION_CSV if path is None else Path(path)
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(
            f"{path}: not a calibration table ({type(err).__name__}); rebuild it with "
            "python -m mol_diffusion calibrate"
        ) from err
    missing = {"claim", "scenario", "seeds", "rate", "passes", "rule"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a calibration table, columns {sorted(missing)} missing")
    return table


def _calibrated(claim_id: str, seeds: int, calibration: pd.DataFrame | None) -> tuple:
    """(size, power, why-not or "") of a rule at ``seeds`` seeds from the calibration table."""
    if calibration is None:
        return None, None, "no calibration.csv"
    rows = calibration[(calibration.claim == claim_id) & (calibration.seeds == seeds)]
    if rows.empty:
        return None, None, f"not calibrated at {seeds} seeds"
    if (rows.rule != rule_fingerprint(claim_id)).any():
        return None, None, "calibration is stale (the rule changed since)"
    sizes, powers = rows[rows.scenario == "size"], rows[rows.scenario == "power"]
    if sizes.empty or powers.empty:
        return None, None, "calibration lacks a size or a power scenario"
    size, power = float(sizes.rate.max()), float(powers.rate.min())
    why = []  # each row's pass / fail is the harness's (``calibration.harness.calibrate``)
    if not sizes.passes.all():
        why.append(f"size {size:.3f} exceeds {ALPHA}")
    if not powers.passes.all():
        why.append(f"design power {power:.2f} < 0.8")  # the harness's POWER_TARGET
    return size, power, "; ".join(why)


@functools.lru_cache(maxsize=64)
def _registration(experiment: str, stamp: tuple) -> tuple:
    """(preregistration, config seed) of an experiment's TOML; ``stamp`` (the file's size and
    mtime) makes an edited file a new key."""
    prereg = load_preregistration(experiment)
    return prereg, None if prereg is None else load_experiment(experiment).seed


def _status(claim: Claim, table: pd.DataFrame, quick: bool) -> str:
    if quick:
        return "pilot"
    path = paths.EXPERIMENTS / f"{claim.experiment}.toml"
    stat = path.stat() if path.is_file() else None
    stamp = (stat.st_size, stat.st_mtime_ns) if stat else ()
    prereg, seed = _registration(claim.experiment, stamp)
    if prereg is None or claim.id not in prereg.rules:
        return "pilot"
    if seed != prereg.seed:
        return "pilot"  # the table was computed under another seed than the registered one
    return "confirmatory" if prereg.rules[claim.id] == rule_fingerprint(claim.id) else "post hoc"


# ---------------------------------------------------------------- evaluation and outputs
def load_results(quick: bool = False, results_dir=None) -> dict[str, pd.DataFrame]:
    """Results tables of the claims' experiments and controls found under ``results_dir``
    (default ``experiments/results``;
    ``<name>-quick.csv`` when quick), each checked against its meta file (``sweeps.stored_table``:
    a damaged table raises ``ValueError``). Each table's ``attrs["stale"]`` says why it is not
    what the running code computes from its config, None when it is; verdicts on a stale table
    say so."""
    directory = paths.RESULTS if results_dir is None else Path(results_dir)
    tables = {}
    needed = {c.experiment for c in REGISTRY.values()}
    needed |= {c.control for c in REGISTRY.values() if c.control}  # a control may have no claims
    for experiment in sorted(needed):
        path = directory / f"{experiment}{'-quick' if quick else ''}.csv"
        if path.is_file():
            tables[experiment] = stored_table(load_experiment(experiment, quick=quick), path)
    return tables


def _claim(claim_id: str) -> Claim:
    if claim_id not in REGISTRY:
        raise ValueError(f"unknown claim {claim_id!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[claim_id]


def _missing_columns(claim: Claim, table: pd.DataFrame) -> list[str]:
    """The columns of the claim's experiment's table that ``table`` lacks."""
    config = load_experiment(claim.experiment)
    return sorted(set(config.kind.columns(config)) - set(table.columns))


def rule_fingerprint(claim_id: str) -> str:
    """sha256 (16 hex digits) of a claim's declaration (experiment, statement, estimand,
    region, effect, ALPHA), the code of its rule (the rule function, the module-level helpers,
    classes and constants it uses, and the package modules they call:
    ``provenance.function_fingerprint``) and of ``decide``. Other rules do not count."""
    claim = _claim(claim_id)
    decl = [
        claim.id,
        claim.experiment,
        claim.statement,
        claim.estimand,
        claim.region_text(),
        claim.effect_text(),
        claim.control,
        ALPHA,
    ]
    blob = json.dumps([decl, function_fingerprint(claim.rule), function_fingerprint(decide)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def registry_fingerprint() -> str:
    """sha256 (16 hex digits) of every claim's ``rule_fingerprint``, in registration order."""
    blob = json.dumps([[cid, rule_fingerprint(cid)] for cid in REGISTRY])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def evaluate(
    claim_id: str,
    table: pd.DataFrame | None,
    *,
    quick: bool = False,
    results: dict | None = None,
    calibration: pd.DataFrame | bool | None = False,
) -> Verdict:
    """The verdict of one claim on its experiment's table (``None``: not run).

    Args:
        claim_id: a registered claim.
        table: its experiment's results table.
        quick: the table comes from a quick run (never confirmatory).
        results: every experiment's table, for claims that compare with a control experiment.
        calibration: the calibration table; ``False`` (default) loads ``calibration.csv``;
            ``None`` means no calibration (the verdict is at most inconclusive).
    """
    claim = _claim(claim_id)
    base = dict(
        claim=claim.id,
        experiment=claim.experiment,
        statement=claim.statement,
        estimand=claim.estimand,
        region=claim.region_text(),
        effect=claim.effect_text(),
        effect_reason=claim.effect_reason,
        quick=quick,
    )
    if table is None:
        return Verdict(**base, detail=f"not run: no results for experiment {claim.experiment!r}")
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table must be a pandas DataFrame or None, got {type(table).__name__}")
    control = (results or {}).get(claim.control) if claim.control else None
    stale = [
        f"{name}: {t.attrs['stale']}"
        for name, t in ((claim.experiment, table), (claim.control, control))
        if t is not None and t.attrs.get("stale")
    ]
    base["stale"] = "; ".join(stale) or None
    if not (calibration is False or calibration is None or isinstance(calibration, pd.DataFrame)):
        raise ValueError(
            "calibration must be a DataFrame (load_calibration(path)), None or False, got "
            f"{type(calibration).__name__}"
        )
    if table.empty:
        raise ValueError(f"claim {claim_id}: the table of {claim.experiment!r} has no rows")

    def not_evaluable(err: Exception) -> Verdict:
        # a registered run that the rule cannot evaluate is still that run: its status and
        # seeds are reported, so a confirmatory "not evaluable" is not mistaken for a pilot
        seeds = table.replicate.nunique() if "replicate" in table else None
        return Verdict(
            **base,
            raw_verdict="not evaluable",
            verdict="not evaluable",
            status=_status(claim, table, quick),
            n_seeds=seeds,
            detail=f"{err}",
        )

    try:
        estimate = claim.rule(table, results or {})
    except stats.InsufficientDataError as err:
        return not_evaluable(err)
    except (AttributeError, KeyError) as err:
        missing = _missing_columns(claim, table)
        if not missing:
            raise  # a column is there: a bug in the rule, not bad input
        raise ValueError(
            f"claim {claim_id}: the table lacks the columns {missing} of experiment "
            f"{claim.experiment!r}; pass that experiment's results table"
        ) from err
    except ValueError as err:
        raise ValueError(f"claim {claim_id}: {err}") from err
    try:
        _check_variation(estimate)
        fields = decide(claim, estimate)
    except stats.InsufficientDataError as err:
        return not_evaluable(err)
    k = len(estimate.components)
    for part, comp in zip(fields["components"], estimate.components, strict=True):
        # the interval that decides contradiction (1 - 2 alpha / K), beside the 90% one
        _, part["contra_low"], part["contra_high"] = comp.interval(1 - 2 * ALPHA / k)
    if not math.isfinite(fields["estimate"]):
        raise ValueError(f"claim {claim_id}: the estimate is not finite ({fields['estimate']})")
    if calibration is False:
        calibration = load_calibration()
    size, power, why = _calibrated(claim.id, fields["n_seeds"], calibration)
    verdict = fields["raw_verdict"]
    detail = estimate.detail
    if why:
        detail += f"; at most inconclusive: {why}"
        if verdict != "inconclusive":
            detail += f" (the interval alone: {verdict})"
        verdict = "inconclusive"
    return Verdict(
        **base,
        **fields,
        verdict=verdict,
        design_power=power,
        size=size,
        status=_status(claim, table, quick),
        detail=detail,
    )


def evaluate_all(
    results: dict[str, pd.DataFrame] | None = None,
    *,
    quick: bool = False,
    results_dir=None,
    calibration: pd.DataFrame | bool | None = False,
) -> list[Verdict]:
    """Verdicts of every registered claim; ``results`` maps experiment -> table (default: load
    from ``results_dir``); ``calibration`` as in ``evaluate``."""
    results = load_results(quick, results_dir) if results is None else results
    if calibration is False:
        calibration = load_calibration()
    return [
        evaluate(
            cid,
            results.get(claim.experiment),
            quick=quick,
            results=results,
            calibration=calibration,
        )
        for cid, claim in REGISTRY.items()
    ]


def describe(verdict: Verdict) -> str:
    """A verdict in words: verdict, status, claim, statement, and the numbers behind it."""
    head = f"[{verdict.verdict}] ({verdict.status_label}) {verdict.claim}: {verdict.statement}"
    if verdict.stale:
        head += f"\n       STALE TABLE: {verdict.stale}"
    if not verdict.evaluated:
        return f"{head}\n       {verdict.detail}"
    power = "unknown" if verdict.design_power is None else f"{verdict.design_power:.2f}"
    numbers = (
        f"{verdict.estimand} = {verdict.estimate:.3g}, {1 - 2 * ALPHA:.0%} CI "
        f"[{verdict.ci_low:.3g}, {verdict.ci_high:.3g}], region {verdict.region}, "
        f"{verdict.n_seeds} seeds, design power {power}"
    )
    return f"{head}\n       {numbers}\n       {verdict.detail}"


TABLE_COLUMNS = [
    "claim",
    "experiment",
    "estimate",
    "ci_low",
    "ci_high",
    "region",
    "verdict",
    "design_power",
    "n_seeds",
    "status",
]


def verdict_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per claim: ``TABLE_COLUMNS``."""
    frame = pd.DataFrame([asdict(v) for v in verdicts])[TABLE_COLUMNS]
    frame["status"] = [v.status_label for v in verdicts]
    return frame.astype({"n_seeds": "Int64"})


def _json_value(value):
    """Standard JSON: NaN -> null, +/-inf -> "inf" / "-inf", numpy scalars -> Python numbers,
    floats to 12 significant digits."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    # 12 significant digits: the last bits of a float depend on summation order (BLAS
    # threads), and claims.json must not change when the tables did not
    return float(f"{value:.12g}")


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


_DIGIT_WORDS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def _macro_name(claim_id: str) -> str:
    """``claim`` + the id in camel case, digits spelled out (TeX macro names are letters only):
    ``specialist_bound_d4`` -> ``claimSpecialistBoundDFour``."""
    camel = "".join(part.capitalize() for part in claim_id.split("_"))
    return "claim" + re.sub(r"\d", lambda m: _DIGIT_WORDS[int(m.group())], camel)


def write_outputs(verdicts: list[Verdict], *, json_path=None, tex_path=None) -> None:
    """Write ``claims.json`` and ``claims.tex``: per claim the macros ``\\claim<Name>Estimate``,
    ``Low``, ``High``, ``Power``, ``Verdict`` and ``Status`` (e.g. ``\\claimPairedRateVerdict``);
    for claims of several components also ``\\claim<Name><Label>Estimate``, ``Low``, ``High``
    and ``Verdict`` (digits of the label as letters: "task 0" -> ``TaskA``); and the whole
    table as ``\\claimsTable``."""
    json_path = json_path or paths.CLAIMS_JSON
    tex_path = tex_path or paths.CLAIMS_TEX
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tex_path.parent.mkdir(parents=True, exist_ok=True)
    records = [{k: _json_value(v) for k, v in asdict(verdict).items()} for verdict in verdicts]
    write_if_changed(json_path, json.dumps(records, indent=2, allow_nan=False) + "\n")
    lines = [
        "% Generated by mol_diffusion.claims.write_outputs from experiments/results; do not edit."
    ]
    for v in verdicts:
        name = _macro_name(v.claim)
        values = {
            "Estimate": v.estimate,
            "Low": v.ci_low,
            "High": v.ci_high,
            "Power": v.design_power,
        }
        lines += [rf"\newcommand{{\{name}{key}}}{{{_fmt(val)}}}" for key, val in values.items()]
        lines.append(rf"\newcommand{{\{name}Verdict}}{{{v.verdict}}}")
        lines.append(rf"\newcommand{{\{name}Status}}{{{v.status_label}}}")
        for comp in v.components if len(v.components) > 1 else ():
            part = name + "".join(w.capitalize() for w in re.split(r"[^A-Za-z]+", comp["label"]))
            digits = "".join(ch for ch in comp["label"] if ch.isdigit())
            part += "".join("ABCDEFGHIJ"[int(d)] for d in digits)  # macro names have no digits
            for key, field_ in (("Estimate", "estimate"), ("Low", "ci_low"), ("High", "ci_high")):
                lines.append(rf"\newcommand{{\{part}{key}}}{{{_fmt(comp[field_])}}}")
            lines.append(rf"\newcommand{{\{part}Verdict}}{{{comp['verdict']}}}")
    rows = []
    for v in verdicts:
        word = rf"\textbf{{{v.verdict}}}" if v.verdict == "contradicted" else v.verdict
        ci = f"[{_fmt(v.ci_low)}, {_fmt(v.ci_high)}]" if v.ci_low is not None else "--"
        cells = [
            tex_escape(v.claim),
            _fmt(v.estimate),
            ci,
            tex_escape(v.region),
            word,
            _fmt(v.design_power),
            str(v.n_seeds) if v.n_seeds is not None else "--",
            v.status,
        ]
        rows.append(" & ".join(cells) + r" \\")
    lines += [
        r"\newcommand{\claimsTable}{%",
        r"\begin{tabular}{lrrllrrl}",
        r"\hline",
        rf"claim & estimate & {1 - 2 * ALPHA:.0%} CI & region & verdict & power & seeds & "
        r"status \\".replace("%", r"\%"),
        r"\hline",
        *rows,
        r"\hline",
        r"\end{tabular}}",
    ]
    write_if_changed(tex_path, "\n".join(lines) + "\n")
