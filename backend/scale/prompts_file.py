"""A batch's prompt file: one prompt per line, or one timed timeline per line.

    a person walks forward
    # comments and blank lines are skipped
    a person walks:3 | a person jumps twice:2 | a person waves:2.5

A line whose ``|``-separated parts all end in ``:SECONDS`` is a timeline (``remomask generate --timeline``'s
``PROMPT:SECONDS`` parts, one long motion); any other line is one prompt. Each item's key is its line number
and a hash of its text, so ``--resume`` recognises an item even when lines were added after it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from backend.errors import UserError
from backend.serving import protocol as P


@dataclass(frozen=True)
class BatchItem:
    key: str                                   # "00012-1a2b3c4d": line number and text hash
    line: int                                  # 1-based line in the prompt file
    text: str                                  # the line as written (stripped)
    index: int                                 # 0-based position among the file's items (seeds derive from it)
    timeline: tuple[tuple[str, float], ...] | None = None

    def request(self, seed: int, samples: int, fit: bool = True) -> dict:
        """The generate request's params (validated by ``protocol.validate_generate``)."""
        raw = {"seed": seed, "samples": samples, "fit": fit}
        if self.timeline:
            return {**raw, "timeline": [{"prompt": p, "seconds": s} for p, s in self.timeline]}
        return {**raw, "prompts": [self.text]}


def _timeline(text: str) -> tuple[tuple[str, float], ...] | None:
    parts = []
    for part in text.split("|"):
        prompt, sep, secs = part.strip().rpartition(":")
        try:
            seconds = float(secs)
        except ValueError:
            return None
        if not sep or not prompt.strip():
            return None
        parts.append((prompt.strip(), seconds))
    return tuple(parts)


def read_prompt_file(path: str | Path) -> list[BatchItem]:
    """Parse the file; each item's request is validated here, so a bad line fails the batch before any work
    starts, with its line number (UserError)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the prompt file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    items: list[BatchItem] = []
    for no, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        key = f"{no:05d}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
        item = BatchItem(key=key, line=no, text=text, index=len(items), timeline=_timeline(text))
        try:
            P.validate_generate(item.request(seed=0, samples=1))
        except P.ProtocolError as exc:
            raise UserError(f"{path}, line {no}: {exc.message}") from None
        items.append(item)
    if not items:
        raise UserError(f"the prompt file {path} holds no prompts")
    return items
