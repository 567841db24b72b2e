"""Indexing speed of a motion library the three ways the product offers it, on the same folder of synthetic clips
with the shipped starter on CPU (one torch/OpenMP thread everywhere):

- the CLI: ``python -m backend.cli library index FOLDER --out INDEX`` (its wall time includes loading the model);
- the protocol, as the add-on's Index Folder sends it: ``library_index`` through the add-on's own client
  (``remomask_addon/core/client.py``) to a warm ``python -m backend.server`` (wall time from the request to the
  result, progress events included);
- the add-on's ``.blend`` reading (``remomask_addon/blender/blend_actions.py``, in ``bpy``): actions per second
  read back from one ``.blend`` into joints files.

    python bench/library_addon.py [--clips 60] [--actions 10]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def make_folder(root: Path, n: int) -> float:
    from backend.synthetic import FAMILIES, generate_clip

    frames = 0
    for i in range(n):
        c = generate_clip(FAMILIES[i % len(FAMILIES)], i)
        frames += len(c.joints)
        np.save(root / f"clip{i:04d}.npy", c.joints)
    return frames / 20


def bench_cli(folder: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "backend.cli", "library", "index", str(folder), "--out", str(out),
                        "--json"], capture_output=True, text=True, env=ENV, cwd=REPO, check=True)
    wall = time.perf_counter() - t0
    rep = json.loads(p.stdout)
    return {"wall_s": round(wall, 2), "index_s": rep["seconds"], "files": rep["files"]}


def bench_server(folder: Path, tmp: Path) -> dict:
    from backend.generation.project_weights import STARTER_DIR

    spec = importlib.util.spec_from_file_location("bench_client", REPO / "remomask_addon/core/client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    c = client.BackendClient(sys.executable, str(STARTER_DIR), "cpu", project_dir=str(REPO),
                             log_path=str(tmp / "server.log"), env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    try:
        t0 = time.perf_counter()
        ev = c.wait(c.request("hello"), 300)
        load = time.perf_counter() - t0
        assert "result" in ev[-1], ev[-1]
        t0 = time.perf_counter()
        ev = c.wait(c.request("library_index", {"folder": str(folder), "index": str(tmp / "idx_server")}), 600)
        wall = time.perf_counter() - t0
        assert "result" in ev[-1], ev[-1]
        rep = ev[-1]["result"]
        return {"server_start_s": round(load, 2), "request_wall_s": round(wall, 2), "index_s": rep["seconds"],
                "progress_events": sum(1 for e in ev if e.get("event") == "progress"), "files": rep["files"]}
    finally:
        c.stop()


BLEND_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, bpy
from pathlib import Path
from remomask_addon.blender import blend_actions, motion_to_armature
from remomask_addon.core.motion_io import motion_from_joints
from backend.synthetic import FAMILIES, generate_clip
folder, n = Path(sys.argv[2]), int(sys.argv[3])
scene = bpy.context.scene
scene.render.fps = 20
blocks = set()
for i in range(n):
    j = generate_clip(FAMILIES[i % len(FAMILIES)], 100 + i).joints
    m = motion_from_joints(j, prompt=f"take {i}")
    arm = motion_to_armature.key_motions(scene, [m], name=f"rig{i}", with_body=False).armature
    blocks |= {arm, arm.data, arm.animation_data.action}
bpy.data.libraries.write(str(folder / "takes.blend"), blocks, fake_user=True)
bpy.ops.wm.read_homefile(use_empty=True)
bpy.context.scene.render.fps = 20
t0 = time.perf_counter()
read, errors = blend_actions.export_blend_actions(bpy.context.scene, folder)
dt = time.perf_counter() - t0
t0 = time.perf_counter()
blend_actions.export_blend_actions(bpy.context.scene, folder)
again = time.perf_counter() - t0
print("RESULT " + json.dumps({"actions": n, "read_s": round(dt, 2), "actions_per_s": round(n / dt, 1),
                              "unchanged_s": round(again, 3), "errors": len(errors)}))
"""


def bench_blend(tmp: Path, n: int) -> dict:
    folder = tmp / "blend"
    folder.mkdir()
    p = subprocess.run([sys.executable, "-c", BLEND_SCRIPT, str(REPO), str(folder), str(n)], capture_output=True,
                       text=True, env=ENV, cwd=REPO)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        raise SystemExit(p.stdout[-2000:] + p.stderr[-2000:])
    return json.loads(line[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--actions", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        folder = tmp / "mocap"
        folder.mkdir()
        seconds = make_folder(folder, args.clips)
        cli = bench_cli(folder, tmp / "idx_cli")
        server = bench_server(folder, tmp)
        blend = bench_blend(tmp, args.actions)
    out = {"clips": args.clips, "seconds_of_motion": round(seconds, 1), "cli": cli, "server": server,
           "cli_clips_per_s": round(args.clips / cli["index_s"], 1),
           "server_clips_per_s": round(args.clips / server["request_wall_s"], 1), "blend": blend}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
