"""The protocol's ``describe`` and ``library_search`` requests: validation (before anything is queued) and
running on the server's worker (the same queue as generate, so the model is used by one request at a time).

``describe`` params: ``source`` (required: a motion .npz, a joints .npy or a BVH on the SMPL skeleton),
``k`` (1..100, default 5). Result: ``{"source", "frames", "seconds", "prompt", "captions": [{"caption", "score",
"id"}], "motions": [{"id", "caption", "score"}], "warnings"}``.

``library_search`` params: ``index`` (required: an index folder or the motion folder holding
``.remomask-library``), exactly one of ``text`` or ``like`` (a motion file), ``k`` (1..1000, default 10).
Result: ``{"index", "hits": [{"file", "path", "start", "end", "start_s", "end_s", "score", "frames",
"prompt"}]}``.

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
