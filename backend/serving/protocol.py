"""The add-on <-> generator line protocol: message schema, parsing and validation.

One JSON object per line each way (UTF-8, ``\\n``-terminated). Requests::

    {"id": <str|int>, "method": "hello"|"generate"|"edit"|"describe"|"library_search"|"library_index"|"cancel"|"shutdown",
     "params": {...}}

Replies carry the request's id: zero or more progress events
``{"id", "event": "progress", "stage", "fraction"}`` and then exactly one final reply,
``{"id", "result": {...}}`` or ``{"id", "error": {"code", "message"}}``.

This module is pure Python (no torch): the CLI, the server and the tests share its rules, and the add-on
helper codes against the same constants (documented in the README's server section).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backend.errors import (BAD_REQUEST, BUSY, CANCELLED, ERROR_CODES, INTERNAL, INVALID_PARAMS,  # noqa: F401
                            MODEL_ERROR, UNAUTHORIZED, UNKNOWN_METHOD, UserError)

PROTOCOL_VERSION = 1
FPS = 20

# Error codes (the only values of error.code) are defined with the error contract in backend/errors.py and
# re-exported here (BAD_REQUEST, INVALID_PARAMS, MODEL_ERROR, ...).

METHODS = ("hello", "generate", "edit", "describe", "library_search", "cancel", "shutdown", "library_index")
# edit: backend/editing/request.py; describe, library_search, library_index: backend/library/request.py

# The "stage" of progress events, in order: the pipeline's (backend.generation.pipeline), then the server's
# fit and write of the results. Clients (and the add-on tests' stand-in backend) use these names.
GENERATION_STAGES = ("text", "retrieval", "length", "mask_aux", "mask_ts", "residual", "decode", "joints")
PROGRESS_STAGES = GENERATION_STAGES + ("fit", "write")
LIBRARY_STAGES = ("describe", "search", "index")  # describe, library_search, library_index

# Limits.
MAX_LINE_BYTES = 1 << 20             # a longer request line is answered with bad_request and skipped
MAX_ID_CHARS = 256
MAX_ID_INT = 2**63 - 1
MAX_PROMPTS = 64
MAX_PROMPT_CHARS = 500
MIN_SECONDS, MAX_SECONDS = 0.2, 9.8  # 4 .. 196 frames at 20 fps (HumanML3D's range)
MIN_FRAMES, MAX_FRAMES = 4, 196
MAX_SAMPLES = 8
MAX_CANDIDATES = 16   # draws per motion for best of N (the pipeline takes up to 64; a server keeps requests bounded)
MAX_TIME_STEPS = 100
MAX_SEED = 2**32 - 1
MAX_OUT_DIR_CHARS = 4096

GENERATE_DEFAULTS = {
    "length_s": None,
    "seed": 0,
    "samples": 1,
    # sampling settings: None (or absent) = the model's own (backend.generation.pipeline.SAMPLING_DEFAULTS, or the
    # model folder's generation.json; the official release: 4, 10, 1, 0.9; the starter: guidance 2)
    "cond_scale": None,
    "time_steps": None,
    "temperature": None,
    "topk": None,
    "use_retrieval": True,
    "fit": True,
    "out_dir": None,
    "ground_feet": True,   # SMPL fit: feet on the floor, contacts pinned (smpl_fitting.ground)
    "literal": False,      # True: the prompts as typed, never read in the model's training words (reading.py)
    "candidates": None,    # draws per motion, the best kept by the model's Part-TMR (None: the model's own; starter 4)
}
GENERATE_KEYS = frozenset(GENERATE_DEFAULTS) | {"prompt", "prompts", "timeline"}


class ProtocolError(UserError):
    """A request that gets an error reply. ``req_id`` is the request's id when it could be read."""

    def __init__(self, code: str, message: str, req_id: Any = None, field: str | None = None,
                 problem: str | None = None):
        super().__init__(message, code=code, field=field, problem=problem)
        self.req_id = req_id


@dataclass
class Request:
    id: str | int
    method: str
    params: dict


