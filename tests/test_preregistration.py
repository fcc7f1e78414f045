"""Pre-registration is enforced by the git history (``mol_diffusion.preregistration``)."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from mol_diffusion import claims, paths
from mol_diffusion.config import load_experiment, load_preregistration
from mol_diffusion.preregistration import check_history, git_history_available

ROOT = paths.EXPERIMENTS.parent
REGISTERED = [
    p.stem for p in sorted(paths.EXPERIMENTS.glob("*.toml")) if load_preregistration(p) is not None
]


def test_some_experiments_are_registered():
    assert {"pareto_front", "misspecified"} <= set(REGISTERED)


@pytest.mark.parametrize("name", REGISTERED)
def test_registered_runs_came_after_their_registration(name):
    if not git_history_available(ROOT):
        pytest.skip("needs the repository's full git history")
    assert check_history(name, ROOT, paths.EXPERIMENTS, paths.RESULTS) == []


@pytest.mark.parametrize("name", REGISTERED)
def test_registration_names_registered_claims_of_its_experiment(name):
    prereg = load_preregistration(name)
    for claim_id in prereg.rules:
        assert claims.REGISTRY[claim_id].experiment == name


# ---------------------------------------------------------------- the check can fail
def _commit(repo: Path, message: str) -> None:
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True)


def _toml(seed: int, prereg: bool) -> str:
    text = (paths.EXPERIMENTS / "misspecified.toml").read_text()
    text = text[: text.index("[preregistration]")] if "[preregistration]" in text else text
    text = re.sub(r"^seed = \d+.*$", f"seed = {seed}", text, count=1, flags=re.M)
    if prereg:
        text += f'\n[preregistration]\nseed = {seed}\nregistry = "x"\nrules = {{ c = "r" }}\n'
    return text


def _table(repo: Path) -> None:
    config = load_experiment(repo / "experiments" / "x.toml")
    meta = {"fingerprint": config.fingerprint()}
    (repo / "experiments" / "results" / "x.meta.json").write_text(json.dumps(meta))


@pytest.fixture
def repo(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("needs git")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "experiments" / "results").mkdir(parents=True)
    (tmp_path / "README").write_text("a repository\n")
    _commit(tmp_path, "start")
    return tmp_path


def _check(repo: Path) -> list[str]:
    return check_history("x", repo, repo / "experiments", repo / "experiments" / "results")


def test_registration_then_table_passes(repo):
    toml = repo / "experiments" / "x.toml"
    toml.write_text(_toml(111, prereg=False))
    _commit(repo, "pilot")
    toml.write_text(_toml(222, prereg=True))
    _commit(repo, "register")
    _table(repo)
    _commit(repo, "table")
    assert _check(repo) == []


def test_a_reused_seed_and_a_table_before_its_registration_fail(repo):
    toml = repo / "experiments" / "x.toml"
    toml.write_text(_toml(111, prereg=False))
    _commit(repo, "pilot")
    _table(repo)
    _commit(repo, "table first")
    toml.write_text(_toml(111, prereg=True))
    _commit(repo, "registered afterwards")
    problems = _check(repo)
    assert any("appears in commit" in p for p in problems), problems
    assert any("not newer than its registration" in p for p in problems), problems


def test_a_table_in_the_registering_commit_fails(repo):
    toml = repo / "experiments" / "x.toml"
    toml.write_text(_toml(333, prereg=True))
    _table(repo)
    _commit(repo, "registration and table together")
    assert any("not newer" in p for p in _check(repo))


def test_an_uncommitted_registration_fails(repo):
    (repo / "experiments" / "x.toml").write_text(_toml(444, prereg=True))
    assert _check(repo) == ["x: the registration is not committed"]
