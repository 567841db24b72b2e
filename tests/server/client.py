"""Test helper: run ``python -m backend.server`` with the stand-in generator and talk JSON lines to it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDIN = "tests.server.standin:make"
FAST_FIT = "tests.server.standin:fast_fit"


def server_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("REMOMASK_STANDIN_DELAY", None)
    env.pop("REMOMASK_STANDIN_FAIL", None)
    env.pop("REMOMASK_STANDIN_LOAD_FAIL", None)
    env.pop("REMOMASK_STANDIN_LOAD_DELAY", None)
    env.pop("REMOMASK_STANDIN_STUCK", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ServerProc:
    def __init__(self, *args, env: dict | None = None, cwd=None, models=None, generator: str | None = STANDIN,
                 fitter: str | None = FAST_FIT):
        self.log = tempfile.NamedTemporaryFile(prefix="remomask-server-", suffix=".log", delete=False)
        models = models or tempfile.gettempdir()
        gen = (["--generator", generator] if generator else []) + (["--fitter", fitter] if fitter else [])
        self.p = subprocess.Popen(
            [sys.executable, "-m", "backend.server", "--models", str(models), "--device", "cpu", *gen, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=cwd or REPO,
            env=server_env(**(env or {})))
        self.lines: queue.Queue = queue.Queue()
        self.raw_stdout: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._n = 0

    def _read(self):
        for raw in self.p.stdout:
            self.raw_stdout.append(raw)
            self.lines.put(json.loads(raw))
        self.lines.put(None)

    def send_raw(self, data: bytes):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv(self, timeout=10.0):
        msg = self.lines.get(timeout=timeout)
        if msg is None:
            raise EOFError("server closed stdout; log:\n" + self.stderr())
        return msg

    def call(self, method, params=None, req_id=None, timeout=10.0):
        """Send one request; return (progress events, final reply) for it. Other ids are kept aside."""
        if req_id is None:
            self._n += 1
            req_id = f"r{self._n}"
        msg = {"id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.wait(req_id, timeout)

    def wait(self, req_id, timeout=10.0):
        events = []
        end = time.monotonic() + timeout
        mine = [m for m in self.stash if m.get("id") == req_id]
        self.stash[:] = [m for m in self.stash if m.get("id") != req_id]
        while True:
            m = mine.pop(0) if mine else self.recv(max(0.01, end - time.monotonic()))
            if m.get("id") != req_id:
                self.stash.append(m)
                continue
            if m.get("event") == "progress":
                events.append(m)
                continue
            return events, m

    @property
    def stash(self):
        if not hasattr(self, "_stash"):
            self._stash = []
        return self._stash

    def stderr(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        os.unlink(self.log.name)
