"""Caption templates: a subject plus a family predicate whose words follow the clip's parameters.

Each family has TRAIN_TEMPLATES (the first N_TRAIN of TEMPLATES[family]) and held-out templates (the rest),
used only by the test split. A slot `{name}` is filled with one of the synonyms listed for the clip's
parameter value, so "walks forward slowly" and "strolls ahead" both come from (direction=forward,
speed=slow).
"""

from __future__ import annotations

import re

import numpy as np

from . import wording

N_TRAIN = 12  # templates 0..11 of each family are used for training, the rest are held out

SUBJECTS = ("a person", "someone", "a man", "a woman", "the person", "a figure", "the man", "the woman")
SEQ_JOINERS = ("{s} {a}, then {b}", "{s} {a} and then {b}", "{s} {a}, and afterwards {b}", "{s} first {a}, then {b}")
# "X while Y" (backend.synthetic.corpus.generate_while)
WHILE_JOINERS = ("{s} {a} while {b}", "{s} {a}, {b} at the same time", "{s} {a} and keeps {b}",
                 "{s} {a}, {b} all the while")

NUM = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
       9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}
TIMES = {1: ["once", "one time"], 2: ["twice", "two times"], 3: ["three times", "thrice"], 4: ["four times"],
         5: ["five times"], 6: ["six times"]}

# Synonyms per parameter value.
DIR = {"forward": ["forward", "ahead", "straight ahead", "forwards", "straight"],
       "backward": ["backward", "backwards", "back", "in reverse"]}
PACE_ADV = {"slow": ["slowly", "at a slow pace", "leisurely", "slow", "gently", "lazily"],
            "normal": ["at a normal pace", "at a steady pace", "at a regular pace", "normally", "casually"],
            "fast": ["quickly", "briskly", "at a fast pace", "fast", "rapidly", "in a hurry"]}
PACE_ADJ = {"slow": ["slow", "leisurely", "unhurried", "lazy", "gentle"], "normal": ["steady", "regular", "normal",
            "casual"], "fast": ["fast", "quick", "brisk", "rapid", "speedy"]}
WALK_VERB = {"slow": ["strolls", "ambles", "saunters", "wanders", "meanders"], "normal": ["walks", "paces", "steps",
             "marches"], "fast": ["hurries", "strides", "rushes", "power-walks", "speed-walks"]}
JOG_VERB = {"slow": ["jogs", "trots", "jogs gently"], "normal": ["jogs", "trots", "runs slowly"],
            "fast": ["jogs", "lopes", "runs lightly"]}
RUN_VERB = {"slow": ["runs", "runs slowly"], "normal": ["runs", "races", "dashes"],
            "fast": ["sprints", "races", "bolts", "dashes"]}
SIDE = {"left": ["left"], "right": ["right"]}
ROT = {"left": ["counterclockwise", "anticlockwise", "in a counterclockwise direction"],
       "right": ["clockwise", "in a clockwise direction", "clockwise"]}  # as many choices each: mirrored clips stay mirrored
POSS = ("the", "the", "his", "her", "their")
CURVE = {"straight": [""], "left": [" while turning left", " in a curve to the left", ", curving left", " veering left",
                                    " in a counterclockwise arc", " bearing to the left"],
         "right": [" while turning right", " in a curve to the right", ", curving right", " veering right",
                   " in a clockwise arc", " bearing to the right"]}
TURN_ANGLE = {90: ["ninety degrees", "a quarter turn", "90 degrees", "sideways"],
              180: ["around", "a half turn", "180 degrees", "all the way round", "to face the other way",
                    "to face backwards", "about"]}

