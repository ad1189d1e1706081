"""Versioned, atomically written training checkpoints (one file per arch being trained).

:func:`save_checkpoint` writes a dict with ``torch.save`` to a temporary file in the same
folder, fsyncs it, renames it over ``path`` and fsyncs the folder, so a kill or power loss at
any moment leaves either the previous checkpoint or the new one, never a torn file; a Ctrl-C
during the write stays a ``KeyboardInterrupt`` (torch's zip writer would report it as a
``RuntimeError``). Each file
carries ``"schema"`` (:data:`CHECKPOINT_SCHEMA`) and ``"nasbeff_version"``; :func:`load_checkpoint`
refuses another schema, and a truncated or corrupt file, with a one-line
:class:`CheckpointError` that names the file.

:class:`UnitCheckpoint` is the checkpoint of one unit of work (a :class:`~nasbeff.store.RunKey`)
of one result store: it lives in ``<store dir>/checkpoints/<store file name>/`` and carries the
store's :attr:`~nasbeff.store.ResultStore.store_id` and the unit's key. A checkpoint is resumed
from only when both match and the store holds every epoch before it; anything else (a checkpoint
left by a store since deleted and created again, by another store, or one the store's epochs do
not reach) is discarded and the unit trains from its first epoch, so a finished unit has exactly
the epochs of one training run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..store import atomic_write

__all__ = ["CHECKPOINT_SCHEMA", "CheckpointError", "save_checkpoint", "load_checkpoint", "UnitCheckpoint",
           "checkpoint_dir"]

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
        try:
            torch.save(data, f)
        except RuntimeError as exc:  # Ctrl-C inside torch's writer surfaces as its "unexpected pos" error
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None  # atomic_write removes the partial file; the old one stays
            raise


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


def checkpoint_dir(store_path: str | os.PathLike[str]) -> Path:
    """``<store dir>/checkpoints/<store file name>/``: the folder of one store's checkpoints."""
    store_path = Path(store_path)
    return store_path.parent / "checkpoints" / store_path.name


@dataclass(frozen=True)
class UnitCheckpoint:
    """The checkpoint of one unit (``key``) of one result store (``store_id``) at ``path``.

    :meth:`resume` returns the state to continue from, or None to train from the first epoch;
    :meth:`save` writes an epoch's state before the epoch is committed; :meth:`finish` checks the
    unit holds exactly epochs ``first..last``, marks it done and removes the file.
    """

    path: Path
    store_id: str
    key: tuple

    @classmethod
    def of(cls, store: Any, key: Any, name: str) -> "UnitCheckpoint":
        """The checkpoint file ``name`` of ``key`` in ``store`` (a :class:`~nasbeff.store.ResultStore`)."""
        return cls(checkpoint_dir(store.path) / name, store.store_id, tuple(key.as_tuple()))

    def save(self, epoch: int, metrics: dict[str, Any], trainer_state: dict[str, Any]) -> None:
        """Write epoch ``epoch``'s trainer state and metrics (atomically), stamped with the store and unit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.path, {"epoch": int(epoch), "metrics": metrics, "trainer": trainer_state,
                                    "store_id": self.store_id, "run_key": list(self.key)})

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def resume(self, store: Any, key: Any, first_epoch: int = 1, map_location: Any = None) -> dict[str, Any] | None:
        """The checkpoint's contents when it belongs to this store and unit and the store holds
        every epoch from ``first_epoch`` up to it (its own epoch is committed from the checkpoint
        when the kill came between the two); otherwise the file is removed and None returned."""
        if not self.path.exists():
            return None
        state = load_checkpoint(self.path, map_location=map_location)
        ok = state.get("store_id") == self.store_id and list(state.get("run_key") or ()) == list(self.key)
        epoch = state.get("epoch")
        if ok and isinstance(epoch, int) and epoch >= first_epoch:
            have = set(store.epochs_done(key))
            ok = set(range(first_epoch, epoch)) <= have and not any(e > epoch for e in have)
        if not ok:
            self.discard()
            return None
        if epoch not in set(store.epochs_done(key)):  # checkpointed, killed before the commit
            store.record_epoch(key, epoch, state["metrics"])
        return state

    def finish(self, store: Any, key: Any, epochs: int, first_epoch: int = 1) -> None:
        """Mark ``key`` done once the store holds exactly epochs ``first_epoch .. first_epoch + epochs - 1``
        (:meth:`~nasbeff.store.ResultStore.mark_done`), then remove the checkpoint."""
        store.mark_done(key, epochs=epochs, first_epoch=first_epoch)
        self.discard()
