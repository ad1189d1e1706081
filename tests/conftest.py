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