TEMPLATES = {
    "walk": [
        "walks {dir} {adv}{curve}",
        "{walkverb} {dir}{curve}",
        "takes {nsteps} {adj} steps {dir}{curve}",
        "is walking {dir} {adv}{curve}",
        "moves {dir} with {adj} steps{curve}",
        "{walkverb} {dir} {adv}{curve}",
        "goes for a {adj} walk {dir}{curve}",
        "walks {dir}{curve}",
        "walks along {dir}{curve}",
        "takes a {adj} walk {dir}{curve}",
        "{walkverb} {dir} for {nsteps} steps{curve}",
        "walks {dir} {nsteps} steps{curve}",
        "is moving {dir} on foot {adv}{curve}",
        "walks {adv} {dir}{curve}",
    ],
    "jog": [
        "jogs {dir} {adv}{curve}",
        "goes for a {adj} jog {dir}{curve}",
        "is jogging {dir}{curve}",
        "trots {dir} {adv}{curve}",
        "runs lightly {dir} at a {adj} jogging pace{curve}",
        "{jogverb} {dir}{curve}",
        "jogs {adv} {dir}{curve}",
        "goes jogging {dir}{curve}",
        "{jogverb} {dir} {adv}{curve}",
        "does a {adj} jog {dir}{curve}",
        "jogs {dir} {nsteps} strides{curve}",
        "jogs along {dir}{curve}",
        "moves {dir} at a {adj} jog{curve}",
        "jogs {dir} for {nsteps} strides{curve}",
    ],
    "run": [
        "runs {dir} {adv}{curve}",
        "dashes {dir} {adv}{curve}",
        "is running {dir}{curve}",
        "breaks into a {adj} run {dir}{curve}",
        "runs {dir} for {nsteps} strides{curve}",
        "{runverb} {dir}{curve}",
        "{runverb} {dir} {adv}{curve}",
        "runs {adv} {dir}{curve}",
        "takes off running {dir}{curve}",
        "goes for a {adj} run {dir}{curve}",
        "runs {dir} {nsteps} strides{curve}",
        "runs off {dir}{curve}",
        "moves {dir} at a {adj} run{curve}",
        "is running {dir} {adv}{curve}",
    ],
    "jump_in_place": [
        "jumps {height} in place {times}",
        "hops up and down on both feet {times}",
        "jumps straight up {times}",
        "does {nwords} {heightadj} jump{s} on the spot",
        "leaps {height} into the air {times} without moving",
        "jumps {times}",
        "jumps up {times}",
        "bounces up and down {times}",
        "does {nwords} vertical jump{s}",
        "springs up {times} in place",
        "jumps {height} {times}",
        "hops {times} with both feet in place",
        "performs {nwords} {heightadj} jump{s} in place",
        "jumps up and down {times} on the spot",
    ],
    "jump_forward": [
        "jumps {far} forward {times}",
        "leaps forward {times}",
        "does {nwords} {faradj} forward jump{s}",
        "jumps ahead with both feet {times}",
        "makes a {faradj} leap forward{more}",
        "jumps forward",
        "leaps ahead {times}",
        "does a {faradj} jump forward{more}",
        "jumps forward {times} with both feet",
        "springs forward {times}",
        "does a broad jump{more}",
        "jumps {far} ahead{more}",
        "leaps {far} ahead {times}",
        "does {nwords} {faradj} jump{s} ahead",
    ],
    "hop": [
        "hops on the {leg} leg {times}",
        "hops {hopdir} on the {leg} foot {times}",
        "balances on the {leg} leg and hops {times}",
        "lifts the {other} foot and hops {hopdir} {times}",
        "does {nwords} one-legged hop{s} on the {leg} leg",
        "hops on one foot {times}",
        "hops on one leg, the {leg}, {times}",
        "hops {times} on the {leg} foot",
        "hops {hopdir} on one leg {times}",
        "bounces on the {leg} foot {times}",
        "stands on the {leg} leg and hops",
        "does {nwords} hop{s} on the {leg} foot",
        "jumps on one leg, the {leg} one, {times}",
        "hops {times} {hopdir} using the {leg} foot",
    ],
    "wave": [
        "waves with the {hand} hand",
        "raises the {hand} hand and waves {times}",
        "waves hello with the {hand} arm",
        "lifts the {hand} arm above the head and waves",
        "greets someone by waving the {hand} hand",
        "waves the {hand} hand {times}",
        "waves hi with the {hand} hand",
        "waves goodbye with the {hand} hand",
        "says hello, waving the {hand} hand",
        "gives a wave with {poss} {hand} hand",
        "waves {poss} {hand} arm {times}",
        "waves bye with the {hand} hand",
        "waves {times} with the {hand} hand",
        "lifts the {hand} hand and waves hello",
    ],
    "clap": [
        "claps {nwords} times",
        "claps the hands {times}",
        "applauds, clapping {nwords} times",
        "brings the hands together {times}",
        "gives {nwords} clap{s} in front of the chest",
        "claps {times}",
        "claps",
        "applauds {times}",
        "claps the hands together {times}",
        "gives a round of applause",
        "claps {nwords} times in front of the chest",
        "puts the hands together {times}",
        "is clapping the hands {times}",
        "claps hands together {nwords} times",
    ],
    "raise_arms": [
        "raises both arms {style}",
        "lifts both arms {style}{repeat}",
        "puts both arms up {style} and lowers them{repeat}",
        "holds both arms {style} for a moment",
        "stretches both arms {style}{repeat}",
        "raises both hands {style}",
        "puts the hands up {style}{repeat}",
        "lifts both hands {style}{repeat}",
        "throws both arms up {style}",
        "raises {poss} arms {style}{repeat}",
        "reaches {style} with both arms",
        "holds both hands {style}",
        "brings both arms up {style}, then down",
        "lifts the arms {style} and brings them back down",
    ],
    "punch": [
        "punches {times} with {handp}",
        "throws {nwords} punch{es} with {handp}",
        "boxes, punching with {handp} {times}",
        "jabs forward {times} using {handp}",
        "strikes forward with {handp} {times}",
        "punches {times}",
        "throws a punch with {handp}{more}",
        "hits forward with {handp} {times}",
        "punches the air {times} with {handp}",
        "boxes with {handp}",
        "throws {nwords} straight punch{es}",
        "performs {nwords} punch{es} with {handp}",
        "punches forward {times} using {handp}",
        "does {nwords} punch{es} straight ahead with {handp}",
    ],
    "bow": [
        "bows {bowadv}",
        "takes a {bowadj} bow",
        "bends forward at the waist {bowadv}",
        "makes a {bowadj} bow and straightens up",
        "leans the upper body forward in a {bowadj} bow",
        "bows",
        "takes a bow",
        "bows down {bowadv}",
        "does a {bowadj} bow",
        "bows to the audience {bowadv}",
        "bends over in a {bowadj} bow",
        "gives a polite {bowadj} bow",
        "bows {bowadv} and stands back up",
        "gives a {bowadj} bow",
    ],
    "squat": [
        "squats {sqadv} {times}",
        "does {nwords} {sqadj} squat{s}",
        "bends the knees and squats down {times}",
        "performs {nwords} {sqadj} squat{s}",
        "crouches {sqadv} and stands back up {times}",
        "squats {times}",
        "does squats",
        "crouches down {times}",
        "drops into a {sqadj} squat {times}",
        "bends the knees {sqadv} {times}",
        "does {nwords} squat{s}",
        "squats down {sqadv} and gets back up",
        "lowers into a {sqadj} squat {times}",
        "does {sqadj} knee bends {times}",
    ],
    "kick": [
        "kicks {kickh} with the {leg} leg{times2}",
        "does a {kickadj} kick with the {leg} foot{times2}",
        "kicks forward with the {leg} leg{times2}",
        "throws a {kickadj} {leg} kick{times2}",
        "lifts the {leg} leg and kicks {kickh}{times2}",
        "kicks with the {leg} leg{times2}",
        "does a front kick with the {leg} leg{times2}",
        "kicks {kickh}{times2}",
        "kicks out with the {leg} foot{times2}",
        "kicks the air with the {leg} leg{times2}",
        "swings the {leg} leg up in a {kickadj} kick{times2}",
        "does a {kickadj} {leg} front kick{times2}",
        "kicks {kickh} using the {leg} foot{times2}",
        "performs a {kickadj} front kick with the {leg} leg{times2}",
    ],
    "side_step": [
        "side steps to the {dir} {times}",
        "steps sideways to the {dir} {times}",
        "shuffles to the {dir}",
        "moves to the {dir} with {nwords} side step{s}",
        "takes {nwords} step{s} to the {dir} without turning",
        "sidesteps to the {dir} {times}",
        "shuffles sideways to the {dir}",
        "steps to the side, to the {dir}",
        "slides to the {dir} with side steps",
        "moves sideways to the {dir} {times}",
        "takes {nwords} side step{s} to the {dir}",
        "strafes to the {dir}",
        "steps to the {dir} side {times}",
        "moves sideways to the {dir} with side steps",
    ],
    "turn": [
        "turns {angle} to the {dir}",
        "turns to the {dir}",
        "turns {dir} in place",
        "rotates {angle} to the {dir}",
        "steps around in place, turning {dir} {angle}",
        "turns {angle}",
        "turns {rot}",
        "pivots {angle} to the {dir}",
        "turns {angle} {rot}",
        "pivots to the {dir}",
        "turns to {poss} {dir}",
        "rotates {rot} in place",
        "rotates in place, turning {angle} to the {dir}",
        "makes a {dir} turn in place",
    ],
    "spin": [
        "spins around to the {dir}",
        "spins a full circle to the {dir}",
        "turns all the way around to the {dir}",
        "does a full turn to the {dir}",
        "makes a complete 360 degree turn to the {dir}",
        "spins around {rot}",
        "twirls around to the {dir}",
        "spins in a full circle {rot}",
        "does a 360 to the {dir}",
        "turns a full circle {rot}",
        "pirouettes to the {dir}",
        "spins 360 degrees to the {dir}",
        "spins all the way around to the {dir}",
        "rotates a full circle to the {dir}",
    ],
    "sit_down": [
        "sits down",
        "sits down on a chair",
        "lowers into a seat",
        "takes a seat",
        "sits down slowly",
        "sits",
        "plops down on a chair",
        "sits down on a seat",
        "has a seat",
        "settles into a chair",
        "drops into a chair",
        "sits down on the chair behind",
        "bends down and sits on a chair",
        "lowers the body and sits down",
    ],
    "stand_up": [
        "stands up",
        "stands up from a chair",
        "gets up from the seat",
        "rises from sitting",
        "gets to the feet",
        "gets up",
        "stands up from sitting",
        "rises to the feet",
        "gets up out of the chair",
        "stands up slowly",
        "rises from the seat",
        "gets back up on the feet",
        "rises from a chair and stands up",
        "gets up from sitting on a chair",
    ],
}


