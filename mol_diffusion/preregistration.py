"""Pre-registration checked against the git history.

A confirmatory run is registered in its experiment's TOML (``[preregistration]``: the run's
seed, the claims registry's fingerprint and each confirmed claim's rule fingerprint; see
``config.Preregistration``) and committed *before* its results table. ``check_history`` reads
the repository's history and lists every way a registered experiment breaks that order:

- the registered seed is not the config's ``seed``;
- the seed appears in an earlier version of the TOML (a confirmatory seed must be new);
- the commit that fixes the registration (the first version of the TOML holding it) is not a
  strict ancestor of the commit that adds the table computed under it (the first version of
  ``<name>.meta.json`` whose fingerprint is the config's).

``tests/test_preregistration.py`` runs it on every registered experiment.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

from mol_diffusion.config import load_experiment, load_preregistration

__all__ = ["check_history", "git_history_available"]


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def git_history_available(root: Path) -> bool:
    """True when ``root`` is a git work tree with its full history (not a shallow clone)."""
    try:
        return _git(root, "rev-parse", "--is-shallow-repository").strip() == "false"
    except (RuntimeError, FileNotFoundError):
        return False


def _versions(root: Path, path: str) -> list[tuple[str, str]]:
    """(commit, text) of every committed version of ``path``, oldest first."""
    commits = _git(root, "log", "--format=%H", "--reverse", "--", path).split()
    out = []
    for commit in commits:
        try:
            out.append((commit, _git(root, "show", f"{commit}:{path}")))
        except RuntimeError:  # the commit deleted or renamed the file
            continue
    return out


def check_history(name: str, root: Path, experiments: Path, results: Path) -> list[str]:
    """Problems with the registration of experiment ``name`` (empty: none).

    Args:
        name: the experiment (``experiments/<name>.toml``).
        root: the repository's work tree.
        experiments: the directory of the TOMLs; results: the directory of the tables (both
            inside ``root``).
    """
    toml = experiments / f"{name}.toml"
    prereg = load_preregistration(toml)
    if prereg is None:
        return [f"{name}: no [preregistration] table"]
    config = load_experiment(toml)
    problems = []
    if prereg.seed != config.seed:
        problems.append(f"{name}: registered seed {prereg.seed} is not the config's {config.seed}")
    rel = str(toml.resolve().relative_to(root.resolve()))
    registered_at = None
    for commit, text in _versions(root, rel):
        raw = tomllib.loads(text)
        table = raw.get("preregistration")
        if table is not None and (table.get("seed"), table.get("rules")) == (
            prereg.seed,
            prereg.rules,
        ):
            registered_at = commit
            break
        if raw.get("seed") == prereg.seed:
            problems.append(
                f"{name}: seed {prereg.seed} appears in commit {commit[:10]}, before it was "
                f"registered: a confirmatory seed must be new"
            )
    if registered_at is None:
        problems.append(f"{name}: the registration is not committed")
        return problems
    meta = results / f"{name}.meta.json"
    rel_meta = str(meta.resolve().relative_to(root.resolve()))
    fingerprint = config.fingerprint()
    added_at = next(
        (
            commit
            for commit, text in _versions(root, rel_meta)
            if json.loads(text).get("fingerprint") == fingerprint
        ),
        None,
    )
    if added_at is None:
        return problems  # no table under this registration is committed yet
    if added_at == registered_at or (
        subprocess.run(
            ["git", "-C", str(root), "merge-base", "--is-ancestor", registered_at, added_at],
            check=False,
        ).returncode
        != 0
    ):
        problems.append(
            f"{name}: the table (commit {added_at[:10]}) is not newer than its registration "
            f"(commit {registered_at[:10]})"
        )
    return problems
