"""The protocol's ``describe`` and ``library_search`` requests: validation (before anything is queued) and
running on the server's worker (the same queue as generate, so the model is used by one request at a time).

``describe`` params: ``source`` (required: a motion .npz, a joints .npy or a BVH on the SMPL skeleton),
``k`` (1..100, default 5). Result: ``{"source", "frames", "seconds", "prompt", "captions": [{"caption", "score",
"id"}], "motions": [{"id", "caption", "score"}], "warnings"}``.

``library_search`` params: ``index`` (required: an index folder or the motion folder holding
``.remomask-library``), exactly one of ``text`` or ``like`` (a motion file), ``k`` (1..1000, default 10).
Result: ``{"index", "hits": [{"file", "path", "start", "end", "start_s", "end_s", "score", "frames",
"prompt"}]}``.

``library_index`` params: ``folder`` (required: the motion folder), ``index`` (the index folder, default
``FOLDER/.remomask-library``), ``window`` (8..196 frames, default 196), ``stride`` (1..window, default 98).
Progress events with stage ``index`` (the fraction of files done); ``cancel`` stops it between files and
nothing is written (the previous index stays as it was). Result: the index report (``index``, ``files``,
``windows``, ``embedded``, ``reused``, ``removed``, ``errors`` {file: message}, ``seconds``,
``rebuilt_for_model``) plus ``messages``: one line per file that could not be indexed.

Bad input (missing or unreadable file, unknown keys, k out of range, no index) is one ``invalid_params``
reply; an index built with another model is refused the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.errors import INVALID_PARAMS, UserError
from backend.serving import protocol as P

from .describe import MAX_K as DESCRIBE_MAX_K
from .reading import MotionInput

SEARCH_MAX_K = 1000


def _path(params: dict, key: str) -> str:
    v = params.get(key)
    if not isinstance(v, str) or not v.strip() or len(v) > P.MAX_OUT_DIR_CHARS or "\x00" in v:
        P.bad_field(key, "must be a path (a non-empty string)")
    return v


def _k(params: dict, default: int, hi: int) -> int:
    if params.get("k") is None:
        return default
    return P._integer(params, "k", 1, hi)


def _invalid(exc: UserError):
    raise P.ProtocolError(INVALID_PARAMS, exc.message) from None


def _embedder(generator):
    """The generator's Part-TMR as a MotionEmbedder, made once per loaded pipeline."""
    from .embed import MotionEmbedder, NoRetrievalModel

    pipe = getattr(generator, "pipeline", None)
    if pipe is None:
        raise NoRetrievalModel("this generator has no retrieval model to describe or search motions with")
    cached = getattr(generator, "_library_embedder", None)
    if cached is None or cached[0] is not pipe:
        cached = (pipe, MotionEmbedder.from_pipeline(pipe))
        generator._library_embedder = cached
    return cached[1]


@dataclass
class DescribeParams:
    source: str
    k: int
    motion: MotionInput | None = field(default=None, repr=False)
    out_dir: Any = None  # the queue's jobs carry one; describe writes nothing

    def answer(self, generator, progress, cancelled) -> dict:
        from .describe import describe_motion

        progress("describe", 0.0)
        res = describe_motion(_embedder(generator), self.motion, self.k)
        progress("describe", 1.0)
        return res


@dataclass
class LibrarySearchParams:
    index: str
    text: str | None
    like: str | None
    k: int
    motion: MotionInput | None = field(default=None, repr=False)
    out_dir: Any = None

    def answer(self, generator, progress, cancelled) -> dict:
        from .search import load_index, search_embedding

        emb = _embedder(generator)
        progress("search", 0.0)
        lib = load_index(self.index, emb)
        if self.text is not None:
            q = emb.embed_text([self.text])[0]
        else:
            q = emb.embed([self.motion.features[:int(lib.meta.get("window", emb.pad_len))]])[0]
        hits = search_embedding(lib, q, self.k)
        progress("search", 1.0)
        return {"index": str(lib.path), "hits": hits}


