"""Versioned, atomically written training checkpoints (one file per arch being trained).

:func:`save_checkpoint` writes a dict with ``torch.save`` to a temporary file in the same
folder, fsyncs it, renames it over ``path`` and fsyncs the folder, so a kill or power loss at
any moment leaves either the previous checkpoint or the new one, never a torn file. Each file
carries ``"schema"`` (:data:`CHECKPOINT_SCHEMA`) and ``"nasbeff_version"``; :func:`load_checkpoint`
refuses another schema, and a truncated or corrupt file, with a one-line
:class:`CheckpointError` that names the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .atomic import atomic_write

__all__ = ["CHECKPOINT_SCHEMA", "CheckpointError", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_SCHEMA = 1
_RESERVED = ("schema", "nasbeff_version")


class CheckpointError(ValueError):
    """A checkpoint file of another schema, or one that is truncated or corrupt."""


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` plus ``schema`` and ``nasbeff_version`` to ``path`` atomically."""
    if not isinstance(payload, dict):
        raise TypeError(f"checkpoint payload must be a dict, got {type(payload).__name__}")
    clash = [k for k in _RESERVED if k in payload]
    if clash:
        raise ValueError(f"checkpoint payload keys {clash} are reserved for the checkpoint's own header")
    out = Path(path)
    data = {**payload, "schema": CHECKPOINT_SCHEMA, "nasbeff_version": __version__}
    with atomic_write(out, "wb") as f:
        torch.save(data, f)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``map_location`` as in ``torch.load``).

    ``weights_only=False`` is used only because checkpoints are nasbeff's own files, written by
    :func:`save_checkpoint` under the result store's folder (they hold optimizer and RNG states);
    never point this at a file from elsewhere: unpickling runs code. A missing file raises
    ``FileNotFoundError``; another schema, a truncated or a corrupt file raise :class:`CheckpointError`.
    """
    src = Path(path)
    hint = "delete it to restart that arch"
    try:
        data = torch.load(src, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch/pickle/zip raise many types for a bad file
        detail = " ".join(str(exc).split()).split(". ")[0][:160]  # the first sentence, on one line
        raise CheckpointError(f"{src}: truncated or corrupt checkpoint ({type(exc).__name__}: {detail}); {hint}") from exc
    found = data.get("schema") if isinstance(data, dict) else None
    if found != CHECKPOINT_SCHEMA:
        found = "none" if found is None else found if isinstance(found, int) else repr(found)[:40]
        raise CheckpointError(f"{src}: checkpoint schema {found}, this nasbeff reads {CHECKPOINT_SCHEMA}; {hint}")
    return data
