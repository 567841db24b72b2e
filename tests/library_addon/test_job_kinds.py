"""The session's jobs have kinds: a library job (describe, index, search) neither blocks the Generate panel nor is
cancelled by its Cancel, a generation neither blocks nor is cancelled by the Library panel, and each panel says
when its request waits behind the other's (the backend runs one request at a time). Generation, edit and
timeline share the Generate panel: one at a time. A stand-in client records the requests and cancels; the
replies are fed to the session's poller as the backend would send them."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

import remomask_addon  # noqa: E402
from remomask_addon.ops import session  # noqa: E402
from remomask_addon.ui import preferences  # noqa: E402

pytestmark = pytest.mark.blender


class StubClient:
    """Answers nothing by itself: ``reply`` queues an event for ``poll``."""

    def __init__(self):
        self.sent, self.cancelled, self.events = [], [], []

    def settings_key(self):
        return ("stub",)

    def request(self, method, params):
        self.sent.append((method, dict(params)))
        return len(self.sent)

    def cancel(self, rid):
        self.cancelled.append(rid)

    def poll(self):
        out, self.events = self.events, []
        return out

    def reply(self, rid, **ev):
        self.events.append({"id": rid, **ev})
        session.poll_once()


class _Settings:
    place_takes = "BESIDE"

    def problem(self):
        return None


@pytest.fixture
def env(monkeypatch, tmp_path):
    remomask_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    stub = StubClient()
    monkeypatch.setattr(session, "_CLIENT", stub)
    monkeypatch.setattr(session, "get_client", lambda settings: stub)
    monkeypatch.setattr(preferences, "settings", lambda context=None: _Settings())
    session._JOBS.clear()
    scene = bpy.context.scene
    scene.remomask.prompt = "a person walks forward"
    scene.remomask.target = 'NEW'
    scene.remomask_library.folder = str(tmp_path)
    scene.remomask_library.query = "a jump"
    yield scene, stub
    session._JOBS.clear()
    session._CLIENT = None
    session.remove_timer()
    bpy.ops.wm.read_homefile(use_empty=True)
    remomask_addon.unregister()


def hit(score):
    return {"file": "walk.npy", "path": "/lib/walk.npy", "start": 0, "end": 40, "start_s": 0.0, "end_s": 2.0,
            "score": score}


def test_generate_starts_and_cancels_while_a_library_search_runs(env):
    scene, stub = env
    lib, props = scene.remomask_library, scene.remomask
    assert bpy.ops.remomask.library_search() == {"FINISHED"}
    search = len(stub.sent)
    assert stub.sent[-1][0] == "library_search" and lib.status == "Searching 'a jump'..."

    # Generate is not refused because of the search; it says that it waits behind it
    assert bpy.ops.remomask.generate() == {"FINISHED"}
    gen = len(stub.sent)
    assert stub.sent[-1][0] == "generate" and gen == search + 1
    assert props.running and props.stage == "queued after a library search"
    assert props.status == "Generating 'a person walks forward'..." and not props.status_is_error

    # Generate's Cancel cancels the generation only; the search goes on and its reply lands in the library
    assert bpy.ops.remomask.cancel() == {"FINISHED"}
    assert stub.cancelled == [gen]
    assert not props.running and props.status == "Cancelling..."
    assert not session._JOBS[search].get("cancelled") and lib.status == "Searching 'a jump'..."
    stub.reply(search, result={"hits": [hit(0.9), hit(0.7)]})
    assert [round(h.score, 3) for h in lib.hits] == [0.9, 0.7]
    assert lib.status == "2 result(s) for 'a jump'." and not lib.status_is_error
    assert props.status == "Cancelling..."           # the library's reply did not touch the Generate panel
    stub.reply(gen, error={"code": "cancelled", "message": "cancelled"})
    assert props.status == "Cancelled." and not session._JOBS


def test_generate_cancel_with_only_a_library_job_cancels_nothing(env):
    scene, stub = env
    assert bpy.ops.remomask.library_index() == {"FINISHED"}
    assert scene.remomask_library.indexing
    assert bpy.ops.remomask.cancel() == {"CANCELLED"}          # "Nothing is running." for the Generate panel
    assert stub.cancelled == [] and scene.remomask.status == ""
    stub.reply(1, event="progress", stage="embedding", fraction=0.25)
    assert scene.remomask_library.progress == pytest.approx(0.25)
    assert scene.remomask.progress == 0.0 and scene.remomask.stage == ""   # not the Generate panel's bar


def test_library_cancel_leaves_the_generation_running(env):
    scene, stub = env
    lib, props = scene.remomask_library, scene.remomask
    assert bpy.ops.remomask.generate() == {"FINISHED"}
    assert props.stage == "starting"                                 # nothing ahead of it
    assert bpy.ops.remomask.library_index() == {"FINISHED"}
    assert lib.status.endswith("(queued after a generation)") and lib.status.startswith("Indexing ")
    assert bpy.ops.remomask.library_cancel() == {"FINISHED"}
    assert stub.cancelled == [2] and not session._JOBS[1].get("cancelled")
    assert props.running and props.status == "Generating 'a person walks forward'..."
    stub.reply(1, event="progress", stage="sampling", fraction=0.5)
    assert props.progress == pytest.approx(0.5) and props.stage == "sampling"
    assert lib.progress == 0.0
    stub.reply(2, error={"code": "cancelled", "message": "cancelled"})
    assert lib.status == "Indexing cancelled; the previous index is kept." and not lib.indexing
    assert props.running and 1 in session._JOBS


def test_the_library_status_drops_the_queue_note_once_its_job_runs(env):
    scene, stub = env
    lib = scene.remomask_library
    assert bpy.ops.remomask.generate() == {"FINISHED"}
    assert bpy.ops.remomask.library_index() == {"FINISHED"}
    assert lib.status.endswith("(queued after a generation)")
    stub.reply(1, result={"motions": []})                # the generation ends (here: with nothing to key)
    assert scene.remomask.status == "The backend returned no motion." and scene.remomask.status_is_error
    stub.reply(2, event="progress", stage="embedding", fraction=0.1)
    assert lib.status.startswith("Indexing ") and "queued" not in lib.status and lib.indexing


def test_one_generation_kind_at_a_time_with_a_message_that_names_it(env):
    scene, stub = env
    assert bpy.ops.remomask.generate() == {"FINISHED"}
    n = len(stub.sent)
    with pytest.raises(RuntimeError, match="A generation is already running; wait for it or press Cancel."):
        bpy.ops.remomask.generate()
    scene.timeline_markers.new("a person jumps", frame=1)
    with pytest.raises(RuntimeError, match="A generation is already running"):
        bpy.ops.remomask.timeline_generate()
    assert len(stub.sent) == n                           # nothing else was sent
    session._JOBS[1]["kind"] = "edit"
    with pytest.raises(RuntimeError, match="An edit is already running"):
        bpy.ops.remomask.generate()
    # a library search is not a generation: it is sent, and says it waits
    assert bpy.ops.remomask.library_search() == {"FINISHED"}
    assert scene.remomask_library.status == "Searching 'a jump'... (queued after an edit)"


def test_the_job_schema_and_its_hooks(env, tmp_path):
    scene, stub = env
    with pytest.raises(ValueError, match="Unknown job kind 'render'"):
        session.add_job(9, {"kind": "render", "scene": scene.name})
    with pytest.raises(ValueError, match="on_end is not callable"):
        session.add_job(9, {"kind": "generate", "scene": scene.name, "on_end": "x"})
    assert not session._JOBS
    calls = []
    tmp = tmp_path / "source.npy"
    tmp.write_bytes(b"x")

    def on_result(job, sc, result):
        calls.append(("result", tmp.exists(), result["n"]))
        return f"applied {result['n']}"

    job = {"kind": "edit", "what": "Edit", "scene": scene.name, "undo": "ReMoMask: test",
           "on_result": on_result, "on_end": lambda j: (calls.append(("end",)), tmp.unlink())}
    session.add_job(5, dict(job))
    stub.reply(5, result={"n": 3})
    assert calls == [("end",), ("result", False, 3)]              # on_end first, exactly once
    assert scene.remomask.status == "applied 3" and not scene.remomask.status_is_error

    # a hook that raises: one error line naming the job's what; on_end ran
    tmp.write_bytes(b"x")
    session.add_job(6, dict(job, on_result=lambda j, s, r: 1 / 0))
    stub.reply(6, result={})
    assert scene.remomask.status == "Could not apply the edit: division by zero" and scene.remomask.status_is_error
    assert not tmp.exists()

    # an error reply and opening another file end the job too (its temporary file goes)
    for rid, end in ((7, lambda: stub.reply(7, error={"code": "backend_died", "message": "gone"})),
                     (8, lambda: session._on_load_pre())):
        tmp.write_bytes(b"x")
        session.add_job(rid, dict(job))
        end()
        assert not tmp.exists() and rid not in session._JOBS
    assert calls.count(("end",)) == 4
