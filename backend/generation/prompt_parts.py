"""Splitting a sequential prompt ("a person walks forward, then waves") into one sentence per action.

Pure Python. Used by the pipeline for models that compose sequences part by part (the starter model: its
corpus has too few two-part clips to learn "X, then Y"; see backend/generation/pipeline.py).
"""

from __future__ import annotations

import re

__all__ = ["split_sequence", "repeat_parts"]

# Subjects a part may start with; later parts without one get the first part's. A subject is a pronoun,
# "someone"-like word, a determiner (+ at most one adjective) + a person noun ("the guy", "a young woman"),
# or a name (one or two capitalised words followed by a verb: "Maria waves", "John Smith is jumping").
_PRONOUNS = ("he", "she", "they", "it")
_SOMEONE = ("someone", "somebody", "everyone", "everybody", "anyone", "he", "she", "they", "i", "we", "you")
_PERSON_NOUNS = ("person|man|woman|guy|girl|boy|child|kid|lady|gentleman|gal|dude|figure|human|character|people|"
                 "adult|teen|teenager|toddler|athlete|player|dancer|actor|soldier|robot|individual|subject|male|"
                 "female|mannequin|avatar|runner|fighter|boxer|zombie|men|women|kids|children")
_NOUN_SUBJECT = re.compile(rf"^(?:a|an|the|this|that|one|some)\s+(?:[a-z'-]+\s+)?(?:{_PERSON_NOUNS})(?=\s)",
                           re.IGNORECASE)
_NAME_SUBJECT = re.compile(r"^([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)\s+(is|was|keeps|does|[a-z]+s)\b")
# Capitalised first words that are not names (imperatives: "Walk forwards, then wave") and words after them
# that end in "s" without being a verb
_NOT_NAMES = frozenset("a an the this that first then walk run jog jump hop skip wave turn spin sit stand kick punch "
                       "clap squat bow dance raise lift step move go crouch crawl throw stretch shuffle".split())
_NOT_VERBS = frozenset("forwards backwards sideways towards downwards upwards afterwards its his hers this thus "
                       "across always as".split())
# ", then" / " and then" / ", after that" / ", afterwards" / ", and finally" ... between two actions
_JOINERS = re.compile(r"\s*(?:,\s*|\s+)(?:and\s+)?(?:then|after\s+that|afterwards|finally)\s*,?\s+",
                      re.IGNORECASE)
# A part that starts with one of these continues the previous action ("raises both arms, then down")
_NOT_AN_ACTION = frozenset("down up back again forward forwards backward backwards away out off over around left "
                           "right straight slowly quickly once twice more".split())
_FIRST = re.compile(r"^(?:first(?:ly)?|at\s+first)\s*,?\s+", re.IGNORECASE)
# "X and Y" is a sequence too when X starts with an action verb and Y with a whole-body action that cannot happen
# at the same time as most actions ("walk over and sit down", "stands up and walks away", "runs and jumps"). An
# arm action after "and" ("walks and waves") can be simultaneous, an "-ing" form ("walking and waving") or "at the
# same time" / "while" / "simultaneously" says so: those stay whole.
_AND = re.compile(r"\s*,?\s+and\s+", re.IGNORECASE)
_ACTION_VERBS = frozenset("walk run jog jump hop skip wave turn spin sit stand kick punch clap squat bow dance raise "
                          "lift step move go crouch crawl throw stretch shuffle get lie kneel stroll sprint leap march "
                          "pivot rotate climb come head".split())
_BODY_VERBS = frozenset("sit stand get lie kneel turn jump bow crouch squat spin fall leap hop walk run jog crawl "
                        "sprint pivot rotate".split())
_TOGETHER = re.compile(r"\b(?:at\s+the\s+same\s+time|simultaneously|while|whilst|as\s+(?:he|she|they|it)\b)",
                       re.IGNORECASE)


def _verb(word: str, verbs: frozenset) -> bool:
    """``word`` is one of ``verbs`` in its base or third-person form ("sit", "sits", "crouches"), not "-ing"."""
    return not word.lower().strip(",.!").endswith("ing") and _base(word) in verbs


def _split_and(part: str) -> list[str]:
    """``"walk over and sit down"`` -> ``["walk over", "sit down"]``; a part that is no such sequence comes
    back whole (in a list)."""
    pieces = _AND.split(part)
    if len(pieces) < 2 or not all(pieces) or not _verb(pieces[0].split()[0], _ACTION_VERBS):
        return [part]
    out = [pieces[0]]
    for piece in pieces[1:]:
        if _verb(piece.split()[0], _BODY_VERBS):
            out.append(piece)
        else:
            out[-1] = f"{out[-1]} and {piece}"
    return out


