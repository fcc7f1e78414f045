"""Code fingerprints: formatting, comments and docstrings do not count; code does; the closure
follows imports at module level and inside functions."""

import json

import pytest

from mol_diffusion import claims, provenance


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A throwaway ``mol_diffusion`` source tree that provenance reads instead of the real one."""
    root = tmp_path / "mol_diffusion"
    root.mkdir()
    (root / "__init__.py").write_text("from mol_diffusion import heavy\n")
    (root / "heavy.py").write_text("X = 1\n")
    (root / "helper.py").write_text('"""Helper."""\n\ndef f(x):\n    return x + 1\n')
    (root / "rule.py").write_text(
        '"""A rule."""\n\nLIMIT = 0.15\n\n\ndef rule(t):\n'
        "    from mol_diffusion.helper import f\n\n    return f(t) < LIMIT\n"
    )
    monkeypatch.setattr(provenance, "SOURCE", root)
    provenance._tree.cache_clear()
    yield root
    provenance._tree.cache_clear()


def fingerprint(root):
    provenance._tree.cache_clear()
    return provenance.code_fingerprint(["mol_diffusion.rule"])


def test_the_closure_follows_function_level_imports_but_not_parent_inits(package):
    assert provenance.module_closure(["mol_diffusion.rule"]) == [
        "mol_diffusion.helper",
        "mol_diffusion.rule",
    ]


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.replace("LIMIT = 0.15", "LIMIT = 0.15  # the threshold"),
        lambda s: s.replace('"""A rule."""', '"""A rule, documented at length."""'),
        lambda s: s.replace("return f(t) < LIMIT", "return (\n        f(t) < LIMIT\n    )"),
    ],
)
def test_formatting_comments_and_docstrings_do_not_count(package, edit):
    before = fingerprint(package)
    path = package / "rule.py"
    path.write_text(edit(path.read_text()))
    assert fingerprint(package) == before


@pytest.mark.parametrize(
    ("module", "edit"),
    [
        ("rule.py", lambda s: s.replace("LIMIT = 0.15", "LIMIT = 0.2")),
        ("rule.py", lambda s: s.replace("< LIMIT", "<= LIMIT")),
        ("helper.py", lambda s: s.replace("x + 1", "x + 2")),  # an imported module counts
    ],
)
def test_a_change_of_code_counts(package, module, edit):
    before = fingerprint(package)
    path = package / module
    path.write_text(edit(path.read_text()))
    assert fingerprint(package) != before


def test_a_module_outside_the_package_is_an_error(package):
    with pytest.raises(ValueError, match="not a module of mol_diffusion"):
        provenance.module_closure(["numpy"])


def test_rule_and_registry_fingerprints_are_stable_and_distinct():
    ids = list(claims.REGISTRY)
    prints = {cid: claims.rule_fingerprint(cid) for cid in ids}
    assert prints == {cid: claims.rule_fingerprint(cid) for cid in ids}
    assert len(set(prints.values())) == len(ids)  # the declaration is part of each
    assert claims.registry_fingerprint() == claims.registry_fingerprint()
    with pytest.raises(ValueError, match="unknown claim"):
        claims.rule_fingerprint("no_such_claim")


def test_a_new_table_records_the_code_that_computed_it(tmp_path):
    from mol_diffusion.config import load_experiment
    from mol_diffusion.sweeps import load_or_run

    path = tmp_path / "tiny.toml"
    path.write_text(
        'kind = "gaussian"\nseed = 2\nreplicates = 1\nmethods = ["oracle"]\nn = [8]\nm = [16]\n'
        'risk_draws = 64\n[family]\nnum_tasks = 2\n[specialist]\nkind = "linear"\n'
        '[generalist]\nkind = "random_features"\ncapacities = [4]\n'
    )
    config = load_experiment(path)
    load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    meta = json.loads((tmp_path / "tiny.meta.json").read_text())
    assert meta["code"]["modules"] == provenance.code_fingerprint(["mol_diffusion.kinds.gaussian"])
    assert meta["platform"]["torch"].startswith("2.")
