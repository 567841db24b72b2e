"""A stand-in generator backend for the add-on's tests: speaks the add-on <-> backend protocol (JSON lines on
stdin/stdout, see DESIGN.md section 4) and writes valid motion files with numpy only (no torch, no models).

    python fake_backend.py --models DIR [--device D]

Motion: SMPL rest skeleton (24 joints, y-up, metres), the arms swing and the root walks forward; joints are the
first 22 joints of forward kinematics of those poses, so ``joints`` and ``poses/trans/rest_joints`` agree.

Knobs (environment): FAKE_BACKEND_STEP_S (sleep between progress events, default 0.02),
FAKE_BACKEND_STEPS (progress events per generate, default 4), FAKE_BACKEND_EXIT_ON_GENERATE=1 (die with exit
code 3 after the first progress event, writing a last line to stderr), FAKE_BACKEND_FAIL_WORD (a generate
whose prompt contains it gets a model_error reply), FAKE_BACKEND_LOG (a file: every request line is appended
to it, so tests can check what the add-on sent), FAKE_BACKEND_VERSION and FAKE_BACKEND_DEVICE (what hello reports;
default fake-0.1 and cpu), FAKE_BACKEND_EXAMPLES (JSON: hello's models.examples; none by default).

Boolean generate params (``use_retrieval``, ``fit``, ``ground_feet``) are checked like the real server does
(``invalid_params`` unless true or false).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend.serving.protocol import GENERATION_STAGES  # noqa: E402 - the real stage names, never drifting

FPS = 20
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# SMPL-like rest joint positions (metres, y-up, facing +z), pelvis at the origin.
REST = np.array([
    [0.00, 0.00, 0.00], [0.06, -0.09, 0.00], [-0.06, -0.09, 0.00], [0.00, 0.11, -0.02],
    [0.10, -0.47, 0.00], [-0.10, -0.47, 0.00], [0.00, 0.25, 0.00], [0.09, -0.87, -0.04],
    [-0.09, -0.87, -0.04], [0.00, 0.31, 0.02], [0.11, -0.93, 0.08], [-0.11, -0.93, 0.08],
    [0.00, 0.52, 0.00], [0.08, 0.43, 0.00], [-0.08, 0.43, 0.00], [0.00, 0.60, 0.04],
    [0.18, 0.47, -0.01], [-0.18, 0.47, -0.01], [0.44, 0.45, -0.03], [-0.44, 0.45, -0.03],
    [0.69, 0.46, -0.02], [-0.69, 0.46, -0.02], [0.77, 0.45, -0.03], [-0.77, 0.45, -0.03],
], dtype=np.float64)

OUT = sys.stdout
LOCK = threading.Lock()
BOOL_PARAMS = ("use_retrieval", "fit", "ground_feet", "literal")


def send(obj) -> None:
    with LOCK:
        OUT.write(json.dumps(obj) + "\n")
        OUT.flush()


def rodrigues(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(theta, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(theta)[..., None]
    c = np.cos(theta)[..., None]
    eye = np.eye(3)
    return eye + s * k + (1 - c) * (k @ k)


def fk(poses: np.ndarray, trans: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """poses (T,24,3) axis-angle, trans (T,3), rest (24,3) -> joint positions (T,24,3)."""
    rots = rodrigues(poses)
    t = poses.shape[0]
    glob_r = np.zeros((t, 24, 3, 3))
    pos = np.zeros((t, 24, 3))
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            glob_r[:, j] = rots[:, j]
            pos[:, j] = rest[j] + trans
        else:
            glob_r[:, j] = glob_r[:, p] @ rots[:, j]
            pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", glob_r[:, p], rest[j] - rest[p])
    return pos


def make_motion(frames: int, seed: int, sample: int):
    rng = np.random.default_rng(seed * 1000 + sample)
    phase = rng.uniform(0, np.pi)
    t = np.arange(frames) / FPS
    poses = np.zeros((frames, 24, 3))
    swing = 0.5 * np.sin(2 * np.pi * t + phase)
    poses[:, 16, 2] = -1.2 + swing          # left shoulder
    poses[:, 17, 2] = 1.2 - swing           # right shoulder
    poses[:, 1, 0] = swing                  # hips
    poses[:, 2, 0] = -swing
    trans = np.zeros((frames, 3))
    trans[:, 1] = 0.93
    trans[:, 2] = 1.0 * t                   # walks forward along +z
    rest = REST.copy()
    joints = fk(poses, trans, rest)[:, :22]
    return joints, poses, trans, rest


def write_npz(path: str, **arrays) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(path))
    os.close(fd)
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


class Server:
    def __init__(self, models: str, device: str, out_dir: str | None):
        self.models = models
        self.device = device
        self.out_dir = out_dir or tempfile.mkdtemp(prefix="fake-remomask-")
        self.cancelled: set = set()
        self.step_s = float(os.environ.get("FAKE_BACKEND_STEP_S", "0.02"))
        self.steps = int(os.environ.get("FAKE_BACKEND_STEPS", "4"))
        self.die = os.environ.get("FAKE_BACKEND_EXIT_ON_GENERATE") == "1"
        self.jobs: list = []
        self.cv = threading.Condition()
        threading.Thread(target=self.worker, daemon=True).start()

    def handle(self, req: dict) -> bool:
        rid = req.get("id")
        method = req.get("method")
        params = req.get("params") or {}
        if method == "hello":
            send({"id": rid, "result": {"protocol": 1, "version": os.environ.get("FAKE_BACKEND_VERSION", "fake-0.1"),
                                        "device": os.environ.get("FAKE_BACKEND_DEVICE", "cpu"), "torch": None,
                                        "models": {"kind": "fake", "path": self.models,
                                                   **({"examples": json.loads(os.environ["FAKE_BACKEND_EXAMPLES"])}
                                                      if os.environ.get("FAKE_BACKEND_EXAMPLES") else {})}}})
        elif method == "generate":
            prompts = params.get("prompts") or ([params["prompt"]] if params.get("prompt") else [])
            if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
                send({"id": rid, "error": {"code": "invalid_params", "message": "prompt must be non-empty"}})
                return True
            for key in BOOL_PARAMS:
                if key in params and not isinstance(params[key], bool):
                    send({"id": rid, "error": {"code": "invalid_params", "message": f"'{key}' must be true or false"}})
                    return True
            with self.cv:
                self.jobs.append((rid, prompts, params))
                self.cv.notify()
        elif method == "cancel":
            self.cancelled.add(params.get("target"))
            send({"id": rid, "result": {"cancelled": True}})
        elif method == "shutdown":
            send({"id": rid, "result": {}})
            return False
        else:
            send({"id": rid, "error": {"code": "unknown_method", "message": f"unknown method {method!r}"}})
        return True

    def worker(self) -> None:
        while True:
            with self.cv:
                while not self.jobs:
                    self.cv.wait()
                rid, prompts, params = self.jobs.pop(0)
            self.generate(rid, prompts, params)

    def generate(self, rid, prompts, params) -> None:
        word = os.environ.get("FAKE_BACKEND_FAIL_WORD")
        if word and any(word in p for p in prompts):
            send({"id": rid, "error": {"code": "model_error", "message": f"cannot make {word!r}"}})
            return
        for i in range(self.steps):
            if rid in self.cancelled:
                send({"id": rid, "error": {"code": "cancelled", "message": "cancelled"}})
                return
            stage = GENERATION_STAGES[i * len(GENERATION_STAGES) // max(1, self.steps)]
            send({"id": rid, "event": "progress", "stage": stage, "fraction": i / self.steps})
            if self.die:
                print("fake backend: simulated CUDA out of memory", file=sys.stderr, flush=True)
                os._exit(3)
            time.sleep(self.step_s)
        length = params.get("length_s")
        frames = int(round((length if length else 3.0) * FPS))
        seed = int(params.get("seed", 0))
        samples = int(params.get("samples", 1))
        out_dir = params.get("out_dir") or self.out_dir
        os.makedirs(out_dir, exist_ok=True)
        motions = []
        for p_i, prompt in enumerate(prompts):
            for s in range(samples):
                joints, poses, trans, rest = make_motion(frames, seed, s)
                path = os.path.join(out_dir, f"motion_{rid}_{p_i}_{s}.npz")
                retrieved = [f"a person {w}" for w in ("walks", "walks slowly", "swings the arms")]
                write_npz(path, joints=joints.astype(np.float32), features=np.zeros((frames, 263), np.float32),
                          poses=poses.astype(np.float32), trans=trans.astype(np.float32),
                          rest_joints=rest.astype(np.float32), betas=np.zeros(10, np.float32),
                          fps=np.array(FPS), prompt=np.array(prompt), seed=np.array(seed),
                          retrieved=np.array(retrieved), fit_error_mm=np.full(frames, 1.5, np.float32))
                motions.append({"path": path, "prompt": prompt, "seed": seed, "sample": s, "frames": frames,
                                "fps": FPS, "retrieved": retrieved, "fit_error_mm": 1.5})
        send({"id": rid, "event": "progress", "stage": "write", "fraction": 1.0})
        # like the real server's coverage notes: a word the stand-in "model" never saw
        warnings = [f"{p!r}: the model never saw 'moonwalks' in training, so it may show another action or stand "
                    "still" for p in prompts if "moonwalks" in p]
        send({"id": rid, "result": {"motions": motions, "warnings": warnings}})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out-dir")
    args = ap.parse_args()
    print(f"fake backend: models={args.models} device={args.device}", file=sys.stderr, flush=True)
    server = Server(args.models, args.device, args.out_dir)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        log = os.environ.get("FAKE_BACKEND_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        try:
            req = json.loads(line)
        except ValueError:
            send({"id": None, "error": {"code": "bad_request", "message": "not JSON"}})
            continue
        if not server.handle(req):
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
