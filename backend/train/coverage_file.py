"""A model folder's ``coverage.json`` (read by ``backend.generation.coverage``): the words its training captions
used, the similarity threshold of its config, and the families it was trained on with example prompts.

    write_coverage(out_dir, config)          # what training writes first; re-run on a trained folder:
    python -m backend.train coverage --out DIR [--config starter] [--mocap DIR]

Families: every procedural family of ``backend.synthetic`` (all are in every corpus), the real-motion families
whose files are in the config's mocap folder (``corpus.mocap.dir``; none without one), and two compound
entries, "X, then Y" and "X while Y" (the corpus's sequence and while clips). A family both procedural and
captured (``bow``) is one entry with source ``procedural+captured``.

Example prompts are training phrasings, never new wording: a subject from the corpus's SUBJECTS plus the
family's first training template (``captions.predicate`` with the first synonym of every slot, filled from
fixed parameters) or its first real-motion phrase (``backend.mocap.labels.PHRASES``), so every word of every
example is in ``words``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = {
    # procedural (backend.synthetic.families)
    "walk": "Walk", "jog": "Jog", "run": "Run", "jump_in_place": "Jump in place", "jump_forward": "Jump forward",
    "hop": "Hop on one leg", "wave": "Wave", "clap": "Clap", "raise_arms": "Raise the arms", "punch": "Punch",
    "bow": "Bow", "squat": "Squat", "kick": "Kick", "side_step": "Side step", "turn": "Turn in place",
    "spin": "Spin around", "sit_down": "Sit down", "stand_up": "Stand up",
    "walk+wave": "Two actions in a row (X, then Y)", "walk&wave": "Two actions at once (X while Y)",
    # captured (backend.mocap.labels)
    "dance_salsa": "Salsa dance", "dance_indian": "Indian dance", "martial_arts": "Karate / martial arts",
    "dance_body_roll": "Body roll dance", "dance_charleston": "Charleston dance", "dance_generic": "Dance",
    "angry": "Angry", "backflip": "Backflip", "confused": "Confused", "crawl": "Crawl", "defend": "Defend",
    "dizzy": "Dizzy", "fighting_stance": "Fighting stance", "jab": "Jab", "head_nod": "Nod", "idle": "Stand idle",
    "jumping_jacks": "Jumping jacks", "meditate": "Meditate", "push_ups": "Push-ups", "reject": "Refuse",
    "run_stylised": "Stylised run", "shiver": "Shiver", "sleep": "Sleep", "throw": "Throw",
    "tired": "Tired", "kneel_tired": "Kneel, tired", "celebrate": "Celebrate",
}

# Two parameter sets per procedural family: the first example ("a person ..."), the second ("someone ...").
EXAMPLE_PARAMS = {
    "walk": [{"direction": "forward", "speed": "slow", "curve": "straight"},
             {"direction": "forward", "speed": "fast", "curve": "left"}],
    "jog": [{"direction": "forward", "speed": "normal", "curve": "straight"},
            {"direction": "forward", "speed": "slow", "curve": "right"}],
    "run": [{"direction": "forward", "speed": "fast", "curve": "straight"},
            {"direction": "forward", "speed": "slow", "curve": "straight"}],
    "jump_in_place": [{"count": 2, "height": "high"}, {"count": 3, "height": "low"}],
    "jump_forward": [{"count": 2, "distance": "far"}, {"count": 2, "distance": "short"}],
    "hop": [{"leg": "left", "count": 3, "direction": "in_place"}, {"leg": "right", "count": 2, "direction": "forward"}],
    "wave": [{"hand": "right", "count": 2}, {"hand": "left", "count": 3}],
    "clap": [{"count": 3}, {"count": 5}],
    "raise_arms": [{"style": "overhead", "count": 1}, {"style": "sideways", "count": 1}],
    "punch": [{"hand": "right", "count": 2}, {"hand": "both", "count": 4}],
    "bow": [{"depth": "deep"}, {"depth": "slight"}],
    "squat": [{"depth": "deep", "count": 2}, {"depth": "shallow", "count": 3}],
    "kick": [{"leg": "right", "height": "high", "count": 1}, {"leg": "left", "height": "low", "count": 2}],
    "side_step": [{"direction": "left", "count": 3}, {"direction": "right", "count": 2}],
    "turn": [{"direction": "left", "angle": 90}, {"direction": "right", "angle": 180}],
    "spin": [{"direction": "right"}, {"direction": "left"}],
    "sit_down": [{}],
    "stand_up": [{}],
}
SUBJECTS = ("a person", "someone")  # both in backend.synthetic.captions.SUBJECTS


class _First:
    """A stand-in random generator that always picks the first choice: ``captions.predicate`` then fills the
    family's first training template with the first synonym of every slot."""

    def integers(self, *args, **kwargs):
        return 0

    def random(self, *args, **kwargs):
        return 0.0