def _slots(family: str, p: dict, rng: np.random.Generator) -> dict:
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    n = int(p.get("count", 1))
    s = {"times": pick(TIMES.get(n, [f"{NUM.get(n, n)} times"])), "nwords": NUM.get(n, str(n)),
         "s": "" if n == 1 else "s", "es": "" if n == 1 else "es", "poss": pick(POSS),
         "more": "" if n == 1 else f" {pick(TIMES.get(n, [f'{NUM.get(n, n)} times']))}"}
    if family in ("walk", "jog", "run"):
        s.update(dir=pick(DIR[p["direction"]]), adv=pick(PACE_ADV[p["speed"]]), adj=pick(PACE_ADJ[p["speed"]]),
                 walkverb=pick(WALK_VERB[p["speed"]]), jogverb=pick(JOG_VERB[p["speed"]]),
                 runverb=pick(RUN_VERB[p["speed"]]), nsteps=NUM.get(p["steps"], str(p["steps"])),
                 curve=pick(CURVE[p.get("curve", "straight")]))
    elif family == "jump_in_place":
        s.update(height={"low": pick(["a little", "slightly"]), "high": pick(["high", "very high"])}[p["height"]],
                 heightadj={"low": pick(["small", "low"]), "high": pick(["high", "big"])}[p["height"]])
    elif family == "jump_forward":
        s.update(far={"short": pick(["a short way", "a little"]), "far": pick(["far", "a long way"])}[p["distance"]],
                 faradj={"short": pick(["short", "small"]), "far": pick(["long", "big"])}[p["distance"]],
                 more="" if n == 1 else f" {pick(TIMES[n])}")
    elif family == "hop":
        s.update(leg=p["leg"], other="right" if p["leg"] == "left" else "left",
                 hopdir={"in_place": pick(["in place", "on the spot"]), "forward": pick(["forward", "ahead"])}[p["direction"]])
    elif family == "wave":
        s.update(hand=p["hand"])
    elif family == "raise_arms":
        s.update(style={"overhead": pick(["over the head", "above the head", "up high"]),
                        "sideways": pick(["out to the sides", "sideways"]),
                        "forward": pick(["forward", "straight out in front"])}[p["style"]],
                 repeat="" if n == 1 else f" {pick(TIMES[n])}")
    elif family == "punch":
        s.update(handp={"left": "the left hand", "right": "the right hand",
                        "both": pick(["both hands", "alternating hands", "the left and right hands"])}[p["hand"]])
    elif family == "bow":
        s.update(bowadv={"slight": pick(["slightly", "a little", "briefly"]),
                         "deep": pick(["deeply", "low", "very deeply"])}[p["depth"]],
                 bowadj={"slight": pick(["slight", "small", "short"]), "deep": pick(["deep", "low", "full"])}[p["depth"]])
    elif family == "squat":
        s.update(sqadv={"shallow": pick(["a little", "partway"]), "deep": pick(["deeply", "all the way down", "low"])}[p["depth"]],
                 sqadj={"shallow": pick(["shallow", "half"]), "deep": pick(["deep", "full", "low"])}[p["depth"]])
    elif family == "kick":
        s.update(leg=p["leg"], kickh={"low": pick(["low", "at knee height"]), "high": pick(["high", "up high"])}[p["height"]],
                 kickadj={"low": pick(["low", "small"]), "high": pick(["high", "big"])}[p["height"]],
                 times2="" if n == 1 else f" {pick(TIMES[n])}")
    elif family == "side_step":
        s.update(dir=p["direction"])
    elif family in ("turn", "spin"):
        s.update(dir=p["direction"], angle=pick(TURN_ANGLE.get(p["angle"], ["all the way around"])),
                 rot=pick(ROT[p["direction"]]))
    return s


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace(" ,", ",")


