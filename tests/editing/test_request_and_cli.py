"""Bad edit input: one clear invalid_params error from the protocol, one ``error:`` line and exit 2 from the
CLI, nothing written (no model is loaded for any of these)."""

import numpy as np
import pytest

from backend.serving import protocol as P
from backend.editing.request import validate_edit
from backend.serving.protocol import validate_timeline
from backend.motion.motion_file import save_motion
from backend.synthetic import generate_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    j = generate_clip("walk", 5).joints  # 81 frames
    save_motion(d / "walk.npz", joints=j, prompt="a person walks")
    save_motion(d / "short.npz", joints=j[:20])
    save_motion(d / "zup.npz", joints=j[..., [0, 2, 1]])
    save_motion(d / "cm.npz", joints=j * 100)
    np.save(d / "bad.npy", np.zeros((81, 20, 3)))
    (d / "junk.npz").write_bytes(b"not a zip")
    return d


def _err(params):
    with pytest.raises(P.ProtocolError) as e:
        validate_edit(params)
    assert e.value.code == P.INVALID_PARAMS
    return e.value.message


def test_good_requests(clip):
    src = str(clip / "walk.npz")
    p = validate_edit({"source": src, "task": "inpaint", "frames": [40, 80], "prompt": "  a person   jumps "})
    assert p.frames == (40, 80) and p.prompt == "a person jumps" and p.src.frames == 81 and p.samples == 1
    b = validate_edit({"source": src, "task": "bodypart", "part": "arms", "prompt": "waves"})
    assert b.frames == (0, 81)
    lp = validate_edit({"source": src, "task": "loop", "mode": "travel", "seed": 3, "samples": 4})
    assert lp.mode == "travel" and lp.prompts == ["a person walks"]
    o = validate_edit({"source": src, "task": "outpaint", "seconds": [1, 2.5], "prompt": "x"})
    assert o.seconds == [1.0, 2.5]
    ib = validate_edit({"source": src, "task": "inbetween", "to": src, "prompt": "turns", "place": "world"})
    assert ib.seconds is None and ib.to_src.frames == 81


@pytest.mark.parametrize("params,msg", [
    ({"task": "inpaint"}, "needs 'source'"),
    ({"source": "S", "task": "paint"}, "unknown task 'paint'"),
    ({"source": "S", "task": "inpaint", "prompt": "x"}, "needs 'frames'"),
    ({"source": "S", "task": "inpaint", "frames": [10, 90], "prompt": "x"}, "outside the source's 81 frames"),
    ({"source": "S", "task": "inpaint", "frames": [-1, 20], "prompt": "x"}, "outside"),
    ({"source": "S", "task": "inpaint", "frames": [30, 30], "prompt": "x"}, "is empty"),
    ({"source": "S", "task": "inpaint", "frames": [30, 20], "prompt": "x"}, "is empty"),
    ({"source": "S", "task": "inpaint", "frames": [1.5, 20], "prompt": "x"}, "two whole frame numbers"),
    ({"source": "S", "task": "inpaint", "frames": "0:20", "prompt": "x"}, "two whole frame numbers"),
    ({"source": "S", "task": "inpaint", "frames": [0, 20], "prompt": ""}, "'prompt' is empty"),
    ({"source": "S", "task": "bodypart", "part": "tail", "prompt": "x"}, "unknown body part 'tail'"),
    ({"source": "S", "task": "bodypart", "prompt": "x"}, "needs 'part'"),
    ({"source": "S", "task": "prefix", "prompt": "x"}, "needs 'seconds'"),
    ({"source": "S", "task": "prefix", "seconds": 12, "prompt": "x"}, "at most 9.4 s"),
    ({"source": "S", "task": "prefix", "seconds": 0.05, "prompt": "x"}, "at least 0.2 s"),
    ({"source": "S", "task": "suffix", "seconds": "2", "prompt": "x"}, "number of seconds"),
    ({"source": "S", "task": "inbetween", "prompt": "x"}, "needs 'to'"),
    ({"source": "S", "task": "inbetween", "to": "nope.npz", "prompt": "x"}, "second clip file not found"),
    ({"source": "S", "task": "loop", "mode": "spiral"}, "unknown loop mode 'spiral'"),
    ({"source": "S", "task": "loop", "frames": [0, 10]}, "does not take 'frames'"),
    ({"source": "S", "task": "inpaint", "frames": [0, 10], "prompt": "x", "samples": 99}, "'samples' must be in"),
    ({"source": "S", "task": "inpaint", "frames": [0, 10], "prompt": "x", "colour": 1}, "unknown edit params"),
    ({"source": "nope.npz", "task": "loop"}, "source file not found"),
    ({"source": "short.npz", "task": "loop"}, "too short"),
    ({"source": "zup.npz", "task": "loop"}, "not a body in metres with y up"),
    ({"source": "cm.npz", "task": "loop"}, "not a body in metres"),
    ({"source": "bad.npy", "task": "loop"}, "expected shape (T, 22, 3)"),
    ({"source": "junk.npz", "task": "loop"}, "not a readable motion"),
    ({"source": 5, "task": "loop"}, "must be the path of a motion file"),
])
def test_bad_requests(clip, params, msg):
    params = dict(params)
    if isinstance(params.get("source"), str):
        params["source"] = "walk.npz" if params["source"] == "S" else params["source"]
        params["source"] = str(clip / params["source"])
    if isinstance(params.get("to"), str):
        params["to"] = str(clip / params["to"])
    assert msg in _err(params)


