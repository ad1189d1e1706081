"""Pre-registered test configurations: committed before the run, refused when they differ from the commit.

A test config is a JSON file (``experiments/nb201_protocol/test_config.json``)::

    {"name": "...", "archs": [...],                       # the seeded sample, written out
     "sample": {"n": 100, "seed": 10, "lo": 200, "hi": 15624},
     "protocol": "cpu",                                     # informative: the values below rule
     "study": {... every StudyConfig value ...},
     "variant": {"source": ..., "transform": ..., "regression": ..., "t0": ...}}

``nasbeff rank --preregistered PATH`` runs exactly that: :func:`load_test_config` first checks
with git that the file's content is the committed one (``git hash-object PATH`` equals the blob
of ``HEAD:PATH``), so the config's commit precedes every result, then that ``archs`` is the
sample that ``sample`` draws (:func:`draw_test_sample`). Every result row carries the config's git
blob hash (``config_blob``). The study values are written out in full, so a later change of a
named protocol's defaults cannot change a registered test.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..spaces import sample_from_pool
from .nb201_study import BetaVariant, StudyConfig

NB201_LAST = 15624
DEV_ARCHS = range(0, 200)  # the archs with NB201 learning curves: every choice is made on these


def draw_test_sample(n: int, seed: int, lo: int = 200, hi: int = NB201_LAST) -> list[int]:
    """A seeded sample of ``n`` distinct arch indices from ``lo..hi`` (sorted)."""
    if not 0 <= lo <= hi <= NB201_LAST or not 1 <= n <= hi - lo + 1:
        raise ValueError(f"cannot draw {n} archs from {lo}..{hi} (indices lie in 0..{NB201_LAST})")
    return sample_from_pool(range(lo, hi + 1), n, seed)


@dataclass(frozen=True)
class TestConfig:
    """A pre-registered test: the archs, the study (every value), the beta_eff predictor variant."""

    name: str
    archs: tuple[int, ...]
    sample: dict
    protocol: str
    study: StudyConfig
    variant: BetaVariant

    def to_json(self) -> str:
        d = {"name": self.name, "archs": list(self.archs), "sample": self.sample, "protocol": self.protocol,
             "study": {**asdict(self.study), "probe_hidden": list(self.study.probe_hidden),
                       "extra_beta_samples": list(self.study.extra_beta_samples)},
             "variant": asdict(self.variant)}
        return json.dumps(d, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "test config") -> "TestConfig":
        try:
            d = json.loads(text)
            archs = tuple(int(a) for a in d["archs"])
            sample = dict(d["sample"])
            cfg = cls(str(d["name"]), archs, sample, str(d.get("protocol", "")), StudyConfig.from_dict(d["study"]),
                      BetaVariant(**d["variant"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{where} is not a valid test config ({type(exc).__name__}: {exc})") from None
        if sample and list(archs) != draw_test_sample(int(sample["n"]), int(sample["seed"]), int(sample["lo"]),
                                                      int(sample["hi"])):
            raise ValueError(f"{where}: 'archs' is not the sample that 'sample' {sample} draws")
        if any(a in DEV_ARCHS for a in archs):
            raise ValueError(f"{where}: the test sample contains dev archs (0..199), on which the choices were made")
        return cfg


def make_test_config(name: str, n: int, seed: int, protocol: str, study: StudyConfig, variant: BetaVariant,
                     lo: int = 200, hi: int = NB201_LAST) -> TestConfig:
    """A test config with a freshly drawn seeded sample of ``n`` archs from ``lo..hi``."""
    return TestConfig(name, tuple(draw_test_sample(n, seed, lo, hi)), {"n": n, "seed": seed, "lo": lo, "hi": hi},
                      protocol, study, variant)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ValueError("git is not installed: a pre-registered config needs git to check its commit") from None


def committed_blob(path: str | Path) -> str:
    """The git blob hash of ``path`` when its content is exactly the one committed at HEAD; otherwise
    one clear ValueError (not in a git repository, never committed, or modified since)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"pre-registered config {path} not found")
    top = _git(["rev-parse", "--show-toplevel"], path.parent)
    if top.returncode != 0:
        raise ValueError(f"pre-registered config {path} is not inside a git repository: commit it first")
    rel = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    head = _git(["rev-parse", f"HEAD:{rel}"], path.parent)
    if head.returncode != 0:
        raise ValueError(f"pre-registered config {rel} is not committed: commit it before the run")
    work = _git(["hash-object", str(path)], path.parent)
    if work.stdout.strip() != head.stdout.strip():
        raise ValueError(f"pre-registered config {rel} differs from its committed version "
                         f"(blob {work.stdout.strip()[:12]} vs HEAD {head.stdout.strip()[:12]}): restore it "
                         f"(git checkout -- {rel}) or register a new test (new commit, new sample)")
    return head.stdout.strip()


def load_test_config(path: str | Path) -> tuple[TestConfig, str]:
    """(config, git blob hash) of a committed, unmodified test config; see the module."""
    blob = committed_blob(path)
    return TestConfig.from_json(Path(path).read_text(encoding="utf-8"), str(path)), blob


def describe(cfg: TestConfig) -> dict[str, Any]:
    """A short summary for logs: name, number of archs, protocol, variant name, study hash."""
    return {"name": cfg.name, "archs": len(cfg.archs), "protocol": cfg.protocol, "variant": cfg.variant.name,
            "study_hash": cfg.study.hash}
