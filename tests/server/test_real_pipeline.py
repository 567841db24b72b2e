"""The server with the REAL pipeline adapter (no --generator): tiny random-weight models written in the
official release layout, plus a tiny traced CLIP text tower saved as ``ViT-B-32.pt`` (an OpenAI-style
TorchScript archive). Checks the wiring end to end: load_pipeline -> CLIP -> Pipeline -> joints -> files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.release_fixture import make_tiny_release
from tests.server.client import ServerProc

pytestmark = pytest.mark.slow  # the real pipeline end to end through a server subprocess


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_tiny_release(tmp_path_factory.mktemp("release"))


@pytest.mark.filterwarnings("ignore")
def test_real_pipeline_through_the_server(release, tmp_path):
    s = ServerProc(models=release, env={"OMP_NUM_THREADS": "1"}, generator=None)
    try:
        _, hello = s.call("hello", timeout=120)
        assert "result" in hello, (hello, s.stderr()[-3000:])
        assert hello["result"]["models"]["path"] == str(release)
        assert "retrieval" not in hello["result"]["capabilities"]  # the tiny release has no Part-TMR
        # ... so the transformers can only be conditioned on stock CLIP, and hello says so
        assert hello["result"]["models"]["text_conditioning"] == "CLIP ViT-B/32 text features"
        events, reply = s.call("generate", {"prompts": ["a person walks", "jump"], "length_s": 2.0, "samples": 2,
                                            "seed": 3, "time_steps": 2, "fit": False, "out_dir": str(tmp_path)},
                               timeout=120)
        assert "result" in reply, (reply, s.stderr()[-3000:])
        stages = [e["stage"] for e in events]
        assert stages[0] == "text" and stages[-1] == "write" and "decode" in stages
        from backend.serving.protocol import PROGRESS_STAGES
        assert set(stages) <= set(PROGRESS_STAGES)
        assert [e["fraction"] for e in events] == sorted(e["fraction"] for e in events)
        motions = reply["result"]["motions"]
        assert [(m["prompt"], m["sample"]) for m in motions] == [("a person walks", 0), ("a person walks", 1),
                                                                 ("jump", 0), ("jump", 1)]
        assert any("retrieval unavailable" in w for w in reply["result"]["warnings"])
        for m in motions:
            with np.load(m["path"]) as z:
                assert z["joints"].shape == (40, 22, 3) and np.isfinite(z["joints"]).all()
                assert z["features"].shape[1] == 263 and m["frames"] == 40 and m["seed"] == 3
        # the length estimator path (length_s null) and determinism in the seed
        _, a = s.call("generate", {"prompt": "wave", "seed": 5, "time_steps": 2, "fit": False,
                                   "out_dir": str(tmp_path / "a")}, timeout=120)
        _, b = s.call("generate", {"prompt": "wave", "seed": 5, "time_steps": 2, "fit": False,
                                   "out_dir": str(tmp_path / "b")}, timeout=120)
        ja, jb = (np.load(x["result"]["motions"][0]["path"])["joints"] for x in (a, b))
        assert 4 <= ja.shape[0] <= 196 and ja.shape[0] % 4 == 0
        np.testing.assert_array_equal(ja, jb)
        # fitting right after generation with whatever smpl_fitting this checkout has
        _, f = s.call("generate", {"prompt": "sit", "length_s": 1.0, "time_steps": 2,
                                   "out_dir": str(tmp_path / "f")}, timeout=300)
        (m,) = f["result"]["motions"]
        try:
            import smpl_fitting  # noqa: F401
        except ImportError:
            assert m["fit_error_mm"] is None and any("not installed" in w for w in f["result"]["warnings"])
        else:
            with np.load(m["path"]) as z:
                assert z["poses"].shape == (20, 24, 3) and np.isfinite(z["poses"]).all()
            assert m["fit_error_mm"] is not None and np.isfinite(m["fit_error_mm"])
    finally:
        s.close()


@pytest.mark.filterwarnings("ignore")
def test_real_pipeline_through_the_cli(release, tmp_path, capsys):
    from backend import cli

    code = cli.main(["generate", "a person kicks", "--models", str(release), "--out", str(tmp_path), "--device",
                     "cpu", "--length", "24", "--samples", "2", "--seed", "1", "--time-steps", "2", "--no-fit"])
    out, err = capsys.readouterr()
    assert code == 0, err
    paths = [Path(p) for p in out.split()]
    assert [p.name for p in paths] == ["a_person_kicks_s1_0.npz", "a_person_kicks_s1_1.npz"]
    for p in paths:
        with np.load(p) as z:
            assert z["joints"].shape == (24, 22, 3) and str(z["prompt"]) == "a person kicks"
    assert "retrieval unavailable" in err
    code = cli.main(["info", "--models", str(release)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "ViT-B-32.pt" in out


@pytest.mark.filterwarnings("ignore")
def test_user_errors_are_not_model_errors(release, tmp_path):
    """A request the model cannot serve because of what it asks (no length, and the folder has no length
    estimator) is answered invalid_params with the reason, not model_error; hello says there is no
    estimator."""
    import shutil

    no_est = tmp_path / "release"
    shutil.copytree(release, no_est)
    shutil.rmtree(next(no_est.rglob("length_estimator")))
    s = ServerProc(models=no_est, env={"OMP_NUM_THREADS": "1"}, generator=None)
    try:
        _, hello = s.call("hello", timeout=120)
        assert "length_estimator" not in hello["result"]["capabilities"]
        _, reply = s.call("generate", {"prompt": "wave", "time_steps": 2, "fit": False,
                                       "out_dir": str(tmp_path / "o")}, timeout=120)
        assert reply["error"] == {"code": "invalid_params", "message": "no length estimator loaded: give lengths"}
    finally:
        s.close()
