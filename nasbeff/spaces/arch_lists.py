"""Lists of NB201 arch indices: parsed from the command line's ranges and seeded samples of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NUM_NB201_ARCHS = 15625


def parse_indices(spec: str, n: int = NUM_NB201_ARCHS, what: str = "--archs") -> list[int]:
    """'0-199' / '0,5,9' / '0-9,20-29' -> sorted unique indices in 0..n-1."""
    out: set[int] = set()
    try:
        for part in spec.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-")
                out.update(range(int(a), int(b) + 1))
            elif part:
                out.add(int(part))
    except ValueError:
        raise ValueError(f"bad {what} {spec!r}: use ranges and lists like 0-199 or 0,5,9") from None
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise ValueError(f"arch indices must lie in 0..{n - 1}, got {sorted(bad)[:5]}")
    if not out:
        raise ValueError(f"{what} {spec!r} selects no arch")
    return sorted(out)


def sample_from_pool(pool: Sequence[int], n: int | None, seed: int) -> list[int]:
    """A seeded sample of ``n`` archs from ``pool`` (all of it when n is None), sorted."""
    pool = list(pool)
    if n is None or n >= len(pool):
        return sorted(pool)
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(pool, size=n, replace=False))