def label_of(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def procedural_predicates(family: str) -> list[str]:
    """The family's example predicates ("walks forward slowly"): its first training template, filled."""
    from backend.synthetic.captions import predicate
    from backend.synthetic.families import sample_params

    out = []
    for i, given in enumerate(EXAMPLE_PARAMS.get(family, [{}])):
        params = sample_params(family, np.random.default_rng(i), dict(given))
        text = predicate(family, params, _First(), split="train")[0]
        if text not in out:
            out.append(text)
    return out


def captured_predicates(family: str) -> list[str]:
    """The real-motion family's first phrase and its first phrase no other family uses ("dances" is shared)."""
    from backend.mocap.labels import PHRASES

    others = {p for f, ps in PHRASES.items() if f != family for p in ps}
    phrases = [p.format(side="right") for p in PHRASES[family]]
    own = [p for p in phrases[1:] if p not in others and p != phrases[0]]
    return phrases[:1] + own[:1]


def mocap_families(mocap_dir) -> list[str]:
    """The real-motion families whose files are under ``mocap_dir`` (names only; no file is read)."""
    from backend.mocap.clips import _sources
    from backend.mocap.labels import PHRASES, family_for

    found = []
    for _path, dataset, key, _fps in _sources(Path(mocap_dir)):
        label = family_for(dataset, key)
        if label is not None and label[0] not in found:
            found.append(label[0])
    order = list(PHRASES)
    return sorted(found, key=lambda f: order.index(f) if f in order else len(order))


def _sentences(preds: list[str]) -> list[str]:
    return [f"{SUBJECTS[i % len(SUBJECTS)]} {p}" for i, p in enumerate(preds)]


def families(config: dict) -> list[dict]:
    """[{"name", "label", "source", "examples"}] for what a model trained with ``config`` knows."""
    from backend.synthetic import wording
    from backend.synthetic.families import FAMILIES

    mocap = (config.get("corpus") or {}).get("mocap")
    captured = mocap_families(mocap["dir"]) if mocap else []
    out, preds = [], {}
    for fam in FAMILIES:
        preds[fam] = procedural_predicates(fam)
        src = "procedural+captured" if fam in captured else "procedural"
        ex = _sentences(preds[fam]) + (_sentences(captured_predicates(fam))[:1] if fam in captured else [])
        out.append({"name": fam, "label": label_of(fam), "source": src, "examples": list(dict.fromkeys(ex))})
    if "walk" in preds and "wave" in preds:
        walk, wave = preds["walk"][0], preds["wave"][0]
        out.append({"name": "walk+wave", "label": label_of("walk+wave"), "source": "procedural",
                    "examples": [f"{SUBJECTS[0]} {walk}, then {wave}"]})
        out.append({"name": "walk&wave", "label": label_of("walk&wave"), "source": "procedural",
                    "examples": [f"{SUBJECTS[0]} {walk} while {wording.progressive(wave)}"]})
    for fam in captured:
        if fam not in preds:
            out.append({"name": fam, "label": label_of(fam), "source": "captured",
                        "examples": _sentences(captured_predicates(fam))})
    return out


def vocabulary(config: dict) -> set[str]:
    """Every word the training captions of ``config`` can hold (procedural, plus real motion with a mocap dir)."""
    from backend.synthetic.captions import vocabulary as synthetic_vocabulary

    words = set(synthetic_vocabulary())
    if (config.get("corpus") or {}).get("mocap"):
        from backend.mocap.labels import vocabulary as mocap_vocabulary

        words |= mocap_vocabulary()
    return words


def write_coverage(out_dir, config: dict) -> Path:
    """Write ``coverage.json`` into ``out_dir`` (atomically); keys of an existing file that this does not write
    (a hand-written "note") are kept. Returns the file's path."""
    from backend.generation.coverage import COVERAGE_FILE, Coverage
    from backend.train.common import atomic_write_json

    path = Path(out_dir) / COVERAGE_FILE
    old = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
    cov = Coverage(frozenset(vocabulary(config)), config.get("coverage_min_similarity"))
    data = {**(old if isinstance(old, dict) else {}), **cov.to_json(), "families": families(config)}
    atomic_write_json(path, data)
    return path


def config_of_folder(out_dir, name: str | None = None, mocap: str | None = None) -> dict:
    """The config a folder was trained with: its PROVENANCE.json's (unless ``name`` is given), else ``name``
    (default starter); ``mocap`` replaces its real-motion folder. ValueError with a message for people."""
    from backend.train.configs import get_config

    prov = Path(out_dir) / "PROVENANCE.json"
    cfg = None
    if name is None and prov.is_file():
        try:
            cfg = json.loads(prov.read_text()).get("config")
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {prov}: {e}") from None
    if not isinstance(cfg, dict) or "corpus" not in cfg:
        cfg = get_config(name or "starter")
    if mocap:
        if not Path(mocap).expanduser().is_dir():
            raise ValueError(f"--mocap: no such folder: {mocap}")
        cfg["corpus"]["mocap"] = {"dir": str(Path(mocap).expanduser().resolve())}
    m = cfg["corpus"].get("mocap")
    if m and not Path(m.get("dir", "")).is_dir():
        raise ValueError(f"the model was trained with the real motion in {m.get('dir')}, which is not there; "
                         f"name its folder with --mocap DIR")
    return cfg
