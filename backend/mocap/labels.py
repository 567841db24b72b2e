"""What each real-motion clip is: its family and the words for it.

The two sets (``../shared/data/mocap``, see its README) are labelled by folder (CMU: salsa, indian, martial) or by
file name (Mesh2Motion). ``CLIP_FAMILIES`` says which family each clip belongs to; clips that are not human
motion (flying, levitating, power-ups, energy blasts) are left out. ``PHRASES`` holds the training phrasings of
each family ("{side}" is a side word where the clip has one); ``HELDOUT_PHRASES`` (``heldout.py``) is written
separately and never used in training.
"""

from __future__ import annotations

# CMU folders -> family
CMU_FAMILIES = {"salsa": "dance_salsa", "indian": "dance_indian", "martial": "martial_arts"}

# Mesh2Motion file stem (after "animation-human-") -> (family, side or None)
M2M_FAMILIES = {
    "angry": ("angry", None),
    "backflip": ("backflip", None),
    "bow": ("bow", None),
    "confused": ("confused", None),
    "crawl": ("crawl", None),
    "crawl-RM": ("crawl", None),
    "dance-body-roll": ("dance_body_roll", None),
    "dance-charleston": ("dance_charleston", None),
    "dance-reach-hip": ("dance_generic", None),
    "defend": ("defend", None),
    "dizzy": ("dizzy", None),
    "fighting-idle": ("fighting_stance", None),
    "fighting-left-jab": ("jab", "left"),
    "fighting-right-jab": ("jab", "right"),
    "head-nod": ("head_nod", None),
    "idle-listening": ("idle", None),
    "jumping-jacks": ("jumping_jacks", None),
    "meditate": ("meditate", None),
    "pushup": ("push_ups", None),
    "reject": ("reject", None),
    "run-anime": ("run_stylised", None),
    "shiver": ("shiver", None),
    "sleeping": ("sleep", None),
    "throw-ball": ("throw", None),
    "tired-hunched": ("tired", None),
    "tired-kneeling": ("kneel_tired", None),
    "victory": ("celebrate", None),
}
# not human motion, or not a motion a person does: left out of the corpus
M2M_EXCLUDED = ("flying-forward", "flying-forward-super", "levitate-entrance", "levitate-idle", "power-up",
                "consume-powerup", "two-hand-blast")

