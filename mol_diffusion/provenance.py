"""Fingerprints of code: which source a table or a claim rule came from.

``code_fingerprint(["mol_diffusion.kinds.gaussian"])`` hashes the given modules and every
module of the package they import (at module level or inside functions, found by parsing, not
by importing), each normalized to its abstract syntax tree with docstrings removed: a change
of formatting, comments or docstrings leaves the fingerprint alone, a change of code does not.
``claims.registry.rule_fingerprint`` uses it for claim rules (the pre-registration record);
``sweeps.load_or_run`` records ``code_record(kind)`` in each new table's meta file: the
fingerprint of the kind's modules together with the versions of the numeric libraries
(``LIBRARIES``), so a table computed by other code or other libraries is known to be stale
(``stale_reason``).
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import importlib.metadata
import inspect
import json
import types
from pathlib import Path

__all__ = [
    "LIBRARIES",
    "code_fingerprint",
    "code_record",
    "kind_code_fingerprint",
    "library_versions",
    "module_closure",
    "normalized_source",
    "stale_reason",
]

PACKAGE = "mol_diffusion"
SOURCE = Path(__file__).resolve().parent


def _path(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = SOURCE.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _tree(module: str) -> ast.Module:
    path = _path(module)
    if path is None:
        raise ValueError(f"{module!r} is not a module of {PACKAGE}")
    return ast.parse(path.read_text(), filename=str(path))


def _imports(module: str) -> set[str]:
    """Package modules that ``module`` imports by name. The ``__init__`` of a package above an
    imported module is not followed unless imported itself: it re-exports, it does not compute
    the numbers (``import mol_diffusion.kinds.grid`` does not pull in every other kind)."""
    tree = _tree(module)
    cached = getattr(tree, "package_imports", None)  # kept on the cached parse, like its text
    if cached is not None:
        return set(cached)
    is_package = _path(module).name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".") if is_package else module.split(".")[:-1]
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            subs = [f"{target}.{alias.name}" for alias in node.names]
            # from a.b import c: the module a.b.c when it is one, else a name a.b defines
            names = [sub if _path(sub) is not None else target for sub in subs]
        else:
            continue
        found.update(name for name in names if _path(name) is not None)
    found.discard(module)
    tree.package_imports = frozenset(found)
    return found


def module_closure(modules, exclude=()) -> list[str]:
    """``modules`` and every package module they import, transitively, sorted; modules in
    ``exclude`` are neither included nor followed."""
    todo, seen = list(modules), set()
    while todo:
        module = todo.pop()
        if module in seen or module in exclude:
            continue
        _tree(module)  # a clear error for a name outside the package
        seen.add(module)
        todo.extend(_imports(module) - seen)
    return sorted(seen)


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node):
        self.generic_visit(node)
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def normalized_source(module: str) -> str:
    """The module's syntax tree without docstrings, as text (comments and layout are gone).
    Kept on the cached parse, so clearing ``_tree``'s cache clears it too."""
    tree = _tree(module)  # the parse is cached
    text = getattr(tree, "normalized_text", None)
    if text is None:
        stripped = _StripDocstrings().visit(copy.deepcopy(tree))
        text = ast.dump(stripped, annotate_fields=False, include_attributes=False)
        tree.normalized_text = text
    return text


def code_fingerprint(modules, exclude=()) -> str:
    """sha256 (16 hex digits) of the normalized source of ``modules`` and all they import
    (``exclude``: modules left out, see ``module_closure``)."""
    digest = hashlib.sha256()
    for module in module_closure(modules, exclude):
        digest.update(module.encode() + b"\0" + normalized_source(module).encode() + b"\0")
    return digest.hexdigest()[:16]


def kind_code_fingerprint(kind) -> str | None:
    """The code fingerprint of an experiment kind's module and the package modules it imports.
    A kind defined outside the package is fingerprinted by its own source file (normalized the
    same way; what that file imports from elsewhere is not followed); None when Python cannot
    find its source (a kind defined interactively)."""
    module = type(kind).__module__
    if _path(module) is not None:
        return code_fingerprint([module])
    try:
        source = Path(inspect.getsourcefile(type(kind)) or "").read_text()
    except (TypeError, OSError):
        return None
    tree = _StripDocstrings().visit(ast.parse(source))
    text = ast.dump(tree, annotate_fields=False, include_attributes=False)
    return "x" + hashlib.sha256(text.encode()).hexdigest()[:15]


# The libraries whose numerics a results table depends on (a missing one is recorded as None).
LIBRARIES = ("torch", "numpy", "scipy", "statsmodels", "scikit-learn", "scikit-image", "gymnasium")


