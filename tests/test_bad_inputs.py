"""The bad inputs a user tried, one table: each gives a clear error that names the argument (or
the file) and what was expected, never a NaN, a silent coercion or an error from deep inside
numpy, torch or pandas.

Each row: an id, a call, the exception type and a regular expression its message must match.
The cases come from trying the library as a new user would (every public entry point with
wrong types, shapes, ranges, empty inputs, damaged files); cases that already had a test of
their own elsewhere are not repeated here.
"""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_configs import TINY

import mol_diffusion as md
from mol_diffusion import claims, metrics, sweeps
from mol_diffusion.calibration.scenarios import calibration_table
from mol_diffusion.config import load_experiment
from mol_diffusion.policy import DiffusionPolicy, DiffusionPolicyConfig, rollout
from mol_diffusion.policy.data import Trajectories, action_windows, observation_windows
from mol_diffusion.schedules import VPSchedule
from mol_diffusion.scores import LinearGaussianScore, MLPScore, RandomFeatureScore
from mol_diffusion.tasks import Denoise, Inpaint, RestorationTasks, load_digits_images
from mol_diffusion.two_stage import two_stage

FAMILY = md.make_gaussian_family(num_tasks=2, dim=2, cond_dim=2, seed=0)


def pairs(n=64, scale=1.0, seed=0):
    c, x = FAMILY.sample(0, n, torch.Generator().manual_seed(seed))
    return c, x * scale


def gen():
    return torch.Generator().manual_seed(0)


def fit_huge_lr():
    MLPScore(16, 1, lr=1e6, steps=50).fit(*pairs(), generator=gen())


def fit_huge_data(model):
    return lambda: model.fit(*pairs(scale=1e200), generator=gen())


def risk_of_nan_score():
    metrics.excess_risk(
        lambda x_t, c, t: torch.full_like(x_t, float("nan")), FAMILY, [0.5, 0.5], generator=gen()
    )


def digits(scale=1.0, as_list=False):
    images, sources = load_digits_images()
    images = images[:200] * scale
    return (images.tolist() if as_list else images), sources[:200]


def restoration_tasks(scale=1.0, as_list=False):
    images, sources = digits(scale, as_list)
    return lambda: RestorationTasks(images, sources, (Denoise(0.3),))


def two_stage_with_instance():
    c, x = pairs()
    two_stage(
        [(c, x), (c, x)],
        [c, c],
        [0.5, 0.5],
        specialist=LinearGaussianScore(),  # an instance, not a factory
        generalist=lambda: RandomFeatureScore(num_features=8),
        generator=gen(),
    )


def trajectories(**change):
    b, t, o, a = 2, 5, 3, 2
    fields = dict(
        observations=np.zeros((b, t + 1, o), np.float32),
        actions=np.zeros((b, t, a), np.float32),
        rewards=np.zeros((b, t)),
        success=np.zeros((b, t), bool),
        env_index=np.zeros(b, int),
        seeds=np.arange(b),
        goals=np.zeros((b, t), int),
    )
    fields.update(change)
    return lambda: Trajectories(**fields)


def tiny_policy():
    return DiffusionPolicy(
        DiffusionPolicyConfig(
            width=8, depth=1, steps=2, obs_horizon=2, pred_horizon=4, action_horizon=2
        )
    )


def garbage_policy_file(tmp_path, content: bytes):
    path = tmp_path / "policy.pt"
    path.write_bytes(content)
    return lambda: DiffusionPolicy.load(path)


def config_file(tmp_path, edit, name="pareto_front"):
    text = (md.paths.EXPERIMENTS / f"{name}.toml").read_text()
    edited = edit(text)
    # an edit that no longer matches the shipped file would test the shipped file itself
    assert edited != text, f"the edit does not change the shipped {name}.toml"
    path = tmp_path / "edited.toml"
    path.write_text(edited)
    return lambda: load_experiment(path)


def garbage_calibration(tmp_path):
    path = tmp_path / "calibration.csv"
    path.write_bytes(b"\xa9\xff\x00 not a table")
    return lambda: claims.load_calibration(path)


def evaluate(table, **options):
    return lambda: claims.evaluate("pareto_front", table, **options)


def policy_toml(tmp, old, new):
    return config_file(tmp, lambda t: t.replace(old, new, 1), name="diffusion_policy")


