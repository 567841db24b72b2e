"""The protocol's ``library_index`` through the real server process (``python -m backend.server`` with the shipped
starter): progress to 100 %, a message per bad file, cancel between files leaving the previous index byte for byte,
and the refusals answered before anything is queued."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from backend.motion.motion_file import save_motion
from backend.serving.protocol import LIBRARY_STAGES
from backend.synthetic import generate_clip
from tests.server.client import ServerProc


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


pytestmark = pytest.mark.slow  # a real server with the starter; out of make test-fast (90 s budget)


@pytest.fixture(scope="module")
def server():
    from backend.generation.project_weights import STARTER_DIR

    s = ServerProc(models=STARTER_DIR, generator=None, fitter=None, env={"OMP_NUM_THREADS": 1})
    _, hello = s.call("hello", timeout=120)
    assert "library_index" in hello["result"]["capabilities"], hello
    yield s
    s.close()


def test_library_index_progress_messages_and_search(server, tmp_path):
    folder = tmp_path / "mocap"
    folder.mkdir()
    for i, fam in enumerate(("walk", "wave", "squat", "kick")):
        c = generate_clip(fam, 30 + i)
        save_motion(folder / f"{fam}.npz", joints=c.joints, prompt=c.caption)
    (folder / "broken.npy").write_bytes(b"not a numpy file")
    events, reply = server.call("library_index", {"folder": str(folder)}, timeout=120)
    assert "result" in reply, reply
    r = reply["result"]
    assert r["files"] == 4 and r["windows"] == 4 and sorted(r["embedded"]) == ["kick.npz", "squat.npz",
                                                                             "walk.npz", "wave.npz"]
    assert list(r["errors"]) == ["broken.npy"] and len(r["messages"]) == 1
    assert r["messages"][0].startswith("broken.npy: ") and "\n" not in r["messages"][0]
    fr = [e["fraction"] for e in events]
    assert {e["stage"] for e in events} == {"index"} and "index" in LIBRARY_STAGES
    assert fr[-1] == 1.0 and fr == sorted(fr), fr
    assert (folder / ".remomask-library" / "index.json").is_file()
    # the new index answers a search on the same server; an unchanged re-index embeds nothing
    _, hit = server.call("library_search", {"index": str(folder), "text": "a person waves", "k": 1}, timeout=60)
    assert hit["result"]["hits"][0]["file"] == "wave.npz", hit
    _, again = server.call("library_index", {"folder": str(folder)}, timeout=60)
    assert again["result"]["embedded"] == [] and again["result"]["reused"] == 4


@pytest.mark.parametrize("params, needle", [
    ({}, "needs 'folder'"),
    ({"folder": "/no/such/folder"}, "motion folder not found"),
    ({"folder": "."}, None),  # replaced below by a real folder with a bad stride
    ({"folder": ".", "colour": 1}, "unknown library_index params"),
])
def test_library_index_refusals(server, tmp_path, params, needle):
    if needle is None:
        params, needle = {"folder": str(tmp_path), "window": 20, "stride": 21}, "'stride' must be in 1..20"
    _, reply = server.call("library_index", params, timeout=30)
    assert reply["error"]["code"] == "invalid_params" and needle in reply["error"]["message"], reply
    empty = tmp_path / "empty"
    empty.mkdir()
    _, reply = server.call("library_index", {"folder": str(empty)}, timeout=30)
    assert reply["error"]["code"] == "invalid_params" and "no motion files" in reply["error"]["message"]
    assert not (empty / ".remomask-library").exists()


def test_cancel_keeps_the_previous_index(server, tmp_path):
    folder = tmp_path / "takes"
    folder.mkdir()
    rng = np.random.default_rng(0)
    clip = generate_clip("walk", 5).joints
    save_motion(folder / "first.npz", joints=clip, prompt="first")
    _, reply = server.call("library_index", {"folder": str(folder)}, timeout=60)
    assert "result" in reply, reply
    before = _digest(folder / ".remomask-library")
    # enough long takes that indexing takes seconds: cancel after the first file's progress event
    for i in range(80):
        save_motion(folder / f"take_{i:02d}.npz", joints=np.concatenate([clip] * 4) + rng.normal(0, 1e-3, (1, 1, 3)),
                    prompt=f"take {i}")
    server.send({"id": "ix", "method": "library_index", "params": {"folder": str(folder)}})
    while True:
        m = server.recv(60)
        if m.get("id") == "ix" and m.get("event") == "progress" and m["fraction"] > 0:
            break
        assert m.get("id") != "ix" or "event" in m, m
    _, c = server.call("cancel", {"target": "ix"}, timeout=10)
    assert c["result"]["cancelled"] is True
    _, final = server.wait("ix", timeout=60)
    assert final["error"]["code"] == "cancelled", final
    assert _digest(folder / ".remomask-library") == before
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [".remomask-library"]
