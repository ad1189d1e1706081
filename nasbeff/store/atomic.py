"""All-or-nothing file writes: the one helper every writer of results, caches and weights uses.

A reader (or a rerun after ``kill -9`` / power loss) sees either the old file or the whole new
one, never a part: the data go to a temporary file in the same folder, which is flushed and
fsynced, then renamed over the target (``os.replace``: atomic on POSIX within one file system),
and the folder is fsynced so that the rename itself is durable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write"]


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # once, at import (os.umask can only be read by setting it)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``with atomic_write(path, "w", newline="") as f: ...`` writes ``path`` all-or-nothing.

    ``mode`` is ``"w"`` or ``"wb"``; ``open_kwargs`` go to :func:`open` (text mode defaults to
    UTF-8). The parent folder is created. The file keeps the permissions of the one it replaces
    (a new one: 0666 less the umask, as ``open`` gives). On any exception inside the block (Ctrl-C
    included) the temporary file is removed and ``path`` is left as it was."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if mode == "w":
        open_kwargs.setdefault("encoding", "utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:  # the permissions of the file it replaces, or a new file's usual ones (mkstemp's are 0600)
        os.chmod(tmp, out.stat().st_mode & 0o7777 if out.exists() else 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder; the rename is done
        dir_fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
