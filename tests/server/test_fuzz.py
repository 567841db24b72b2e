""">= 1000 malformed or hostile request lines against ONE running server: every non-blank line gets exactly
one final reply (result or error with a known code), the server neither crashes nor hangs, and a valid hello
still answers afterwards."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.serving.protocol import ERROR_CODES, GENERATE_KEYS
from tests.server.client import ServerProc

pytestmark = pytest.mark.slow  # hypothesis fuzzing of a server subprocess

SENT = {"lines": 0}
SEEN: dict = {}

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**80), max_value=10**80)
           | st.floats(allow_nan=False) | st.text(max_size=30)
           | st.sampled_from([0, -1, 2**63, 2**64, 1e308, -1e308, 5e-324, "", " ", "\x00", "\u202e", "🕺"]))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                          max_size=4),
                           max_leaves=12)
ids = json_values | st.text(min_size=1, max_size=300) | st.integers()
methods = (st.sampled_from(["hello", "generate", "cancel", "Hello", "GENERATE", "", "shutdown "])
           | st.text(max_size=12) | json_values).filter(lambda m: m != "shutdown")
# out_dir strings stay relative (the server runs in a temp folder) so a valid request cannot write elsewhere
safe_dirs = st.text(alphabet=st.characters(codec="ascii", categories=["Ll", "Nd"]), min_size=1, max_size=8)
gen_values = st.one_of(json_values, st.just("a person walks"), st.lists(st.text(max_size=600), max_size=70),
                       st.floats(min_value=-1, max_value=20), st.integers(-5, 200))
gen_params = st.dictionaries(st.sampled_from(sorted(GENERATE_KEYS - {"out_dir"}) + ["bogus"]), gen_values,
                             max_size=6).flatmap(
    lambda d: st.one_of(st.just(d), safe_dirs.map(lambda o: {**d, "out_dir": "out/" + o}),
                        json_values.filter(lambda v: not isinstance(v, str)).map(lambda o: {**d, "out_dir": o})))
cancel_params = st.fixed_dictionaries({}, optional={"target": ids, "x": json_values})
requests = st.fixed_dictionaries(
    {"id": ids, "method": methods},
    optional={"params": st.one_of(json_values, gen_params, cancel_params), "extra": json_values},
).map(lambda d: json.dumps(d).encode())
partial = requests.flatmap(lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda n: b[:n]))
dropped_keys = st.dictionaries(st.sampled_from(["id", "method", "params"]), json_values, max_size=3).map(
    lambda d: json.dumps(d).encode())
binary = st.binary(min_size=1, max_size=200)
deep = st.integers(10, 200_000).flatmap(lambda n: st.sampled_from([
    b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n, b'{"id": 1, "method": "hello", "params": '
    + b"[" * n + b"]" * n + b"}"]))
huge_numbers = st.sampled_from([b'{"id": 1' + b"0" * 5000 + b', "method": "hello"}', b'{"id": 1e999, "method": "hello"}',
                                b'{"id": -Infinity, "method": "hello"}', b'{"id": 3, "method": "generate", "params": '
                                b'{"prompt": "a", "samples": 1e999}}'])
near_valid = st.fixed_dictionaries(
    {"id": st.integers(0, 50) | st.text(min_size=1, max_size=3), "method": st.just("generate"),
     "params": st.fixed_dictionaries(
         {"prompt": st.text(min_size=1, max_size=40)},
         optional={"length_s": st.none() | st.floats(0.0, 12.0), "seed": st.integers(-2, 2**33),
                   "samples": st.integers(0, 9), "cond_scale": st.floats(-1, 10), "time_steps": st.integers(0, 120),
                   "temperature": st.floats(-0.5, 3), "topk": st.floats(-0.2, 1.2), "use_retrieval": st.booleans(),
                   "fit": st.booleans(), "out_dir": safe_dirs.map(lambda o: "out/" + o)})},
).map(lambda d: json.dumps(d).encode())
lines = st.one_of(requests, near_valid, requests, partial, dropped_keys, binary, deep, huge_numbers,
                  st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")))


def _clean(line: bytes) -> bytes:
    return line.replace(b"\n", b" ")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("fuzz-cwd")
    s = ServerProc("--max-queued", "4", cwd=cwd, models=cwd)
    yield s
    s.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          database=None)
@given(batch=st.lists(lines, min_size=2, max_size=10))
def test_hostile_requests(fuzz_server, batch):
    s = fuzz_server
    batch = [_clean(b) for b in batch]
    expected = sum(1 for b in batch if b.strip())
    s.send_raw(b"".join(b + b"\n" for b in batch))
    SENT["lines"] += len(batch)
    finals = 0
    while finals < expected:
        m = s.recv(timeout=30)  # a hang fails here
        assert isinstance(m, dict) and "id" in m
        if m.get("event") == "progress":
            assert 0 <= m["fraction"] <= 1
            continue
        assert ("result" in m) != ("error" in m), m
        code = m["error"]["code"] if "error" in m else ("motions" if "motions" in m["result"] else "result")
        SEEN[code] = SEEN.get(code, 0) + 1
        if "error" in m:
            assert m["error"]["code"] in ERROR_CODES and isinstance(m["error"]["message"], str)
        finals += 1
    assert s.p.poll() is None, s.stderr()


def test_server_still_answers_after_fuzz(fuzz_server):
    s = fuzz_server
    s.send_raw(b'{"id": 1, "method": "hello", "params": {"pad": "' + b"y" * (2 << 20) + b'"}}\n')  # too long
    SENT["lines"] += 1
    assert s.recv()["error"]["code"] == "bad_request"
    # everything left from valid fuzz generates is answered; then a plain hello
    _, reply = s.call("hello", req_id="final-hello", timeout=60)
    assert reply["result"]["protocol"] == 1
    assert SENT["lines"] >= 1000, SENT
    print("fuzz replies by code:", SEEN)
    # the fuzz reached past parsing: validation errors and successful requests both occurred
    assert SEEN.get("invalid_params", 0) > 20 and SEEN.get("motions", 0) > 5, SEEN
    assert s.p.poll() is None
    assert "internal" not in SEEN and "Traceback" not in s.stderr(), s.stderr()[-3000:]