def predicate(family: str, params: dict, rng: np.random.Generator, split: str = "all") -> tuple[str, int]:
    """(predicate text, template index) for a clip; split 'train' uses templates < N_TRAIN,
    'test' the held-out ones, 'all' any."""
    if family not in TEMPLATES:
        raise ValueError(f"unknown family {family!r}")
    n = len(TEMPLATES[family])
    choices = {"train": range(0, N_TRAIN), "test": range(N_TRAIN, n), "all": range(0, n)}.get(split)
    if choices is None:
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    idx = int(choices[int(rng.integers(len(choices)))])
    return _clean(TEMPLATES[family][idx].format(**_slots(family, params, rng))), idx


def sentence(subject: str, preds: list[str], rng: np.random.Generator, joiner: str | None = None,
             keep_second: bool = False) -> str:
    """The caption: subject + predicate(s), in the everyday forms of ``wording.everyday`` (imperative, gerund,
    digits, short forms, a typo now and then). A two-part caption uses ``joiner`` or a random SEQ_JOINER."""
    if len(preds) == 1:
        joiner = "{s} {a}"
    elif joiner is None:
        joiner = SEQ_JOINERS[int(rng.integers(len(SEQ_JOINERS)))]
    return _clean(wording.everyday(subject, preds, joiner, rng, keep_second=keep_second))


