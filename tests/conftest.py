"""Shared fixtures. Real benchmark data lives in ../shared/data beside the repository (or in
$NASBEFF_SHARED_DATA); tests that need it skip cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("NASBEFF_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for c in candidates:
        if (c / "README.md").exists() or (c / "nb201").is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("../shared/data is absent (set NASBEFF_SHARED_DATA to point at it)")
    return d


@pytest.fixture(scope="session")
def _cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nasbeff-cache")


@pytest.fixture(autouse=True)
def _private_cache(_cache_root, monkeypatch):
    """Decoded-data caches go to a temporary folder (shared by the session: entries are keyed by
    content), never into the working tree or the user's cache dir."""
    monkeypatch.setenv("NASBEFF_CACHE", str(_cache_root))
    yield


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


def _tree_state() -> set[str]:
    """``git status`` lines of the working tree, ignored files included."""
    import subprocess

    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    return set(out.stdout.splitlines())


def _written_by_tests(before: set[str], after: set[str]) -> list[str]:
    """What appeared during the session: new files (untracked or ignored) outside the top-level
    dot-folders of tools (.venv, .ruff_cache, ...), and changes under runs/ or benchmarks_data/."""
    new = sorted(after - before)
    return [line for line in new
            if (line[:2] in ("??", "!!") and not line[3:].startswith(".") and "__pycache__" not in line
                and ".egg-info/" not in line)
            or line[3:].startswith(("runs/", "benchmarks_data/"))]


@pytest.fixture(scope="session", autouse=True)
def _suite_writes_nothing_into_the_working_tree():
    """The whole session leaves the working tree as it found it (every output goes to tmp_path)."""
    import shutil

    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        yield
        return
    before = _tree_state()
    yield
    written = _written_by_tests(before, _tree_state())
    assert not written, "the test suite wrote into the working tree:\n" + "\n".join(written)


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> Path:
    """A CIFAR-10 image tree of 8 train / 2 test images per class with a learnable colour cue."""
    import numpy as np
    from PIL import Image

    from nasbeff.data import CIFAR10_CLASSES

    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 2)):
        for c, name in enumerate(CIFAR10_CLASSES):
            d = root / split / name
            d.mkdir(parents=True)
            for k in range(n):
                img = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                img[..., c % 3] = np.clip(img[..., c % 3].astype(int) // 4 + 25 * c, 0, 255)
                Image.fromarray(img).save(d / f"{k:04d}.png")
    return root