def test_a_long_hole_is_refused(tmp_path):
    j = np.concatenate([generate_clip("walk", s).joints for s in (5, 6, 7)])
    save_motion(tmp_path / "long.npz", joints=j)
    msg = _err({"source": str(tmp_path / "long.npz"), "task": "inpaint", "frames": [10, 200], "prompt": "x"})
    assert "the model makes at most 180 frames" in msg


def test_timeline_validation():
    items = validate_timeline([{"prompt": "a man walks forward", "seconds": 4}, {"prompt": "jumps twice",
                                                                                  "seconds": 3}])
    assert items == [("a man walks forward", 4.0), ("a man jumps twice", 3.0)]
    g = P.validate_generate({"timeline": [{"prompt": "walks", "seconds": 2}], "samples": 2})
    assert g.timeline == [("a person walks", 2.0)] and g.prompts == ["a person walks"] and g.samples == 2
    for bad, msg in (([], "non-empty list"), ([{"prompt": "x"}], "must be"), ([{"prompt": "x", "seconds": 0.5}],
                                                                                "at least 1 s"),
                     ([{"prompt": "x", "seconds": 200}] * 2, "at most 300 s"), ("walk", "non-empty list")):
        with pytest.raises(P.ProtocolError, match=msg):
            validate_timeline(bad)
    with pytest.raises(P.ProtocolError, match="leave out 'prompt'"):
        P.validate_generate({"timeline": [{"prompt": "x", "seconds": 2}], "prompt": "y"})


@pytest.mark.parametrize("argv,msg", [
    (["--task", "inpaint", "--frames", "40:400", "--prompt", "jumps"], "outside the source's 81 frames"),
    (["--task", "inpaint", "--frames", "40:40", "--prompt", "jumps"], "is empty"),
    (["--task", "inpaint", "--frames", "40-80", "--prompt", "jumps"], "--frames must be START:END"),
    (["--task", "inpaint", "--prompt", "jumps"], "needs --frames"),
    (["--task", "prefix", "--seconds", "30", "--prompt", "sits"], "at most 9.4 s"),
    (["--task", "inbetween", "--prompt", "turns"], "needs --to"),
    (["--task", "prefix", "--seconds", "1", "2", "--prompt", "x"], "--seconds takes one value"),
])
def test_cli_bad_input_exits_2_with_one_line(clip, tmp_path, capsys, argv, msg):
    from backend.cli import main

    out = tmp_path / "out"
    rc = main(["edit", str(clip / "walk.npz"), *argv, "--out", str(out), "--models", str(tmp_path / "nomodels")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
    assert not out.exists()


def test_cli_bad_source_and_models(clip, tmp_path, capsys):
    from backend.cli import main

    for src, msg in ((clip / "zup.npz", "not a body in metres"), (tmp_path / "none.npz", "not found")):
        rc = main(["edit", str(src), "--task", "loop", "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and msg in err[0]
    rc = main(["edit", str(clip / "walk.npz"), "--task", "loop", "--out", str(tmp_path / "o"), "--models",
               str(tmp_path / "nomodels")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "models folder not found" in err[-1]
    rc = main(["generate", "--timeline", "walks", "--models", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "PROMPT:SECONDS" in err[-1]
    rc = main(["generate", "--models", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2 and "give prompts or --timeline" in capsys.readouterr().err
