"""coverage.json's families and example prompts (backend/train/coverage_file.py), reading them back
(backend.generation.coverage), the closest-example suggestion, `python -m backend.train coverage` on a trained
folder, `remomask info` and the server's hello."""

from __future__ import annotations

import json
import shutil

import pytest

from backend.generation.coverage import COVERAGE_FILE, Coverage, Family, load_coverage, words_of
from backend.synthetic.captions import SUBJECTS
from backend.synthetic.families import FAMILIES
from backend.train import main as train_main
from backend.train.configs import get_config
from backend.train.coverage_file import families, vocabulary, write_coverage

from tests.mocap.fake_sets import make_fake_mocap

COMPOUNDS = {"walk+wave", "walk&wave"}


@pytest.fixture(scope="module")
def fake_mocap(tmp_path_factory):
    return make_fake_mocap(tmp_path_factory.mktemp("mocap"), salsa_takes=1)


def _check_examples(fams, words):
    for f in fams:
        assert 1 <= len(f["examples"]) <= 4, f
        assert len(set(f["examples"])) == len(f["examples"])
        assert f["label"] and f["label"] != f["name"], f
        for ex in f["examples"]:
            assert ex.startswith(SUBJECTS), ex
            unknown = [w for w in words_of(ex) if w not in words]
            assert not unknown, (f["name"], ex, unknown)


def test_without_mocap_only_procedural_families(tmp_path):
    cfg = get_config("tiny")
    path = write_coverage(tmp_path, cfg)
    d = json.loads(path.read_text())
    names = [f["name"] for f in d["families"]]
    assert names[:len(FAMILIES)] == list(FAMILIES) and set(names[len(FAMILIES):]) == COMPOUNDS
    assert {f["source"] for f in d["families"]} == {"procedural"}
    assert set(d["words"]) == vocabulary(cfg) and "salsa" not in d["words"]
    _check_examples(d["families"], set(d["words"]))
    by = {f["name"]: f for f in d["families"]}
    assert by["walk"]["examples"][0] == "a person walks forward slowly"
    assert by["wave"]["examples"][0] == "a person waves with the right hand"
    assert by["turn"]["examples"] == ["a person turns ninety degrees to the left", "someone turns around to the right"]
    assert by["walk+wave"]["examples"] == ["a person walks forward slowly, then waves with the right hand"]
    assert by["walk&wave"]["examples"] == ["a person walks forward slowly while waving with the right hand"]
    # the file reads back: the same families, in order
    cov = load_coverage(tmp_path)
    assert [f.to_json() for f in cov.families] == d["families"]
    assert cov.examples()[0] == {"family": "walk", "label": "Walk", "prompt": "a person walks forward slowly"}
    assert len(cov.examples()) == sum(len(f["examples"]) for f in d["families"])


def test_with_mocap_lists_the_captured_families_found(tmp_path, fake_mocap):
    cfg = get_config("tiny")
    cfg["corpus"]["mocap"] = {"dir": str(fake_mocap)}
    d = json.loads(write_coverage(tmp_path, cfg).read_text())
    captured = {f["name"]: f for f in d["families"] if f["source"] == "captured"}
    # the fake folder holds salsa, jumping jacks, push-ups and a left jab (levitating is left out)
    assert set(captured) == {"dance_salsa", "jumping_jacks", "push_ups", "jab"}
    assert captured["dance_salsa"]["examples"][0] == "a person dances salsa"
    assert captured["dance_salsa"]["label"] == "Salsa dance"
    assert captured["push_ups"]["examples"][0] == "a person does push-ups"
    assert "salsa" in d["words"] and "jacks" in d["words"]
    _check_examples(d["families"], set(d["words"]))
    # every family the real data can hold, as if all were there: their examples use only training words
    from backend.mocap.labels import PHRASES

    allcfg = get_config("tiny")
    allcfg["corpus"]["mocap"] = {"dir": str(fake_mocap)}
    import backend.train.coverage_file as cf

    orig = cf.mocap_families
    try:
        cf.mocap_families = lambda _d: list(PHRASES)
        fams = families(allcfg)
    finally:
        cf.mocap_families = orig
    assert {f["name"] for f in fams} == set(FAMILIES) | COMPOUNDS | set(PHRASES)
    assert next(f for f in fams if f["name"] == "bow")["source"] == "procedural+captured"
    _check_examples(fams, vocabulary(allcfg))