@dataclass
class GenerateParams:
    prompts: list[str]
    length_s: float | None
    seed: int
    samples: int
    cond_scale: float | None
    time_steps: int | None
    temperature: float | None
    topk: float | None
    use_retrieval: bool
    fit: bool
    out_dir: str | None
    ground_feet: bool = True
    literal: bool = False
    candidates: int | None = None
    timeline: list | None = None  # [(prompt, seconds)]: one long motion (backend/editing/timeline.py)

    @property
    def lengths(self) -> list[int] | None:
        """Frames per prompt (20 fps), or None for the model's length estimator."""
        if self.length_s is None:
            return None
        frames = seconds_to_frames(self.length_s)
        return [frames] * len(self.prompts)

    def to_dict(self) -> dict:
        return asdict(self)


def seconds_to_frames(seconds: float) -> int:
    return int(min(MAX_FRAMES, max(MIN_FRAMES, round(seconds * FPS))))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def decode_line(raw: bytes) -> Any:
    """bytes of one line -> a JSON value; ProtocolError(bad_request) for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(BAD_REQUEST, f"request is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ProtocolError(BAD_REQUEST, "request is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, int too long, NaN/Infinity
        msg = str(exc).splitlines()[0][:200]
        raise ProtocolError(BAD_REQUEST, f"request is not valid JSON: {msg}") from None


def valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_ID_INT
    if isinstance(value, str):
        return 0 < len(value) <= MAX_ID_CHARS
    return False


def parse_request(raw: bytes) -> Request:
    """One request line -> Request. Raises ProtocolError (bad_request / unknown_method / invalid_params)."""
    obj = decode_line(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_REQUEST, f"request must be a JSON object, got {type(obj).__name__}")
    req_id = obj.get("id")
    if "id" not in obj:
        raise ProtocolError(BAD_REQUEST, "request has no 'id'")
    if not valid_id(req_id):
        raise ProtocolError(BAD_REQUEST, "'id' must be a non-empty string (<= 256 chars) or a 64-bit integer")
    method = obj.get("method")
    if "method" not in obj:
        raise ProtocolError(BAD_REQUEST, "request has no 'method'", req_id)
    if not isinstance(method, str):
        raise ProtocolError(BAD_REQUEST, "'method' must be a string", req_id)
    if method not in METHODS:
        shown = method if len(method) <= 40 else method[:40] + "..."
        raise ProtocolError(UNKNOWN_METHOD, f"unknown method {shown!r}; known: {', '.join(METHODS)}", req_id)
    params = obj.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ProtocolError(INVALID_PARAMS, "'params' must be an object", req_id)
    extra = set(obj) - {"id", "method", "params"}
    if extra:
        raise ProtocolError(BAD_REQUEST, f"unexpected request fields: {_names(extra)}", req_id)
    return Request(req_id, method, params)


def _names(keys) -> str:
    shown = sorted(str(k)[:40] for k in keys)[:5]
    return ", ".join(repr(k) for k in shown) + (" ..." if len(keys) > 5 else "")


def _bad(message: str):
    raise ProtocolError(INVALID_PARAMS, message)


def bad_field(key: str, problem: str, protocol_hint: str = ""):
    """'<key>' <problem><protocol_hint>; callers that name the parameter otherwise (the CLI's flags) use
    ``problem`` alone (``UserError.message_for``)."""
    raise ProtocolError(INVALID_PARAMS, f"'{key}' {problem}{protocol_hint}", field=key, problem=problem)


def _number(params: dict, key: str) -> float:
    v = params[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        bad_field(key, "must be a number")
    try:
        f = float(v)
    except OverflowError:
        bad_field(key, "is out of range")
    if not math.isfinite(f):
        bad_field(key, "must be finite")
    return f


def _integer(params: dict, key: str, lo: int, hi: int) -> int:
    v = params[key]
    if isinstance(v, float) and v.is_integer() and math.isfinite(v):
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        bad_field(key, "must be an integer")
    if not lo <= v <= hi:
        bad_field(key, f"must be in {lo}..{hi}")
    return v


def _boolean(params: dict, key: str) -> bool:
    v = params[key]
    if not isinstance(v, bool):
        bad_field(key, "must be true or false")
    return v


def validate_prompt(value, key="prompt") -> str:
    if not isinstance(value, str):
        bad_field(key, "must be a string")
    p = " ".join(value.split())
    if not p:
        bad_field(key, "is empty")
    if len(p) > MAX_PROMPT_CHARS:
        bad_field(key, f"is longer than {MAX_PROMPT_CHARS} characters")
    if any(ord(c) < 32 for c in p) or "\x7f" in p:
        bad_field(key, "contains control characters")
    return p


def validate_seconds(v, key="seconds") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        bad_field(key, "must be a number of seconds")
    return float(v)


def validate_timeline(value) -> list[tuple[str, float]]:
    """generate's ``timeline``: ``[{"prompt", "seconds"}, ...]`` -> [(prompt, seconds)]; a part without a subject
    gets the first part's ("a person walks forward", "jumps twice" -> "a person jumps twice")."""
    from backend.editing.limits import MAX_TIMELINE_PARTS, MAX_TIMELINE_SECONDS, MIN_PART_SECONDS
    from backend.generation.prompt_parts import _subject_of

    if not isinstance(value, list) or not value:
        _bad("'timeline' must be a non-empty list of {\"prompt\", \"seconds\"} objects")
    if len(value) > MAX_TIMELINE_PARTS:
        _bad(f"'timeline' holds at most {MAX_TIMELINE_PARTS} parts")
    out, total, subject = [], 0.0, None
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"prompt", "seconds"} or "prompt" not in item \
                or "seconds" not in item:
            _bad(f"timeline part {i + 1} must be {{\"prompt\": ..., \"seconds\": ...}}")
        prompt = validate_prompt(item["prompt"], f"timeline[{i}].prompt")
        s = validate_seconds(item["seconds"], f"timeline[{i}].seconds")
        if s < MIN_PART_SECONDS:
            _bad(f"timeline part {i + 1} must last at least {MIN_PART_SECONDS:g} s")
        subj = _subject_of(prompt)
        if subject is None:
            subject = subj or "a person"
            if subj is None:
                prompt = f"{subject} {prompt}"
        elif subj is None:
            prompt = f"{subject} {prompt[0].lower()}{prompt[1:]}"
        total += s
        out.append((prompt, s))
    if total > MAX_TIMELINE_SECONDS:
        _bad(f"the timeline lasts {total:g} s; at most {MAX_TIMELINE_SECONDS:g} s")
    return out


