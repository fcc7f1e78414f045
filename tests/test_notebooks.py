"""Notebooks: paired sources stay in sync, the kernel they name runs this environment, and each
runs end to end with quick parameters."""

import json
import sys
from pathlib import Path

import jupytext
import papermill
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from mol_diffusion import paths

NOTEBOOKS = sorted(p.stem for p in paths.NOTEBOOKS.glob("*.py"))


def test_there_are_notebooks_and_each_is_paired():
    assert {"sample_complexity", "unlabeled_scaling", "pareto_front", "image_restoration"} <= set(
        NOTEBOOKS
    )
    for name in NOTEBOOKS:
        ipynb = paths.NOTEBOOKS / f"{name}.ipynb"
        assert ipynb.is_file(), f"{name}.py has no paired {name}.ipynb (run jupytext --sync)"
        source = jupytext.read(paths.NOTEBOOKS / f"{name}.py")
        paired = jupytext.read(ipynb)

        def cells(nb):
            return [(c.cell_type, c.source.strip()) for c in nb.cells]

        assert cells(source) == cells(paired), f"{name}.py and {name}.ipynb differ: jupytext --sync"
        assert paired.metadata["kernelspec"]["name"] == "mol_diffusion"
        tags = [c.metadata.get("tags", []) for c in paired.cells]
        assert sum("parameters" in t for t in tags) == 1


def test_the_kernel_the_notebooks_name_runs_this_environment():
    """A kernel named like the notebooks' but resolving to another Python is a known trap."""
    manager = KernelSpecManager()
    assert "mol_diffusion" in manager.find_kernel_specs(), (
        "kernel mol_diffusion missing: make install"
    )
    argv0 = manager.get_kernel_spec("mol_diffusion").argv[0]
    assert Path(argv0).resolve() == Path(sys.executable).resolve(), (argv0, sys.executable)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_quick(name, tmp_path):
    """Executed with the project's kernel, quick parameters, results in a temporary folder."""
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(paths.NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters={
            "quick": True,
            "workers": 1,
            "results_dir": str(tmp_path),
            "save_figures": False,
        },
        kernel_name="mol_diffusion",
        progress_bar=False,
    )
    executed = json.loads(out.read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert [o for o in outputs if "image/png" in o.get("data", {})], "expected at least one figure"
