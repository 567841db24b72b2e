"""The generator server over stdin/stdout, with the deterministic stand-in generator."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backend import __version__
from tests.server.client import FAST_FIT, REPO, STANDIN, ServerProc, server_env

GEN_ORDER = ["text", "retrieval", "tokens", "residual", "decode", "fit", "write"]  # the stand-in's stages


@pytest.fixture
def server():
    s = ServerProc()
    yield s
    s.close()


@pytest.fixture(scope="module")
def shared_server():
    s = ServerProc()
    yield s
    s.close()


@pytest.fixture
def slow_server():
    s = ServerProc(env={"REMOMASK_STANDIN_DELAY": "0.3"})  # 5 stages x 0.3 s
    yield s
    s.close()


def test_hello(server):
    events, reply = server.call("hello", req_id=1)
    assert events == []
    r = reply["result"]
    assert reply["id"] == 1
    assert r["protocol"] == 1 and r["version"] == __version__
    assert r["device"] == "cpu"
    assert r["torch"] is None or r["torch"][0].isdigit()
    assert r["models"]["kind"] == "standin"
    assert {"generate", "cancel", "progress"} <= set(r["capabilities"])


def test_generate_progress_files_and_determinism(server, tmp_path):
    params = {"prompts": ["a person walks forward", "Jump!"], "samples": 2, "length_s": 2.0, "seed": 7,
              "out_dir": str(tmp_path), "fit": False}
    events, reply = server.call("generate", params, req_id="g1")
    assert "result" in reply, reply
    # progress: known stages in pipeline order, fractions in 0..1 and non-decreasing, ends at 1
    stages = [e["stage"] for e in events]
    assert stages[0] == "text" and stages[-1] == "write"
    idx = [GEN_ORDER.index(s) for s in stages]
    assert idx == sorted(idx)
    fr = [e["fraction"] for e in events]
    assert all(0 <= f <= 1 for f in fr) and fr == sorted(fr) and fr[-1] == 1.0
    motions = reply["result"]["motions"]
    assert len(motions) == 4
    names = sorted(Path(m["path"]).name for m in motions)
    assert names == ["a_person_walks_forward_s7_0.npz", "a_person_walks_forward_s8_1.npz",
                     "jump_s7_0.npz", "jump_s8_1.npz"]
    for m in motions:
        assert m["frames"] == 40 and m["fps"] == 20 and m["fit_error_mm"] is None
        with np.load(m["path"]) as z:
            joints = z["joints"]
            assert joints.shape == (40, 22, 3) and joints.dtype == np.float32
            assert z["features"].shape == (40, 263)
            assert str(z["prompt"]) == m["prompt"] and int(z["seed"]) == m["seed"] and int(z["fps"]) == 20
            assert list(z["retrieved"]) == m["retrieved"] and len(m["retrieved"]) == 1
        # the pelvis is ~0.93 m up (y-up, metres) and the motion is deterministic in (prompt, seed)
        assert abs(float(joints[:, 0, 1].mean()) - 0.93) < 1e-3
    # same request again: identical motion, new file names (nothing is overwritten)
    _, again = server.call("generate", params, req_id="g2")
    m0, m1 = motions[0], again["result"]["motions"][0]
    assert m1["path"] != m0["path"] and m1["path"].endswith("-2.npz")
    np.testing.assert_array_equal(np.load(m0["path"])["joints"], np.load(m1["path"])["joints"])
    assert len(list(tmp_path.iterdir())) == 8


def test_length_estimator_and_single_prompt(server, tmp_path):
    _, reply = server.call("generate", {"prompt": "  a   person  waves ", "length_s": None,
                                        "out_dir": str(tmp_path)})
    (m,) = reply["result"]["motions"]
    assert m["prompt"] == "a person waves"
    assert m["frames"] == 40 + 4 * (len("a person waves") % 20)  # the stand-in's "estimator"
    assert Path(m["path"]).name == "a_person_waves_s0_0.npz"


def test_default_out_dir_and_fit_right_after_generation(server):
    events, reply = server.call("generate", {"prompt": "walk", "length_s": 1.0})
    (m,) = reply["result"]["motions"]
    assert Path(m["path"]).is_file() and Path(m["path"]).parent.name.startswith("remomask-out-")
    assert reply["result"]["warnings"] == []
    stages = [e["stage"] for e in events]
    assert stages.index("decode") < stages.index("fit") < stages.index("write")
    with np.load(m["path"]) as z:
        assert z["poses"].shape == (20, 24, 3) and z["rest_joints"].shape == (24, 3)
        np.testing.assert_allclose(m["fit_error_mm"], z["fit_error_mm"].mean(), rtol=1e-5)
        assert m["fit_error_mm"] > 1.0  # the stand-in fit keeps the rest pose: a real, non-zero error
    assert "fit" in server.call("hello")[1]["result"]["capabilities"]
    _, nofit = server.call("generate", {"prompt": "walk", "length_s": 1.0, "fit": False})
    (m2,) = nofit["result"]["motions"]
    assert m2["fit_error_mm"] is None and "poses" not in np.load(m2["path"]).files


def test_ground_feet_reaches_the_fit(server, tmp_path):
    """ground_feet (default true) goes to the fitter with the sample's foot-contact channels (features
    259:263); false turns grounding off."""
    for params, want in (({}, {"ground_feet": True, "contacts": [20, 4]}),
                         ({"ground_feet": True}, {"ground_feet": True, "contacts": [20, 4]}),
                         ({"ground_feet": False}, {"ground_feet": False, "contacts": None})):
        _, reply = server.call("generate", {"prompt": "walk", "length_s": 1.0, "out_dir": str(tmp_path), **params})
        (m,) = reply["result"]["motions"]
        with np.load(m["path"]) as z:
            assert json.loads(str(z["fit_args"])) == want, params


@pytest.mark.parametrize("params, needle", [
    ({}, "exactly one of"),
    ({"prompt": "a", "prompts": ["b"]}, "exactly one of"),
    ({"prompt": ""}, "empty"),
    ({"prompt": "   "}, "empty"),
    ({"prompt": 3}, "string"),
    ({"prompts": []}, "1..64"),
    ({"prompts": ["a"] * 65}, "1..64"),
    ({"prompts": ["a", None]}, "list of strings"),
    ({"prompt": "x" * 501}, "longer than 500"),
    ({"prompt": "a", "length_s": 0.1}, "length_s"),
    ({"prompt": "a", "length_s": 10}, "length_s"),
    ({"prompt": "a", "length_s": "2"}, "number"),
    ({"prompt": "a", "length_s": True}, "number"),
    ({"prompt": "a", "seed": -1}, "seed"),
    ({"prompt": "a", "seed": 1.5}, "integer"),
    ({"prompt": "a", "seed": 10**40}, "seed"),
    ({"prompt": "a", "samples": 0}, "samples"),
    ({"prompt": "a", "samples": 9}, "samples"),
    ({"prompt": "a", "cond_scale": -0.1}, "cond_scale"),
    ({"prompt": "a", "time_steps": 101}, "time_steps"),
    ({"prompt": "a", "temperature": 0}, "temperature"),
    ({"prompt": "a", "topk": 1.5}, "topk"),
    ({"prompt": "a", "use_retrieval": "yes"}, "true or false"),
    ({"prompt": "a", "fit": 1}, "true or false"),
    ({"prompt": "a", "ground_feet": "no"}, "'ground_feet' must be true or false"),
    ({"prompt": "a", "ground_feet": 0}, "'ground_feet' must be true or false"),
    ({"prompt": "a", "ground_feet": None}, "'ground_feet' must be true or false"),
    ({"prompt": "a", "literal": "yes"}, "'literal' must be true or false"),
    ({"prompt": "a", "candidates": 0}, "'candidates' must be in 1..16"),
    ({"prompt": "a", "candidates": 17}, "'candidates' must be in 1..16"),
    ({"prompt": "a", "candidates": 2.5}, "'candidates' must be an integer"),
    ({"prompt": "a", "candidates": True}, "'candidates' must be an integer"),
    ({"prompt": "a", "out_dir": ""}, "out_dir"),
    ({"prompt": "a", "out_dir": "/proc/nope/x"}, "out_dir"),
    ({"prompt": "a", "colour": "red"}, "unknown generate params"),
])
def test_invalid_generate_params(shared_server, params, needle):
    _, reply = shared_server.call("generate", params)
    assert reply["error"]["code"] == "invalid_params", reply
    assert needle in reply["error"]["message"]


def test_bad_requests_get_error_replies(server):
    cases = [
        (b"not json\n", None, "bad_request"),
        (b"[1, 2]\n", None, "bad_request"),
        (b'{"method": "hello"}\n', None, "bad_request"),
        (b'{"id": true, "method": "hello"}\n', None, "bad_request"),
        (b'{"id": 5}\n', 5, "bad_request"),
        (b'{"id": 6, "method": "fly"}\n', 6, "unknown_method"),
        (b'{"id": 7, "method": "generate", "params": [1]}\n', 7, "invalid_params"),
        (b'{"id": 8, "method": "cancel", "params": {}}\n', 8, "invalid_params"),
        (b'{"id": 9, "method": "hello", "params": {}, "extra": 1}\n', 9, "bad_request"),
        (b'{"id": 10, "method": "hello", "x": NaN}\n', None, "bad_request"),
        (b"\xff\xfe{}\n", None, "bad_request"),
        (b'{"id": 11, "method": "generate", "params": {"prompt": "a", "cond_scale": 1e400}}\n', 11,
         "invalid_params"),
        (b'{"id": 12, "method": "generate", "params": {"prompt": "a", "seed": 1' + b"0" * 5000 + b'}}\n', None,
         "bad_request"),
    ]
    for raw, rid, code in cases:
        server.send_raw(raw)
        reply = server.recv()
        assert reply["id"] == rid and reply["error"]["code"] == code, (raw, reply)
    server.send_raw(b"\n   \n")  # blank lines are ignored
    _, ok = server.call("hello")
    assert "result" in ok


def test_cancel_running_writes_nothing_and_reader_stays_responsive(slow_server, tmp_path):
    s = slow_server
    s.send({"id": "slow", "method": "generate", "params": {"prompt": "walk", "samples": 3,
                                                            "out_dir": str(tmp_path)}})
    first = s.recv()
    assert first["id"] == "slow" and first["event"] == "progress"
    t0 = time.monotonic()
    _, hello = s.call("hello")  # answered while the worker is busy
    assert "result" in hello and time.monotonic() - t0 < 1.0  # the job itself takes 1.5 s
    _, c = s.call("cancel", {"target": "slow"})
    assert c["result"] == {"cancelled": True}
    _, final = s.wait("slow", timeout=5)
    assert final["error"]["code"] == "cancelled"
    assert list(tmp_path.iterdir()) == []
    # cancelling again, or an unknown id: false
    assert s.call("cancel", {"target": "slow"})[1]["result"] == {"cancelled": False}
    assert s.call("cancel", {"target": 12345})[1]["result"] == {"cancelled": False}


def test_cancel_queued_job_and_busy(tmp_path):
    s = ServerProc("--max-queued", "1", env={"REMOMASK_STANDIN_DELAY": "0.2"})
    try:
        p = {"prompt": "walk", "out_dir": str(tmp_path), "length_s": 1.0}
        s.send({"id": "a", "method": "generate", "params": p})
        assert s.recv()["id"] == "a"               # a is running
        s.send({"id": "b", "method": "generate", "params": p})   # b waits
        _, busy = s.call("generate", p, req_id="c")               # queue full
        assert busy["error"]["code"] == "busy"
        _, dup = s.call("generate", p, req_id="b")                # id still in use
        assert dup["error"]["code"] == "bad_request" and "still running" in dup["error"]["message"]
        s.send({"id": "x", "method": "cancel", "params": {"target": "b"}})
        replies = {}
        while len(replies) < 2:
            m = s.recv()
            if "event" not in m:
                replies[m["id"]] = m
        assert replies["b"]["error"]["code"] == "cancelled"
        assert replies["x"]["result"] == {"cancelled": True}
        _, done = s.wait("a", timeout=5)
        assert len(done["result"]["motions"]) == 1
        assert [f.name for f in tmp_path.iterdir()] == ["walk_s0_0.npz"]
    finally:
        s.close()


def test_model_error_keeps_server_alive(tmp_path):
    s = ServerProc(env={"REMOMASK_STANDIN_FAIL": "1"})
    try:
        _, r = s.call("generate", {"prompt": "walk", "out_dir": str(tmp_path)})
        assert r["error"]["code"] == "model_error" and "stand-in failure" in r["error"]["message"]
        assert "result" in s.call("hello")[1]
        assert list(tmp_path.iterdir()) == []
    finally:
        s.close()


def test_load_failure_is_reported_not_fatal():
    s = ServerProc(env={"REMOMASK_STANDIN_LOAD_FAIL": "1"})
    try:
        _, h = s.call("hello")
        assert h["error"]["code"] == "model_error" and "no models" in h["error"]["message"]
        _, g = s.call("generate", {"prompt": "walk"})
        assert g["error"]["code"] == "model_error"
    finally:
        s.close()


def test_library_prints_do_not_corrupt_the_protocol(tmp_path):
    code = ("import backend.server as s, tests.server.standin as st\n"
            "orig = st.StandIn.generate\n"
            "def noisy(self, *a, **k):\n    print('chatty library output'); return orig(self, *a, **k)\n"
            "st.StandIn.generate = noisy\n"
            "s.main()\n")
    p = subprocess.Popen([sys.executable, "-c", code, "--models", str(tmp_path), "--device", "cpu",
                          "--generator", STANDIN, "--fitter", FAST_FIT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=REPO, env=server_env())
    p.stdin.write(json.dumps({"id": 1, "method": "generate",
                              "params": {"prompt": "walk", "out_dir": str(tmp_path)}}).encode() + b"\n")
    p.stdin.flush()
    lines = []
    while not lines or "event" in lines[-1]:
        lines.append(json.loads(p.stdout.readline()))  # every stdout line is protocol JSON
    assert lines[-1]["id"] == 1 and "result" in lines[-1]
    _, err = p.communicate(timeout=10)
    assert p.returncode == 0 and b"chatty library output" in err


def test_shutdown(server):
    _, r = server.call("shutdown")
    assert r["result"] == {}
    assert server.p.wait(5) == 0


def test_stdin_close_exits_even_while_generating(tmp_path):
    s = ServerProc(env={"REMOMASK_STANDIN_DELAY": "30"})
    try:
        s.send({"id": 1, "method": "generate", "params": {"prompt": "walk", "out_dir": str(tmp_path)}})
        assert s.recv()["event"] == "progress"
        t0 = time.monotonic()
        s.p.stdin.close()
        assert s.p.wait(5) == 0
        assert time.monotonic() - t0 < 5
        assert list(tmp_path.iterdir()) == []
    finally:
        s.close()


def test_over_long_line_is_rejected_and_skipped(server):
    server.send_raw(b'{"id": 1, "method": "hello", "params": {"pad": "' + b"x" * (3 << 20) + b'"}}\n')
    r = server.recv()
    assert r["id"] is None and r["error"]["code"] == "bad_request" and "longer than" in r["error"]["message"]
    assert "result" in server.call("hello")[1]


# ---- TCP ------------------------------------------------------------------------------------------------

def _tcp_server(tmp_path, *extra, env=None):
    ready = tmp_path / "port"
    p = subprocess.Popen([sys.executable, "-m", "backend.server", "--models", str(tmp_path), "--device", "cpu",
                          "--generator", STANDIN, "--fitter", FAST_FIT, "--ready-file", str(ready), *extra],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         cwd=REPO, env=server_env(**(env or {})))
    end = time.monotonic() + 20
    while not ready.exists() or not ready.read_text():
        assert p.poll() is None, p.stderr.read().decode()
        assert time.monotonic() < end
        time.sleep(0.05)
    return p, int(ready.read_text())


def _talk(port, *msgs):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        f = c.makefile("rwb")
        out = []
        for m in msgs:
            try:
                f.write(json.dumps(m).encode() + b"\n")
                f.flush()
            except OSError:  # the server closed the connection (reset)
                out.append(None)
                break
            while True:
                try:
                    line = f.readline()
                except ConnectionResetError:
                    line = b""
                if not line:
                    out.append(None)
                    break
                r = json.loads(line)
                if "event" not in r:
                    out.append(r)
                    break
            if out[-1] is None:
                break
        return out


def test_tcp_token(tmp_path):
    p, port = _tcp_server(tmp_path, "--listen", "127.0.0.1:0", "--token", "s3cret-token")
    try:
        wrong = _talk(port, {"id": 1, "method": "hello", "params": {"token": "guess-guess"}},
                      {"id": 2, "method": "hello", "params": {"token": "s3cret-token"}})
        assert wrong[0]["error"]["code"] == "unauthorized" and wrong[1] is None  # closed after refusal
        no_hello = _talk(port, {"id": 1, "method": "generate", "params": {"prompt": "walk"}})
        assert no_hello[0]["error"]["code"] == "unauthorized"
        ok = _talk(port, {"id": 1, "method": "hello", "params": {"token": "s3cret-token"}},
                   {"id": 2, "method": "generate", "params": {"prompt": "walk", "out_dir": str(tmp_path / "o")}},
                   {"id": 3, "method": "shutdown"})
        assert ok[0]["result"]["models"]["kind"] == "standin"
        assert Path(ok[1]["result"]["motions"][0]["path"]).is_file()
        assert ok[2]["result"] == {}
        assert p.wait(5) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("args, msg", [
    (["--listen", "0.0.0.0:7000", "--token", "s3cret-token"], "loopback"),
    (["--listen", "127.0.0.1:7000"], "--token"),
])
def test_tcp_refuses_unsafe_setups(tmp_path, args, msg):
    p = subprocess.run([sys.executable, "-m", "backend.server", "--models", str(tmp_path), *args],
                       capture_output=True, cwd=REPO, env=server_env(), timeout=30)
    assert p.returncode == 2 and msg in p.stderr.decode()


def test_cancel_race_invariant(tmp_path):
    """Cancel at random moments: cancelled:true <=> the generate answers 'cancelled' and left no files."""
    s = ServerProc(env={"REMOMASK_STANDIN_DELAY": "0.004"})
    rng = np.random.default_rng(0)
    try:
        for k in range(30):
            out = tmp_path / f"run{k}"
            s.send({"id": f"g{k}", "method": "generate",
                    "params": {"prompt": "walk", "samples": 3, "length_s": 1.0, "out_dir": str(out)}})
            time.sleep(float(rng.uniform(0, 0.04)))
            s.send({"id": f"c{k}", "method": "cancel", "params": {"target": f"g{k}"}})
            finals = {}
            while len(finals) < 2:
                m = s.recv()
                if "event" not in m:
                    finals[m["id"]] = m
            cancelled = finals[f"c{k}"]["result"]["cancelled"]
            g = finals[f"g{k}"]
            files = sorted(p.name for p in out.iterdir())
            if cancelled:
                assert g["error"]["code"] == "cancelled" and files == [], (k, g, files)
            else:
                assert len(g["result"]["motions"]) == 3 and len(files) == 3, (k, g, files)
    finally:
        s.close()


@pytest.mark.slow  # > 1.4 s: make test-fast stays under 90 s
def test_tcp_disconnect_cancels_that_clients_job(tmp_path):
    p, port = _tcp_server(tmp_path, "--listen", "127.0.0.1:0", "--token", "s3cret-token",
                          env={"REMOMASK_STANDIN_DELAY": "0.4"})  # 2 s per request
    try:
        first = tmp_path / "first"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            f = c.makefile("rwb")
            f.write(b'{"id": 1, "method": "hello", "params": {"token": "s3cret-token"}}\n'
                    b'{"id": 2, "method": "generate", "params": {"prompt": "walk", "out_dir": "'
                    + str(first).encode() + b'"}}\n')
            f.flush()
            assert "result" in json.loads(f.readline())
            assert json.loads(f.readline())["event"] == "progress"  # running
            f.close()  # (a socket with an open makefile() stays open)
        t0 = time.monotonic()
        ok = _talk(port, {"id": 1, "method": "hello", "params": {"token": "s3cret-token"}},
                   {"id": 2, "method": "generate", "params": {"prompt": "run", "out_dir": str(tmp_path / "o")}})
        assert Path(ok[1]["result"]["motions"][0]["path"]).is_file()
        assert time.monotonic() - t0 < 3.5  # did not wait for the abandoned request
        time.sleep(0.2)
        assert list(first.iterdir()) == []
    finally:
        p.kill()
        p.wait()


@pytest.mark.slow  # > 1.4 s: make test-fast stays under 90 s
def test_requests_during_a_slow_model_load(tmp_path):
    s = ServerProc(env={"REMOMASK_STANDIN_LOAD_DELAY": "1.5"})
    try:
        t0 = time.monotonic()
        s.send({"id": "h", "method": "hello"})
        s.send({"id": "g", "method": "generate", "params": {"prompt": "walk", "out_dir": str(tmp_path)}})
        _, c = s.call("cancel", {"target": "nothing"})  # the reader answers while the models load
        assert c["result"] == {"cancelled": False}
        assert not any(m["id"] in ("h", "g") for m in s.stash)  # ... before hello and generate
        _, h = s.wait("h")
        assert h["result"]["models"]["kind"] == "standin" and time.monotonic() - t0 >= 1.4
        _, g = s.wait("g")
        assert Path(g["result"]["motions"][0]["path"]).is_file()
    finally:
        s.close()


@pytest.mark.parametrize("how", ["stdin_close", "shutdown"])
def test_exit_during_a_long_model_load(tmp_path, how):
    s = ServerProc(env={"REMOMASK_STANDIN_LOAD_DELAY": "60"})
    try:
        s.send({"id": "g", "method": "generate", "params": {"prompt": "walk", "out_dir": str(tmp_path)}})
        time.sleep(0.3)
        t0 = time.monotonic()
        if how == "shutdown":
            _, r = s.call("shutdown")
            assert r["result"] == {}
        else:
            s.p.stdin.close()
        assert s.p.wait(5) == 0 and time.monotonic() - t0 < 5
        assert list(tmp_path.iterdir()) == []
    finally:
        s.close()


@pytest.mark.slow  # waits out the 3 s grace period
def test_stdin_close_exits_even_if_the_model_ignores_cancel(tmp_path):
    s = ServerProc(env={"REMOMASK_STANDIN_STUCK": "60"})
    try:
        _, h = s.call("hello")
        s.send({"id": 1, "method": "generate", "params": {"prompt": "walk", "out_dir": str(tmp_path)}})
        time.sleep(0.3)
        t0 = time.monotonic()
        s.p.stdin.close()
        assert s.p.wait(6) == 0
        assert 2.5 < time.monotonic() - t0 < 6  # the grace period, then a hard exit
        assert list(tmp_path.iterdir()) == []
    finally:
        s.close()
