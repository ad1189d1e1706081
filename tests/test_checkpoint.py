"""Tests for nasbeff.training.checkpoint: atomic writes, schema check, truncated and corrupt files."""

from __future__ import annotations

import random

import pytest
import torch

import nasbeff
from nasbeff.training.checkpoint import CHECKPOINT_SCHEMA, CheckpointError, load_checkpoint, save_checkpoint


def _payload() -> dict:
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.ones(2, 4)).sum().backward()
    opt.step()
    return {"epoch": 3, "metrics": {"valid_acc": 41.5}, "model": net.state_dict(), "opt": opt.state_dict(),
            "rng": torch.get_rng_state()}


def test_round_trip_and_header(tmp_path):
    path = tmp_path / "arch.pt"
    payload = _payload()
    save_checkpoint(path, payload)
    save_checkpoint(path, {**payload, "epoch": 4})  # replaces the previous one
    got = load_checkpoint(path, map_location="cpu")
    assert got["schema"] == CHECKPOINT_SCHEMA and got["nasbeff_version"] == nasbeff.__version__
    assert got["epoch"] == 4 and got["metrics"] == {"valid_acc": 41.5}
    assert torch.equal(got["model"]["weight"], payload["model"]["weight"])
    assert got["opt"]["state"][0]["momentum_buffer"].shape == (3, 4)
    assert "schema" not in payload  # the caller's dict is not modified
    assert [p.name for p in tmp_path.iterdir()] == ["arch.pt"]


def test_ctrl_c_inside_torch_save_stays_an_interrupt_and_keeps_the_previous_file(tmp_path, monkeypatch):
    """torch's zip writer turns a KeyboardInterrupt raised in a file write into RuntimeError
    ("unexpected pos"): the CLI would report exit 2 instead of 130 (seen in CI on a Ctrl-C mid-save)."""
    import nasbeff.training.checkpoint as ckpt

    path = tmp_path / "arch.pt"
    save_checkpoint(path, _payload())
    real = ckpt.atomic_write

    class _InterruptedFile:
        def __init__(self, f):
            self.f, self.writes = f, 0

        def write(self, b):
            self.writes += 1
            if self.writes == 3:
                raise KeyboardInterrupt
            return self.f.write(b)

        def __getattr__(self, name):
            return getattr(self.f, name)

    class _Wrapped:
        def __init__(self, *a, **kw):
            self.cm = real(*a, **kw)

        def __enter__(self):
            return _InterruptedFile(self.cm.__enter__())

        def __exit__(self, *exc):
            return self.cm.__exit__(*exc)

    monkeypatch.setattr(ckpt, "atomic_write", _Wrapped)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {**_payload(), "epoch": 9})
    assert load_checkpoint(path)["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["arch.pt"]  # no temporary file left


def test_bad_payloads_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "a.pt", {"schema": 5})
    with pytest.raises(TypeError, match="dict"):
        save_checkpoint(tmp_path / "a.pt", [1, 2])  # type: ignore[arg-type]
    save_checkpoint(tmp_path / "a.pt", {"epoch": 1})
    with pytest.raises(Exception):
        save_checkpoint(tmp_path / "a.pt", {"epoch": 2, "f": lambda: 0})  # cannot be pickled
    assert load_checkpoint(tmp_path / "a.pt")["epoch"] == 1  # the old checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


@pytest.mark.parametrize("schema, shown", [(None, "none"), (0, "0"), (2, "2"), ("1", "'1'")])
def test_other_schema_gives_one_line(tmp_path, schema, shown):
    path = tmp_path / "old.pt"
    data = {"epoch": 1, "trainer": {}}  # what nasbeff wrote before checkpoints had a schema
    if schema is not None:
        data["schema"] = schema
    torch.save(data, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(e.value) == (
        f"{path}: checkpoint schema {shown}, this nasbeff reads {CHECKPOINT_SCHEMA}; delete it to restart that arch"
    )
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match="checkpoint schema none"):
        load_checkpoint(path)


def test_truncated_or_corrupt_file_gives_one_line(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, _payload())
    data = good.read_bytes()
    rng = random.Random(5)
    damaged = [b"", data[:10], data[: len(data) // 2], data[:-20], rng.randbytes(len(data)), b"not a checkpoint\n" * 9]
    for i, blob in enumerate(damaged):
        path = tmp_path / f"bad{i}.pt"
        path.write_bytes(blob)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        msg = str(e.value)
        assert msg.startswith(f"{path}: truncated or corrupt checkpoint (") and "\n" not in msg, msg
        assert msg.endswith("delete it to restart that arch")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")
