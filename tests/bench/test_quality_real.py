"""bench/quality.py's real-motion part: generated motions of each real-motion family next to that family's real
clips, measured by the same functions on both sides. Run on the fake mocap folder (tests/mocap/fake_sets.py) and a
tiny random-weight release; no data or trained model needed."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.bench.scripts import load_bench

from backend.motion.features import mirror_joints
from tests.mocap.fake_sets import make_fake_mocap

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "quality.py"
FAMILIES = {"dance_salsa", "jumping_jacks", "push_ups", "jab"}  # what the fake folder holds


def _load():
    return load_bench("quality")


@pytest.fixture(scope="module")
def q():
    return _load()


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_mocap(tmp_path_factory.mktemp("mocap"))


@pytest.fixture(scope="module")
def real(q, fake):
    windows, notes = q.real_windows(fake)
    assert notes == []
    return windows


def _replay(q, source, seeds_seen):
    """A stand-in generator: for each prompt, the (mirrored) real window number ``seed`` of the family that
    ``source`` names for the prompt's family."""
    family_of = {q.family_prompt(f): f for f in FAMILIES}

    def generate(prompts, seed):
        seeds_seen.append(seed)
        out = []
        for p in prompts:
            clips = source[family_of[p]]
            out.append(mirror_joints(clips[seed % len(clips)]).astype(np.float32))
        return out

    return generate


def test_real_against_itself_gives_ratio_one(q, real):
    assert set(real) == FAMILIES
    assert len(real["dance_salsa"]) == 4 and all(len(real[f]) == 1 for f in FAMILIES - {"dance_salsa"})
    seen = []
    # 4 seeds: every salsa window once, the one window of each other family four times -> the same means
    sec = q.real_section(_replay(q, real, seen), real, sorted(FAMILIES), seeds=4)
    assert seen == [0, 1, 2, 3]
    assert set(sec["families"]) == FAMILIES
    for f, row in sec["families"].items():
        r, g = row["real"], row["generated"]
        assert r["clips"] == len(real[f]) and g["clips"] == 4
        assert np.isfinite(r["skate_cm_s"]) and r["skate_cm_s"] > 1.0, (f, r)  # the fake clips walk
        assert np.isfinite(r["speed_m_s"]) and r["speed_m_s"] > 0.05
        for k in q.RATIOS:
            assert row["ratio"][k] == pytest.approx(1.0, abs=1e-6), (f, k, row["ratio"])
        assert row["ratio"]["skate_diff_cm_s"] == pytest.approx(0.0, abs=1e-4)
        assert row["ratio"]["lowest_median_diff_cm"] == pytest.approx(0.0, abs=1e-4)
        assert g["body_on_floor"] == pytest.approx(r["body_on_floor"], abs=1e-9)
        assert not row["off_feet"]  # the fake push-ups are a standing walk: measured, not assumed from the name
        # the fake Mesh2Motion clips walk in place (a treadmill), the fake salsa takes travel
        assert row["in_place"] == (f != "dance_salsa"), (f, r["travel_m_s"], r["skate_cm_s"])
    assert sec["families_on_feet_compared"] == 1  # treadmill skate is left out of the medians
    assert sec["median_ratio_on_feet"]["skate_cm_s"] == pytest.approx(1.0, abs=1e-6)
    # the pairing is by family: salsa windows generated for every prompt do not match the jab clip
    other = q.real_section(_replay(q, {f: real["dance_salsa"] for f in FAMILIES}, []), real, ["jab"], seeds=4)
    assert abs(other["families"]["jab"]["ratio"]["speed_m_s"] - 1.0) > 0.05
    assert "generated" not in other["families"]["dance_salsa"]  # not asked for: real figures only


def test_body_on_floor_marks_a_lying_motion(q, real):
    lying = real["jab"][0].copy()
    lying[..., 1] = lying[..., 1] * 0.1  # squashed flat onto the floor: every joint within 15 cm
    assert q.body_on_floor(lying) == 1.0
    assert q.body_on_floor(real["jab"][0]) == 0.0
    sec = q.real_section(lambda prompts, seed: [], {"jab": [lying]}, [], seeds=1)
    assert sec["families"]["jab"]["off_feet"] and sec["families_on_feet_compared"] == 0


def test_trained_families_from_the_model_folder(q, tmp_path):
    fams = ["dance_salsa", "jab"]
    assert q.trained_families(tmp_path, fams)[0] == []  # no PROVENANCE.json
    (tmp_path / "PROVENANCE.json").write_text(json.dumps({"corpus": {"generator": "backend.synthetic"}}))
    got, why = q.trained_families(tmp_path, fams)
    assert got == [] and "without real motion" in why
    (tmp_path / "PROVENANCE.json").write_text(json.dumps({"corpus": {"mocap": {"dir": "/data/mocap"}}}))
    assert q.trained_families(tmp_path, fams) == (fams, f"{tmp_path.name} was trained with real motion from "
                                                        "/data/mocap")
    (tmp_path / "coverage.json").write_text(json.dumps({"words": [], "families": [  # as coverage_file writes it
        {"name": "jab", "label": "Jab", "source": "captured", "examples": ["a person throws a left jab"]},
        {"name": "crawl", "label": "Crawl", "source": "captured", "examples": []}]}))
    assert q.trained_families(tmp_path, fams)[0] == ["jab"]
    # the shipped starter (issue #16) was trained with real motion
    got, why = q.trained_families(None, fams)
    assert got == fams and "with real motion" in why


