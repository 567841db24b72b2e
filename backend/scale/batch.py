"""``remomask batch``: every item of a prompt file generated, fitted, written (and optionally rendered), with
one manifest, per-item failures recorded and retried once, and ``--resume``.

Two runners feed the same writer:

* ``LocalRunner``: one process, one loaded generator, the stages one after another (no Ray needed).
* ``RayRunner``: generator actors that keep the model loaded (one per GPU, else ``actors`` CPU workers),
  fitting + file packing as CPU tasks, renders as tasks needing the custom resource ``blender`` (only nodes
  started with ``--resources '{"blender": 1}'`` run them).

Only the driver writes: each item's files land in ``OUT/<key>/`` through ``atomic_dir`` (the folder appears
whole or not at all), then one manifest line is appended (``manifest.py``).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from backend.atomic import atomic_dir
from backend.errors import UserError

from . import manifest
from .prompts_file import BatchItem, read_prompt_file
from .stages import BatchOptions, ItemGenerator, fit_and_pack, render_pack

log = logging.getLogger("remomask.batch")

ATTEMPTS = 2  # a failed item is retried once
RENDER_RESOURCE = "blender"


@dataclass
class Job:
    item: BatchItem
    raw: dict
    render: bool
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    actor: int = 0                 # Ray: the generator actor that ran the last attempt


@dataclass
class Summary:
    items: int
    ok: int
    failed: int
    skipped: int
    motions: int
    renders: int
    seconds: float
    manifest: Path
    startup_s: float = 0.0       # of ``seconds``: connecting to Ray and loading the models in the workers


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # a RayTaskError carries the task's own exception
    exc = cause if isinstance(cause, BaseException) else exc
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[-1] if msg else ''}"[:500]


class LocalRunner:
    name = "local"

    def __init__(self, opts: BatchOptions):
        import importlib.util

        if opts.render != "none" and importlib.util.find_spec("bpy") is None:
            raise UserError(f"--render {opts.render} needs Blender as a Python module here (pip install "
                            "'bpy~=4.5.0'), or --ray with nodes that advertise the 'blender' resource")
        self.opts = opts
        self.gen = ItemGenerator(opts)

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, dict | None]]:
        for job in jobs:
            while True:
                job.attempts += 1
                job.started = time.monotonic()
                try:
                    out = fit_and_pack(self.gen.generate(job.raw), job.raw, self.opts)
                    if job.render:
                        out = render_pack(out, self.opts, job.item.text, quiet=True)
                except Exception as exc:  # noqa: BLE001 - recorded per item, never fatal
                    job.errors.append(_error_text(exc))
                    if job.attempts < ATTEMPTS:
                        continue
                    out = None
                yield job, out
                break

    def close(self):
        pass


class RayRunner:
    def __init__(self, opts: BatchOptions, address: str, actors: int | None = None):
        from . import check_reachable, import_ray

        ray = self.ray = import_ray()
        if not ray.is_initialized() and address not in ("auto", "local"):
            check_reachable(address)
        self.opts = opts
        self.owns = False
        if not ray.is_initialized():
            kwargs = {"address": None if address in ("auto", "local") else address, "log_to_driver": False}
            if kwargs["address"] is None and not _ray_running(ray):
                kwargs.update(include_dashboard=False, resources=_local_resources())
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(f"could not start or reach Ray ({address}): {_error_text(exc)}") from None
            self.owns = True
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        self.name = f"ray ({len(ray.nodes())} node(s), {int(res.get('CPU', 0))} CPUs, {gpus} GPUs)"
        if opts.render != "none" and res.get(RENDER_RESOURCE, 0) < 1:
            raise UserError(f"--render {opts.render} needs a Ray node that advertises the '{RENDER_RESOURCE}' "
                            f"resource (ray start ... --resources '{{\"{RENDER_RESOURCE}\": 1}}' on nodes with "
                            "Blender's bpy)")
        count = actors or gpus or 1
        actor_cls = ray.remote(ItemGenerator).options(
            num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1, max_restarts=2, max_task_retries=0)
        self.actor_cls = actor_cls
        self.actors = [actor_cls.remote(opts) for _ in range(count)]
        try:
            ray.get([a.ready.remote() for a in self.actors])
        except Exception as exc:  # the models cannot be loaded: fatal before any item starts
            raise UserError(f"the generator workers could not load the models: {_error_text(exc)}") from None
        self.fit = ray.remote(fit_and_pack).options(num_cpus=1, max_retries=0)
        self.render = ray.remote(render_pack).options(num_cpus=1, resources={RENDER_RESOURCE: 1}, max_retries=0)
        self.window = 4 * count + 4
        self.next_actor = 0

    def _submit(self, job: Job):
        job.attempts += 1
        job.started = time.monotonic()
        job.actor = self.next_actor % len(self.actors)
        actor = self.actors[job.actor]
        self.next_actor += 1
        ref = self.fit.remote(actor.generate.remote(job.raw), job.raw, self.opts)
        if job.render:
            ref = self.render.remote(ref, self.opts, job.item.text)
        return ref

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, dict | None]]:
        waiting = list(jobs)
        pending: dict = {}
        while waiting or pending:
            while waiting and len(pending) < self.window:
                job = waiting.pop(0)
                pending[self._submit(job)] = job
            done, _ = self.ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                out = self.ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a task or actor failed: retry once, then record
                job.errors.append(_error_text(exc))
                if job.attempts < ATTEMPTS:
                    if any(isinstance(e, self.ray.exceptions.RayActorError) for e in (exc, getattr(exc, "cause", None))):
                        self._heal(job.actor)
                    pending[self._submit(job)] = job
                    continue
                out = None
            yield job, out

    def _heal(self, index: int, timeout: float = 120.0) -> None:
        """A generator actor died: wait until Ray has restarted it (calls made while it restarts fail), or
        start a new one when its restarts are used up."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.ray.get(self.actors[index].ready.remote(), timeout=max(1.0, end - time.monotonic()))
                return
            except self.ray.exceptions.ActorDiedError:
                break
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.GetTimeoutError):
                time.sleep(0.5)
        log.warning("generator actor %d did not come back; starting a new one", index)
        self.actors[index] = self.actor_cls.remote(self.opts)

    def close(self):
        for a in getattr(self, "actors", []):
            self.ray.kill(a)
        if self.owns:
            self.ray.shutdown()


