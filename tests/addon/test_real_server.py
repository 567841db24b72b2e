"""The add-on's client against the real generator server (``python -m backend.server``) with the server's
stand-in generator (no torch models): same command line, working directory and PYTHONPATH as in Blender."""

from __future__ import annotations

import importlib.util
import sys


from addon_helpers import REPO



def _client_module():
    spec = importlib.util.spec_from_file_location("remomask_client_real", REPO / "remomask_addon/core/client.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hello_and_generate_with_the_real_server(tmp_path):
    client = _client_module()
    c = client.BackendClient(sys.executable, str(tmp_path), "cpu", project_dir=str(REPO),
                             server_args=["-m", "backend.server", "--generator", "tests.server.standin:make"],
                             log_path=str(tmp_path / "backend.log"))
    try:
        ev = c.wait(c.request("hello"), 120)
        assert "result" in ev[-1], ev[-1]
        hello = ev[-1]["result"]
        assert hello["protocol"] == 1 and hello["device"] == "cpu"
        rid = c.request("generate", {"prompt": "a person walks", "length_s": 1.0, "seed": 3, "samples": 1,
                                     "out_dir": str(tmp_path / "out")})
        ev = c.wait(rid, 120)
        assert "result" in ev[-1], ev[-1]
        assert any(e.get("event") == "progress" for e in ev)
        m = ev[-1]["result"]["motions"][0]
        assert m["prompt"] == "a person walks" and m["seed"] == 3 and m["frames"] == 20
        assert (tmp_path / "out").is_dir() and m["path"].endswith(".npz")
        bad = c.request("generate", {"prompt": "", "length_s": 1.0})
        ev = c.wait(bad, 30)
        assert ev[-1]["error"]["code"] == "invalid_params"
        assert c.alive                        # a bad request never kills the server
    finally:
        c.stop()
    assert not c.alive
