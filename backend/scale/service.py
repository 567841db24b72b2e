"""``remomask serve``: the shared generator service, a Ray Serve application.

HTTP, one JSON object per request and newline-delimited JSON back (``application/x-ndjson``)::

    GET  /v1/hello                      -> {"protocol", "service", "models", "device", "replica", "max_batch_size"}
    POST /v1/generate   body: generate params (the JSON-lines protocol's schema, without out_dir)
    POST /v1/edit       body: edit params; "source": {"name": "x.npz", "data_b64": ...}
         -> {"event": "progress", "stage", "fraction"} ... {"event": "heartbeat"} ...
            then {"result": {"motions": [{..., "path": NAME, "files": {"npz": b64, "bvh": b64}}], "warnings",
                             "batch": {"size", "group", "replica"}}}  or  {"error": {"code", "message"}}

Every request needs ``Authorization: Bearer <token>`` (else 401). Concurrent requests reaching one replica
are collected by ``@serve.batch`` and run as few pipeline calls as their parameters allow
(``service_jobs.py``); ``batch.size`` in the result tells how many requests shared the replica's batch.
A client that disconnects cancels its request (its group stops once all its requests are gone); a replica
that dies mid-request ends the stream without a final line, which clients report as a clear error.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from backend.errors import UNAUTHORIZED, UserError
from backend.serving import protocol as P

from . import service_jobs as SJ

log = logging.getLogger("remomask.service")

HEARTBEAT_S = 5.0
DEFAULT_MAX_BATCH = 8
DEFAULT_BATCH_WAIT_S = 0.1


@dataclass
class ServiceConfig:
    models: str | None
    device: str = "auto"
    token_sha256: str = ""
    max_batch_size: int = DEFAULT_MAX_BATCH
    batch_wait_s: float = DEFAULT_BATCH_WAIT_S
    smpl_dir: str | None = None
    generator: str | None = None     # hidden: a test stand-in "module:factory"
    fitter: str | None = None        # hidden: a test stand-in fitter


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _line(obj: dict) -> bytes:
    return (json.dumps(obj) + "\n").encode("utf-8")


@serve.deployment
class GeneratorService:
    def __init__(self, cfg: ServiceConfig):
        from backend.cli.common import load_generator, models_dir

        if cfg.fitter:
            from backend.serving import postprocess

            postprocess.set_fitter(cfg.fitter)
        self.cfg = cfg
        self.generator, self.device = load_generator(models_dir(cfg.models), cfg.device, cfg.generator)
        self._batched.set_max_batch_size(cfg.max_batch_size)
        self._batched.set_batch_wait_timeout_s(cfg.batch_wait_s)
        try:
            self.replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # noqa: BLE001 - only a label
            self.replica = "replica"

    def hello(self) -> dict:
        """The JSON-lines server's hello (protocol, device, models, capabilities) plus the service's facts."""
        from backend import __version__
        from backend.serving import postprocess

        models = json.loads(json.dumps({k: v for k, v in dict(self.generator.describe()).items()
                                        if isinstance(k, str)}, default=str))
        caps = ["generate", "cancel", "progress", "multi_prompt", "batching"]
        if models.get("length_estimator", True):
            caps.append("length_estimator")
        if postprocess.fitter_available():
            caps.append("fit")
        if callable(getattr(self.generator, "edit", None)):
            caps += ["edit", "timeline"]
        return {"protocol": P.PROTOCOL_VERSION, "version": __version__, "device": self.device, "models": models,
                "capabilities": caps, "service": "remomask", "replica": self.replica,
                "max_batch_size": self.cfg.max_batch_size}

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token_digest(token.strip()), self.cfg.token_sha256)

    async def __call__(self, request: Request):
        if not self._authorized(request):
            return JSONResponse(SJ.error(UNAUTHORIZED, "missing or wrong token (Authorization: Bearer <token>)"),
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/v1/hello"):
            return JSONResponse(self.hello())
        method = path.rsplit("/", 1)[-1]
        if request.method != "POST" or not path.endswith(f"/v1/{method}"):
            return JSONResponse(SJ.error(P.UNKNOWN_METHOD, f"no such endpoint: {request.method} {path}"),
                                status_code=404)
        raw = await request.body()
        if len(raw) > SJ.MAX_BODY_BYTES:
            return JSONResponse(SJ.error(P.BAD_REQUEST, f"request body over {SJ.MAX_BODY_BYTES} bytes"),
                                status_code=413)
        try:
            body = json.loads(raw or b"null")
            job = SJ.parse_job(method, body)
        except json.JSONDecodeError as exc:
            return JSONResponse(SJ.error(P.BAD_REQUEST, f"the body is not JSON: {exc}"), status_code=400)
        except UserError as exc:
            status = 404 if exc.code == P.UNKNOWN_METHOD else 400
            return JSONResponse(SJ.error(exc.code, str(exc)), status_code=status)
        return StreamingResponse(self._stream(job), media_type="application/x-ndjson")

    async def _stream(self, job: SJ.ServiceJob):
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job.emit = lambda ev: loop.call_soon_threadsafe(events.put_nowait, ev)
        task = asyncio.ensure_future(self._batched(job))
        try:
            while True:
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, task}, timeout=HEARTBEAT_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield _line(getter.result())
                    continue
                getter.cancel()
                if task in done:
                    while not events.empty():
                        yield _line(events.get_nowait())
                    try:
                        final = task.result()
                    except Exception as exc:  # noqa: BLE001
                        log.exception("batch failed")
                        final = SJ.error(P.INTERNAL, f"{type(exc).__name__}: {exc}")
                    yield _line(final)
                    return
                yield _line({"event": "heartbeat"})
        except BaseException:  # client gone (CancelledError / GeneratorExit): stop its work
            job.cancel.set()
            raise
        finally:
            job.close()

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S)
    async def _batched(self, jobs: list[SJ.ServiceJob]) -> list[dict]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: SJ.run_batch_of_jobs(
            self.generator, jobs, replica=self.replica, device=self.device, smpl_dir=self.cfg.smpl_dir))


def build_app(cfg: ServiceConfig, replicas: int, gpus_per_replica: float = 0.0):
    """The bound application: ``replicas`` copies, each with a GPU when ``gpus_per_replica`` (else one CPU)."""
    actor = {"num_gpus": gpus_per_replica} if gpus_per_replica else {"num_cpus": 1}
    return GeneratorService.options(
        num_replicas=replicas, max_ongoing_requests=4 * cfg.max_batch_size, ray_actor_options=actor,
        health_check_period_s=2, health_check_timeout_s=30).bind(cfg)


def start(cfg: ServiceConfig, replicas: int, host: str, port: int, gpus_per_replica: float = 0.0,
          name: str = "remomask"):
    """Start Serve's HTTP proxy on host:port and deploy the app (Ray must be initialised)."""
    serve.start(http_options={"host": host, "port": port})
    return serve.run(build_app(cfg, replicas, gpus_per_replica), name=name, route_prefix="/")
