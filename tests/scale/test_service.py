"""The shared generator service (``remomask serve``'s Ray Serve app) on a real local Ray (``num_cpus=2``), one
replica of the tiny model, driven through the add-on's Remote-mode client (``core/remote_client.py``) and raw
HTTP. One Ray + Serve for the module (they start slowly)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="the [scale] extra (ray) is not installed")

from remomask_addon.core.remote_client import DEAD, ServiceClient  # noqa: E402

from .service_fixture import TOKEN, running_service  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from tests.release_fixture import make_tiny_release

    tiny = make_tiny_release(tmp_path_factory.mktemp("tiny"))
    with running_service(tiny) as url:
        yield url, tiny


def _final(events, rid):
    finals = [e for e in events if e.get("id") == rid and ("result" in e or "error" in e)]
    assert len(finals) == 1, events
    return finals[0]


def test_eight_concurrent_clients_are_served_and_batched(service, tmp_path):
    url, _ = service
    out: dict[int, list] = {}

    def one(i):
        c = ServiceClient(url, TOKEN)
        rid = c.request("generate", {"prompt": f"a person walks forward, take {i}", "seed": 3, "length_s": 2.0,
                                     "out_dir": str(tmp_path / f"c{i}")})
        out[i] = c.wait(rid, timeout=120)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert sorted(out) == list(range(8))
    sizes = []
    for i, events in out.items():
        final = _final(events, 1)
        assert "result" in final, final
        res = final["result"]
        sizes.append(res["batch"]["size"])
        (m,) = res["motions"]
        path = Path(m["path"])
        assert path.parent == tmp_path / f"c{i}" and path.is_file() and path.with_suffix(".bvh").is_file()
        with np.load(path) as z:  # each client got its own prompt's motion back from the merged batch
            assert str(z["prompt"]) == f"a person walks forward, take {i}"
            assert z["joints"].shape == (40, 22, 3) and np.isfinite(z["joints"]).all()
        fr = [e["fraction"] for e in events if e.get("event") == "progress"]
        assert fr and fr == sorted(fr) and 0 <= fr[0] and fr[-1] == 1.0
    assert max(sizes) > 1, sizes


def test_wrong_or_missing_token_is_refused(service):
    url, _ = service
    port = int(url.rsplit(":", 1)[1])
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/generate", body=json.dumps({"prompt": "a person walks"}), headers=headers)
        r = conn.getresponse()
        assert r.status == 401 and json.loads(r.read())["error"]["code"] == "unauthorized"
        conn.close()
    c = ServiceClient(url, "wrong-token")
    final = _final(c.wait(c.request("generate", {"prompt": "a person walks"}), 30), 1)
    assert final["error"]["code"] == "unauthorized" and "token" in final["error"]["message"]
    ok = ServiceClient(url, TOKEN)
    hello = _final(ok.wait(ok.request("hello"), 30), 1)["result"]
    assert hello["protocol"] == 1 and "generate" in hello["capabilities"] and hello["max_batch_size"] == 8


def test_bad_params_get_one_clear_error(service):
    url, _ = service
    port = int(url.rsplit(":", 1)[1])
    for body, words in (({"prompt": "a person walks", "length_s": 99}, "length_s"),
                        ({"prompt": "a person walks", "out_dir": "/srv"}, "out_dir"),
                        ({"prompts": []}, "prompts")):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/generate", body=json.dumps(body), headers={"Authorization": f"Bearer {TOKEN}"})
        r = conn.getresponse()
        err = json.loads(r.read())["error"]
        assert r.status == 400 and err["code"] == "invalid_params" and words in err["message"], err
        conn.close()


def test_cancel_frees_the_replica(service, tmp_path):
    url, _ = service
    c = ServiceClient(url, TOKEN)
    slow = c.request("generate", {"prompt": "a person takes ages", "out_dir": str(tmp_path)})
    t0 = time.monotonic()
    while not any(e.get("event") == "progress" for e in c.poll()) and time.monotonic() - t0 < 60:
        time.sleep(0.02)  # it is running on the replica
    assert c.cancel(slow) == slow
    assert _final(c.poll(), slow)["error"]["code"] == "cancelled"
    t1 = time.monotonic()
    rid = c.request("generate", {"prompt": "a person jumps", "out_dir": str(tmp_path)})
    final = _final(c.wait(rid, 60), rid)
    assert "result" in final, final
    assert time.monotonic() - t1 < 20  # not the minute the cancelled request would have taken
    assert [p.name for p in tmp_path.glob("*.npz")] == [Path(final["result"]["motions"][0]["path"]).name]


def test_killed_replica_gives_an_error_then_the_service_recovers(service, tmp_path):
    url, _ = service
    c = ServiceClient(url, TOKEN)
    t0 = time.monotonic()
    rid = c.request("generate", {"prompt": "a person kills its worker", "out_dir": str(tmp_path)})
    final = _final(c.wait(rid, 90), rid)
    assert time.monotonic() - t0 < 90
    if "error" in final:  # the stream broke: one clear error (a retried result is the other allowed outcome)
        assert final["error"]["code"] in (DEAD, "internal") and final["error"]["message"]
        print("killed replica ->", final["error"])
    else:
        assert Path(final["result"]["motions"][0]["path"]).is_file()
    end = time.monotonic() + 120
    while True:  # Serve restarts the replica
        rid = c.request("generate", {"prompt": "a person waves", "out_dir": str(tmp_path)})
        final = _final(c.wait(rid, 60), rid)
        if "result" in final or time.monotonic() > end:
            break
        time.sleep(1)
    assert "result" in final, final


def test_edit_sends_the_source_contents_and_keeps_frames_outside_the_hole(service, tmp_path):
    url, _ = service
    from backend.motion.motion_file import save_motion
    from backend.synthetic import generate_clip

    src = tmp_path / "walk.npz"  # a real body (the tiny model's random weights do not make one)
    save_motion(src, joints=generate_clip("walk", 5).joints[:80], prompt="a person walks")
    c = ServiceClient(url, TOKEN)
    rid = c.request("edit", {"source": str(src), "task": "inpaint", "frames": [40, 60], "prompt": "a person jumps",
                             "out_dir": str(tmp_path / "edits")})
    final = _final(c.wait(rid, 120), rid)
    assert "result" in final, final
    out = Path(final["result"]["motions"][0]["path"])
    assert out.parent == tmp_path / "edits"
    with np.load(src) as a, np.load(out) as b:
        assert b["joints"].shape == a["joints"].shape == (80, 22, 3)
        np.testing.assert_allclose(b["joints"][:30], a["joints"][:30], atol=1e-4)
        assert np.abs(b["joints"][40:60] - a["joints"][40:60]).max() > 1e-3  # the hole was regenerated
