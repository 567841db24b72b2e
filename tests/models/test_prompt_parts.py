"""Splitting sequential prompts into one sentence per action (backend.generation.prompt_parts)."""

import pytest

from backend.generation.prompt_parts import split_sequence


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
