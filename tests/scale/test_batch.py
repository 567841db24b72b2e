"""``remomask batch`` in one process (no Ray): outputs, manifest, per-item failures, resume, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.errors import UserError
from backend.scale import manifest
from backend.scale.batch import run_batch
from backend.scale.prompts_file import read_prompt_file
from backend.scale.stages import BatchOptions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.release_fixture import make_tiny_release

    return make_tiny_release(tmp_path_factory.mktemp("tiny"))


def test_prompt_file_lines_timelines_and_errors(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a person walks\n\n# a comment\na person walks:2 | a person waves:1.5\nwalk: fast\n")
    items = read_prompt_file(f)
    assert [(it.line, it.index, it.timeline) for it in items] == [
        (1, 0, None), (4, 1, (("a person walks", 2.0), ("a person waves", 1.5))), (5, 2, None)]
    assert items[1].request(seed=7, samples=2)["timeline"][1] == {"prompt": "a person waves", "seconds": 1.5}
    assert len({it.key for it in items}) == 3
    f.write_text("a person walks\na person jumps:0.01\n")
    with pytest.raises(UserError, match="line 2"):
        read_prompt_file(f)
    f.write_text("# only a comment\n")
    with pytest.raises(UserError, match="no prompts"):
        read_prompt_file(f)


def _check_outputs(out: Path, expect_items: int) -> list[dict]:
    lines = (out / manifest.NAME).read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len(recs) == expect_items and len({r["key"] for r in recs}) == expect_items
    listed = [f for r in recs for f in r["files"] + r["renders"]]
    assert len(listed) == len(set(listed))
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != manifest.NAME}
    assert on_disk == set(listed)  # every output once, nothing else (no temporary leftovers)
    return recs


@pytest.mark.slow  # > 1.4 s: make test-fast stays under 90 s
def test_local_batch_failures_retry_and_resume(tiny, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a person walks forward\nthis always fails\nthis fails once\n"
                       "a person walks:1.2 | a person jumps:1.6\n")
    out = tmp_path / "out"
    opts = BatchOptions(models=str(tiny), device="cpu", samples=2, seed=5, generator="tests.scale.flaky:make")
    s = run_batch(prompts, out, opts, show_progress=False)
    assert (s.items, s.ok, s.failed, s.motions) == (4, 3, 1, 6)
    recs = {r["prompt"]: r for r in _check_outputs(out, 4)}
    bad = recs["this always fails"]
    assert bad["status"] == "failed" and bad["attempts"] == 2 and "injected failure" in bad["error"]
    once = recs["this fails once"]
    assert once["status"] == "ok" and once["attempts"] == 2 and "first-time failure" in once["errors"][0]
    walk = recs["a person walks forward"]
    assert walk["seed"] == 5 and walk["attempts"] == 1 and len(walk["files"]) == 4  # 2 samples x (npz + bvh)
    with np.load(out / walk["motions"][1]["path"]) as z:
        assert z["joints"].shape[1:] == (22, 3) and np.isfinite(z["joints"]).all()
        assert str(z["prompt"]) == "a person walks forward" and int(z["seed"]) == 5  # the item's seed
        assert z["poses"].shape == (z["joints"].shape[0], 24, 3)
    tl = recs["a person walks:1.2 | a person jumps:1.6"]
    assert tl["timeline"] == [["a person walks", 1.2], ["a person jumps", 1.6]] and tl["seed"] == 8
    # the same folder without --resume is refused (nothing lost); with --resume only the failed item runs again
    with pytest.raises(UserError, match="--resume"):
        run_batch(prompts, out, opts, show_progress=False)
    before = {k: r for k, r in manifest.read(out).items() if r["status"] == "ok"}
    mtimes = {f: (out / f).stat().st_mtime_ns for r in before.values() for f in r["files"]}
    s2 = run_batch(prompts, out, opts, resume=True, show_progress=False)
    assert (s2.skipped, s2.ok, s2.failed) == (3, 3, 1)
    after = {r["key"]: r for r in _check_outputs(out, 4)}
    assert all(after[k] == r for k, r in before.items())
    assert mtimes == {f: (out / f).stat().st_mtime_ns for f in mtimes}


@pytest.mark.slow  # moved out of make test-fast (its 90 s budget); CI runs it
def test_cli_batch_one_process(tiny, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a person walks forward\nsomeone waves\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "backend.cli", "batch", str(prompts), "--out", str(out), "--models", str(tiny),
           "--device", "cpu", "--no-fit"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out / manifest.NAME)
    recs = _check_outputs(out, 2)
    assert all(r["status"] == "ok" and len(r["files"]) == 1 for r in recs)  # no fit: no BVH
    r = subprocess.run(cmd[:4] + [str(tmp_path / "missing.txt")] + cmd[5:], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: cannot read the prompt file")
    assert "Traceback" not in r.stderr