# Counts: "twice", "thrice", "3 times", "three times" (2-6), or a count before a plural noun that is the verb's
# own form ("two quick jumps", "3 squats": the plural noun and the third person are spelt alike)
_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_COUNT = re.compile(r"\b(?:(twice)|(thrice)|(\d+|two|three|four|five|six)\s+times)\b", re.IGNORECASE)
_COUNTED_NOUN = re.compile(r"^(?:(?:do|does|did|doing|perform|performs|performing|make|makes|making)\s+)?"
                           r"(\d+|two|three|four|five|six)\s+(?:([a-z]+)\s+)?([a-z]+)\b(.*)$", re.IGNORECASE)
MAX_REPEATS = 6


def _base(word: str) -> str:
    """'jumps' -> 'jump', 'squatting' -> 'squat', 'hopping' -> 'hop', 'punches' -> 'punch', 'goes' -> 'go'
    (enough for the verbs listed here; unknown words come back lower-cased)."""
    w = word.lower().strip(",.!")
    if w.endswith("ing") and len(w) > 4:
        w = w[:-3]
        return w[:-1] if len(w) > 2 and w[-1] == w[-2] else w
    if w.endswith(("ches", "shes", "sses", "xes", "oes")):
        return w[:-2]
    return w[:-1] if w.endswith("s") and not w.endswith("ss") else w


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS.get(word.lower(), 0)


def repeat_parts(part: str, verbs) -> list[str]:
    """``"a person jumps 3 times"`` -> ``["a person jumps once"] * 3`` when the part's verb (its first word
    after the subject) is one of ``verbs`` (base forms) and it asks for 2 to 6 of it: "twice", "thrice", "N
    times", or a count before the verb's plural noun, after "does" / "performs" / "makes" or none ("two quick
    jumps on the spot" -> "jumps once on the spot", the adjective dropped). Otherwise ``[part]``. For models
    that make one of an action reliably and a count of them not (``generation.json`` ``repeat_counts``)."""
    verbs = {v.lower() for v in verbs}
    if not verbs:
        return [part]
    subject = _subject_of(part)
    body = part[len(subject) + 1:] if subject else part
    m = _COUNTED_NOUN.match(body)
    if m and _base(m.group(3)) in verbs and 2 <= _count(m.group(1)) <= MAX_REPEATS:
        once = f"{m.group(3).lower()} once{m.group(4)}"
        n = _count(m.group(1))
    else:
        m = _COUNT.search(body)
        words = body.split()
        if m is None or not words or _base(words[0]) not in verbs:
            return [part]
        n = 2 if m.group(1) else 3 if m.group(2) else _count(m.group(3))
        if not 2 <= n <= MAX_REPEATS:
            return [part]
        once = " ".join(f"{body[:m.start()]}once{body[m.end():]}".split())
    return [f"{subject or 'a person'} {once}"] * n


def _subject_of(text: str) -> str | None:
    """The subject a sentence starts with (as written), or None."""
    first = text.split(" ", 1)[0]
    if first.lower() in _SOMEONE and " " in text:
        return first
    m = _NOUN_SUBJECT.match(text)
    if m:
        return m.group(0)
    m = _NAME_SUBJECT.match(text)
    if m and m.group(1).split()[0].lower() not in _NOT_NAMES and m.group(2).lower() not in _NOT_VERBS:
        return m.group(1)
    return None


def split_sequence(prompt: str, repeat=()) -> list[str]:
    """``"a person walks forward, then waves"`` -> ``["a person walks forward", "a person waves"]``.

    Splits at "then", "and then", "after that", "afterwards", "finally" (after a comma or a space), and at
    "and" between an action verb and a whole-body action ("walk over and sit down"; not in a prompt that says
    the actions happen together, nor before an arm action: "walks and waves" stays whole); drops a
    leading "first"; gives every later part the first part's subject (or "a person") in place of a missing
    subject or a pronoun. A prompt without a joiner, or one where a part would be empty or would start with
    a word that continues the previous action ("..., then down"), comes back whole. With ``repeat`` (verbs, base
    forms), a part that asks for a count of one of them becomes that many parts (``repeat_parts``)."""
    if repeat:
        return [q for p in split_sequence(prompt) for q in repeat_parts(p, repeat)]
    text = _FIRST.sub("", " ".join(str(prompt).split()).strip(" ."))
    subject = _subject_of(text)
    body = _FIRST.sub("", text[len(subject) + 1:] if subject else text)
    parts = [p.strip(" ,.") for p in _JOINERS.split(body)]
    if not _TOGETHER.search(body):
        parts = [q for p in parts for q in (_split_and(p) if p else [p])]
    if len(parts) < 2 or not all(parts) or any(p.split()[0].lower() in _NOT_AN_ACTION for p in parts[1:]):
        return [" ".join(str(prompt).split())]
    subject = subject or "a person"

    def with_subject(p):  # "Walk forward" -> "a person walk forward"
        return f"{subject} {p[0].lower()}{p[1:]}"

    out = [with_subject(parts[0])]
    for p in parts[1:]:
        words = p.split(" ", 1)
        if words[0].lower() in _PRONOUNS and len(words) == 2:
            p = words[1]
        out.append(p if _subject_of(p) else with_subject(p))
    return out