def _ray_running(ray) -> bool:
    """``ray.init()`` joins the cluster named by $RAY_ADDRESS; only a Ray we start gets our resources."""
    import os

    return bool(os.environ.get("RAY_ADDRESS"))


def _local_resources() -> dict:
    """A Ray started by ``--ray auto`` on this machine advertises ``blender`` when bpy can be imported."""
    import importlib.util

    return {RENDER_RESOURCE: 1} if importlib.util.find_spec("bpy") is not None else {}


def _write_item(out_dir: Path, job: Job, result: dict) -> dict:
    key = job.item.key
    with atomic_dir(out_dir / key) as tmp:
        for name, data in {**result["files"], **result.get("renders", {})}.items():
            (tmp / name).write_bytes(data)
    return {
        "files": [f"{key}/{n}" for n in result["files"]],
        "renders": [f"{key}/{n}" for n in result.get("renders", {})],
        "motions": [{k: m.get(k) for k in ("path", "sample", "frames", "fit_error_mm", "retrieved")}
                    | {"path": f"{key}/{m['path']}"} for m in result["motions"]],
        "warnings": result["warnings"],
        "timings": {k: round(result[k], 4) for k in ("generate_s", "fit_s", "render_s") if k in result},
        "nodes": {stage: result[f"{stage}_node"] for stage in ("generate", "fit", "render")
                  if f"{stage}_node" in result},
        "device": result.get("device"),
    }


def _record(job: Job, seed: int, samples: int, body: dict | None) -> dict:
    item = job.item
    rec = {"key": item.key, "line": item.line, "prompt": item.text, "seed": seed, "samples": samples,
           "timeline": [list(p) for p in item.timeline] if item.timeline else None,
           "attempts": job.attempts, "errors": job.errors}
    if body is None:
        return {**rec, "status": "failed", "error": job.errors[-1] if job.errors else "unknown error",
                "files": [], "renders": []}
    return {**rec, "status": "ok", "error": None, **body,
            "timings": {**body["timings"], "total_s": round(time.monotonic() - job.started, 4)}}


def run_batch(prompt_file: str | Path, out_dir: str | Path, opts: BatchOptions, ray: str | None = None,
              resume: bool = False, actors: int | None = None, show_progress: bool | None = None) -> Summary:
    """Run (or continue, with ``resume``) a batch. ``ray``: None (one process), "auto" or a cluster address.
    Raises UserError before any work for a bad prompt file, output folder or models folder; item failures
    are recorded in the manifest, never raised."""
    from tqdm import tqdm

    items = read_prompt_file(prompt_file)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    previous = manifest.read(out)
    if previous and not resume:
        raise UserError(f"{out} already holds a batch ({manifest.NAME}): add --resume to continue it, "
                        "or choose another --out")
    done = {it.key for it in items if manifest.is_done(out, previous.get(it.key))}
    limit = len(items) if opts.max_renders is None else opts.max_renders
    jobs = [Job(it, it.request(opts.seed + it.index, opts.samples, opts.fit),
                render=opts.render != "none" and it.index < limit)
            for it in items if it.key not in done]
    t0 = time.monotonic()
    runner = (RayRunner(opts, ray, actors) if ray else LocalRunner(opts)) if jobs else None
    startup = time.monotonic() - t0
    bar = tqdm(total=len(items), initial=len(done), unit="item", file=sys.stderr, desc="batch",
               disable=None if show_progress is None else not show_progress)
    appender = manifest.Appender(out)
    ok = failed = motions = renders = 0
    try:
        for job, result in (runner.run(jobs) if runner else ()):
            seed = job.raw["seed"]
            body = None
            if result is not None:
                try:
                    body = _write_item(out, job, result)
                except OSError as exc:
                    job.errors.append(f"could not write {out / job.item.key}: {exc.strerror or exc}")
            rec = _record(job, seed, opts.samples, body)
            appender.add(rec)
            if body is None:
                failed += 1
                log.warning("item %s (line %d) failed: %s", job.item.key, job.item.line, rec["error"])
            else:
                ok += 1
                motions += len(body["motions"])
                renders += len(body["renders"])
            bar.update(1)
    finally:
        bar.close()
        appender.close()
        if runner is not None:
            runner.close()
    manifest.compact(out, [it.key for it in items])
    return Summary(items=len(items), ok=ok + len(done), failed=failed, skipped=len(done), motions=motions,
                   renders=renders, seconds=time.monotonic() - t0, manifest=out / manifest.NAME,
                   startup_s=startup)
