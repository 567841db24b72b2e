"""``remomask batch`` on a real Ray: a simulated two-node cluster (``ray.cluster_utils.Cluster``) where only the
second node advertises the ``blender`` render resource. One cluster for the module (Ray starts slowly)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="the [scale] extra (ray) is not installed")

from backend.scale import manifest  # noqa: E402
from backend.scale.batch import run_batch  # noqa: E402
from backend.scale.stages import BatchOptions  # noqa: E402

from .test_batch import _check_outputs  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
VERBS = ["walks forward", "runs", "jumps twice", "waves", "kicks with the right leg", "sits down", "turns left",
         "squats", "walks backward", "jumps"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.release_fixture import make_tiny_release

    return make_tiny_release(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    render_node = c.add_node(num_cpus=2, resources={"blender": 2})
    ray.init(address=c.address, log_to_driver=False)
    c.wait_for_nodes()
    try:
        yield c, c.head_node.node_id, render_node.node_id
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.mark.blender
def test_fifty_prompts_ten_renders_on_two_nodes(cluster, tiny, tmp_path):
    c, head_id, render_id = cluster
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"a person {VERBS[i % 10]}{' quickly' if i >= 10 else ''} take {i}\n"
                               for i in range(50)))
    out = tmp_path / "out"
    opts = BatchOptions(models=str(tiny), device="cpu", render="sequence", max_renders=10, render_scale=25)
    s = run_batch(prompts, out, opts, ray=c.address, actors=2, show_progress=False)
    assert (s.items, s.ok, s.failed, s.motions, s.renders) == (50, 50, 0, 50, 10)
    recs = _check_outputs(out, 50)
    assert [r["line"] for r in recs] == list(range(1, 51))
    assert all(r["status"] == "ok" and r["attempts"] == 1 for r in recs)
    rendered = [r for r in recs if r["renders"]]
    assert [r["line"] for r in rendered] == list(range(1, 11))
    assert {r["nodes"]["render"] for r in rendered} == {render_id}  # renders only where the resource is
    assert {r["nodes"]["generate"] for r in recs} <= {head_id, render_id}
    assert {r["nodes"]["fit"] for r in recs} <= {head_id, render_id}
    for r in recs:
        assert set(r["timings"]) >= {"generate_s", "fit_s", "total_s"} and r["timings"]["total_s"] > 0
        with np.load(out / r["motions"][0]["path"]) as z:
            assert str(z["prompt"]) == r["prompt"] and int(z["seed"]) == r["line"] - 1
            assert z["joints"].shape == (r["motions"][0]["frames"], 22, 3)
    from PIL import Image

    with Image.open(out / rendered[0]["renders"][0]) as im:
        assert im.size[0] >= 100 and len(set(im.convert("L").getdata())) > 8  # a picture, not a blank


def test_killed_worker_and_killed_run_resume_without_duplicates(cluster, tiny, tmp_path):
    c, head_id, render_id = cluster
    lines = [f"a person {VERBS[i % 10]} slowly, take {i}" for i in range(12)]
    lines[2] = "a person kills its worker"
    lines[4] = "a person fails once"
    lines[6] = "this always fails"
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "backend.cli", "batch", str(prompts), "--out", str(out), "--models", str(tiny),
           "--device", "cpu", "--ray", c.address, "--actors", "1", "--generator", "tests.scale.flaky:make"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    end = time.monotonic() + 240
    while time.monotonic() < end and len(manifest.read(out)) < 5 and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run dies mid-batch
    proc.wait()
    first = manifest.read(out)
    assert 5 <= len(first) < 12
    if "a person kills its worker" in {r["prompt"] for r in first.values()}:
        killed = next(r for r in first.values() if r["prompt"] == "a person kills its worker")
        assert killed["status"] == "ok" and killed["attempts"] == 2 and "Actor" in killed["errors"][0], killed
    opts = BatchOptions(models=str(tiny), device="cpu", generator="tests.scale.flaky:make")
    s = run_batch(prompts, out, opts, ray=c.address, actors=2, resume=True, show_progress=False)
    done_before = {k for k, r in first.items() if manifest.is_done(out, r)}
    assert s.skipped == len(done_before) and s.ok == 11 and s.failed == 1
    recs = {r["key"]: r for r in _check_outputs(out, 12)}
    assert all(recs[k] == first[k] for k in done_before)  # finished items were not redone
    by_prompt = {r["prompt"]: r for r in recs.values()}
    assert by_prompt["this always fails"]["status"] == "failed"
    assert by_prompt["this always fails"]["attempts"] == 2
    assert by_prompt["a person kills its worker"]["status"] == "ok"
    assert list(Path(tiny).glob(".seen-*")), "the worker-killing item never ran"
    assert by_prompt["a person fails once"]["status"] == "ok"
    assert json.loads((out / manifest.NAME).read_text().splitlines()[0])["line"] == 1
