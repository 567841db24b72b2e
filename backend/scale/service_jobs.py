"""The shared service's work, without Ray: one HTTP request -> a validated job; a batch of jobs -> groups that
run as one pipeline call; results carrying the motion files' contents.

* ``parse_job(method, body)``: the JSON-lines protocol's validators (``protocol.validate_generate``,
  ``backend.editing.request.validate_edit``) on the request body. ``out_dir`` is refused (the service returns
  the files' contents; the client writes them); an edit's ``source`` is the motion file's contents
  (``{"name": "x.npz", "data_b64": ...}``), written to a private temporary file for the validator.
* ``run_batch_of_jobs(generator, jobs)``: generate requests that differ only in their prompts (same seed,
  samples, length and sampling settings) are merged into one ``run_generate`` call (each motion draws from its
  own generator, so a merged request gets the motion it gets alone) and the motions are handed back to each
  request in order; other
  requests (timelines, edits) run one by one. A group stops when every request in it was cancelled.
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from backend.errors import UserError
from backend.serving import protocol as P
from backend.serving.generators import Cancelled
from backend.serving.jobs import run_generate

log = logging.getLogger("remomask.service")

MAX_BODY_BYTES = 32 << 20
METHODS = ("generate", "edit")


@dataclass(eq=False)
class ServiceJob:
    method: str
    params: Any                                    # GenerateParams or EditParams
    emit: Callable[[dict], None] = lambda ev: None  # progress events to this request's stream (thread-safe)
    cancel: threading.Event = field(default_factory=threading.Event)
    tmp: str | None = None                          # private folder (an edit's source), removed by close()

    def close(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": str(message)[:2000]}}


def parse_job(method: str, body: Any) -> ServiceJob:
    """Raises ProtocolError (a UserError with code invalid_params) with one clear message."""
    if method not in METHODS:
        raise P.ProtocolError(P.UNKNOWN_METHOD, f"unknown method {method!r}; the service answers "
                                                 f"{', '.join(METHODS)}")
    if not isinstance(body, dict):
        raise P.ProtocolError(P.INVALID_PARAMS, "the request body must be a JSON object of params")
    if "out_dir" in body:
        raise P.ProtocolError(P.INVALID_PARAMS, "'out_dir' is not used by the service: results carry the "
                                                "files' contents and the client writes them")
    if method == "generate":
        return ServiceJob("generate", P.validate_generate(body))
    from backend.editing.request import validate_edit

    src = body.get("source")
    if not isinstance(src, dict) or not isinstance(src.get("data_b64"), str):
        raise P.ProtocolError(P.INVALID_PARAMS, "an edit's 'source' must be the motion file's contents: "
                              "{\"name\": \"x.npz\", \"data_b64\": \"...\"}")
    name = Path(str(src.get("name") or "source.npz")).name
    if not name.endswith((".npz", ".npy")):
        name += ".npz"
    tmp = tempfile.mkdtemp(prefix="remomask-edit-")
    try:
        path = Path(tmp) / name
        try:
            path.write_bytes(base64.b64decode(src["data_b64"], validate=True))
        except ValueError:
            raise P.ProtocolError(P.INVALID_PARAMS, "'source.data_b64' is not base64") from None
        params = validate_edit({**body, "source": str(path)})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ServiceJob("edit", params, tmp=tmp)


def _group_key(job: ServiceJob):
    if job.method != "generate" or job.params.timeline:
        return None
    d = job.params.to_dict()
    d.pop("prompts")
    return tuple(sorted((k, repr(v)) for k, v in d.items()))


def groups_of(jobs: list[ServiceJob]) -> list[list[ServiceJob]]:
    """Jobs -> groups run as one call each (in arrival order; merged prompts stay within MAX_PROMPTS)."""
    groups: list[list[ServiceJob]] = []
    open_groups: dict = {}
    for job in jobs:
        key = _group_key(job)
        g = open_groups.get(key) if key is not None else None
        if g is not None and sum(len(j.params.prompts) for j in g) + len(job.params.prompts) <= P.MAX_PROMPTS:
            g.append(job)
            continue
        g = [job]
        groups.append(g)
        if key is not None:
            open_groups[key] = g
    return groups


def _pack(out_paths: list[Path], motion: dict) -> dict:
    npz = Path(motion["path"])
    files = {"npz": base64.b64encode(npz.read_bytes()).decode("ascii")}
    bvh = npz.with_suffix(".bvh")
    if bvh in out_paths:
        files["bvh"] = base64.b64encode(bvh.read_bytes()).decode("ascii")
    return {**motion, "path": npz.name, "files": files}


def run_group(generator, group: list[ServiceJob], batch_size: int, replica: str, device: str | None = None,
              smpl_dir: str | None = None) -> list[dict]:
    """One run_generate call for the group -> one final message per job ({"result"} or {"error"})."""
    live = [j for j in group if not j.cancel.is_set()]
    if not live:
        return [error(P.CANCELLED, "cancelled") for _ in group]
    first = group[0].params
    params = first if len(group) == 1 else \
        replace(first, prompts=[p for j in group for p in j.params.prompts])
    tmp = tempfile.mkdtemp(prefix="remomask-serve-")

    def emit(stage, fraction):
        for j in group:
            if not j.cancel.is_set():
                j.emit({"event": "progress", "stage": stage, "fraction": round(float(fraction), 4)})

    try:
        try:
            out = run_generate(generator, params, Path(tmp), emit, lambda: all(j.cancel.is_set() for j in group),
                               bvh=params.fit, smpl_dir=smpl_dir, device=device)
        except Cancelled:
            return [error(P.CANCELLED, "cancelled") for _ in group]
        except UserError as exc:
            return [error(exc.code, str(exc)) for _ in group]
        except Exception as exc:  # noqa: BLE001 - the model failed: every request of the group is told
            log.exception("generation failed")
            return [error(P.MODEL_ERROR, f"generation failed: {type(exc).__name__}: {exc}") for _ in group]
        results, start = [], 0
        meta = {"size": batch_size, "group": len(group), "replica": replica}
        for j in group:
            n = len(j.params.prompts) * j.params.samples if j.method == "generate" else len(out.motions)
            mine = out.motions[start:start + n]
            start += n
            if j.cancel.is_set():
                results.append(error(P.CANCELLED, "cancelled"))
                continue
            others = {p for o in group if o is not j for p in o.params.prompts} - set(j.params.prompts)
            mine_notes = [w for w in out.warnings if not any(p in w for p in others)]  # not a batch mate's
            results.append({"result": {"motions": [_pack(out.paths, m) for m in mine],
                                       "warnings": mine_notes, "batch": meta}})
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_batch_of_jobs(generator, jobs: list[ServiceJob], replica: str = "", device: str | None = None,
                      smpl_dir: str | None = None) -> list[dict]:
    """Every job's final message, in the order of ``jobs``."""
    final: dict[int, dict] = {}
    for group in groups_of(jobs):
        for j, msg in zip(group, run_group(generator, group, len(jobs), replica, device, smpl_dir)):
            final[id(j)] = msg
    return [final[id(j)] for j in jobs]
