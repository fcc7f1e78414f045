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
    assert namespace["restored"].shape == (4, 64)
    assert tuple(namespace["chunk"].shape) == (2, 4, 2)  # (B, Ta, action dim)