CASES = [
    # fits that diverge or overflow stop with an error, never a NaN or a huge finite loss
    ("mlp lr 1e6", lambda _: fit_huge_lr, md.DivergenceError, r"training loss became .* lower lr"),
    (
        "linear fit on x ~ 1e200",
        lambda _: fit_huge_data(LinearGaussianScore()),
        md.DivergenceError,
        "non-finite scores.*standardize c and x",
    ),
    (
        "random features on x ~ 1e200",
        lambda _: fit_huge_data(RandomFeatureScore(num_features=8)),
        ValueError,
        r"x is too large to standardize",
    ),
    (
        "mlp on x ~ 1e200",
        lambda _: fit_huge_data(MLPScore(8, 1, steps=5)),
        ValueError,
        r"x is too large to standardize",
    ),
    ("excess risk of a NaN score", lambda _: risk_of_nan_score, ValueError, "score must be finite"),
    # option types: a string is not a number
    ("string ema_decay", lambda _: lambda: MLPScore(ema_decay="0.9"), ValueError, "ema_decay"),
    ("string inpaint fraction", lambda _: lambda: Inpaint("0.5"), ValueError, "fraction must be"),
    # images and tensors
    ("0-255 images", lambda _: restoration_tasks(scale=255.0), ValueError, r"\[0, 1\].*255"),
    ("images as a list", lambda _: restoration_tasks(as_list=True), ValueError, "torch.Tensor"),
    (
        "factory expected",
        lambda _: two_stage_with_instance,
        ValueError,
        "specialist must be a factory",
    ),
    # policies: lists for arrays, empty windows and batches, foreign files
    (
        "trajectories of lists",
        lambda _: trajectories(rewards=[[0.0] * 5] * 2),
        ValueError,
        "rewards must be a numpy array",
    ),
    (
        "goal counts of another length",
        lambda _: trajectories(goals=np.zeros((2, 4), int)),
        ValueError,
        r"goals must have shape \(2, 5\)",
    ),
    (
        "trajectories without steps",
        lambda _: trajectories(
            observations=np.zeros((2, 1, 3), np.float32), actions=np.zeros((2, 0, 2), np.float32)
        ),
        ValueError,
        "at least one step",
    ),
    (
        "observation windows of no episode",
        lambda _: lambda: observation_windows(np.zeros((0, 6, 3), np.float32), 2),
        ValueError,
        "observations must hold at least one episode",
    ),
    (
        "action windows of no step",
        lambda _: lambda: action_windows(np.zeros((2, 0, 2), np.float32), 2, 4),
        ValueError,
        "actions must hold at least one episode of at least 1 steps",
    ),
    (
        "policy fit on no window",
        lambda _: (
            lambda: tiny_policy().fit(np.zeros((0, 2, 3)), np.zeros((0, 4, 2)), generator=gen())
        ),
        ValueError,
        "at least one window",
    ),
    (
        "rollout of no episode",
        lambda _: lambda: rollout(None, ["PointNavOpen-v0"], [], [], 10),
        ValueError,
        "at least one episode",
    ),
    (
        "garbage .pt file",
        lambda tmp: garbage_policy_file(tmp, b"\x00garbage, not a checkpoint"),
        ValueError,
        "policy.pt: not a saved DiffusionPolicy",
    ),
    (
        "a .pt of another object",
        lambda tmp: (
            torch.save({"weights": 1}, tmp / "policy.pt"),
            lambda: DiffusionPolicy.load(tmp / "policy.pt"),
        )[1],
        ValueError,
        r"policy.pt: state must be a DiffusionPolicy.state_dict\(\)",
    ),
    # configs
    (
        "typo inside [quick], quick off",
        lambda tmp: config_file(tmp, lambda t: t.replace("[quick]", "[quick]\nreplicatez = 2")),
        ValueError,
        r"unknown keys \['replicatez'\]",
    ),
    (
        'weights = "equal"',
        lambda tmp: config_file(
            tmp, lambda t: re.sub(r"^weights = .*$", 'weights = "equal"', t, count=1, flags=re.M)
        ),
        ValueError,
        'weights must be "uniform" or a list',
    ),
    # schedules, shapes and metrics
    ("schedule as a string", lambda _: lambda: MLPScore(schedule="vp"), ValueError, "VPSchedule"),
    ("beta_min as a string", lambda _: lambda: VPSchedule(beta_min="0.1"), ValueError, "beta_min"),
    (
        "x without columns",
        lambda _: (
            lambda: MLPScore(8, 1, steps=2).fit(
                torch.zeros(4, 2, dtype=torch.float64),
                torch.zeros(4, 0, dtype=torch.float64),
                generator=gen(),
            )
        ),
        ValueError,
        "x must hold at least one row and one column",
    ),
    (
        "operators as names",
        lambda _: lambda: RestorationTasks(*digits(), ("denoise",)),
        ValueError,
        "operators must be a tuple of degradations",
    ),
    (
        "psnr of a NaN estimate",
        lambda _: lambda: metrics.psnr(torch.full((2, 4), float("nan")), torch.zeros(2, 4)),
        ValueError,
        "estimate must be finite",
    ),
    (
        "psnr data_range as a string",
        lambda _: lambda: metrics.psnr(torch.zeros(2, 4), torch.ones(2, 4), data_range="1"),
        ValueError,
        "data_range must be a finite real number",
    ),
    (
        "kl of numpy arrays",
        lambda _: lambda: metrics.kl_gaussian(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)),
        ValueError,
        "must be a torch.Tensor",
    ),
    # policies and their configs
    (
        "unknown beta_schedule",
        lambda _: lambda: DiffusionPolicyConfig(beta_schedule="quadratic"),
        ValueError,
        "beta_schedule must be one of",
    ),
    (
        "env_index of floats",
        lambda _: lambda: rollout(None, ["PointNavOpen-v0"], [0.7], [0], 5),
        ValueError,
        "env_index must hold integers",
    ),
    (
        "negative reset seed",
        lambda _: lambda: rollout(None, ["PointNavOpen-v0"], [0], [-1], 5),
        ValueError,
        "seeds must be integers >= 0",
    ),
    (
        "2-d actions",
        lambda _: trajectories(actions=np.zeros((2, 5), np.float32)),
        ValueError,
        r"actions must have shape \(B, T, A\)",
    ),
    (
        "eval_episodes = 0",
        lambda tmp: policy_toml(tmp, "eval_episodes = 20", "eval_episodes = 0"),
        ValueError,
        "eval_episodes must be >= 1",
    ),
    (
        "action_noise = inf",
        lambda tmp: policy_toml(tmp, "action_noise = 0.2", "action_noise = inf"),
        ValueError,
        "action_noise must be a finite number",
    ),
    # the engine, the claims and the calibration
    (
        "a name for a config",
        lambda tmp: lambda: sweeps.load_or_run("pareto_front", results_dir=tmp),
        ValueError,
        r"use load_experiment\('pareto_front'\)",
    ),
    (
        "a string for an executor",
        lambda _: (
            lambda: sweeps.run_sweep(
                load_experiment("pareto_front", quick=True), executor="local", progress=False
            )
        ),
        ValueError,
        "executor must be a concurrent.futures.Executor",
    ),
    (
        "claims of an empty table",
        lambda _: evaluate(pd.DataFrame(), calibration=None),
        ValueError,
        "the table of .pareto_front. has no rows",
    ),
    ("claims of a list", lambda _: evaluate([1, 2, 3]), ValueError, "table must be a pandas"),
    (
        "claims of another table",
        lambda _: evaluate(pd.DataFrame({"foo": [1.0], "bar": [2.0]}), calibration=None),
        ValueError,
        r"lacks the columns \[.*'risk_task0'.*\] of experiment 'pareto_front'",
    ),
    (
        "calibration as a path",
        lambda _: evaluate(pd.DataFrame({"method": []}), calibration="calibration.csv"),
        ValueError,
        "calibration must be a DataFrame",
    ),
    (
        "garbage calibration.csv",
        garbage_calibration,
        ValueError,
        "calibration.csv: not a calibration table",
    ),
    (
        "claims_subset as a string",
        lambda _: lambda: calibration_table(simulations=1, claims_subset="pareto_front"),
        ValueError,
        "claims_subset must be a tuple of claim ids",
    ),
]


@pytest.mark.parametrize(("case", "make", "error", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(case, make, error, match, tmp_path):
    call = make(tmp_path)
    with pytest.raises(error, match=match):
        call()


def test_the_table_has_no_duplicate_case():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


UNGUARDED = """
from mol_diffusion.config import load_experiment
from mol_diffusion.sweeps import run_sweep

config = load_experiment({toml!r})
print(len(run_sweep(config, workers=2, progress=False)))
"""


def test_a_script_without_the_main_guard_is_told_what_to_do(tmp_path):
    """Spawned workers import the script again; the unguarded sweep call in each of them stops
    with the advice, and so does the parent (the README says the same)."""
    import subprocess
    import sys

    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY.replace("replicates = 1", "replicates = 2"))  # two tasks
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED.format(toml=str(toml)))
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert run.returncode != 0
    assert 'put the call under `if __name__ == "__main__":`' in run.stderr  # each worker's
    assert "RuntimeError: a worker process died" in run.stderr  # the parent's
