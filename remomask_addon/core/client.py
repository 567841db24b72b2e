"""Talks to the generator backend: one long-lived subprocess (or a remote TCP server), JSON lines each way.

No bpy and no torch here: the client is plain Python so that it can be tested on its own.

Local mode starts ``<python> -m backend.server --models DIR --device D``. The working directory and
``PYTHONPATH`` are set to ``project_dir`` when one is given (a development checkout: the folder that holds
``backend/``); without it the ``backend`` package must be installed in that Python's environment (which is what
"Set up backend" does). stderr of the backend goes to a log file (``log_path``), the last lines are kept for
error messages.

Remote mode (``remote="host:port"``) connects to ``python -m backend.server --listen 127.0.0.1:PORT --token T``
and sends ``hello`` with ``params.token`` first.

Threads: one reader thread per connection turns reply lines into events on a ``queue.Queue``; everything else
(``request``, ``poll``, ``stop``) is called from one thread (Blender's main thread).
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import socket
import subprocess
import threading
import time
import weakref
from collections import deque
from pathlib import Path

PROTOCOL = 1

# Tests (and developers) can replace ``-m backend.server`` with another script speaking the same protocol,
# e.g. ``["/path/to/fake_backend.py"]``; the rest of the command line (--models, --device) stays.
SERVER_ARGS_OVERRIDE: list[str] | None = None

DEAD = "backend_died"          # error code of the synthetic errors the client makes when the backend is gone
UNREACHABLE = "backend_unreachable"

_ALL_CLIENTS: "weakref.WeakSet[BackendClient]" = weakref.WeakSet()



def wait_for_reply(poll, rid, timeout: float = 30.0, interval: float = 0.02) -> list[dict]:
    """Call ``poll()`` until the request ``rid`` has its final reply (a result or an error) or ``timeout`` s pass;
    every event seen, in order (the local and the remote client's ``wait``)."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in poll():
            events.append(ev)
            if ev.get("id") == rid and ("result" in ev or "error" in ev):
                return events
        time.sleep(interval)
    return events

class BackendError(Exception):
    """The backend could not be started or reached (message is meant for the user)."""


class BackendClient:
    def __init__(self, python: str | None, models_dir: str | None, device: str = "auto",
                 remote: str | None = None, token: str | None = None, project_dir: str | None = None,
                 log_path: str | None = None, server_args: list[str] | None = None, env: dict | None = None):
        self.python = python
        self.models_dir = models_dir
        self.device = device or "auto"
        self.remote = (remote or "").strip() or None
        self.token = token or None
        self.project_dir = project_dir or None
        self.log_path = log_path
        self.server_args = server_args
        self.extra_env = dict(env or {})
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._wfile = None
        self._events: queue.Queue = queue.Queue()
        self._pending: set = set()
        self._synthetic: list[dict] = []       # events made by the client itself (broken pipe, ...)
        self._ids = itertools.count(1)
        self._generation = 0                    # bumps on every (re)start; stale reader events are dropped
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._log_file = None
        self._dead_since: float | None = None
        self.starts = 0                         # how many times a backend was started / connected
        self.hello_id = None
        _ALL_CLIENTS.add(self)

    # ---------------------------------------------------------------- settings
    def settings_key(self) -> tuple:
        return (self.python, self.models_dir, self.device, self.remote, self.token, self.project_dir,
                tuple(self.server_args or SERVER_ARGS_OVERRIDE or ()))

    def command(self) -> list[str]:
        """The argv that starts the local backend."""
        args = self.server_args or SERVER_ARGS_OVERRIDE or ["-m", "backend.server"]
        cmd = [str(self.python), *args, "--models", str(self.models_dir)]
        if self.device:
            cmd += ["--device", self.device]
        return cmd

    # ---------------------------------------------------------------- life cycle
    @property
    def alive(self) -> bool:
        if self._sock is not None:
            return True
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def pending(self) -> frozenset:
        return frozenset(self._pending)

    def start(self) -> None:
        """Start (or connect to) the backend. Raises BackendError with a user-facing message."""
        if self.alive:
            return
        _ignore_sigpipe()
        self._close_transport()
        self._dead_since = None
        self._generation += 1
        gen = self._generation
        if self.remote:
            self._connect_remote(gen)
        else:
            self._spawn_local(gen)
        self.starts += 1

    def _spawn_local(self, gen: int) -> None:
        if not self.python or not Path(self.python).is_file():
            raise BackendError(f"Backend Python not found: {self.python!r}. Set it in the add-on preferences "
                               "or run 'Set up backend'.")
        if not self.models_dir or not Path(self.models_dir).is_dir():
            raise BackendError(f"Model folder not found: {self.models_dir!r}. Set it in the add-on preferences.")
        env = dict(os.environ)
        # Blender's own Python settings must not leak into the backend's interpreter.
        for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP"):
            env.pop(key, None)
        env["PYTHONUNBUFFERED"] = "1"
        # Without a checkout the backend is the one installed in the venv: start it away from Blender's working
        # folder, which could hold another copy of the packages (``-m`` puts the working folder on sys.path).
        cwd = os.path.dirname(os.path.abspath(self.python))
        if self.project_dir:
            cwd = self.project_dir
            env["PYTHONPATH"] = self.project_dir
        env.update(self.extra_env)
        if self.log_path:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "a", encoding="utf-8", errors="replace")
            self._log_file.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(self.command())}\n")
            self._log_file.flush()
        try:
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, cwd=cwd, env=env, text=True,
                                          encoding="utf-8", errors="replace", bufsize=1)
        except OSError as exc:
            self._proc = None
            raise BackendError(f"Could not start the backend ({self.python}): {exc}") from exc
        self._wfile = self._proc.stdin
        threading.Thread(target=self._read_loop, args=(self._proc.stdout, gen), daemon=True,
                         name="remomask-backend-reader").start()
        threading.Thread(target=self._stderr_loop, args=(self._proc.stderr,), daemon=True,
                         name="remomask-backend-stderr").start()

    def _connect_remote(self, gen: int) -> None:
        host, _, port = self.remote.rpartition(":")
        try:
            sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=5.0)
        except (OSError, ValueError) as exc:
            raise BackendError(f"Could not connect to the remote backend {self.remote!r}: {exc}") from exc
        sock.settimeout(None)
        self._sock = sock
        self._wfile = sock.makefile("w", encoding="utf-8", newline="\n")
        rfile = sock.makefile("r", encoding="utf-8", errors="replace")
        threading.Thread(target=self._read_loop, args=(rfile, gen), daemon=True,
                         name="remomask-backend-reader").start()
        # The server wants hello with the token before anything else.
        self.hello_id = self._send("hello", {"token": self.token} if self.token else {})

    def _read_loop(self, rfile, gen: int) -> None:
        try:
            for line in rfile:
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    self._stderr_tail.append(f"(stdout, not JSON) {line[:200]}")
                    continue
                if isinstance(msg, dict):
                    self._events.put((gen, msg))
        except (OSError, ValueError):
            pass
        self._events.put((gen, None))       # end of stream: the backend is gone

    def _stderr_loop(self, rfile) -> None:
        try:
            for line in rfile:
                self._stderr_tail.append(line.rstrip())
                if self._log_file is not None:
                    try:
                        self._log_file.write(line)
                        self._log_file.flush()
                    except (OSError, ValueError):
                        pass
        except (OSError, ValueError):
            pass

    def _close_transport(self) -> None:
        try:
            if self._wfile is not None:
                self._wfile.close()
        except OSError:
            pass
        self._wfile = None
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None
        if self._log_file is not None:
            try:
                self._log_file.close()
            except OSError:
                pass
            self._log_file = None

    def stop(self, timeout: float = 3.0) -> None:
        """Ask the backend to shut down (frees its GPU memory), then make sure it is gone."""
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._send("shutdown", {})
                self._wfile.close()          # the server also exits when stdin closes
            except (OSError, ValueError, AttributeError):
                pass
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        self._close_transport()
        self._fail_pending(DEAD, "The generator was stopped.")

    # ---------------------------------------------------------------- requests
    def _send(self, method: str, params: dict) -> int:
        if self._proc is not None and self._proc.poll() is not None:
            raise BrokenPipeError("the backend process has exited")
        rid = next(self._ids)
        line = json.dumps({"id": rid, "method": method, "params": params}) + "\n"
        self._wfile.write(line)
        self._wfile.flush()
        return rid

    def request(self, method: str, params: dict | None = None) -> int:
        """Send one request (starting the backend first if needed); return its id.

        Raises BackendError when the backend cannot be started. A backend that dies later is reported by
        ``poll()`` as an error event for every pending request."""
        if not self.alive:
            self._drain_dead()
            self.start()
        try:
            rid = self._send(method, params or {})
        except (OSError, ValueError) as exc:
            rid = next(self._ids)
            self._pending.add(rid)
            self._fail_pending(DEAD, self._death_message(f"could not send the request ({exc})"))
            return rid
        if method != "shutdown":
            self._pending.add(rid)
        return rid

    def cancel(self, target) -> int | None:
        if not self.alive or target not in self._pending:
            return None
        return self.request("cancel", {"target": target})

    # ---------------------------------------------------------------- events
    def poll(self) -> list[dict]:
        """All events received so far (non-blocking). Finished requests leave the pending set. When the
        backend has died, every pending request gets an error event ``{"id", "error": {"code": "backend_died",
        "message"}}``; the next ``request()`` starts a new backend."""
        out = self._synthetic
        self._synthetic = []
        while True:
            try:
                gen, msg = self._events.get_nowait()
            except queue.Empty:
                break
            if gen != self._generation:
                continue
            if msg is None:
                out.extend(self._dead_events())
                continue
            rid = msg.get("id")
            if "result" in msg or "error" in msg:
                if rid in self._pending:
                    self._pending.discard(rid)
                elif rid == self.hello_id and "error" in msg:
                    # remote hello refused (wrong token): everything else will fail too
                    out.extend(self._dead_events(msg["error"].get("message", "refused")))
                    continue
            out.append(msg)
        # Normally the reader's end-of-stream marker reports a dead backend (after every line it sent). If the
        # process has exited but its stdout stays open (a child process inherited it), stop waiting after 2 s.
        if self._proc is not None and self._proc.poll() is not None:
            now = time.monotonic()
            if self._dead_since is None:
                self._dead_since = now
            elif now - self._dead_since > 2.0 and self._events.empty():
                out.extend(self._dead_events())
        return out

    def _drain_dead(self) -> None:
        if self._proc is not None or self._sock is not None:
            self._synthetic.extend(self._dead_events())

    def _death_message(self, why: str | None = None) -> str:
        code = self._proc.poll() if self._proc is not None else None
        what = why or ("exited with code %s" % code if code is not None else "closed the connection")
        tail = [l for l in self._stderr_tail if l.strip()]
        msg = f"The generator process {what}."
        if tail:
            msg += " Last log line: " + tail[-1][:300]
        if self.log_path:
            msg += f" (log: {self.log_path})"
        return msg

    def _dead_events(self, why: str | None = None) -> list[dict]:
        msg = self._death_message(why)
        events = [{"id": rid, "error": {"code": DEAD, "message": msg}} for rid in sorted(self._pending, key=str)]
        self._pending.clear()
        self._close_transport()
        return events

    def _fail_pending(self, code: str, message: str) -> None:
        self._synthetic.extend({"id": rid, "error": {"code": code, "message": message}}
                               for rid in sorted(self._pending, key=str))
        self._pending.clear()

    def wait(self, rid, timeout: float = 30.0, interval: float = 0.02) -> list[dict]:
        """Poll until ``rid`` has its final reply (or the timeout passes); return all events seen."""
        return wait_for_reply(self.poll, rid, timeout, interval)


def _ignore_sigpipe() -> None:
    """Writing to a backend that just died must raise BrokenPipeError, not end Blender: a plain Python ignores
    SIGPIPE at start-up, an embedding application may not. Only possible from the main thread."""
    try:
        import signal
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGPIPE") \
                and signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL:
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    except (ValueError, OSError):
        pass


def stop_all() -> None:
    """Stop every backend this process started (add-on disable, Blender quit)."""
    for c in list(_ALL_CLIENTS):
        try:
            c.stop(timeout=2.0)
        except Exception:       # noqa: BLE001 - best effort at exit
            pass

