"""What a model knows, and saying so when a prompt is outside it.

A model folder may describe its coverage in ``coverage.json``: ``words`` (every word of its training captions;
a small text tower trained from scratch has no trained embedding for any other) and ``min_similarity`` (below
this cosine similarity between the prompt and the closest caption of the retrieval database, the prompt is far
from anything the model was trained on). The official release has no such file: its vocabulary is read from its
retrieval database's captions and no similarity threshold is assumed (its Part-TMR scores are not calibrated
here). A prompt gets one warning per problem; the motion is still generated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

COVERAGE_FILE = "coverage.json"

# Words that name who moves, not what they do: never worth a warning on their own.
SUBJECT_WORDS = frozenset(
    "a an the this that he she they it someone somebody person people man men woman women guy guys girl girls boy "
    "boys kid kids child children lady gentleman dude character figure human actor dancer player athlete his her "
    "their its i we you".split())


# Words too common to say which example a prompt is close to (a shared "does" or "left" is no reason to
# suggest "does the charleston" or "turns to the left").
FILLER_WORDS = frozenset(
    "with to and of in on at then while times time do does doing did done perform performs performing make makes "
    "take takes give gives is are be go goes left right forward backward both one two three four five six once "
    "twice".split())


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z]+", str(text).lower())


def _stem(word: str) -> str:
    """Crude: 'dances', 'dancing', 'dance' -> 'danc' (only for matching a prompt to an example)."""
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of two neighbours."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _short_slip(word: str, k: str) -> bool:
    """A slip in a word of under 5 letters: two neighbours swapped, a letter left out or doubled (a changed or an
    extra letter would read too many real words as others: 'same' -> 'some', 'line' -> 'lie')."""
    if len(k) == len(word):
        return any(word[:i] + word[i + 1] + word[i] + word[i + 2:] == k for i in range(len(word) - 1))
    if len(k) == len(word) + 1:
        return any(k[:i] + k[i + 1:] == word for i in range(len(k)))
    return len(k) == len(word) - 1 and any(word[i] == word[i + 1] and word[:i] + word[i + 1:] == k
                                           for i in range(len(word) - 1))


def _closest_slip(word: str, known) -> str | None:
    """The known word (same first letter) one slip away from ``word`` (``_short_slip`` under 5 letters, one
    edit up to 7, two from 8); the closest, ties broken by difflib's similarity, then alphabetically; None when
    there is none."""
    import difflib

    limit = 1 if len(word) < 8 else 2
    best, key = None, None
    for k in known:
        if abs(len(k) - len(word)) > limit:
            continue
        d = edit_distance(word, k)
        if d <= limit and (len(word) >= 5 or _short_slip(word, k)):
            kk = (d, -difflib.SequenceMatcher(None, word, k).ratio(), k)
            if key is None or kk < key:
                best, key = k, kk
    return best


def _content(text: str) -> set[str]:
    return {_stem(w) for w in words_of(text) if w not in SUBJECT_WORDS and w not in FILLER_WORDS}


@dataclass(frozen=True)
class Family:
    name: str
    label: str
    source: str
    examples: tuple = ()

    def to_json(self) -> dict:
        return {"name": self.name, "label": self.label, "source": self.source, "examples": list(self.examples)}


@dataclass(frozen=True)
class Coverage:
    words: frozenset | None = None          # None: unknown vocabulary, no word check
    min_similarity: float | None = None     # None: no similarity check
    families: tuple = ()                    # Family entries; () when the folder does not say
    spelling: bool = False                  # correct misspelt words to known ones (a closed-vocabulary text tower)

    def corrected(self, prompt: str) -> tuple[str, list[tuple[str, str]]]:
        """(prompt with each unknown word of 4+ letters replaced by the known word it most likely misspells,
        [(word, replacement), ...]). 'jumpin' -> 'jumping', 'wavs' -> 'waves', 'walkss' -> 'walks'.
        A misspelling here is what a slip of the keyboard makes (and what the training captions' typos are):
        the same first letter and one edit (a letter dropped, doubled, swapped or changed; two in a word of 8+
        letters; under 5 letters only a swap, a dropped or a doubled letter). A real word that is not a slip of a known one stays as it is ('light' is not 'slight',
        'eyes' is not 'yes', 'party' is not 'partway'): it gets the unknown-word warning instead."""
        if not self.spelling or not self.words:
            return prompt, []
        fixes: list[tuple[str, str]] = []
        by_letter = self._by_first_letter

        def fix(m):
            w = m.group(0)
            lw = w.lower()
            if lw in self.words or lw in SUBJECT_WORDS or len(lw) < 4:
                return w
            near = _closest_slip(lw, by_letter.get(lw[0], ()))
            if near is None:
                return w
            fixes.append((w, near))
            return near

        return re.sub(r"[A-Za-z]+", fix, prompt), fixes

    @cached_property
    def _by_first_letter(self) -> dict[str, list[str]]:
        """The known words by first letter (a slip keeps the first letter), built once per coverage."""
        out: dict[str, list[str]] = {}
        for k in sorted(self.words or ()):
            out.setdefault(k[:1], []).append(k)
        return out

    def examples(self) -> list[dict]:
        """Every example prompt, as {"family", "label", "prompt"} (what the server's hello carries)."""
        return [{"family": f.name, "label": f.label, "prompt": e} for f in self.families for e in f.examples]

    def closest_example(self, prompt: str) -> str | None:
        """The example prompt sharing the most words with ``prompt`` (stems, subjects and fillers left out,
        ties: the shorter example); None when none shares a word."""
        want = _content(prompt)
        best, key = None, None
        for ex in self.examples():
            have = _content(ex["prompt"])
            shared = len(want & have)
            if shared and (key is None or (shared / len(have) ** 0.5, -len(have)) > key):
                best, key = ex["prompt"], (shared / len(have) ** 0.5, -len(have))
        return best

    def unknown_words(self, prompt: str) -> list[str]:
        if self.words is None:
            return []
        seen, out = set(), []
        for w in words_of(prompt):
            if w not in self.words and w not in SUBJECT_WORDS and w not in seen:
                seen.add(w)
                out.append(w)
        return out

    def warnings(self, prompt: str, similarity: float | None = None, closest: str | None = None) -> list[str]:
        out = []
        unknown = self.unknown_words(prompt)
        if unknown:
            listed = ", ".join(repr(w) for w in unknown[:6]) + (" ..." if len(unknown) > 6 else "")
            near = self.closest_example(prompt)
            out.append(f"{prompt!r}: the model never saw {listed} in training, so it may show another action "
                       f"or stand still" + (f"; try {near!r}" if near else ""))
        if self.min_similarity is not None and similarity is not None and similarity < self.min_similarity:
            near = f" (closest: {closest!r})" if closest else ""
            out.append(f"{prompt!r} is far from every motion the model knows: similarity {similarity:.2f} < "
                       f"{self.min_similarity:.2f}{near}; the result may show another action")
        return out

    def to_json(self) -> dict:
        out = {"words": sorted(self.words or ()), "min_similarity": self.min_similarity}
        if self.families:
            out["families"] = [f.to_json() for f in self.families]
        return out


def load_coverage(folder: str | Path, database_captions=None) -> Coverage:
    """The folder's ``coverage.json``; else the words of the retrieval database's captions (no threshold);
    else an empty Coverage (no checks)."""
    p = Path(folder) / COVERAGE_FILE
    if p.is_file():
        try:
            d = json.loads(p.read_text())
            words = frozenset(str(w) for w in d["words"]) if d.get("words") is not None else None
            ms = d.get("min_similarity")
            fams = tuple(Family(str(f["name"]), str(f.get("label") or f["name"]), str(f.get("source", "")),
                                tuple(str(e) for e in f.get("examples") or ()))
                         for f in d.get("families") or ())
            return Coverage(words, None if ms is None else float(ms), fams,
                            spelling=bool(d.get("correct_spelling", words is not None)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            from backend.errors import ModelError

            raise ModelError(f"{p}: expected {{\"words\": [...], \"min_similarity\": number or null, "
                             f"\"families\" (optional): [{{\"name\", \"label\", \"source\", \"examples\"}}]}} "
                             f"({e})") from None
    if database_captions is not None and len(database_captions):
        return Coverage(frozenset(w for c in database_captions for w in words_of(c)), None)
    return Coverage()
