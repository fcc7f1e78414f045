"""The README's API examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README.md must contain a ```python example"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["risk"].scalarized > 0
    assert namespace["estimate"].shape == (len(namespace["x_test"]), 64)
    assert namespace["psnr_ridge"].shape == namespace["psnr"].shape
    assert tuple(namespace["chunk"].shape) == (2, 4, 2)  # (B, Ta, action dim)
    assert namespace["psnr"].shape == namespace["ssim"].shape == (len(namespace["x_test"]),)


def test_readme_notebook_commands_write_outside_the_committed_outputs():
    """Following the README must not dirty the tree: every papermill command it gives writes
    under build/ (not tracked), and so does make sample-complexity; only make figures writes
    notebooks/executed/."""
    text = README.read_text()
    outputs = re.findall(r"papermill notebooks/\S+\.ipynb (\S+)", text)
    assert outputs, "README.md gives no papermill command"
    assert all(out.startswith("build/") for out in outputs), outputs
    makefile = README.with_name("Makefile").read_text()
    recipe = makefile.split("sample-complexity:")[1].split("\n\n")[0]
    assert "notebooks/executed" not in recipe.split("##")[-1].split("\n", 1)[1], recipe
    ignored = README.with_name(".gitignore").read_text().split()
    assert "build/" in ignored and "experiments/results/*-quick.*" in ignored
