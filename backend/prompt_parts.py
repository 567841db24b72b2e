"""Splitting a sequential prompt ("a person walks forward, then waves") into one sentence per action.

Pure Python. Used by the pipeline for models that compose sequences part by part (the starter model: its
corpus has too few two-part clips to learn "X, then Y"; see backend/pipeline.py).
"""

from __future__ import annotations

import re

__all__ = ["split_sequence", "SUBJECTS"]

# Subjects a part may start with; later parts without one get the first part's.
SUBJECTS = ("a person", "the person", "someone", "somebody", "a man", "the man", "a woman", "the woman",
            "a figure", "the figure", "a human", "the human", "a character", "the character", "a guy", "a girl",
            "a boy", "a child", "a kid")
_PRONOUNS = ("he", "she", "they", "it")
# ", then" / " and then" / ", after that" / ", afterwards" / ", and finally" ... between two actions
_JOINERS = re.compile(r"\s*(?:,\s*|\s+)(?:and\s+)?(?:then|after\s+that|afterwards|finally)\s*,?\s+",
                      re.IGNORECASE)
# A part that starts with one of these continues the previous action ("raises both arms, then down")
_NOT_AN_ACTION = frozenset("down up back again forward forwards backward backwards away out off over around left "
                           "right straight slowly quickly once twice more".split())
_FIRST = re.compile(r"^(?:first(?:ly)?|at\s+first)\s*,?\s+", re.IGNORECASE)


def _subject_of(text: str) -> str | None:
    low = text.lower()
    for s in sorted(SUBJECTS, key=len, reverse=True):
        if low.startswith(s + " "):
            return text[:len(s)]
    return None


def split_sequence(prompt: str) -> list[str]:
    """``"a person walks forward, then waves"`` -> ``["a person walks forward", "a person waves"]``.

    Splits at "then", "and then", "after that", "afterwards", "finally" (after a comma or a space); drops a
    leading "first"; gives every later part the first part's subject (or "a person") in place of a missing
    subject or a pronoun. A prompt without a joiner, or one where a part would be empty or would start with
    a word that continues the previous action ("..., then down"), comes back whole."""
    text = _FIRST.sub("", " ".join(str(prompt).split()).strip(" ."))
    subject = _subject_of(text)
    body = _FIRST.sub("", text[len(subject) + 1:] if subject else text)
    parts = [p.strip(" ,.") for p in _JOINERS.split(body)]
    if len(parts) < 2 or not all(parts) or any(p.split()[0].lower() in _NOT_AN_ACTION for p in parts[1:]):
        return [" ".join(str(prompt).split())]
    subject = subject or "a person"
    out = [f"{subject} {parts[0]}"]
    for p in parts[1:]:
        words = p.split(" ", 1)
        if words[0].lower() in _PRONOUNS and len(words) == 2:
            p = words[1]
        out.append(p if _subject_of(p) else f"{subject} {p}")
    return out
