"""Which prompts are "X while Y" (X generated, then an arms edit with Y: backend.editing.tasks.split_while)."""

import pytest

from backend.editing.tasks import split_while


@pytest.mark.parametrize("prompt, pair", [
    ("a person walks forward while waving with the right hand",
     ("a person walks forward", "a person waves with the right hand")),
    ("she jogs while clapping", ("she jogs", "she claps")),
    ("walk while clapping", ("a person walk", "a person claps")),
    # "at the same time" / "simultaneously": the arm action is the edit, whichever side of "and" it is on
    ("a man jogs and claps simultaneously", ("a man jogs", "a man claps")),
    ("she punches and walks at the same time", ("she walks", "she punches")),
    ("running and raising both arms at the same time", ("a person runs", "a person raises both arms")),
    ("Maria walks and waves, all at the same time!", ("Maria walks", "Maria waves")),
    # "Y as he X"
    ("the boy punches as he walks", ("the boy walks", "the boy punches")),
    ("a dancer waving as she spins", ("a dancer spins", "a dancer waves")),
    ("raising his arms as he runs", ("a person runs", "a person raises his arms")),
])
def test_two_actions_at_once(prompt, pair):
    assert split_while(prompt) == pair


@pytest.mark.parametrize("prompt", [
    "a person walks forward",
    "a person walks and waves",                        # no word says "at once": the model's own reading
    "a person walks and turns at the same time",       # no arm action: nothing to put on the arms
    "clapping and cheering at the same time",          # arm actions both: no base motion
    "a woman walks as she talks",
    "walks forward, then waves",
    "while",
])
def test_not_two_actions_at_once(prompt):
    assert split_while(prompt) is None