@functools.cache
def library_versions() -> dict[str, str | None]:
    """The installed version of each of ``LIBRARIES`` (None when not installed)."""
    versions = {}
    for package in LIBRARIES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def code_record(kind) -> dict:
    """What computed a kind's table: ``{"fingerprint", "modules", "libraries"}``.

    ``modules`` is ``kind_code_fingerprint(kind)`` (None for a kind defined outside the
    package), ``libraries`` the versions of ``LIBRARIES``, and ``fingerprint`` (16 hex digits)
    a hash of both: equal fingerprints mean the same code on the same libraries.
    """
    modules, libraries = kind_code_fingerprint(kind), library_versions()
    blob = json.dumps({"modules": modules, "libraries": libraries}, sort_keys=True)
    return {
        "fingerprint": hashlib.sha256(blob.encode()).hexdigest()[:16],
        "modules": modules,
        "libraries": libraries,
    }


def stale_reason(recorded, kind) -> str | None:
    """Why a table whose meta file holds ``recorded`` (its ``"code"`` entry) is not what the
    running code computes, or None when the record matches ``code_record(kind)``.

    A table with no record (computed before tables recorded their code) is stale: nothing says
    which code made it.
    """
    if not isinstance(recorded, dict) or "fingerprint" not in recorded:
        return "computed by unrecorded code (before tables recorded their code's fingerprint)"
    now = code_record(kind)
    if now["modules"] is None:
        return "the source of its experiment kind cannot be found: nothing says which code it is"
    if recorded["fingerprint"] == now["fingerprint"]:
        return None
    changes = []
    if recorded.get("modules") != now["modules"]:
        inside = _path(type(kind).__module__) is not None
        where = (
            f"the {len(module_closure([type(kind).__module__]))} package modules it uses"
            if inside
            else "the kind's own source file"
        )
        changes.append(
            f"the code of its experiment kind changed (fingerprint {recorded.get('modules')} "
            f"-> {now['modules']} over {where})"
        )
    before = recorded.get("libraries") or {}
    for package, version in now["libraries"].items():
        if before.get(package) != version:
            changes.append(f"{package} {before.get(package)} -> {version}")
    return "; ".join(changes) or "computed by other code"


def _function_node(module: str, name: str, types_=(ast.FunctionDef, ast.AsyncFunctionDef)):
    for node in _tree(module).body:
        if isinstance(node, types_) and node.name == name:
            return node
    return None


def function_fingerprint(fn) -> str:
    """sha256 (16 hex digits) of a package function as far as its result goes: its normalized
    syntax tree; those of the module-level functions of the package it calls by name,
    transitively; the values of the module-level constants it reads; and the code fingerprint
    (``code_fingerprint``) of every package module it uses as a module (``stats.fit``); the
    source of a package class it uses. A change to another function of the same module does
    not count."""
    digest = hashlib.sha256()
    todo, seen = [fn], set()
    while todo:
        f = todo.pop()
        key = (f.__module__, f.__qualname__)
        if key in seen:
            continue
        seen.add(key)
        node = _function_node(f.__module__, f.__name__)
        if node is None:
            raise ValueError(f"{f.__module__}.{f.__qualname__} is not a module-level function")
        node = _StripDocstrings().visit(copy.deepcopy(node))
        digest.update(repr(key).encode() + ast.dump(node, annotate_fields=False).encode())
        names = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)})
        for name in names:
            value = f.__globals__.get(name)
            if value is None:
                continue
            if isinstance(value, types.ModuleType):
                if _path(value.__name__) is not None:
                    digest.update(f"{name}={code_fingerprint([value.__name__])}".encode())
                continue
            owner = getattr(value, "__module__", None)
            if callable(value) and isinstance(owner, str) and _path(owner) is not None:
                cls = _function_node(owner, getattr(value, "__name__", ""), (ast.ClassDef,))
                if isinstance(value, type) and cls is not None:  # the class's own source
                    cls = _StripDocstrings().visit(copy.deepcopy(cls))
                    digest.update(f"{name}={ast.dump(cls, annotate_fields=False)}".encode())
                elif _function_node(owner, getattr(value, "__name__", "")) is None:
                    digest.update(f"{name}={code_fingerprint([owner])}".encode())
                else:
                    todo.append(value)
            elif isinstance(value, int | float | str | tuple | frozenset | bool):
                digest.update(f"{name}={value!r}".encode())
    return digest.hexdigest()[:16]
