"""Committed outputs that stay put: files written only when their content changes, and the
stamp that ties ``paper/main.pdf`` to the inputs it was built from.

``write_if_changed`` keeps a file's bytes and modification time when the new content is the
same, so regenerating an unchanged output neither dirties the git tree nor makes ``make``
rebuild what depends on it. ``paper_stamp`` hashes the paper's inputs (``main.tex``, the
generated TeX and the figures it includes) and the PDF: ``make paper`` writes it beside the
PDF (``python -m mol_diffusion.artifacts stamp``) and ``tests/test_artifacts.py`` checks that
the committed PDF was built from the committed inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

from mol_diffusion import paths

__all__ = ["PAPER_STAMP", "paper_inputs", "paper_stamp", "write_if_changed"]

PAPER_STAMP = paths.PAPER / "main.inputs.json"


def write_if_changed(path, content: str | bytes) -> bool:
    """Write ``content`` to ``path`` (atomically) unless the file already holds exactly it.
    Returns True when the file was written."""
    path = Path(path)
    data = content.encode() if isinstance(content, str) else bytes(content)
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def paper_inputs(root: Path | None = None) -> list[Path]:
    """The files ``paper/main.tex`` builds from: itself, every ``paper/generated/*.tex`` and
    every ``figures/*.pdf`` it includes (``\\includegraphics``), sorted."""
    root = paths.ROOT if root is None else Path(root)
    tex = root / "paper" / "main.tex"
    figures = {
        (root / "paper" / name).resolve()
        for name in re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", tex.read_text())
    }
    figures = {f if f.suffix else f.with_suffix(".pdf") for f in figures}
    generated = set((root / "paper" / "generated").glob("*.tex"))
    return sorted({tex.resolve(), *figures, *(g.resolve() for g in generated)})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def paper_stamp(root: Path | None = None) -> dict:
    """``{"inputs": {relative path: sha256}, "pdf": sha256}`` of the paper as it is now."""
    root = paths.ROOT if root is None else Path(root)
    base = root.resolve()
    inputs = {str(p.relative_to(base)): _sha(p) for p in paper_inputs(root)}
    return {"inputs": inputs, "pdf": _sha(root / "paper" / "main.pdf")}


def _main(argv: list[str]) -> int:
    if argv != ["stamp"]:
        print("usage: python -m mol_diffusion.artifacts stamp", file=sys.stderr)
        return 2
    write_if_changed(PAPER_STAMP, json.dumps(paper_stamp(), indent=2, sort_keys=True) + "\n")
    print(f"-> {PAPER_STAMP}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
