"""The README's Python API block runs as written."""

from __future__ import annotations

import re

import pytest

from conftest import REPO_ROOT


def test_readme_python_api_block_runs(shared_data, monkeypatch, tmp_path):
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Python API\n(.*?)(?=^## )", text, flags=re.M | re.S)
    assert section is not None
    block = re.search(r"^```python\n(.*?)^```", section.group(1), flags=re.M | re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block.group(1), "README.md (Python API)", "exec"), scope)
    assert scope["gt"].metric("cifar10", "ori-test", 6111) == pytest.approx(94.3733)
    assert scope["result"].noise_ceiling == scope["result"].noise_ceiling  # a number, not NaN