def vocabulary() -> set[str]:
    """Every word a caption of this corpus can contain: the templates, subjects, joiners, the slot tables and
    the slot words written inside ``_slots``. A model trained on the corpus has seen no other word (its text
    tower has no trained embedding for one), so a prompt word outside this set is worth a warning."""
    import ast
    import inspect

    texts: list[str] = [t for ts in TEMPLATES.values() for t in ts] + list(SUBJECTS) + list(SEQ_JOINERS)
    texts += list(WHILE_JOINERS)
    texts += list(NUM.values()) + [w for ws in TIMES.values() for w in ws]
    texts += list(POSS)
    for table in (DIR, PACE_ADV, PACE_ADJ, WALK_VERB, JOG_VERB, RUN_VERB, SIDE, ROT, CURVE, TURN_ANGLE):
        texts += [w for ws in table.values() for w in ws]
    tree = ast.parse(inspect.getsource(_slots))
    keys = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}  # p["height"]: a parameter name
    keys |= {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "get"
             for a in n.args}
    keys |= {id(k) for n in ast.walk(tree) if isinstance(n, ast.Dict) for k in n.keys if k is not None}
    texts += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
              and id(n) not in keys]
    words = set()
    for t in texts:
        words.update(re.findall(r"[a-z]+", re.sub(r"\{[^}]*\}", " ", t.lower())))
    return wording.forms_vocabulary(words, predicate_verbs())


def predicate_verbs() -> set[str]:
    """The first word of every predicate a caption can hold (the templates', or a walk/jog/run verb slot's):
    the words ``wording.everyday`` turns into imperatives and gerunds."""
    slots = {"{walkverb}": WALK_VERB, "{jogverb}": JOG_VERB, "{runverb}": RUN_VERB}
    out = set()
    for t in (t for ts in TEMPLATES.values() for t in ts):
        first = t.split(" ")[0]
        if first in slots:
            out.update(v.split(" ")[0] for vs in slots[first].values() for v in vs)
        elif not first.startswith("{"):
            out.add(first.strip(",.;:").lower())
    return out
