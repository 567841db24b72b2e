"""The add-on's *Remote* mode: talks to the shared generator service (``remomask serve``, a Ray Serve app)
over HTTP(S) with the standard library only (``http.client``), behind the same interface as the local
``client.BackendClient`` (``request``, ``poll``, ``cancel``, ``wait``, ``stop``, ``alive``, ``pending``), so
the operators and the poller do not know which one they drive.

* ``generate`` and ``edit`` stream newline-delimited JSON: progress events pass through as
  ``{"id", "event": "progress", "stage", "fraction"}``; the final result carries the motion files' contents,
  which are written atomically into the request's ``out_dir`` (a name already there gets ``_2``, ``_3`` ...),
  and the result's ``motions[].path`` are those local paths, as in local mode. An edit's ``source`` (a path
  here) is sent as the file's contents.
* ``cancel(target)`` closes that request's connection (the service cancels it) and reports ``cancelled``.
* ``hello`` is answered by ``GET /v1/hello``; ``describe`` and ``library_search`` are local-mode only.
* A refused token, an unreachable service or a stream that ends without a result (a replica stopped) become
  one error event with a clear message, never an exception in Blender's UI.

One thread per request does the I/O; ``poll()`` is called from one thread (Blender's main thread).
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import queue
import socket
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

from .atomic import atomic_write_bytes
from .client import wait_for_reply

DEAD = "backend_died"
UNREACHABLE = "backend_unreachable"
CANCELLED = "cancelled"
STREAM_METHODS = ("generate", "edit")
READ_TIMEOUT_S = 60.0   # the service sends a heartbeat every 5 s while a request waits or runs


def is_service_url(address: str | None) -> bool:
    return bool(address) and address.strip().lower().startswith(("http://", "https://"))


class ServiceClient:
    def __init__(self, url: str, token: str | None, timeout: float = READ_TIMEOUT_S):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the service address must be http(s)://host:port, not {url!r}")
        self.url = url.strip()
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.base = parts.path.rstrip("/")
        self.token = token or ""
        self.timeout = timeout
        self._events: queue.Queue = queue.Queue()
        self._ids = itertools.count(1)
        self._pending: dict = {}      # id -> {"conn", "cancelled": Event}
        self._lock = threading.Lock()
        self.hello_id = None
        self.starts = 0

    # ------------------------------------------------------------- the BackendClient interface
    def settings_key(self) -> tuple:
        return ("service", self.url, self.token)

    @property
    def alive(self) -> bool:
        return True   # no process to keep: each request opens its own connection

    @property
    def pid(self):
        return None

    @property
    def pending(self) -> frozenset:
        with self._lock:
            return frozenset(self._pending)

    def start(self) -> None:
        self.starts += 1

    def stop(self, timeout: float = 3.0) -> None:
        with self._lock:
            ids = list(self._pending)
        for rid in ids:
            self._abort(rid, DEAD, "The generator was stopped.")

    def request(self, method: str, params: dict | None = None) -> int:
        rid = next(self._ids)
        params = dict(params or {})
        if method == "shutdown":
            return rid
        if method == "cancel":  # answered like the JSON-lines server's cancel
            done = self.cancel(params.get("target")) is not None
            self._events.put({"id": rid, "result": {"cancelled": done}})
            return rid
        entry = {"conn": None, "cancelled": threading.Event()}
        with self._lock:
            self._pending[rid] = entry
        if method == "hello":
            target = self._hello
        elif method in STREAM_METHODS:
            target = self._stream
        else:
            self._finish(rid, {"id": rid, "error": {"code": "unknown_method", "message":
                               f"'{method}' needs the local generator; the remote service answers "
                               f"{', '.join(STREAM_METHODS)}"}})
            return rid
        threading.Thread(target=target, args=(rid, method, params, entry), daemon=True,
                         name=f"remomask-remote-{rid}").start()
        return rid

    def cancel(self, target) -> int | None:
        with self._lock:
            if target not in self._pending:
                return None
        self._abort(target, CANCELLED, "cancelled")
        return target

    def poll(self) -> list[dict]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def wait(self, rid, timeout: float = 30.0, interval: float = 0.02) -> list[dict]:
        """Poll until ``rid`` has its final reply (or the timeout passes); return all events seen."""
        return wait_for_reply(self.poll, rid, timeout, interval)

    # ------------------------------------------------------------- I/O (request threads)
    def _connect(self):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                "Accept": "application/x-ndjson"}

    def _open(self, rid, entry, verb: str, path: str, body: bytes | None):
        """-> the response with status 200, or None after reporting the error."""
        conn = self._connect()
        entry["conn"] = conn
        try:
            conn.request(verb, f"{self.base}{path}", body=body, headers=self._headers())
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if not entry["cancelled"].is_set():
                self._finish(rid, {"id": rid, "error": {"code": UNREACHABLE, "message":
                                   f"Could not reach the generator service {self.url}: {exc}"}})
            return None
        if entry["cancelled"].is_set():  # cancelled while connecting
            conn.close()
            return None
        if resp.status != 200:
            try:
                err = json.loads(resp.read(1 << 20) or b"{}").get("error") or {}
            except (ValueError, OSError, AttributeError):
                err = {}
            code = err.get("code") or ("unauthorized" if resp.status == 401 else DEAD)
            msg = err.get("message") or f"HTTP {resp.status} {resp.reason}"
            if resp.status == 401:
                msg = f"The generator service refused the token ({msg})"
            self._finish(rid, {"id": rid, "error": {"code": code, "message": msg}})
            return None
        return resp

    def _hello(self, rid, method, params, entry):
        resp = self._open(rid, entry, "GET", "/v1/hello", None)
        if resp is None:
            return
        try:
            value = json.loads(resp.read(1 << 20))
        except (ValueError, OSError) as exc:
            self._finish(rid, {"id": rid, "error": {"code": DEAD, "message": f"bad hello reply: {exc}"}})
            return
        self._finish(rid, {"id": rid, "result": value})

    def _stream(self, rid, method, params, entry):
        out_dir = params.pop("out_dir", None)
        try:
            if method == "edit" and isinstance(params.get("source"), str):
                src = Path(params["source"])
                params["source"] = {"name": src.name, "data_b64": base64.b64encode(src.read_bytes()).decode()}
        except OSError as exc:
            self._finish(rid, {"id": rid, "error": {"code": "invalid_params", "message":
                               f"cannot read the source motion {params.get('source')}: {exc.strerror or exc}"}})
            return
        resp = self._open(rid, entry, "POST", f"/v1/{method}", json.dumps(params).encode("utf-8"))
        if resp is None:
            return
        final = None
        try:
            while final is None:
                line = resp.readline(64 << 20)
                if not line:
                    break
                if not line.strip():
                    continue
                msg = json.loads(line)
                if msg.get("event") == "progress":
                    self._events.put({"id": rid, "event": "progress", "stage": msg.get("stage"),
                                      "fraction": msg.get("fraction")})
                elif "result" in msg or "error" in msg:
                    final = msg
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if entry["cancelled"].is_set():
                return
            final = {"error": {"code": DEAD, "message": f"The connection to the generator service broke: {exc}"}}
        finally:
            try:
                entry["conn"].close()
            except Exception:  # noqa: BLE001
                pass
        if entry["cancelled"].is_set():
            return
        if final is None:
            final = {"error": {"code": DEAD, "message": "The generator service ended the request without a "
                                                        "result (a replica may have stopped); try again."}}
        if "result" in final:
            try:
                final = {"result": self._write(final["result"], out_dir)}
            except (OSError, ValueError, KeyError) as exc:
                final = {"error": {"code": "internal", "message": f"could not write the motion files: {exc}"}}
        self._finish(rid, {"id": rid, **final})

    @staticmethod
    def _write(result: dict, out_dir: str | None) -> dict:
        folder = Path(out_dir or os.path.join(os.path.expanduser("~"), "remomask_motions"))
        folder.mkdir(parents=True, exist_ok=True)
        motions = []
        for m in result.get("motions", []):
            files = m.get("files") or {}
            stem = Path(str(m.get("path") or "motion.npz")).stem.replace(os.sep, "_") or "motion"
            name, k = stem, 1
            while (folder / f"{name}.npz").exists() or (folder / f"{name}.bvh").exists():
                k += 1
                name = f"{stem}_{k}"
            npz = atomic_write_bytes(folder / f"{name}.npz", base64.b64decode(files["npz"]))
            if "bvh" in files:
                atomic_write_bytes(folder / f"{name}.bvh", base64.b64decode(files["bvh"]))
            motions.append({**{k2: v for k2, v in m.items() if k2 != "files"}, "path": str(npz)})
        return {**result, "motions": motions}

    # ------------------------------------------------------------- bookkeeping
    def _finish(self, rid, event: dict) -> None:
        with self._lock:
            if self._pending.pop(rid, None) is None:
                return
        self._events.put(event)

    def _abort(self, rid, code: str, message: str) -> None:
        with self._lock:
            entry = self._pending.get(rid)
        if entry is None:
            return
        entry["cancelled"].set()
        conn = entry.get("conn")
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._finish(rid, {"id": rid, "error": {"code": code, "message": message}})
