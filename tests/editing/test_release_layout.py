"""Every edit task on a folder in the official release layout with tiny random weights (loaded by the one model
loader), and the edit request end to end through the CLI and the generator server."""

import json

import numpy as np
import pytest

from backend.editing import tasks
from backend.editing.source import load_source
from backend.editing.timeline import generate_timeline
from backend.generation.model_folder import load_pipeline
from backend.motion.motion_file import save_motion
from backend.synthetic import generate_clip
from tests.release_fixture import make_tiny_release

KW = dict(time_steps=2, samples=2)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_tiny_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def pipe(release):
    return load_pipeline(release)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    for name, fam, seed in (("walk", "walk", 5), ("wave", "wave", 1)):
        save_motion(d / f"{name}.npz", joints=generate_clip(fam, seed).joints, prompt=f"a person {name}s")
    return d


def test_every_task_on_the_official_layout(pipe, files):
    src, to = load_source(files / "walk.npz"), load_source(files / "wave.npz")
    n = src.frames
    runs = [
        ("inpaint", lambda s: tasks.inpaint(pipe, src, 20, 60, "jumps", seed=s, **KW), n),
        ("bodypart", lambda s: tasks.bodypart(pipe, src, 0, n, "legs", "kicks", seed=s, **KW), n),
        ("prefix", lambda s: tasks.prefix(pipe, src, 24, "sits", seed=s, **KW), n + 24),
        ("suffix", lambda s: tasks.suffix(pipe, src, 24, "stands", seed=s, **KW), n + 24),
        ("outpaint", lambda s: tasks.outpaint(pipe, src, 8, 8, "runs", seed=s, **KW), n + 16),
        ("inbetween", lambda s: tasks.inbetween(pipe, src, to, "turns", None, seed=s, **KW), None),
        ("loop", lambda s: tasks.loop(pipe, src, mode="return", seed=s, **KW), n),
    ]
    for name, run, frames in runs:
        a, b = run(3), run(3)
        for x, y in zip(a, b):
            assert np.array_equal(x.joints, y.joints), name
        for o in a:
            assert o.joints.shape[1:] == (22, 3) and o.features.shape == (len(o.joints), 263), name
            assert frames is None or len(o.joints) == frames, name
            assert np.isfinite(o.joints).all() and o.source == str((files / "walk.npz").resolve())
        if name in ("inpaint", "loop"):
            keep = np.ones(n, bool)
            for lo, hi in a[0].changed:
                keep[lo:hi] = False
            assert np.array_equal(a[0].joints[keep], src.joints[keep])
            assert np.array_equal(a[0].features[keep], src.features[keep])
        if name == "loop":
            assert np.abs(a[0].joints[-1] - a[0].joints[0]).max() < 1e-2
    gap = tasks.inbetween(pipe, src, to, "turns", None, seed=0, **KW)[0]  # length from the estimator
    assert (len(gap.joints) - n - to.frames) % 4 == 0 and len(gap.joints) > n + to.frames
    long = generate_timeline(pipe, [("walks", 2), ("jumps", 2)], seed=0, time_steps=2)[0]
    assert long.length == 80


def test_edit_through_the_cli(release, files, tmp_path, capsys):
    from backend.cli import main

    out = tmp_path / "out"
    rc = main(["edit", str(files / "walk.npz"), "--task", "inpaint", "--frames", "20:60", "--prompt", "jumps",
               "--models", str(release), "--out", str(out), "--samples", "2", "--time-steps", "2", "--no-fit",
               "--device", "cpu"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    paths = cap.out.split()
    assert len(paths) == 2
    with np.load(paths[0]) as z:
        assert str(z["edit_task"]) == "inpaint" and str(z["edit_source"]).endswith("walk.npz")
        assert z["edit_frames"].tolist() == [[20, 60]] and z["joints"].shape == (81, 22, 3)
    rc = main(["generate", "--timeline", "a person walks:2", "jumps:1.5", "--models", str(release), "--out",
               str(out / "t"), "--no-fit", "--time-steps", "2", "--device", "cpu"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    with np.load(cap.out.split()[0]) as z:
        assert z["joints"].shape == (72, 22, 3) and z["part_frames"].shape == (2, 2)
        assert str(z["prompt"]) == "a person walks; a person jumps"


@pytest.mark.filterwarnings("ignore")
@pytest.mark.slow  # a server subprocess end to end
def test_edit_through_the_server(release, files, tmp_path):
    from tests.server.client import ServerProc

    s = ServerProc(models=release, env={"OMP_NUM_THREADS": "1"}, generator=None)
    try:
        _, hello = s.call("hello", timeout=120)
        assert "edit" in hello["result"]["capabilities"] and "timeline" in hello["result"]["capabilities"]
        src = str(files / "walk.npz")
        events, reply = s.call("edit", {"source": src, "task": "bodypart", "part": "arms", "frames": [10, 50],
                                        "prompt": "waves", "samples": 2, "seed": 1, "time_steps": 2, "fit": False,
                                        "out_dir": str(tmp_path)}, timeout=120)
        assert "result" in reply, (reply, s.stderr()[-3000:])
        assert [e["fraction"] for e in events] == sorted(e["fraction"] for e in events) and events[-1]["stage"] == \
            "write"
        m = reply["result"]["motions"]
        assert [x["sample"] for x in m] == [0, 1] and m[0]["task"] == "bodypart" and m[0]["part"] == "arms"
        assert m[0]["source"] == str((files / "walk.npz").resolve()) and m[0]["edited"] == [[10, 50]]
        assert m[0]["frames"] == 81 and json.dumps(m)
        with np.load(m[0]["path"]) as z:
            kept = [0, 1, 2, 4, 5, 7, 8, 10, 11]
            assert np.array_equal(z["joints"][:, kept], load_source(src).joints[:, kept])
        _, bad = s.call("edit", {"source": src, "task": "inpaint", "frames": [70, 90], "prompt": "x",
                                 "out_dir": str(tmp_path / "bad")}, timeout=30)
        assert bad["error"]["code"] == "invalid_params" and "outside the source's 81 frames" in bad["error"]["message"]
        assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
        # a queued edit cancelled before it runs answers "cancelled" and writes nothing
        first = {"source": src, "task": "loop", "time_steps": 2, "fit": False, "out_dir": str(tmp_path / "c1")}
        s.send({"id": "e1", "method": "edit", "params": first})
        s.send({"id": "e2", "method": "edit", "params": {**first, "out_dir": str(tmp_path / "c2")}})
        s.send({"id": "c", "method": "cancel", "params": {"target": "e2"}})
        finals = {}
        while len(finals) < 3:
            msg = s.recv(timeout=120)
            if "event" not in msg:
                finals[msg["id"]] = msg
        assert "result" in finals["e1"] and finals["e2"]["error"]["code"] == "cancelled"
        assert not any((tmp_path / "c2").glob("*.npz"))
        _, tl = s.call("generate", {"timeline": [{"prompt": "walks", "seconds": 2}, {"prompt": "jumps",
                                                                                      "seconds": 2}],
                                    "time_steps": 2, "fit": False, "out_dir": str(tmp_path / "tl")}, timeout=120)
        (mt,) = tl["result"]["motions"]
        assert mt["frames"] == 80 and mt["parts"] == ["a person walks", "a person jumps"] and mt["part_frames"]
    finally:
        s.close()
