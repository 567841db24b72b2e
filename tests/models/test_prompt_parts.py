"""Splitting sequential prompts into one sentence per action (backend.generation.prompt_parts)."""

import pytest

from backend.generation.prompt_parts import repeat_parts, split_sequence


@pytest.mark.parametrize("prompt, parts", [
    ("a person walks forward, then waves with the right hand",
     ["a person walks forward", "a person waves with the right hand"]),
    ("A man jumps twice and then he sits down", ["A man jumps twice", "A man sits down"]),
    ("first a woman squats, then jumps", ["a woman squats", "a woman jumps"]),
    ("first, the person bows, then turns left, and finally sits down",
     ["the person bows", "the person turns left", "the person sits down"]),
    ("a person first walks forward and then waves", ["a person walks forward", "a person waves"]),
    ("walks then runs", ["a person walks", "a person runs"]),
    ("a man runs, after that someone claps", ["a man runs", "someone claps"]),
    ("  a person   walks.  ", ["a person walks."]),
])
def test_split(prompt, parts):
    assert split_sequence(prompt) == parts


@pytest.mark.parametrize("prompt", [
    "someone waves",
    "a person brings both arms up above the head, then down",   # "then down" continues the action
    "a person walks, then",
    "the theater then",
    "a person walks to the athenaeum",
    "then",
])
def test_not_split(prompt):
    assert split_sequence(prompt) == [" ".join(prompt.split())]


@pytest.mark.parametrize("subject", [
    "a man", "the man", "a woman", "the woman", "a kid", "the kid", "a guy", "the guy", "a person", "the person",
    "a young woman", "an old man", "the little girl", "a dancer", "he", "she", "they", "someone", "somebody",
    "She", "Maria", "John Smith", "Alex",
])
def test_subject_is_kept_in_every_part(subject):
    """The first part keeps the subject as typed, and later parts get it (never "a person she ...")."""
    assert split_sequence(f"{subject} jogs in place, then waves") == [f"{subject} jogs in place", f"{subject} waves"]
    assert split_sequence(f"{subject} jumps twice and then sits down") == \
        [f"{subject} jumps twice", f"{subject} sits down"]


@pytest.mark.parametrize("prompt, parts", [
    ("she jogs in place, then waves", ["she jogs in place", "she waves"]),
    ("the guy walks forward, then he turns around", ["the guy walks forward", "the guy turns around"]),
    ("Maria is running, then she stops", ["Maria is running", "Maria stops"]),
    ("Walk forwards, then wave", ["a person walk forwards", "a person wave"]),
    ("Walks forward, then waves", ["a person walks forward", "a person waves"]),
    ("jump, then spin", ["a person jump", "a person spin"]),
])
def test_subjects_names_and_imperatives(prompt, parts):
    assert split_sequence(prompt) == parts


@pytest.mark.parametrize("prompt, parts", [
    ("walk over and sit down", ["a person walk over", "a person sit down"]),
    ("a man stands up and walks away", ["a man stands up", "a man walks away"]),
    ("she runs and jumps", ["she runs", "she jumps"]),
    ("the person jumps and turns around", ["the person jumps", "the person turns around"]),
    ("walks forward and sits down, then waves", ["a person walks forward", "a person sits down", "a person waves"]),
    ("Walk to the chair, and sit down", ["a person walk to the chair", "a person sit down"]),
])
def test_and_between_a_verb_and_a_whole_body_action_is_a_sequence(prompt, parts):
    assert split_sequence(prompt) == parts


@pytest.mark.parametrize("prompt", [
    "a person walks and waves",                   # an arm action may go with the walk
    "walking and waving at the same time",
    "jumps and spins while clapping",
    "a runner clapping along as she jogs",
    "karate kick and punch combo",                # "karate" is no verb: a noun phrase
    "he jumps up and down twice",                 # "down" is no action
    "rock and roll dance",
    "kicks and punches",
    "a person walks and then",                    # an empty part
])
def test_and_that_is_no_sequence_stays_whole(prompt):
    assert split_sequence(prompt) == [" ".join(prompt.split())]


REPEAT = ("jump", "squat", "hop")


@pytest.mark.parametrize("prompt, parts", [
    ("a person jumps 3 times", ["a person jumps once"] * 3),
    ("the girl jumps four times in place", ["the girl jumps once in place"] * 4),
    ("she squats down twice, slowly", ["she squats down once, slowly"] * 2),
    ("hop thrice", ["a person hop once"] * 3),
    ("jumping twice on the spot", ["a person jumping once on the spot"] * 2),
    ("two big jumps forward", ["a person jumps once forward"] * 2),      # the plural noun: the verb's form
    ("a kid does 3 squats", ["a kid squats once"] * 3),
    ("Maria performs five little hops", ["Maria hops once"] * 5),
])
def test_counted_parts_of_listed_verbs_are_repeated(prompt, parts):
    assert repeat_parts(prompt, REPEAT) == parts


@pytest.mark.parametrize("prompt", [
    "a person claps 4 times",          # not a listed verb
    "a person jumps 10 times",         # more than MAX_REPEATS: left to the model
    "a person jumps once",
    "a person jumps",
    "she does two jumping jacks",      # "jacks" is not a listed verb
    "a person walks three times around the table",
    "twice",
])
def test_other_parts_are_left_alone(prompt):
    assert repeat_parts(prompt, REPEAT) == [prompt]
    assert repeat_parts("a person jumps 3 times", ()) == ["a person jumps 3 times"]   # no list: nothing repeated


def test_sequences_and_counts_together():
    assert split_sequence("jump twice, then wave", REPEAT) == ["a person jump once"] * 2 + ["a person wave"]
    assert split_sequence("a man squats 3 times and then sits down", REPEAT) == \
        ["a man squats once"] * 3 + ["a man sits down"]
    assert split_sequence("jump twice, then wave") == ["a person jump twice", "a person wave"]   # no list
    assert split_sequence("a person claps twice", REPEAT) == ["a person claps twice"]