class IndexCancelled(Exception):
    """Raised between files when the client cancelled ``library_index`` (the server answers ``cancelled``)."""


@dataclass
class LibraryIndexParams:
    folder: str
    index: str | None
    window: int
    stride: int
    out_dir: Any = None
    min_interval: float = field(default=0.1, repr=False)   # seconds between progress events

    def answer(self, generator, progress, cancelled) -> dict:
        import time

        from .index import build_index

        emb = _embedder(generator)
        last = [-1.0, 0.0]   # fraction, time of the last event

        def on_file(fraction: float, _name: str) -> None:
            if cancelled():
                raise IndexCancelled("cancelled")
            now = time.monotonic()
            if fraction >= 1.0 or fraction - last[0] >= 0.01 or now - last[1] >= self.min_interval:
                progress("index", fraction)
                last[:] = [fraction, now]

        progress("index", 0.0)
        report = build_index(emb, self.folder, self.index, window=self.window, stride=self.stride,
                             progress=on_file)
        out = report.to_dict()
        out["messages"] = [f"{f}: {m}" for f, m in report.errors.items()]
        return out


def validate_library_index(params: dict) -> LibraryIndexParams:
    import os

    from .index import STRIDE, WINDOW

    unknown = set(params) - {"folder", "index", "window", "stride"}
    if unknown:
        P._bad(f"unknown library_index params: {P._names(unknown)}")
    if "folder" not in params:
        P._bad("library_index needs 'folder' (the folder of motions to index)")
    folder = os.path.abspath(os.path.expanduser(_path(params, "folder")))
    if not os.path.isdir(folder):
        P._bad(f"motion folder not found: {folder}")
    index = None
    if params.get("index") is not None:
        index = os.path.abspath(os.path.expanduser(_path(params, "index")))
    window = WINDOW if params.get("window") is None else P._integer(params, "window", 8, WINDOW)
    stride = STRIDE if params.get("stride") is None else P._integer(params, "stride", 1, window)
    if stride > window:
        P._bad(f"'stride' must be in 1..{window} (the window)")
    return LibraryIndexParams(folder=folder, index=index, window=window, stride=stride)


def validate_describe(params: dict) -> DescribeParams:
    from .reading import MotionReadError, read_motion

    unknown = set(params) - {"source", "k"}
    if unknown:
        P._bad(f"unknown describe params: {P._names(unknown)}")
    if "source" not in params:
        P._bad("describe needs 'source' (a motion .npz, a joints .npy or a BVH)")
    source = _path(params, "source")
    k = _k(params, 5, DESCRIBE_MAX_K)
    try:
        motion = read_motion(source)
    except MotionReadError as exc:
        _invalid(exc)
    return DescribeParams(source=source, k=k, motion=motion)


def validate_library_search(params: dict) -> LibrarySearchParams:
    from .index import LibraryError, read_meta
    from .reading import MotionReadError, read_motion
    from .search import resolve_index_dir

    unknown = set(params) - {"index", "text", "like", "k"}
    if unknown:
        P._bad(f"unknown library_search params: {P._names(unknown)}")
    if "index" not in params:
        P._bad("library_search needs 'index' (an index folder or the motion folder holding one)")
    index = _path(params, "index")
    if (params.get("text") is None) == (params.get("like") is None):
        P._bad("give exactly one of 'text' (what to look for) or 'like' (an example motion file)")
    text, like, motion = None, None, None
    if params.get("text") is not None:
        text = P.validate_prompt(params["text"], "text")
    else:
        like = _path(params, "like")
        try:
            motion = read_motion(like, what="example motion")
        except MotionReadError as exc:
            _invalid(exc)
    k = _k(params, 10, SEARCH_MAX_K)
    try:
        read_meta(resolve_index_dir(index))
    except LibraryError as exc:
        _invalid(exc)
    return LibrarySearchParams(index=index, text=text, like=like, k=k, motion=motion)
