"""bench/generation.py: its quick mode runs standalone and reports both sides, every stage and positive FLOP/s;
the restatement of the reference draws the same token ids as the pipeline where the two control flows agree."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.scripts import load_bench
import torch

pytestmark = pytest.mark.slow  # the benchmarks' quick modes

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "generation.py"
# stages that run torch matmuls / convolutions (length: lengths are given; joints: numpy; other: glue)
COUNTED = ("text", "retrieval", "mask_aux", "mask_ts", "res_aux", "res_ts", "decode")


def _load():
    return load_bench("generation")


@pytest.fixture(scope="module")
def quick_run():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--batch", "1", "2", "--repeats", "1",
                           "--threads", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")]
    assert len(lines) == 1
    return proc.stdout, json.loads(lines[0][len("BENCH_JSON "):])


def test_quick_mode_reports_both_sides_every_stage_and_flop_rates(quick_run):
    text, out = quick_run
    gen = _load()
    assert out["sizes"] == "quick" and out["matmul_peak_flops"] > 0
    assert [r["batch"] for r in out["results"]] == [1, 2]
    for r in out["results"]:
        assert r["ratio_wall"] > 0 and r["ratio_cpu"] > 0
        for side in ("project", "reference"):
            s = r[side]
            assert len(s["wall"]) == 1 and s["wall_median"] > 0 and s["cpu_median"] > 0
            assert set(s["stages"]) == set(gen.STAGES)
            for name in COUNTED:
                st = s["stages"][name]
                assert st["s"] > 0 and st["flops"] > 0 and st["flops_per_s"] > 0, (side, name, st)
            # the stage times account for the run (other = the rest, never negative)
            assert sum(st["s"] for st in s["stages"].values()) == pytest.approx(s["wall_median"], rel=0.05)
        # same modules and shapes: the two sides do the same model arithmetic, stage by stage
        for name in ("text", "mask_aux", "mask_ts", "res_aux", "res_ts", "decode"):
            assert r["project"]["stages"][name]["flops"] == r["reference"]["stages"][name]["flops"], name
    # the table names every stage
    for name in gen.STAGES:
        assert f"   {name:<10}|" in text


def test_reference_restatement_draws_the_pipelines_ids(quick_run):
    """Same seed, generator order and shapes: with the project's rule of never drawing the padding id the
    restatement's control flow (separate guidance passes, per-sample output tables, gathers, one padded
    decode) must give the very same ids and motion. With the reference's own rule the residual transformers
    may draw the padding id where the project cannot, so only valid motion of the right shape is asserted."""
    _, out = quick_run
    same = out["agreement"]["project_rule"]
    assert same["ids_equal_fraction"] == {"mask_aux": 1.0, "mask_ts": 1.0, "res_aux": 1.0, "res_ts": 1.0}
    assert same["features_max_abs_diff"] < 1e-4 and same["shapes_ok"]
    own = out["agreement"]["reference_sampling"]
    assert own["shapes_ok"]
    # the masked transformers sample the same way in both
    assert own["ids_equal_fraction"]["mask_aux"] == 1.0 and own["ids_equal_fraction"]["mask_ts"] == 1.0


def test_flop_counts_scale_with_the_batch():
    """The bench counts FLOPs at one batch size and scales them: check that they are linear in the batch."""
    gen = _load()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors; and a busy neighbour on a 2-core machine stalls 2 threads
    try:
        models, text, db, s = gen.build(quick=True)
        sides = gen.Sides(models, text, db, s["frames"], s["steps"])
        for side in ("project", "reference"):
            one = sides.count_flops(side, gen.prompts_for(1))
            three = sides.count_flops(side, gen.prompts_for(3))
            assert {k: 3 * v for k, v in one.items()} == three, side
            assert all(one[k] > 0 for k in COUNTED)
    finally:
        torch.set_num_threads(threads)
