"""``python -m backend.train reading``: bad folders get one error line, exit 2, and nothing written (the caption
bank itself is checked on the starter: tests/starter/test_reading_starter.py)."""

import json

import pytest

from backend.train import main


@pytest.mark.parametrize("coverage, needle", [
    (None, "has no coverage.json"),
    ("{not json", "coverage.json: expected"),
    (json.dumps({"words": ["walk"], "min_similarity": None}), "lists no families"),
    (json.dumps({"words": ["walk"], "min_similarity": None,
                 "families": [{"name": "walk+wave", "label": "x", "source": "procedural", "examples": []}]}),
     "lists no families"),
])
def test_bad_folder_is_one_line_and_writes_nothing(tmp_path, capsys, coverage, needle):
    if coverage is not None:
        (tmp_path / "coverage.json").write_text(coverage)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["reading", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no reading.json / reading.npy, no temporary
