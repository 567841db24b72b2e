"""The one atomic writer (backend/atomic.py) and its users: the user's file mode, nothing half-written,
unique temporary names, and the add-on's byte-identical copy."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from backend import atomic

REPO = Path(__file__).resolve().parents[2]


def _umask_mode():
    m = os.umask(0)
    os.umask(m)
    return 0o666 & ~m


def test_the_addon_copy_is_byte_identical():
    assert (REPO / "remomask_addon" / "core" / "atomic.py").read_bytes() == (REPO / "backend" / "atomic.py").read_bytes()


def test_new_file_gets_the_users_mode_and_replaces_whole(tmp_path):
    p = atomic.atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert p.read_text() == "hello" and (p.stat().st_mode & 0o777) == _umask_mode()
    os.chmod(p, 0o640)  # a file the user restricted keeps its mode when replaced
    atomic.atomic_write_json(p, {"b": 1, "a": [1, 2]})
    assert p.read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}\n' and (p.stat().st_mode & 0o777) == 0o640
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.txt"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "m.npz"
    p.write_bytes(b"old")

    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.atomic_write_stream(p, broken)
    assert p.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["m.npz"]
    with pytest.raises(FileNotFoundError):
        atomic.atomic_write_bytes(tmp_path / "missing" / "x", b"1", make_parents=False)


def test_concurrent_writers_never_share_a_temporary_name(tmp_path):
    names, lock = set(), threading.Lock()
    real = atomic.tempfile.mkstemp

    def spy(*a, **k):
        fd, name = real(*a, **k)
        with lock:
            names.add(name)
        return fd, name

    atomic.tempfile.mkstemp = spy
    try:
        threads = [threading.Thread(target=atomic.atomic_write_bytes, args=(tmp_path / "same.bin", bytes([i]) * 1000))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        atomic.tempfile.mkstemp = real
    assert len(names) == 8
    data = (tmp_path / "same.bin").read_bytes()
    assert len(data) == 1000 and len(set(data)) == 1  # one writer's whole file, never a mix
    assert [x.name for x in tmp_path.iterdir()] == ["same.bin"]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "db"
    with pytest.raises(ValueError):
        with atomic.atomic_dir(out) as tmp:
            (tmp / "a.npy").write_bytes(b"x")
            raise ValueError("stop")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic.atomic_dir(out) as tmp:
        (tmp / "a.npy").write_bytes(b"1")
    with atomic.atomic_dir(out) as tmp:
        (tmp / "b.npy").write_bytes(b"2")
    assert sorted(x.name for x in out.iterdir()) == ["b.npy"] and [x.name for x in tmp_path.iterdir()] == ["db"]


def test_trained_weights_and_motion_files_share_the_users_mode(tmp_path):
    """Trained weights came out 0600 (mkstemp) while motion files were 0644."""
    import torch

    from backend.models.length_estimator import LengthEstimator
    from backend.motion.motion_file import save_motion
    from backend.generation.project_weights import save_module
    from backend.train.common import save_tensors

    weights = save_module(LengthEstimator(8, 5, hidden=4), tmp_path, "length_estimator")
    save_tensors(tmp_path / "model.safetensors", {"w": torch.ones(2)})
    motion = save_motion(tmp_path / "a.npz", joints=np.zeros((4, 22, 3), np.float32))
    for p in (weights, tmp_path / "length_estimator.json", tmp_path / "model.safetensors", motion):
        assert (p.stat().st_mode & 0o777) == _umask_mode(), p
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".")]
