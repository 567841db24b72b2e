"""Everyday wording of a caption: the forms animators type besides "a person walks forward".

A predicate is written in the third person after a subject ("walks forward quickly"). ``phrase_forms`` gives
the same predicate as an imperative ("walk forward quickly"), a gerund ("walking forward quickly", "a man
walking forward quickly"), with digits for counts ("jumps 3 times", "jumps 3x"), short forms ("walk fwd") and (training only, ``typo_variant``) one typo. Training captions are drawn through ``everyday`` so the text tower meets these forms;
the held-out suites (``backend/train/heldout.py``) are written separately and never produced here verbatim.
"""

from __future__ import annotations

import re

import numpy as np

IRREGULAR_BASE = {"does": "do", "goes": "go", "has": "have", "is": "be"}
# one-syllable verbs ending consonant-vowel-consonant that double the last letter before -ing
DOUBLE = {"run", "jog", "sit", "hop", "clap", "step", "spin", "trot", "nod", "jab", "drop", "skip", "stop",
          "swim", "strut", "bob", "grab", "slip", "plop", "tap", "pat", "get", "set", "shrug", "hug", "put", "dig"}
NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                "eight": "8", "nine": "9", "ten": "10"}
SHORT_FORMS = {"forward": ["fwd"], "backward": ["bwd", "back"], "backwards": ["back"], "degrees": ["deg"],
               "ninety": ["90"], "and": ["&"], "with": ["w/"], "the": [""]}


def base_form(verb: str) -> str:
    """Third-person singular -> base form: walks -> walk, punches -> punch, hurries -> hurry, does -> do."""
    v = verb.lower()
    if v in IRREGULAR_BASE:
        return IRREGULAR_BASE[v]
    if v.endswith("ies") and len(v) > 4:
        return v[:-3] + "y"
    if re.search(r"(ss|sh|ch|x|z)es$", v):
        return v[:-2]
    if v.endswith("s") and not v.endswith("ss"):
        return v[:-1]
    return v


def gerund(base: str) -> str:
    """Base form -> -ing form: run -> running, take -> taking, lie -> lying, walk -> walking."""
    if base == "be":
        return "being"
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base in DOUBLE:
        return base + base[-1] + "ing"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")) and len(base) > 2:
        return base[:-1] + "ing"
    return base + "ing"


def _split_verb(pred: str) -> tuple[str, str, str]:
    """(first word without trailing punctuation, the rest, the punctuation)."""
    first, _, rest = pred.partition(" ")
    m = re.match(r"^(.*?)([,.;:]*)$", first)
    return m.group(1), rest, m.group(2)


def imperative(pred: str) -> str | None:
    """'walks forward' -> 'walk forward'; None for 'is walking ...' (no imperative from a progressive)."""
    first, rest, tail = _split_verb(pred)
    if first == "is":
        return None
    return f"{base_form(first)}{tail} {rest}".strip()


def progressive(pred: str) -> str:
    """'walks forward' -> 'walking forward'; 'is walking forward' -> 'walking forward'."""
    first, rest, tail = _split_verb(pred)
    if first == "is":
        return rest
    return f"{gerund(base_form(first))}{tail} {rest}".strip()


