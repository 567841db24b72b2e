"""bench/scale.py's quick mode (tiny model): runs standalone on a local Ray and reports every figure it promises:
service rows with batching seen at 4 clients, the single-process comparison, batch throughput over 1 and 2
simulated nodes with every item done."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the [scale] extra (ray) is not installed")

pytestmark = [pytest.mark.slow, pytest.mark.blender]  # a real Ray; the batch part renders with bpy

REPO = Path(__file__).resolve().parents[2]


def test_quick_mode_reports_service_overhead_and_batch_figures():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")]
    assert len(lines) == 1
    out = json.loads(lines[0][len("BENCH_JSON "):])
    assert [(r["replicas"], r["clients"]) for r in out["service"]] == [(1, 1), (1, 4)]
    for r in out["service"]:
        assert r["errors"] == 0 and r["requests"] == 2 * r["clients"]
        assert r["req_per_s"] > 0 and 0 < r["p50_s"] <= r["p95_s"]
    assert out["service"][1]["mean_batch"] > 1  # 4 concurrent clients share a replica's batches
    assert out["single_process"]["requests"] == 3 and out["single_process"]["p50_s"] > 0
    assert out["ray_single"]["requests"] == 3 and out["ray_single"]["errors"] == 0
    assert out["overhead_s"] == pytest.approx(out["ray_single"]["p50_s"] - out["single_process"]["p50_s"])
    assert [b["nodes"] for b in out["batch"]] == [1, 2]
    for b in out["batch"]:
        assert (b["items"], b["ok"], b["failed"], b["renders"]) == (6, 6, 0, 2) and b["motions_per_min"] > 0
    assert "Ray + HTTP add" in proc.stdout and "motions/min" in proc.stdout