def test_bad_arguments_are_one_message(q, tmp_path, capsys):
    for argv, text in ((["--mocap", str(tmp_path / "nope")], "no such folder"),
                       (["--families", "salsa,jab"], "unknown salsa")):
        with pytest.raises(SystemExit) as e:
            q.main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert text in err and "Traceback" not in err


@pytest.mark.slow  # > 1.4 s: make test-fast stays under 90 s
def test_quick_run_on_a_tiny_model(q, fake, tmp_path):
    import torch

    from tests.release_fixture import make_tiny_release

    torch.set_num_threads(1)
    model = make_tiny_release(tmp_path / "tiny")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = q.main(["--quick", "--seeds", "2", "--model", str(model), "--mocap", str(fake), "--families", "all",
                     "--json"])
    assert rc == 0
    out = json.loads(buf.getvalue())
    assert out["seeds"] == 2 and out["prompts"] == ["a person walks forward"]
    assert out["figures"]["corpus"]["clips"] == 2
    sec = out["real"]
    assert sec["generated_families"] == sorted(FAMILIES) and sec["mocap_dir"] == str(fake)
    for f, row in sec["families"].items():
        assert row["prompt"] == q.family_prompt(f)
        for key in ("skate_cm_s", "lowest_median_cm", "speed_m_s", "jerk_mm", "body_on_floor"):
            assert isinstance(row["real"][key], float) and np.isfinite(row["real"][key]), (f, key)
        g = row["generated"]
        assert g["clips"] == 2
        for key in ("lowest_median_cm", "speed_m_s", "jerk_mm", "body_on_floor"):
            assert isinstance(g[key], float) and np.isfinite(g[key]), (f, key)
        # a random model's toes may never come near the floor: then no skate, and no ratio
        assert (g["skate_cm_s"] is None) == (g["skate_clips"] == 0)
        assert (row["ratio"]["skate_cm_s"] is None) == (g["skate_cm_s"] is None)
        assert row["ratio"]["speed_m_s"] == pytest.approx(g["speed_m_s"] / row["real"]["speed_m_s"])
    # the text report: one row per family, the real clips' figures printed
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = q.main(["--quick", "--seeds", "1", "--model", str(model), "--mocap", str(fake)])
    text = buf.getvalue()
    assert rc == 0
    assert "no real-motion family generated" in text
    for f in FAMILIES:
        rows = [ln for ln in text.splitlines() if ln.startswith((f"| {f} |", f"| {f} \u2020 |"))]
        assert len(rows) == 1, f
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        assert cells[1].endswith("/ -") and float(cells[2]) > 1.0  # real skate printed, nothing generated


def test_hand_slide_of_wrists_on_the_floor(q, real):
    clip = real["jab"][0].copy()
    t = np.arange(len(clip))
    clip[:, [20, 21], 1:] = [0.05, 0.2]                                  # both wrists on the floor ...
    clip[:, 20, 0] = 0.10 * t / 20.0                                     # ... the left one sliding 10 cm/s
    clip[:, 21, 0] = 0.3 + 0.0 * t
    speed, share = q.hand_slide(clip)
    assert share == 1.0 and speed == pytest.approx(0.05, abs=1e-6)     # the mean of 0.10 and 0.00 m/s
    assert q.hand_slide(real["jab"][0]) == (None, 0.0)                  # a standing clip: no hand on the floor
    lying = clip.copy()
    lying[..., 1] = np.minimum(lying[..., 1], 0.1)                       # off its feet: the fitted figures too
    pinned = []

    def fit(j):
        j = np.asarray(j, float).copy()
        j[:, 20, 0] = j[0, 20, 0]                                        # a fit that pins the left wrist
        pinned.append(j)
        return j

    sec = q.real_section(lambda prompts, seed: [lying], {"jab": [lying]}, ["jab"], seeds=2, fit=fit)
    row = sec["families"]["jab"]
    assert row["off_feet"] and len(pinned) == 2
    assert row["generated"]["hand_slide_cm_s"] == pytest.approx(5.0, abs=1e-4)
    assert row["fitted"]["hand_slide_cm_s"] == pytest.approx(0.0, abs=1e-9)
    standing = real["jab"][0]
    assert "fitted" not in q.real_section(lambda prompts, seed: [standing], {"jab": [standing]}, ["jab"], seeds=1,
                                          fit=fit)["families"]["jab"]   # on its feet: no hand figures
