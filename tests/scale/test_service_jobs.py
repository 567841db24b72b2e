"""The service's work without Ray (``backend/scale/service_jobs.py``): which requests share one pipeline call,
each request's motions handed back to it, cancellation, request validation."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from backend.errors import UserError
from backend.scale import service_jobs as SJ
from backend.serving import postprocess
from tests.server.standin import StandIn


@pytest.fixture
def gen(monkeypatch, tmp_path):
    postprocess.set_fitter("tests.server.standin:fast_fit")
    yield StandIn()
    postprocess.set_fitter(None)


def _job(**params):
    return SJ.parse_job("generate", {"length_s": 2.0, "seed": 1, **params})


def test_compatible_requests_share_one_call_and_get_their_own_motions(gen):
    calls = []
    real = gen.generate
    gen.generate = lambda req, progress, cancelled: calls.append(list(req.prompts)) or real(req, progress, cancelled)
    jobs = [_job(prompt="a person walks"), _job(prompts=["a person runs", "a person waves"], samples=1),
            _job(prompt="a person jumps", seed=2), _job(prompt="a person sits", samples=2)]
    groups = SJ.groups_of(jobs)
    assert [[jobs.index(j) for j in g] for g in groups] == [[0, 1], [2], [3]]
    finals = SJ.run_batch_of_jobs(gen, jobs, replica="r1")
    assert calls == [["a person walks", "a person runs", "a person waves"], ["a person jumps"], ["a person sits"]]
    expect = [["a person walks"], ["a person runs", "a person waves"], ["a person jumps"],
              ["a person sits", "a person sits"]]
    for f, prompts in zip(finals, expect):
        res = f["result"]
        assert res["batch"]["size"] == 4 and res["batch"]["replica"] == "r1"
        got = []
        for m in res["motions"]:
            with np.load(io.BytesIO(base64.b64decode(m["files"]["npz"]))) as z:
                got.append(str(z["prompt"]))
                assert z["joints"].shape == (40, 22, 3)
            assert m["files"]["bvh"] and "/" not in m["path"]
        assert got == prompts
    assert finals[0]["result"]["batch"]["group"] == 2 and finals[2]["result"]["batch"]["group"] == 1


def test_a_cancelled_request_gets_cancelled_and_its_mates_their_results(gen):
    a, b = _job(prompt="a person walks"), _job(prompt="a person runs")
    b.cancel.set()
    fa, fb = SJ.run_batch_of_jobs(gen, [a, b])
    assert fb == {"error": {"code": "cancelled", "message": "cancelled"}}
    assert len(fa["result"]["motions"]) == 1
    a.cancel.set()
    assert [f["error"]["code"] for f in SJ.run_batch_of_jobs(gen, [a, b])] == ["cancelled", "cancelled"]


def test_requests_are_validated_with_the_protocol_rules():
    for method, body, words in (("generate", {"prompt": "a person walks", "out_dir": "/x"}, "out_dir"),
                                ("generate", {"prompt": "a person walks", "length_s": 99}, "length_s"),
                                ("generate", [1], "JSON object"),
                                ("describe", {}, "unknown method"),
                                ("edit", {"source": "/server/path.npz", "task": "inbetween"}, "contents")):
        with pytest.raises(UserError, match=words) as e:
            SJ.parse_job(method, body)
        assert e.value.code == ("unknown_method" if method == "describe" else "invalid_params")
    with pytest.raises(UserError, match="base64"):
        SJ.parse_job("edit", {"source": {"name": "a.npz", "data_b64": "%%%"}, "task": "inbetween"})


def test_a_merged_request_gets_the_motion_it_gets_alone():
    """Requests merged into one pipeline call get, to the bit, the joints each would get alone (each motion draws
    from its own generator): the real pipeline on the tiny random models of tests/models, whose motions differ
    with the seed (the release fixture's do not)."""
    from backend.generation.pipeline import Pipeline
    from backend.serving.generators import PipelineGenerator
    from tests.models.conftest import StubTextEncoder, build_tiny

    postprocess.set_fitter("tests.server.standin:fast_fit")
    try:
        gen = PipelineGenerator()
        gen.pipeline = Pipeline(build_tiny(), StubTextEncoder())
        kw = {"time_steps": 2, "length_s": 2.0, "seed": 3}

        def joints(jobs):
            out = []
            for f in SJ.run_batch_of_jobs(gen, jobs, replica="r"):
                for m in f["result"]["motions"]:
                    with np.load(io.BytesIO(base64.b64decode(m["files"]["npz"]))) as z:
                        out.append(np.array(z["joints"]))
            return out

        merged = joints([_job(prompt="a person walks", **kw), _job(prompts=["a person runs", "a person waves"],
                                                                    **kw)])
        alone = joints([_job(prompt="a person runs", **kw)]) + joints([_job(prompt="a person waves", **kw)])
        assert len(merged) == 3 and np.array_equal(merged[1], alone[0]) and np.array_equal(merged[2], alone[1])
        other = joints([_job(prompt="a person runs", **{**kw, "seed": 4})])  # the model's motions do vary
        assert not np.array_equal(other[0], alone[0])
    finally:
        postprocess.set_fitter(None)
