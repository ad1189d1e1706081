"""Shared fixtures. Real benchmark data lives in ../shared/data beside the repository (or in
$NASBEFF_SHARED_DATA); tests that need it skip cleanly when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# hypothesis keeps no example database and its files in a temporary folder, not .hypothesis/ here
import tempfile  # noqa: E402

from hypothesis import configuration as _hypothesis_configuration  # noqa: E402
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="nasbeff-hypothesis-"))
_hypothesis_settings.register_profile("nasbeff", database=None)
_hypothesis_settings.load_profile("nasbeff")


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


@pytest.fixture(scope="session", autouse=True)
def _suite_writes_nothing_into_the_user_cache(_cache_root, tmp_path_factory):
    """For the whole session, before any module- or function-scoped fixture (session-scoped autouse
    fixtures come first, so module fixtures such as test_zoo_select's ``tiny_zoo`` and every
    subprocess see it): ``NASBEFF_CACHE`` is the session's cache folder, and the user's cache folder
    (``XDG_CACHE_HOME``; ``LOCALAPPDATA`` on Windows) is a stand-in that must end the session without
    a nasbeff folder: a code path that ignores ``NASBEFF_CACHE`` writes there and fails the session."""
    from nasbeff.data.loaders import default_cache_dir

    mp = pytest.MonkeyPatch()
    stand_in = tmp_path_factory.mktemp("user-cache")
    mp.setenv("LOCALAPPDATA" if sys.platform == "win32" else "XDG_CACHE_HOME", str(stand_in))
    mp.delenv("NASBEFF_CACHE", raising=False)
    user = default_cache_dir()  # where a run without NASBEFF_CACHE writes
    mp.setenv("NASBEFF_CACHE", str(_cache_root))
    yield
    mp.undo()
    leaked = sorted(str(p.relative_to(user)) for p in user.rglob("*")) if user.exists() else []
    assert not user.exists(), (f"the test suite wrote into the user's cache folder (stand-in {user}), bypassing "
                               f"NASBEFF_CACHE: {', '.join(leaked[:10]) or 'the folder itself'}")


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


@pytest.fixture
def one_torch_thread():
    """One torch thread in this process for the test (rank's default, so its numbers match a worker's);
    modules that train use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_TOOLS = (".venv/", ".ruff_cache/", ".mypy_cache/", ".idea/", ".vscode/")  # a developer's own tool folders


def _tree_state() -> set[str]:
    """``git status`` lines of the working tree, ignored files included, each untracked or ignored
    file with its modification time (so a file rewritten during the session counts as written)."""
    import subprocess

    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    lines = set()
    for line in out.stdout.splitlines():
        if line[3:].startswith(_TOOLS) or "__pycache__" in line or ".egg-info/" in line:
            continue
        path = REPO_ROOT / line[3:]
        files = sorted(path.rglob("*")) if line[:2] in ("??", "!!") and path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            try:
                stamp = f.stat().st_mtime_ns if line[:2] in ("??", "!!") and f.is_file() else ""
            except OSError:  # gone meanwhile
                continue
            lines.add(f"{line[:3]}{f.relative_to(REPO_ROOT)} {stamp}")
    return lines


def _written_by_tests(before: set[str], after: set[str]) -> list[str]:
    """What appeared during the session: any new file (untracked or ignored; the interpreter's
    ``__pycache__`` and a developer's own tool folders excepted), and changes under runs/ or
    benchmarks_data/."""
    new = sorted(after - before)
    return [line for line in new if line[:2] in ("??", "!!") or line[3:].startswith(("runs/", "benchmarks_data/"))]


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

    from nasbeff.data.loaders import CIFAR10_CLASSES

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