# Training phrasings per family: verb phrases after a subject ("a person ..."). {side} = "left"/"right".
PHRASES = {
    "dance_salsa": ["dances salsa", "dances the salsa", "does salsa steps", "is salsa dancing",
                    "dances salsa as if with a partner", "dances", "dances salsa with a partner", "does a salsa routine", "salsa dances", "shows off some salsa moves"],
    "dance_indian": ["performs an indian dance", "does a classical indian dance", "dances in an indian style",
                     "dances with graceful arm movements", "dances", "does an indian dance", "dances a traditional indian dance", "performs a classical dance from india"],
    "martial_arts": ["practices karate", "does martial arts moves", "performs a karate kata",
                     "does a sequence of karate strikes", "practices kung fu style moves", "fights with karate moves", "does karate", "practices martial arts", "trains karate", "does a karate routine", "does karate punches and kicks"],
    "dance_body_roll": ["does a body roll", "dances with a body roll", "rolls the body in a wave while dancing",
                        "dances", "rolls the body", "does a body wave", "dances, rolling the hips and chest"],
    "dance_charleston": ["dances the charleston", "does the charleston", "does charleston dance steps", "dances", "does the charleston dance", "dances a charleston", "swings the legs in a charleston"],
    "dance_generic": ["dances", "dances with the hands on the hips", "does a little dance", "grooves to music", "dances around", "dances happily", "busts a move", "does a dance"],
    "angry": ["stomps angrily", "acts angry", "is furious and shakes the fists", "throws an angry tantrum", "is angry", "stamps the feet in anger"],
    "backflip": ["does a backflip", "flips backwards", "performs a back somersault", "jumps into a backflip", "backflips", "does a backwards somersault", "flips over backwards"],
    "bow": ["bows", "takes a bow", "bows forward", "bows politely", "bows deeply"],
    "confused": ["looks confused", "scratches the head in confusion", "shrugs, confused", "is confused", "looks puzzled"],
    "crawl": ["crawls on hands and knees", "crawls forward", "crawls on the floor", "crawls like a baby", "creeps forward on hands and knees", "crawls along the ground"],
    "defend": ["raises the arms to defend", "blocks with the arms", "shields the face with the arms", "defends with the arms", "guards the head"],
    "dizzy": ["staggers dizzily", "is dizzy and wobbles", "sways around dizzy", "stumbles around dizzy", "wobbles dizzily"],
    "fighting_stance": ["stands in a fighting stance", "bounces in a boxing stance", "waits in a fighting guard", "takes a fighting stance", "stands ready to fight"],
    "jab": ["throws a {side} jab", "jabs with the {side} fist", "punches with the {side} hand",
            "throws a quick {side} punch", "does a {side} jab", "jabs {side}", "boxes with a {side} jab"],
    "head_nod": ["nods the head", "nods yes", "nods in agreement", "nods", "nods the head yes"],
    "idle": ["stands and listens", "stands idle, listening", "stands still and shifts weight", "stands idle", "stands still", "idles"],
    "jumping_jacks": ["does jumping jacks", "performs star jumps", "does jumping jack exercises", "does a set of jumping jacks", "jumps with the arms and legs spreading"],
    "meditate": ["sits cross-legged and meditates", "meditates", "sits in a lotus pose", "meditates sitting cross-legged", "sits in meditation", "sits on the floor and meditates"],
    "push_ups": ["does push-ups", "does push ups on the floor", "performs pushups", "does some push-ups", "drops and does push-ups", "does a set of push-ups"],
    "reject": ["waves the hands to say no", "refuses with a gesture", "shakes the hands in rejection", "says no with the hands", "waves off with both hands"],
    "run_stylised": ["runs with the arms stretched back", "runs in an anime style", "dashes forward ninja style", "runs like a ninja", "runs with the arms behind"],
    "shiver": ["shivers from the cold", "shivers", "hugs themself and shivers", "shivers with cold", "trembles from the cold"],
    "sleep": ["lies on the ground asleep", "sleeps lying down", "lies asleep on the floor", "sleeps on the floor", "lies down sleeping"],
    "throw": ["throws a ball", "throws something overhand", "pitches a ball", "hurls a ball", "throws a ball forward", "throws an object"],
    "tired": ["stands hunched over, tired", "is exhausted and hunches over", "pants, bent over and tired", "is tired and bent over", "hunches over exhausted"],
    "kneel_tired": ["kneels down exhausted", "kneels, tired", "drops to one knee, exhausted", "kneels", "sinks to the knees, tired"],
    "celebrate": ["celebrates a victory", "cheers with the arms up", "celebrates, pumping the fists", "celebrates", "cheers", "celebrates winning", "pumps the fists in victory"],
}

# adverbs for what can be measured in a window (see captions.py)
TEMPO = {"fast": ["quickly", "energetically", "fast"], "slow": ["slowly", "calmly"]}
TRAVEL = {"moving": ["while moving around", "moving across the floor"], "in_place": ["in place", "on the spot"]}
TURNING = ["while turning around", "turning in circles"]


def family_for(dataset: str, key: str):
    """-> (family, side) for a clip, or None when the clip is left out. dataset: 'cmu' (key = the folder) or
    'mesh2motion' (key = the file stem after 'animation-human-')."""
    if dataset == "cmu":
        fam = CMU_FAMILIES.get(key)
        return (fam, None) if fam else None
    if dataset == "mesh2motion":
        return M2M_FAMILIES.get(key)
    raise ValueError(f"unknown dataset {dataset!r}")


def vocabulary() -> set[str]:
    """Every word the real-motion captions can contain, in every form ``wording.everyday`` gives their verbs (the
    coverage check's vocabulary adds these)."""
    import re

    texts = [p for ps in PHRASES.values() for p in ps] + [w for ws in TEMPO.values() for w in ws]
    texts += [w for ws in TRAVEL.values() for w in ws] + list(TURNING) + ["left", "right"]
    from backend.synthetic.wording import forms_vocabulary

    verbs = {p.split(" ")[0].strip(",.;:").lower() for ps in PHRASES.values() for p in ps}
    return forms_vocabulary({w for t in texts for w in re.findall(r"[a-z]+", t.lower())}, verbs)
