"""One generate request end to end (generate -> fit -> write), and the server's job queue.

``run_generate`` is shared by the server and the CLI. ``JobQueue`` runs jobs one at a time on a worker
thread while the reader keeps answering hello/cancel; a cancel either drops a queued job or flags the
running one, and a cancelled job writes nothing (files it had written are removed).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from backend.errors import WriteFailed

from . import postprocess
from .generators import Cancelled
from .protocol import FPS, GenerateParams

log = logging.getLogger("remomask.server")



@dataclass
class Outcome:
    motions: list[dict]
    warnings: list[str]
    paths: list[Path]
    fits: list[Any] = field(default_factory=list)


class WriteError(WriteFailed):
    """A motion/BVH file could not be written (disk full, permissions, a writer's validation)."""


class ProgressMapper:
    """Maps (stage, fraction) from the generator/fit/write onto one non-decreasing 0..1 scale."""

    def __init__(self, emit: Callable[[str, float], None], fit: bool, min_interval: float = 0.05):
        self.emit = emit
        self.gen_end = 0.85 if fit else 0.95
        self.fit_end = 0.95
        self.last = 0.0
        self.last_stage = None
        self.last_time = 0.0
        self.min_interval = min_interval

    def _send(self, stage: str, overall: float, force: bool = False):
        overall = max(self.last, min(1.0, overall))
        now = time.monotonic()
        if force or stage != self.last_stage or now - self.last_time >= self.min_interval or overall >= 1.0:
            self.emit(stage, overall)
            self.last_stage, self.last_time = stage, now
        self.last = overall

    def generation(self, stage, fraction):
        if stage == "done":  # the model's own end marker; fit/write follow
            return
        try:
            f = float(fraction)
        except (TypeError, ValueError):
            f = self.last / self.gen_end if self.gen_end else 0.0
        if not np.isfinite(f):
            f = 0.0
        self._send(str(stage)[:40], self.gen_end * min(1.0, max(0.0, f)))

    def fitting(self, i, n):
        self._send("fit", self.gen_end + (self.fit_end - self.gen_end) * i / max(1, n))

    def writing(self, i, n):
        self._send("write", self.fit_end + (1.0 - self.fit_end) * i / max(1, n), force=i == n)


def _unit(f) -> float:
    try:
        f = float(f)
    except (TypeError, ValueError):
        return 0.0
    return min(1.0, max(0.0, f)) if np.isfinite(f) else 0.0


def _check(cancelled):
    if cancelled():
        raise Cancelled()


def run_generate(generator, params: GenerateParams, out_dir: Path, emit: Callable[[str, float], None],
                 cancelled: Callable[[], bool], bvh: bool = False, smpl_dir: str | None = None,
                 device: str | None = None) -> Outcome:
    """Generate, fit (if asked and available), write one .npz per sample (+ .bvh if asked).

    Raises Cancelled (after removing anything written) when ``cancelled()`` turns true; exceptions from
    the generator propagate (the caller reports them as model errors).
    """
    prog = ProgressMapper(emit, params.fit)
    produce = getattr(params, "produce", None)  # an edit request (backend/editing/request.py)
    samples = produce(generator, prog.generation, cancelled) if produce else \
        generator.generate(params, prog.generation, cancelled)
    _check(cancelled)
    samples = list(samples or [])
    for s in samples:
        j = np.asarray(s.joints)
        if j.ndim != 3 or j.shape[1:] != (22, 3) or j.shape[0] < 1 or not np.all(np.isfinite(j)):
            raise RuntimeError(f"generator returned invalid joints of shape {j.shape}")
    warnings: list[str] = []
    notes = getattr(generator, "warnings_for", None)
    if callable(notes):
        warnings.extend(str(w) for w in notes(params) or [])
    for s in samples:  # a prompt outside what the model knows (backend.generation.coverage), said once
        warnings.extend(w for w in getattr(s, "warnings", None) or [] if w not in warnings)
    fits: list[postprocess.Fit | None] = [None] * len(samples)
    if params.fit:
        if not postprocess.fitter_available():
            warnings.append("SMPL fitting is not installed: motions are saved as joints only")
        else:
            for i, s in enumerate(samples):
                prog.fitting(i, len(samples))
                _check(cancelled)
                try:
                    fits[i] = postprocess.fit_joints(
                        s.joints, smpl_dir, progress=lambda _st, f, i=i: prog.fitting(i + _unit(f), len(samples)),
                        device=device, ground_feet=getattr(params, "ground_feet", True),
                        contacts=postprocess.foot_contacts_of(getattr(s, "features", None)))
                except Cancelled:
                    raise
                except Exception as exc:  # noqa: BLE001 - a failed fit keeps the joints
                    log.exception("SMPL fit failed for sample %d", i)
                    warnings.append(f"SMPL fit failed for sample {i} ({s.prompt[:40]!r}): {exc}")
            prog.fitting(len(samples), len(samples))
    written: list[Path] = []
    motions = []
    taken: set = set()
    unfitted_bvh = 0
    try:
        for i, (s, fit) in enumerate(zip(samples, fits)):
            prog.writing(i, len(samples))
            _check(cancelled)
            stem = f"{postprocess.slug(s.prompt)}_s{int(s.seed)}_{int(s.sample_index)}"
            path = postprocess.unique_path(out_dir, stem, ".npz", taken)
            try:
                postprocess.save_sample(path, s, fit)
            except Exception as exc:  # noqa: BLE001
                raise WriteError(f"could not write {path}: {exc}") from exc
            written.append(path)
            if bvh:
                if fit is None:
                    unfitted_bvh += 1
                else:
                    bpath = path.with_suffix(".bvh")
                    try:
                        why = postprocess.write_bvh_for(bpath, fit)
                    except Exception as exc:  # noqa: BLE001
                        raise WriteError(f"could not write {bpath}: {exc}") from exc
                    if why:
                        warnings.append(f"no BVH for {path.name}: {why}")
                    else:
                        written.append(bpath)
            motions.append({
                "path": str(path),
                "prompt": s.prompt,
                "seed": int(s.seed),
                "sample": int(s.sample_index),
                "frames": int(np.asarray(s.joints).shape[0]),
                "fps": FPS,
                "retrieved": postprocess.captions(getattr(s, "retrieved", None)),
                "parts": [str(x) for x in (getattr(s, "parts", None) or [])],
                "fit_error_mm": None if fit is None else fit.mean_error_mm,
                **(s.result_fields() if callable(getattr(s, "result_fields", None)) else {}),
            })
        _check(cancelled)
    except BaseException:
        remove_files(written)
        raise
    if unfitted_bvh:
        warnings.append(f"no BVH for {unfitted_bvh} motion(s): BVH needs the SMPL fit")
    prog.writing(len(samples), len(samples))
    return Outcome(motions, warnings, written, fits)


def remove_files(paths):
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


# ---- the queue ----------------------------------------------------------------------------------------

QUEUED, RUNNING, DONE = "queued", "running", "done"


class Busy(Exception):
    pass


class DuplicateId(Exception):
    pass


@dataclass(eq=False)
class Job:
    owner: Any                    # the channel (connection) that sent it; cancel is scoped to it
    id: Any
    params: GenerateParams
    cancel_event: threading.Event = field(default_factory=threading.Event)
    state: str = QUEUED

    @property
    def key(self):
        return (id(self.owner), type(self.id).__name__, self.id)


class JobQueue:
    """FIFO of generate jobs run by one worker thread.

    ``runner(job)`` does the work and sends the replies; ``on_dropped(job)`` answers a job cancelled before
    it started. ``finish(job)`` (called by the runner under the lock, right before sending its result)
    returns False when a cancel arrived first, in which case the runner reports ``cancelled`` instead.
    """

    def __init__(self, runner: Callable[[Job], None], on_dropped: Callable[[Job], None], max_queued: int = 16):
        self.runner = runner
        self.on_dropped = on_dropped
        self.max_queued = max_queued
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.queue: collections.deque[Job] = collections.deque()
        self.active: dict = {}
        self.current: Job | None = None
        self.closed = False
        self.worker = threading.Thread(target=self._work, name="generate-worker", daemon=True)
        self.worker.start()

    def submit(self, job: Job):
        with self.cond:
            if self.closed:
                raise Busy("the server is shutting down")
            if job.key in self.active:
                raise DuplicateId(f"a request with id {job.id!r} is still running or queued")
            if len(self.queue) >= self.max_queued:
                raise Busy(f"the queue is full ({self.max_queued} requests waiting); try again later")
            self.active[job.key] = job
            self.queue.append(job)
            self.cond.notify()

    def cancel(self, owner, req_id) -> bool:
        key = (id(owner), type(req_id).__name__, req_id)
        with self.cond:
            job = self.active.get(key)
            if job is None or job.state == DONE or job.cancel_event.is_set():
                return False
            job.cancel_event.set()
            if job.state == QUEUED:
                self.queue.remove(job)
                job.state = DONE
                del self.active[key]
                dropped = job
            else:
                dropped = None
        if dropped is not None:
            self.on_dropped(dropped)
        return True

    def cancel_all(self, owner=None):
        with self.cond:
            jobs = [j for j in self.active.values() if owner is None or j.owner is owner]
        for j in jobs:
            self.cancel(j.owner, j.id)

    def finish(self, job: Job) -> bool:
        """Under the lock: mark done unless cancelled. True -> send the result."""
        with self.cond:
            self.active.pop(job.key, None)
            ok = not job.cancel_event.is_set()
            job.state = DONE
            return ok

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def idle(self) -> bool:
        with self.cond:
            return self.current is None and not self.queue

    def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.idle():
                return True
            time.sleep(0.02)
        return self.idle()

    def _work(self):
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if not self.queue:
                    return
                job = self.queue.popleft()
                job.state = RUNNING
                self.current = job
            try:
                self.runner(job)
            except BaseException:  # noqa: BLE001 - the runner reports its own errors; never die
                log.exception("job %r crashed", job.id)
            finally:
                with self.cond:
                    self.active.pop(job.key, None)
                    job.state = DONE
                    self.current = None