def test_rerun_on_a_trained_folder(tmp_path, fake_mocap, capsys):
    out = tmp_path / "model"
    out.mkdir()
    cfg = get_config("tiny")
    cfg["corpus"]["mocap"] = {"dir": str(fake_mocap)}
    (out / "PROVENANCE.json").write_text(json.dumps({"config": cfg}))
    (out / COVERAGE_FILE).write_text(json.dumps({"words": ["walks"], "min_similarity": 0.5, "note": "by hand"}))
    assert train_main(["coverage", "--out", str(out)]) == 0
    d = json.loads((out / COVERAGE_FILE).read_text())
    assert d["note"] == "by hand" and d["min_similarity"] is None  # tiny has no threshold
    assert "jab" in {f["name"] for f in d["families"]} and "salsa" in d["words"]
    assert "families" in capsys.readouterr().out
    # another config named: its corpus (no mocap) replaces the folder's
    assert train_main(["coverage", "--out", str(out), "--config", "starter"]) == 0
    d = json.loads((out / COVERAGE_FILE).read_text())
    assert {f["source"] for f in d["families"]} == {"procedural"} and d["min_similarity"] == 0.76
    # the real motion it was trained with is gone: one message, the file unchanged
    gone = dict(cfg, corpus={**cfg["corpus"], "mocap": {"dir": str(tmp_path / "moved")}})
    (out / "PROVENANCE.json").write_text(json.dumps({"config": gone}))
    before = (out / COVERAGE_FILE).read_bytes()
    assert train_main(["coverage", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--mocap DIR" in err and "Traceback" not in err
    assert (out / COVERAGE_FILE).read_bytes() == before
    assert train_main(["coverage", "--out", str(out), "--mocap", str(fake_mocap)]) == 0
    assert train_main(["coverage", "--out", str(tmp_path / "nope")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    # the shipped starter only with --overwrite, like training
    from backend.generation.project_weights import STARTER_DIR

    before = (STARTER_DIR / COVERAGE_FILE).read_bytes()
    assert train_main(["coverage", "--out", str(STARTER_DIR)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (STARTER_DIR / COVERAGE_FILE).read_bytes() == before


def test_old_and_new_files_load(tmp_path):
    (tmp_path / COVERAGE_FILE).write_text(json.dumps({"words": ["walks"], "min_similarity": 0.7}))
    old = load_coverage(tmp_path)
    assert old == Coverage(frozenset({"walks"}), 0.7, spelling=True) and old.families == () and old.examples() == []
    assert "families" not in old.to_json()
    new = {"words": ["a", "person", "dances", "salsa"], "min_similarity": None,
           "families": [{"name": "dance_salsa", "label": "Salsa dance", "source": "captured",
                         "examples": ["a person dances salsa"]}]}
    (tmp_path / COVERAGE_FILE).write_text(json.dumps(new))
    cov = load_coverage(tmp_path)
    assert cov.families == (Family("dance_salsa", "Salsa dance", "captured", ("a person dances salsa",)),)
    assert cov.to_json() == {**new, "words": sorted(new["words"])}
    (tmp_path / COVERAGE_FILE).write_text(json.dumps({"words": [], "families": [{"label": "no name"}]}))
    from backend.errors import ModelError

    with pytest.raises(ModelError, match="families"):
        load_coverage(tmp_path)


def _fam(name, *examples):
    return Family(name, name.title(), "procedural", tuple(examples))


def test_unknown_words_suggest_the_closest_example():
    fams = (_fam("walk", "a person walks forward slowly"), _fam("wave", "a person waves with the right hand"),
            _fam("dance_salsa", "a person dances salsa"), _fam("dance_generic", "a person dances"),
            _fam("push_ups", "a person does push-ups"))
    words = {w for f in fams for e in f.examples for w in words_of(e)}
    cov = Coverage(frozenset(words), None, fams)
    (w,) = cov.warnings("a person dances the tango")
    assert "'tango'" in w and w.endswith("try 'a person dances'")
    (w,) = cov.warnings("someone dancing salsa with a partner")
    assert w.endswith("try 'a person dances salsa'")
    (w,) = cov.warnings("a guy waving the left hand")
    assert w.endswith("try 'a person waves with the right hand'")
    (w,) = cov.warnings("une personne saute")  # nothing shared: no suggestion
    assert "try" not in w
    assert cov.warnings("a person walks forward slowly") == []
    assert Coverage(frozenset(words), None).warnings("a person dances the tango")[0].endswith("or stand still")


def test_info_prints_the_families(tmp_path, capsys):
    from backend import cli
    from backend.generation.project_weights import STARTER_DIR

    from tests.server.client import STANDIN

    model = tmp_path / "m"
    shutil.copytree(STARTER_DIR, model, ignore=shutil.ignore_patterns("logs"))
    write_coverage(model, get_config("starter"))
    assert cli.main(["info", "--models", str(model)]) == 0
    out = capsys.readouterr().out
    assert f"families: {len(FAMILIES) + 2} (label, source, an example prompt)" in out
    assert "  Walk (procedural): 'a person walks forward slowly'" in out
    assert "  Two actions at once (X while Y) (procedural): 'a person walks forward slowly while waving with " \
           "the right hand'" in out
    assert cli.main(["info", "--models", str(model), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["families"][0]["examples"][0] == "a person walks forward slowly"
    # loaded through a generator: the same list, and the describe()'s examples are not dumped as JSON
    assert cli.main(["info", "--models", str(model), "--generator", STANDIN]) == 0
    out = capsys.readouterr().out
    assert "  Jog (procedural): 'a person jogs forward at a normal pace'" in out
    # a folder whose coverage.json names none says so; a broken one is a problem
    (model / COVERAGE_FILE).write_text(json.dumps({"words": ["walks"], "min_similarity": None}))
    assert cli.main(["info", "--models", str(model)]) == 0
    assert "families: not listed" in capsys.readouterr().out
    (model / COVERAGE_FILE).write_text("{nope")
    assert cli.main(["info", "--models", str(model)]) == 2
    assert "problem: " in capsys.readouterr().out


def test_hello_carries_the_examples(tmp_path):
    """The real loader puts the examples in the pipeline's info, so describe() and the server's hello carry
    them to the add-on (models.examples)."""
    import torch

    from backend.generation.model_folder import load_pipeline
    from backend.generation.project_weights import STARTER_DIR
    from backend.serving.generators import PipelineGenerator
    from backend.serving.server import Server

    torch.set_num_threads(1)
    model = tmp_path / "m"
    shutil.copytree(STARTER_DIR, model, ignore=shutil.ignore_patterns("logs"))
    write_coverage(model, get_config("starter"))
    gen = PipelineGenerator()
    gen.pipeline = load_pipeline(model, load_retrieval=False)
    server = Server(gen, str(model), "cpu")
    try:
        ex = server.hello_result()["models"]["examples"]
    finally:
        server.jobs.close()
    assert ex[0] == {"family": "walk", "label": "Walk", "prompt": "a person walks forward slowly"}
    assert {"family": "walk&wave", "label": "Two actions at once (X while Y)",
            "prompt": "a person walks forward slowly while waving with the right hand"} in ex
    assert len(ex) == len(load_coverage(model).examples())
    # a folder without families: no examples key (the official release has none)
    (model / COVERAGE_FILE).write_text(json.dumps({"words": ["walks"], "min_similarity": None}))
    assert "examples" not in load_pipeline(model, load_retrieval=False).info


def test_a_shared_common_word_is_no_suggestion():
    fams = (_fam("dance_charleston", "someone does the charleston"), _fam("turn", "a person turns to the left"),
            _fam("wave", "a person waves with the right hand"))
    words = {w for f in fams for e in f.examples for w in words_of(e)}
    cov = Coverage(frozenset(words), None, fams)
    (w,) = cov.warnings("a man does a cartwheel to the left")
    assert "'cartwheel'" in w and "try" not in w
    (w,) = cov.warnings("a person waves the right hand frantically")
    assert w.endswith("try 'a person waves with the right hand'")


def test_training_writes_the_families(tmp_path):
    """run_stages writes coverage.json (families included) before its first stage."""
    from backend.train import run_stages

    assert run_stages([], "tiny", tmp_path, progress=False) == {}
    d = json.loads((tmp_path / COVERAGE_FILE).read_text())
    assert [f["name"] for f in d["families"]][:3] == ["walk", "jog", "run"]
    assert d["families"] == families(get_config("tiny"))
