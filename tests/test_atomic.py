"""nasbeff.store.atomic_write: all or nothing, no temporary file left, bad mode refused."""

import os

import pytest

from nasbeff.store import atomic_write


def test_writes_whole_file_and_creates_folder(tmp_path):
    out = tmp_path / "sub" / "rows.csv"
    with atomic_write(out, "w", newline="") as f:
        f.write("index,acc\n1,0.5\n")
    assert out.read_text() == "index,acc\n1,0.5\n"
    assert os.listdir(out.parent) == ["rows.csv"]


def test_failure_inside_block_keeps_old_file_and_removes_temp(tmp_path):
    out = tmp_path / "weights.pt"
    out.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(out, "wb") as f:
        f.write(b"half of the new")
        raise KeyboardInterrupt
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["weights.pt"]


def test_append_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"), atomic_write(tmp_path / "x", "a"):
        pass
    assert not (tmp_path / "x").exists()


def test_permissions_are_those_of_open_or_of_the_replaced_file(tmp_path):
    import stat

    from nasbeff.store.atomic import _UMASK

    new = tmp_path / "new.csv"
    with atomic_write(new, "w") as f:
        f.write("x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~_UMASK  # not mkstemp's 0600
    old = tmp_path / "old.csv"
    old.write_text("a")
    old.chmod(0o640)
    with atomic_write(old, "w") as f:
        f.write("b")
    assert stat.S_IMODE(old.stat().st_mode) == 0o640 and old.read_text() == "b"
