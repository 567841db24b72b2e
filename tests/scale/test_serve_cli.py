"""``remomask serve`` as users start it: a subprocess that prints its URL once it answers, serves the tiny
model to the add-on's Remote-mode client, and stops cleanly on SIGTERM; bad arguments are one error line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="the [scale] extra (ray) is not installed")

from remomask_addon.core.remote_client import ServiceClient  # noqa: E402

from .service_fixture import TOKEN, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _serve(*args):
    return [sys.executable, "-m", "backend.cli", "serve", *args]


@pytest.mark.slow  # moved out of make test-fast (its 90 s budget); CI runs it
def test_bad_arguments_are_one_line(tmp_path):
    for args, words in (((), "--token"), (("--token", "short"), "--token"),
                        (("--token", TOKEN, "--models", str(tmp_path / "none")), "models folder not found"),
                        (("--token", TOKEN, "--ray", "127.0.0.1:1"), "no Ray cluster answers")):
        r = subprocess.run(_serve(*args), cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode in (1, 2) and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("error:") and words in r.stderr, r.stderr


@pytest.mark.slow
def test_serve_prints_its_url_serves_and_stops_on_sigterm(tmp_path):
    from tests.release_fixture import make_tiny_release

    tiny = make_tiny_release(tmp_path / "tiny")
    port = free_port()
    proc = subprocess.Popen(_serve("--models", str(tiny), "--port", str(port), "--device", "cpu"), cwd=REPO,
                            env={**os.environ, "REMOMASK_SERVE_TOKEN": TOKEN}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # printed once the app answers
        assert url == f"http://127.0.0.1:{port}", proc.stderr.read() if proc.poll() is not None else url
        c = ServiceClient(url, TOKEN)
        rid = c.request("generate", {"prompt": "a person waves", "length_s": 1.6, "out_dir": str(tmp_path / "m")})
        final = [e for e in c.wait(rid, 120) if e.get("id") == rid and ("result" in e or "error" in e)]
        assert final and "result" in final[0], final
        with np.load(final[0]["result"]["motions"][0]["path"]) as z:
            assert z["joints"].shape == (32, 22, 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
