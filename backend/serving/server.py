"""The warm generator server: ``python -m backend.server --models DIR --device auto|cuda|cpu``.

Line protocol on stdin/stdout (see backend/serving/protocol.py and the README's server section); stderr is the
log. Models load once at start; a reader thread answers hello/cancel/shutdown at once and queues
generate requests for one worker thread. The process exits when stdin closes.

Opt-in TCP: ``--listen 127.0.0.1:PORT --token TOKEN`` serves the same protocol to several clients on the
loopback interface; each connection must first send ``hello`` with ``params.token``.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from backend import __version__
from backend.errors import UserError

from . import postprocess
from . import protocol as P
from .generators import Cancelled, GeneratorError, make_generator, resolve_device, torch_version
from .jobs import Busy, DuplicateId, Job, JobQueue, WriteError, remove_files, run_generate

log = logging.getLogger("remomask.server")

EXIT_GRACE_S = 3.0


class Channel:
    """One client: a byte stream to write reply lines to (thread-safe)."""

    def __init__(self, wfile, name: str, needs_token: bool = False):
        self.wfile = wfile
        self.name = name
        self.lock = threading.Lock()
        self.broken = False
        self.authenticated = not needs_token

    def send(self, obj: dict) -> bool:
        try:
            line = P.encode(obj)
        except (TypeError, ValueError):
            log.exception("reply not encodable: %r", obj)
            line = P.encode(P.error(obj.get("id") if P.valid_id(obj.get("id")) else None,
                                    P.INTERNAL, "reply could not be encoded"))
        with self.lock:
            if self.broken:
                return False
            try:
                self.wfile.write(line)
                self.wfile.flush()
                return True
            except (OSError, ValueError):
                self.broken = True
                return False


class Server:
    def __init__(self, generator, models_path: str, device: str, load_error: str | None = None,
                 out_dir: str | None = None, token: str | None = None, max_queued: int = 16,
                 ready: bool = True, smpl_dir: str | None = None):
        self.generator = generator
        self.models_path = models_path
        self.device = device
        self.load_error = load_error
        self.token = token
        self._out_dir = out_dir
        self.smpl_dir = smpl_dir
        self.stop = threading.Event()
        self.ready = threading.Event()      # models loaded (or failed to): hello/generate can be answered
        self._ready_lock = threading.Lock()
        self._pending_hellos: list = []
        if ready:
            self.ready.set()
        self.jobs = JobQueue(self._run_job, self._dropped, max_queued=max_queued)

    def load(self, models_dir: str, device_arg: str, generator_spec: str | None):
        """Resolve the device and load the models; then answer the hellos that arrived meanwhile."""
        t0 = time.monotonic()
        try:
            self.device = resolve_device(device_arg)
            self.generator = make_generator(generator_spec)
            self.generator.load(models_dir, self.device)
            log.info("models loaded from %s on %s in %.1f s", models_dir, self.device, time.monotonic() - t0)
        except GeneratorError as exc:
            self.load_error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to clients, not a crash
            log.exception("loading the models failed")
            self.load_error = f"could not load the models from {models_dir}: {type(exc).__name__}: {exc}"
        if self.load_error:
            log.error("%s", self.load_error)
        with self._ready_lock:
            self.ready.set()
            pending, self._pending_hellos = self._pending_hellos, []
        for ch, rid in pending:
            self._answer_hello(ch, rid)

    def _answer_hello(self, ch, rid):
        if self.load_error:
            ch.send(P.error(rid, P.MODEL_ERROR, self.load_error))
        else:
            ch.send(P.result(rid, self.hello_result()))

    # ---- helpers ----
    def default_out_dir(self) -> str:
        if self._out_dir is None:
            self._out_dir = tempfile.mkdtemp(prefix="remomask-out-")
        return self._out_dir

    def hello_result(self) -> dict:
        models = {"kind": "unknown", "path": self.models_path}
        try:
            d = self.generator.describe() if self.generator is not None and self.load_error is None else {}
            if isinstance(d, dict):  # made JSON-safe: paths, numpy numbers ... become strings
                models.update(json.loads(json.dumps({k: v for k, v in d.items() if isinstance(k, str)},
                                                    default=str)))
        except Exception as exc:  # noqa: BLE001
            log.warning("describe() failed: %s", exc)
        caps = ["generate", "cancel", "progress", "multi_prompt"]
        if models.get("length_estimator", True):  # a folder without one needs lengths given
            caps.append("length_estimator")
        if not str(models.get("retrieval", "")).startswith("retrieval unavailable"):
            caps.append("retrieval")
        if postprocess.fitter_available():
            caps.append("fit")
        if callable(getattr(self.generator, "edit", None)) and self.load_error is None:
            caps += ["edit", "timeline"]
        if "retrieval" in caps and getattr(self.generator, "pipeline", None) is not None:
            caps += ["describe", "library_search", "library_index"]
        return {"protocol": P.PROTOCOL_VERSION, "version": __version__, "device": self.device,
                "torch": torch_version(), "models": models, "capabilities": caps}

    # ---- one request line ----
    def handle_line(self, ch: Channel, raw: bytes):
        """Answer or queue one request line. Never raises."""
        rid = None
        try:
            req = P.parse_request(raw)
            rid = req.id
            self._handle(ch, req)
        except P.ProtocolError as exc:
            ch.send(P.error(exc.req_id if exc.req_id is not None else rid, exc.code, exc.message))
        except Exception as exc:  # noqa: BLE001 - a request never kills the server
            log.exception("internal error handling a request")
            ch.send(P.error(rid, P.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"[:500]))

    def _handle(self, ch: Channel, req: P.Request):
        rid = req.id
        try:
            if not ch.authenticated:
                tok = req.params.get("token") if req.method == "hello" else None
                if not isinstance(tok, str) or not hmac.compare_digest(tok.encode("utf-8", "replace"),
                                                                       self.token.encode("utf-8")):
                    ch.send(P.error(rid, P.UNAUTHORIZED, "send hello with the server's token first"))
                    ch.broken = True  # the connection is closed by the reader
                    return
                ch.authenticated = True
            if req.method == "hello":
                with self._ready_lock:
                    if not self.ready.is_set():  # answered when the models have loaded
                        self._pending_hellos.append((ch, rid))
                        return
                self._answer_hello(ch, rid)
            elif req.method == "cancel":
                target = P.validate_cancel(req.params)
                ch.send(P.result(rid, {"cancelled": self.jobs.cancel(ch, target)}))
            elif req.method == "shutdown":
                self.shutdown_from(ch, rid)
            elif req.method in JOB_METHODS:
                params = _validate_job(req.method, req.params)
                if self.ready.is_set() and self.load_error:
                    ch.send(P.error(rid, P.MODEL_ERROR, self.load_error))
                    return
                if hasattr(params, "out_dir"):  # requests that write motion files
                    if params.out_dir is None:
                        params.out_dir = self.default_out_dir()
                    P.ensure_out_dir(params.out_dir)
                try:
                    self.jobs.submit(Job(owner=ch, id=rid, params=params))
                except Busy as exc:
                    ch.send(P.error(rid, P.BUSY, str(exc)))
                except DuplicateId as exc:
                    ch.send(P.error(rid, P.BAD_REQUEST, str(exc)))
        except P.ProtocolError as exc:
            raise P.ProtocolError(exc.code, exc.message, rid) from None

    def shutdown_from(self, ch: Channel, rid):
        log.info("shutdown requested")
        self.jobs.cancel_all()
        self.jobs.wait_idle(EXIT_GRACE_S)
        self.jobs.close()
        ch.send(P.result(rid, {}))
        self.stop.set()

    # ---- the worker side ----
    def _dropped(self, job: Job):
        job.owner.send(P.error(job.id, P.CANCELLED, "cancelled before it started"))

    def _run_job(self, job: Job):
        ch, rid = job.owner, job.id
        cancelled = job.cancel_event.is_set
        while not self.ready.wait(0.05):  # queued while the models load
            if cancelled():
                self.jobs.finish(job)
                ch.send(P.error(rid, P.CANCELLED, "cancelled"))
                return
        if self.load_error:
            self.jobs.finish(job)
            ch.send(P.error(rid, P.MODEL_ERROR, self.load_error))
            return
        if callable(getattr(job.params, "answer", None)):  # describe, library_search: a result, no files
            self._run_answer(job)
            return
        t0 = time.monotonic()
        try:
            out = run_generate(self.generator, job.params, Path(job.params.out_dir),
                               lambda stage, f: ch.send(P.progress(rid, stage, f)), cancelled,
                               smpl_dir=self.smpl_dir, device=self.device)
        except Cancelled:
            self.jobs.finish(job)
            ch.send(P.error(rid, P.CANCELLED, "cancelled"))
            return
        except Exception as exc:  # noqa: BLE001
            self.jobs.finish(job)
            if cancelled():
                ch.send(P.error(rid, P.CANCELLED, "cancelled"))
            elif isinstance(exc, UserError) and not isinstance(exc, WriteError):  # e.g. lengths without an estimator
                ch.send(P.error(rid, exc.code, str(exc)[:2000]))
            elif isinstance(exc, (WriteError, OSError)):
                log.exception("writing the motion files failed")
                ch.send(P.error(rid, P.INTERNAL, str(exc)[:2000]))
            else:
                log.exception("generation failed")
                ch.send(P.error(rid, P.MODEL_ERROR, f"generation failed: {type(exc).__name__}: {exc}"[:2000]))
            return
        if not self.jobs.finish(job):
            remove_files(out.paths)
            ch.send(P.error(rid, P.CANCELLED, "cancelled"))
            return
        log.info("request %r: %d motion(s) in %.2f s", rid, len(out.motions), time.monotonic() - t0)
        for w in out.warnings:
            log.warning("%s", w)
        ch.send(P.result(rid, {"motions": out.motions, "warnings": out.warnings}))

    def _run_answer(self, job: Job):
        ch, rid = job.owner, job.id
        try:
            value = job.params.answer(self.generator, lambda stage, f: ch.send(P.progress(rid, stage, f)),
                                      job.cancel_event.is_set)
        except Exception as exc:  # noqa: BLE001
            self.jobs.finish(job)
            if job.cancel_event.is_set():  # library_index stops between files: nothing written
                ch.send(P.error(rid, P.CANCELLED, "cancelled"))
            elif isinstance(exc, UserError):  # e.g. an index built with another model, no retrieval model
                code = P.INVALID_PARAMS if exc.code == P.INTERNAL else exc.code
                ch.send(P.error(rid, code, str(exc)[:2000]))
            else:
                log.exception("%s failed", type(job.params).__name__)
                ch.send(P.error(rid, P.MODEL_ERROR, f"failed: {type(exc).__name__}: {exc}"[:2000]))
            return
        if not self.jobs.finish(job):
            ch.send(P.error(rid, P.CANCELLED, "cancelled"))
            return
        ch.send(P.result(rid, value))

    # ---- reading ----
    def serve_stream(self, ch: Channel, rfile):
        """Read request lines until EOF, a broken channel or shutdown."""
        while not self.stop.is_set() and not ch.broken:
            try:
                raw = rfile.readline(P.MAX_LINE_BYTES + 1)
            except (OSError, ValueError):
                break
            if not raw:
                break
            if len(raw) > P.MAX_LINE_BYTES and not raw.endswith(b"\n"):
                # discard the rest of the over-long line
                while True:
                    try:
                        more = rfile.readline(P.MAX_LINE_BYTES)
                    except (OSError, ValueError):
                        more = b""
                    if not more or more.endswith(b"\n"):
                        break
                ch.send(P.error(None, P.BAD_REQUEST, f"request line longer than {P.MAX_LINE_BYTES} bytes"))
                continue
            if not raw.strip():
                continue
            self.handle_line(ch, raw)


JOB_METHODS = ("generate", "edit", "describe", "library_search", "library_index")


def _validate_job(method: str, params: dict):
    """A queued method's params -> its validated request (ProtocolError with one clear message otherwise)."""
    if method == "generate":
        return P.validate_generate(params)
    if method == "edit":
        from backend.editing.request import validate_edit

        return validate_edit(params)
    from backend.library import request as library_request

    if method == "describe":
        return library_request.validate_describe(params)
    if method == "library_index":
        return library_request.validate_library_index(params)
    return library_request.validate_library_search(params)