def validate_generate(params: dict) -> GenerateParams:
    """generate params -> GenerateParams with defaults; ProtocolError(invalid_params) with a clear message."""
    if not isinstance(params, dict):
        _bad("'params' must be an object")
    unknown = set(params) - GENERATE_KEYS
    if unknown:
        _bad(f"unknown generate params: {_names(unknown)}")
    timeline = None
    if "timeline" in params:
        if "prompt" in params or "prompts" in params or params.get("length_s") is not None:
            _bad("'timeline' gives the prompts and their seconds: leave out 'prompt', 'prompts' and 'length_s'")
        timeline = validate_timeline(params["timeline"])
        params = {**{k: v for k, v in params.items() if k != "timeline"},
                  "prompt": "; ".join(p for p, _ in timeline)[:MAX_PROMPT_CHARS]}
    if ("prompt" in params) == ("prompts" in params):
        _bad("give exactly one of 'prompt' (a string) or 'prompts' (a list of strings)")
    if "prompt" in params:
        prompts = [params["prompt"]]
        if not isinstance(prompts[0], str):
            _bad("'prompt' must be a string")
    else:
        prompts = params["prompts"]
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            _bad("'prompts' must be a list of strings")
        if not 1 <= len(prompts) <= MAX_PROMPTS:
            _bad(f"'prompts' must hold 1..{MAX_PROMPTS} prompts")
    clean = []
    for p in prompts:
        p = " ".join(p.split())
        if not p:
            _bad("a prompt is empty")
        if len(p) > MAX_PROMPT_CHARS:
            _bad(f"a prompt is longer than {MAX_PROMPT_CHARS} characters")
        if any(ord(c) < 32 for c in p) or "\x7f" in p:
            _bad("a prompt contains control characters")
        clean.append(p)
    p = dict(GENERATE_DEFAULTS)
    p.update({k: v for k, v in params.items() if k in GENERATE_DEFAULTS})
    if p["length_s"] is not None:
        p["length_s"] = _number(p, "length_s")
        if not MIN_SECONDS <= p["length_s"] <= MAX_SECONDS:
            bad_field("length_s", f"must be in {MIN_SECONDS}..{MAX_SECONDS} seconds",
                       ", or null for the length estimator")
    p["seed"] = _integer(p, "seed", 0, MAX_SEED)
    p["samples"] = _integer(p, "samples", 1, MAX_SAMPLES)
    if p["cond_scale"] is not None:
        p["cond_scale"] = _number(p, "cond_scale")
        if p["cond_scale"] < 0:
            bad_field("cond_scale", "must be >= 0")
    if p["time_steps"] is not None:
        p["time_steps"] = _integer(p, "time_steps", 1, MAX_TIME_STEPS)
    if p["temperature"] is not None:
        p["temperature"] = _number(p, "temperature")
        if p["temperature"] <= 0:
            bad_field("temperature", "must be > 0")
    if p["topk"] is not None:
        p["topk"] = _number(p, "topk")
        if not 0 <= p["topk"] <= 1:
            bad_field("topk", "must be in 0..1")
    p["use_retrieval"] = _boolean(p, "use_retrieval")
    p["fit"] = _boolean(p, "fit")
    p["ground_feet"] = _boolean(p, "ground_feet")
    p["literal"] = _boolean(p, "literal")
    if p["candidates"] is not None:
        p["candidates"] = _integer(p, "candidates", 1, MAX_CANDIDATES)
    out_dir = p["out_dir"]
    if out_dir is not None:
        if not isinstance(out_dir, str) or not out_dir.strip():
            bad_field("out_dir", "must be a non-empty string")
        if len(out_dir) > MAX_OUT_DIR_CHARS or "\x00" in out_dir:
            bad_field("out_dir", "is not a usable path")
        p["out_dir"] = os.path.abspath(os.path.expanduser(out_dir))
    return GenerateParams(prompts=clean, timeline=timeline, **{k: p[k] for k in GENERATE_DEFAULTS})


