"""bench/candidates.py on the starter, small: it times the three settings and compares the batched draws with the
same draws sampled one at a time."""

import pytest

from tests.bench.scripts import load_bench

pytestmark = pytest.mark.slow  # the starter's generation


def test_candidates_bench_reports_the_three_settings(capsys):
    res = load_bench("candidates").main(["--n", "2", "--repeats", "1", "--prompts", "2"])
    assert set(res) == {"single", "batched", "alone", "same_kept"}
    assert all(res[k] > 0 for k in ("single", "batched", "alone"))
    assert res["same_kept"] >= 0.5  # the same random numbers: the kept draws mostly agree
    out = capsys.readouterr().out
    assert "best of 2, batched (shipped)" in out and "one draw at a time" in out and "ms per motion" in out