def _parse_listen(value: str):
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError("--listen must be HOST:PORT")
    host = host.strip("[]")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"--listen only accepts a loopback address (127.0.0.1 or ::1), not {host}")
    except ValueError as exc:
        if "loopback" in str(exc):
            raise
        if host != "localhost":
            raise ValueError(f"--listen needs a loopback IP address, not {host!r}") from None
        host = "127.0.0.1"
    port_i = int(port)
    if not 0 <= port_i <= 65535:
        raise ValueError("port out of range")
    return host, port_i


def serve_tcp(server: Server, host: str, port: int, ready_file: str | None = None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(8)
    sock.settimeout(0.2)
    bound = sock.getsockname()[1]
    log.info("listening on %s:%d", host, bound)
    print(f"remomask-server: listening on {host}:{bound}", file=sys.stderr, flush=True)
    if ready_file:
        Path(ready_file).write_text(str(bound))

    def client(conn, addr):
        conn.settimeout(None)
        rfile, wfile = conn.makefile("rb"), conn.makefile("wb")
        ch = Channel(wfile, f"tcp:{addr[1]}", needs_token=True)
        try:
            server.serve_stream(ch, rfile)
        finally:
            server.jobs.cancel_all(ch)
            for f in (rfile, wfile):
                try:
                    f.close()
                except OSError:
                    pass
            conn.close()

    try:
        while not server.stop.is_set():
            try:
                conn, addr = sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=client, args=(conn, addr), daemon=True).start()
    finally:
        sock.close()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m backend.server",
                                 description="ReMoMask generator server (JSON lines on stdin/stdout).")
    ap.add_argument("--models", required=True, help="models folder (official release or starter model)")
    ap.add_argument("--device", default="auto", help="auto, cuda or cpu (default auto)")
    ap.add_argument("--listen", metavar="127.0.0.1:PORT", help="serve on a loopback TCP port instead of stdio")
    ap.add_argument("--token", help="shared secret TCP clients send in hello (or env REMOMASK_TOKEN)")
    ap.add_argument("--out-dir", help="default folder for motion files (default: a new temp folder)")
    ap.add_argument("--smpl-dir", help="your SMPL model folder for fitting (default: skeleton-only fit)")
    ap.add_argument("--max-queued", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--generator", help=argparse.SUPPRESS)   # tests: module:factory stand-in
    ap.add_argument("--fitter", help=argparse.SUPPRESS)      # tests: module:function instead of fit_motion
    ap.add_argument("--ready-file", help=argparse.SUPPRESS)  # tests: write the bound TCP port here
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="remomask-server %(levelname)s: %(message)s")
    token = args.token or os.environ.get("REMOMASK_TOKEN")
    if args.fitter:
        try:
            postprocess.set_fitter(args.fitter)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    listen = None
    if args.listen:
        try:
            listen = _parse_listen(args.listen)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not token or len(token) < 8:
            print("error: --listen needs --token (at least 8 characters) or REMOMASK_TOKEN", file=sys.stderr)
            return 2

    # Protect the protocol stream: anything a library prints goes to stderr, replies go to the real stdout.
    proto_out = None
    if listen is None:
        proto_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        sys.stdout = sys.stderr

    server = Server(None, str(Path(args.models).resolve()), "cpu", out_dir=args.out_dir,
                    token=token if listen else None, max_queued=max(1, args.max_queued), ready=False,
                    smpl_dir=args.smpl_dir)

    if listen is not None:
        server.load(args.models, args.device, args.generator)
        signal.signal(signal.SIGTERM, lambda *a: server.stop.set())
        try:
            serve_tcp(server, *listen, ready_file=args.ready_file)
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            print(f"error: cannot listen on {args.listen}: {exc}", file=sys.stderr)
            return 2
        server.jobs.cancel_all()
        server.jobs.wait_idle(EXIT_GRACE_S)
        sys.stderr.flush()
        os._exit(0)

    ch = Channel(proto_out, "stdio")
    reader = threading.Thread(target=server.serve_stream, args=(ch, sys.stdin.buffer), name="reader", daemon=True)
    reader.start()
    # Load while the reader already runs: hello waits for the models, but stdin closing or a shutdown
    # during a long load ends the process at once.
    threading.Thread(target=server.load, args=(args.models, args.device, args.generator), name="loader",
                     daemon=True).start()
    try:
        while reader.is_alive() and not server.stop.is_set():
            reader.join(0.2)
    except KeyboardInterrupt:
        pass
    if not server.stop.is_set():  # stdin closed (the add-on or Blender went away)
        log.info("stdin closed: exiting")
        server.jobs.cancel_all()
        server.jobs.wait_idle(EXIT_GRACE_S)
    # Exit now even if a model call is stuck in native code: no orphan GPU processes.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