def validate_cancel(params: dict):
    if "target" not in params:
        _bad("cancel needs 'target' (the id of the request to cancel)")
    if not valid_id(params["target"]):
        _bad("'target' must be a request id (string or integer)")
    if set(params) - {"target"}:
        _bad(f"unknown cancel params: {_names(set(params) - {'target'})}")
    return params["target"]


def ensure_out_dir(path: str) -> Path:
    """Create the output folder (parents too); ProtocolError(invalid_params) when that is impossible."""
    d = Path(path)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        _bad(f"cannot create out_dir {path!r}: {exc.strerror if isinstance(exc, OSError) else exc}")
    if not os.access(d, os.W_OK):
        _bad(f"out_dir {path!r} is not writable")
    return d


# ---- reply builders -------------------------------------------------------------------------------------

def encode(obj: dict) -> bytes:
    """One reply -> one ASCII line (non-ASCII escaped, so a reader can split on b'\\n' safely)."""
    return (json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":")) + "\n").encode("ascii")


def progress(req_id, stage: str, fraction: float) -> dict:
    return {"id": req_id, "event": "progress", "stage": stage, "fraction": round(min(1.0, max(0.0, fraction)), 4)}


def result(req_id, value: dict) -> dict:
    return {"id": req_id, "result": value}


def error(req_id, code: str, message: str) -> dict:
    return {"id": req_id, "error": {"code": code, "message": message}}
