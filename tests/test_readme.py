"""The README's Python example runs as written (on random relic-tiny weights)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_readme_python_example_runs(monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(ROOT)
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    assert ns["frames"].shape[0] == ns["session"].frames_per_step
    assert len(ns["session"].state["R"]) >= len(ns["actions"])
