"""Splitting sequential prompts into one sentence per action (backend.prompt_parts)."""

import pytest

from backend.prompt_parts import split_sequence


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
