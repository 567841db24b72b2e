"""BackendClient against the fake backend subprocess (no bpy needed: client.py is plain Python)."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import time

import numpy as np
import pytest

from addon_helpers import FAKE_BACKEND, REPO


def _load_client():
    # client.py has no bpy import; load it alone so that these tests do not need Blender.
    spec = importlib.util.spec_from_file_location("remomask_client_standalone", REPO / "remomask_addon/core/client.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


client = _load_client()


@pytest.fixture
def make(tmp_path):
    made = []

    def _make(**kw):
        kw.setdefault("server_args", [str(FAKE_BACKEND)])
        kw.setdefault("log_path", str(tmp_path / "backend.log"))
        c = client.BackendClient(sys.executable, str(tmp_path), "cpu", **kw)
        made.append(c)
        return c

    yield _make
    for c in made:
        c.stop()
        assert not c.alive


def test_command_line_and_cwd(tmp_path):
    c = client.BackendClient("/opt/py/bin/python", "/models", "cuda", project_dir=str(REPO))
    assert c.command() == ["/opt/py/bin/python", "-m", "backend.server", "--models", "/models", "--device", "cuda"]


def test_hello_generate_and_npz(make, tmp_path):
    c = make()
    t0 = time.monotonic()
    h = c.request("hello")
    ev = c.wait(h, 20)
    assert ev[-1]["result"]["protocol"] == 1 and ev[-1]["result"]["device"] == "cpu"
    g = c.request("generate", {"prompt": "a person walks", "length_s": 1.5, "seed": 7, "samples": 2,
                               "out_dir": str(tmp_path)})
    assert g in c.pending
    ev = c.wait(g, 20)
    progress = [e for e in ev if e.get("event") == "progress"]
    assert len(progress) >= 2 and progress[-1]["fraction"] == 1.0
    motions = ev[-1]["result"]["motions"]
    assert [m["sample"] for m in motions] == [0, 1]
    with np.load(motions[0]["path"]) as z:
        assert z["joints"].shape == (30, 22, 3) and z["poses"].shape == (30, 24, 3)
        assert int(z["seed"]) == 7
    assert not c.pending
    assert time.monotonic() - t0 < 15


def test_dead_backend_fails_pending_and_restarts(make, monkeypatch):
    monkeypatch.setenv("FAKE_BACKEND_EXIT_ON_GENERATE", "1")
    c = make()
    g = c.request("generate", {"prompt": "jump"})
    pid = c.pid
    ev = c.wait(g, 20)
    err = ev[-1]["error"]
    assert ev[-1]["id"] == g and err["code"] == client.DEAD
    assert "exited with code 3" in err["message"] and "out of memory" in err["message"]
    assert not c.pending and not c.alive
    monkeypatch.delenv("FAKE_BACKEND_EXIT_ON_GENERATE")
    c.extra_env = {}
    g2 = c.request("generate", {"prompt": "jump", "length_s": 1.0})
    assert c.pid != pid and c.starts == 2
    assert "result" in c.wait(g2, 20)[-1]


def test_killed_while_two_requests_pending(make, monkeypatch):
    monkeypatch.setenv("FAKE_BACKEND_STEP_S", "0.5")
    c = make()
    a = c.request("generate", {"prompt": "walk"})
    b = c.request("generate", {"prompt": "run"})
    time.sleep(0.3)
    c._proc.kill()
    deadline = time.monotonic() + 10
    errs = {}
    while time.monotonic() < deadline and len(errs) < 2:
        for e in c.poll():
            if "error" in e:
                errs[e["id"]] = e["error"]["code"]
        time.sleep(0.02)
    assert errs == {a: client.DEAD, b: client.DEAD}


def test_missing_python_is_a_clear_error(tmp_path):
    c = client.BackendClient(str(tmp_path / "nope" / "python"), str(tmp_path), "cpu")
    with pytest.raises(client.BackendError, match="Backend Python not found"):
        c.request("hello")
    c2 = client.BackendClient(sys.executable, str(tmp_path / "no-models"), "cpu")
    with pytest.raises(client.BackendError, match="Model folder not found"):
        c2.request("hello")


def test_stop_ends_the_process(make):
    c = make()
    c.wait(c.request("hello"), 20)
    proc = c._proc
    g = c.request("generate", {"prompt": "walk"})
    c.stop()
    assert proc.poll() is not None
    ev = c.poll()
    assert any(e.get("id") == g and e["error"]["code"] == client.DEAD for e in ev if "error" in e)


def test_remote_sends_token_first():
    """Remote mode: connects, sends hello with the token before anything else, then the request."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = []

    def serve():
        conn, _ = srv.accept()
        # separate read and write files: a text "rw" file drops its read-ahead when written to
        rf = conn.makefile("r", encoding="utf-8")
        wf = conn.makefile("w", encoding="utf-8", newline="\n")
        for line in rf:
            req = json.loads(line)
            got.append(req)
            wf.write(json.dumps({"id": req["id"], "result": {"ok": req["method"]}}) + "\n")
            wf.flush()
            if len(got) == 2:
                break
        conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    c = client.BackendClient(None, None, remote=f"127.0.0.1:{port}", token="s3cret")
    rid = c.request("generate", {"prompt": "walk"})
    ev = c.wait(rid, 10)
    assert got[0]["method"] == "hello" and got[0]["params"] == {"token": "s3cret"}
    assert got[1]["method"] == "generate" and ev[-1]["result"] == {"ok": "generate"}
    c.stop()
    th.join(5)
    srv.close()


def test_exit_detected_when_a_grandchild_holds_stdout(make):
    """The backend exits but a process it started keeps the stdout pipe open: no end-of-stream ever comes,
    the client still reports the death (after its 2 s grace) instead of waiting forever."""
    code = "import subprocess, sys; subprocess.Popen(['sleep', '4']); sys.exit(5)"
    c = make(server_args=["-c", code])
    t0 = time.monotonic()
    rid = c.request("generate", {"prompt": "walk"})
    ev = c.wait(rid, 10)
    assert ev and ev[-1]["error"]["code"] == client.DEAD and "exited with code 5" in ev[-1]["error"]["message"]
    assert 1.9 < time.monotonic() - t0 < 8
