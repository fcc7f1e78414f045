"""The package's import graph: no cycles, no private names imported across modules.

Every ``import`` and ``from ... import`` in ``mol_diffusion/`` counts, at module level and
inside functions. ``from a.b import c`` is an edge to ``a.b.c`` when that is a module and to
``a.b`` otherwise. Importing a module also runs the ``__init__`` of each package above it, so
those packages are edges too, except the packages the importing module itself lives in (Python
has already started them; counting them would make every package a cycle).
A private name is one with a leading underscore that is not a dunder; importing it from another
module of the package, reading it as an attribute of one (``sweeps._x``,
``mol_diffusion.sweeps._x``) or by ``getattr(module, "_x")`` fails. Modules whose own name is
private (``_validation``) may be imported for their public names.
"""

import ast
from pathlib import Path

import pytest

from mol_diffusion import paths

PACKAGE = "mol_diffusion"
SOURCE = paths.ROOT / PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(paths.ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def resolve(module: str, level: int, current: str, is_package: bool) -> str:
    if not level:
        return module
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports(name: str, path: Path):
    """(target module, imported name or None, line) for every import in one module; and the
    local names bound to package modules (for attribute reads)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found.append((alias.name, None, node.lineno))
                    aliases[alias.asname or PACKAGE] = alias.name if alias.asname else PACKAGE
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node.module or "", node.level, name, path.name == "__init__.py")
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    found.append((sub, None, node.lineno))
                    aliases[alias.asname or alias.name] = sub
                else:
                    found.append((target, alias.name, node.lineno))
    attributes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = dotted(node.value, aliases)
            if chain in MODULES:
                attributes.append((chain, node.attr, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            chain = dotted(node.args[0], aliases)
            if chain in MODULES:
                attributes.append((chain, node.args[1].value, node.lineno))
    return found, attributes


def dotted(node, aliases: dict) -> str | None:
    """The module a name or attribute chain stands for (``sweeps`` bound by an import, or
    ``mol_diffusion.sweeps`` spelled out), else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id if node.id == PACKAGE else None)
    return ".".join([head, *reversed(parts)]) if head else None


def packages_run(target: str, importer: str) -> list[str]:
    """The packages whose ``__init__`` importing ``target`` runs, apart from the importer's
    own packages."""
    own = importer.split(".")
    parts = target.split(".")
    out = []
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        if package in MODULES and own[:i] != parts[:i]:
            out.append(package)
    return out


GRAPH, PRIVATE = {}, []
for _name, _path in MODULES.items():
    _found, _attributes = imports(_name, _path)
    _targets = {t for t, _, _ in _found if t in MODULES}
    _targets |= {p for t, _, _ in _found for p in packages_run(t, _name)}
    GRAPH[_name] = sorted(_targets - {_name})
    for target, imported, line in [*_found, *_attributes]:
        if imported is not None and is_private(imported) and target != _name:
            PRIVATE.append(f"{_path.relative_to(paths.ROOT)}:{line} uses {target}.{imported}")


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), and self-loops."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, []):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_imports():
    """The parser finds imports inside functions (where cycles used to hide)."""
    assert "mol_diffusion.kinds.base" in GRAPH["mol_diffusion.bench"]
    assert "mol_diffusion.policy.envs" in GRAPH["mol_diffusion.kinds.policy"]  # inside a function


def test_importing_a_submodule_counts_its_packages_init():
    """``from mol_diffusion.claims.common import x`` runs claims/__init__ (and so claims.registry,
    which imports sweeps): a cycle if sweeps did that."""
    assert packages_run("mol_diffusion.claims.common", "mol_diffusion.sweeps") == [
        "mol_diffusion.claims"
    ]
    assert packages_run("mol_diffusion.claims.common", "mol_diffusion.claims.gaussian") == []


def test_attribute_chains_and_getattr_are_seen(tmp_path):
    source = (
        "import mol_diffusion.sweeps\n"
        "from mol_diffusion import sweeps as s\n"
        "a = mol_diffusion.sweeps._hidden\n"
        "b = s._hidden\n"
        "c = getattr(s, '_hidden')\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source)
    _, attributes = imports("mol_diffusion.probe", path)
    assert [(m, a) for m, a, _ in attributes if a == "_hidden"] == [
        ("mol_diffusion.sweeps", "_hidden")
    ] * 3


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert cycles({"a": ["a"]}) == [["a"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_private_names_across_modules():
    assert not PRIVATE, "private names imported across modules:\n" + "\n".join(PRIVATE)


@pytest.mark.parametrize(
    ("engine", "forbidden"),
    [
        ("mol_diffusion.sweeps", ("kinds.gaussian", "kinds.restoration", "kinds.policy")),
        ("mol_diffusion.sweeps", ("kinds.grid", "tasks", "policy", "metrics", "two_stage")),
    ],
)
def test_the_engine_knows_the_protocol_not_the_kinds(engine, forbidden):
    """The sweep engine imports the protocol (kinds.base) and the config loader, no kind."""
    direct = {t.removeprefix("mol_diffusion.") for t in GRAPH[engine]}
    assert not direct & set(forbidden), direct & set(forbidden)
    text = MODULES[engine].read_text()
    for word in ("isinstance(config", "Gaussian", "Restoration", "Policy", '"mlp"'):
        assert word not in text, f"{engine} mentions {word!r}"
