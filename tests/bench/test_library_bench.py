"""bench/library.py: the search part runs on a small synthetic library and reports recall in 0..1."""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the benchmarks' quick modes


def test_library_bench_search_small():
    spec = importlib.util.spec_from_file_location("bench_library", Path(__file__).parents[2] / "bench" / "library.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.bench_search(2000, 32, 10)
    assert r["windows"] == 2000 and r["flat_ms_per_query"] > 0
    assert 0 <= r["hnsw_ef32_recall@10"] <= 1 and 0 <= r["hnsw_ef128_recall@10"] <= 1