def typo(text: str, rng: np.random.Generator) -> str:
    """One keyboard slip in one word of five or more letters: a swapped, dropped or doubled letter."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not idx:
        return text
    i = idx[int(rng.integers(len(idx)))]
    w = words[i]
    k = int(rng.integers(1, len(w) - 1))
    kind = int(rng.integers(3))
    if kind == 0:
        w = w[:k] + w[k + 1] + w[k] + w[k + 2:]
    elif kind == 1:
        w = w[:k] + w[k + 1:]
    else:
        w = w[:k] + w[k] + w[k:]
    words[i] = w
    return " ".join(words)


def shorten(text: str, rng: np.random.Generator) -> str:
    """Digits for number words ('3 times', '3x') and short forms ('fwd', 'w/'), each word with probability 1/2."""
    text = re.sub(r"\b(one|two|three|four|five|six|seven|eight|nine|ten) times\b",
                  lambda m: f"{NUMBER_WORDS[m.group(1)]}{' times' if rng.random() < 0.5 else 'x'}", text)
    out = []
    for w in text.split(" "):
        if w in NUMBER_WORDS and rng.random() < 0.5:
            w = NUMBER_WORDS[w]
        elif w in SHORT_FORMS and w != "the" and rng.random() < 0.5:
            opts = SHORT_FORMS[w]
            w = opts[int(rng.integers(len(opts)))]
        elif w == "the" and rng.random() < 0.3:
            w = ""
        out.append(w)
    return re.sub(r"\s+", " ", " ".join(out)).strip()


def everyday(subject: str, preds: list[str], joiner: str, rng: np.random.Generator, p_plain: float = 0.6,
             keep_second: bool = False) -> str:
    """A caption from third-person predicates and a joiner ("{s} {a}, then {b}"; "{s} {a}" for one part):
    with probability p_plain the plain sentence, otherwise every predicate as an imperative ("walk forward,
    then wave") or a gerund, with or without the subject ("a man walking forward"), or the plain sentence with
    digits and short forms (typos: ``typo_variant``). keep_second: the second predicate is already
    in its final form (the "-ing" part of "walks while waving")."""
    r = rng.random()
    a, b = preds[0], (preds[1] if len(preds) > 1 else "")
    subj = subject
    if r >= p_plain:
        form = int(rng.integers(4))
        imps = [imperative(x) for x in preds]
        if form == 0 and all(imps):
            a, b = imps[0], (b if keep_second or len(preds) < 2 else imps[1])
            subj = ""
        elif form in (1, 2):
            a, b = progressive(a), (b if keep_second or len(preds) < 2 else progressive(b))
            subj = "" if form == 1 else subject
    text = joiner.format(s=subj, a=a, b=b)
    if r >= p_plain and rng.random() < 0.5:
        text = shorten(text, rng)
    return re.sub(r"\s+", " ", text).strip().replace(" ,", ",")


def typo_variant(captions: list[str], rng: np.random.Generator, p: float = 0.5) -> list[str]:
    """Training phrasings plus, with probability p, one copy of one of them with a keyboard slip, so the text
    tower meets misspelt words without the clean captions (the database, the tests) carrying any."""
    if captions and rng.random() < p:
        t = typo(captions[int(rng.integers(len(captions)))], rng)
        if t not in captions:
            return list(captions) + [t]
    return list(captions)


def forms_vocabulary(words: set[str], verbs) -> set[str]:
    """The words ``everyday`` can add to a caption vocabulary ``words``, for the coverage check's vocabulary:
    the base form and the gerund of each predicate's first word (``verbs``: "walks" -> "walk", "walking"; the
    only word ``imperative`` and ``progressive`` change), digits and short forms. Forms of other words
    ("her" -> "hering") are never in a caption: listing them would let the spelling check read a real word as
    one of them."""
    out = set(words)
    for v in verbs:
        b = base_form(v.split("-")[-1])  # "power-walks" -> "power-walking": the words "power", "walking"
        if len(b) > 1 and v != "is":
            out.update({b, gerund(b)})
    out.update(NUMBER_WORDS.values())
    out.update(w for xs in SHORT_FORMS.values() for x in xs for w in re.findall(r"[a-z0-9]+", x))  # "w/" -> "w"
    out.add("x")  # "3x"
    out.discard("")
    return out


# Verbs that only carry the action named by their object ("does push-ups", "performs a kata"): dropping them
# leaves the noun phrase animators type on its own ("push-ups", "a karate kata", "two vertical jumps").
LIGHT_VERBS = {"does", "performs", "practices", "do", "perform", "practice", "doing", "performing", "practicing"}
_NOT_A_NOUN_PHRASE = re.compile(r"\b(then|while|and then|afterwards|before|after)\b|,|&")


def without_subject(text: str, subjects) -> str:
    """``text`` without the longest of ``subjects`` it starts with (followed by a space)."""
    for s in sorted(subjects, key=len, reverse=True):
        if text.startswith(s + " "):
            return text[len(s) + 1:]
    return text


def noun_phrase(caption: str, subjects=()) -> str | None:
    """The object of a one-action caption whose verb is a light verb, on its own: 'a person does push-ups' ->
    'push-ups', 'doing two vertical jumps' -> 'two vertical jumps', 'performs a karate kata' -> 'a karate kata';
    None for any other caption (another verb, two actions, nothing left)."""
    verb, _, rest = without_subject(caption.strip(), subjects).partition(" ")
    if verb not in LIGHT_VERBS or not rest or _NOT_A_NOUN_PHRASE.search(rest):
        return None
    if rest.split(" ")[0] in ("some", "it", "this", "that", "so"):
        rest = rest.split(" ", 1)[1] if " " in rest else ""
    return rest or None


def noun_phrases(texts, subjects=(), skip=lambda n: False) -> list[str]:
    """The distinct noun phrases of ``texts`` (``noun_phrase``), in order, leaving out those ``skip`` refuses."""
    found = (noun_phrase(t, subjects) for t in texts)
    return [n for n in dict.fromkeys(found) if n and not skip(n)]
