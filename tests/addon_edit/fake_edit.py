"""A stand-in for the backend client that answers ``edit`` requests like the generator does, with a known motion:
it reads the source joints the add-on sent, changes them smoothly inside the hole (the arms swing up, the body
rises), keeps every other frame, and writes a motion file (swing-only SMPL rotations of those joints) with the
``changed`` frames the real backend reports (the hole plus its 8-frame margins). Events arrive on ``poll()``."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from remomask_addon.core import motion_io

MARGIN = 8


def bump(n: int) -> np.ndarray:
    """0 at both ends, 1 in the middle, smooth (n,)."""
    return np.sin(np.linspace(0.0, np.pi, n)) ** 2


def change(j: np.ndarray, a: int, b: int, amount: float = 0.25) -> np.ndarray:
    """Joints with frames [a, b) changed: the arms lifted and the whole body raised by ``amount`` metres at most."""
    out = j.copy()
    w = bump(b - a)[:, None] * amount
    out[a:b, :, 1] += w
    for k in (18, 19, 20, 21):       # elbows and wrists up a little more
        out[a:b, k, 1] += 0.6 * w[:, 0]
    return out


class FakeEditClient:
    def __init__(self, out_dir: str | None = None):
        self.out_dir = out_dir or tempfile.mkdtemp(prefix="fake-edit-")
        self.requests: list = []
        self.events: list = []
        self.die = False            # the backend dies mid-edit: an error event instead of the result
        self.stray_sample = None    # this sample reports changed frames outside the range (cannot be written)
        self._n = 0

    def settings_key(self):
        return ("fake",)

    def request(self, method, params):
        self._n += 1
        rid = self._n
        self.requests.append((method, dict(params)))
        self.events.append({"id": rid, "event": "progress", "stage": "sampling", "fraction": 0.5})
        if self.die:
            self.events.append({"id": rid, "error": {"code": "backend_died",
                                                     "message": "The backend stopped (exit code 3)."}})
        else:
            self.events.append({"id": rid, "result": {"motions": self.edit(params)}})
        return rid

    def cancel(self, rid):
        self.cancelled = rid        # the result was already on its way: it still arrives (the add-on drops it)

    def poll(self):
        ev, self.events = self.events, []
        return ev

    def stop(self):
        pass

    def edit(self, p) -> list[dict]:
        src = np.load(p["source"]).astype(np.float64)
        t = len(src)
        task = p["task"]
        out = []
        for s in range(int(p.get("samples", 1))):
            amount = 0.25 + 0.1 * s
            if task in ("inpaint", "bodypart"):
                a, b = p["frames"]
                j = change(src, a, b, amount)
                changed = [(max(0, a - MARGIN), min(t, b + MARGIN))]
            elif task == "prefix":
                n = int(round(p["seconds"] * 20 / 4)) * 4
                tail = np.repeat(src[-1:], n, axis=0)
                tail[:, :, 0] += np.linspace(0.05, 0.05 * n, n)[:, None] * 0.2
                j = np.concatenate([src, tail])
                j = change(j, t - 4, t + n, amount)
                changed = [(t - MARGIN, t + n)]
            elif task == "suffix":
                n = int(round(p["seconds"] * 20 / 4)) * 4
                j = np.concatenate([np.repeat(src[:1], n, axis=0), src])
                j = change(j, 0, n + 4, amount)
                changed = [(0, n + MARGIN)]
            elif task == "loop":
                h = min(40, max(12, t // 4))
                j = src.copy()
                w = (np.arange(h + 1) / h)[:, None, None]
                j[t - 1 - h:] = (1 - w) * src[t - 1 - h:] + w * (src[:1] + (0 if p["mode"] == "return" else
                                                                          src[-1:, :1] - src[:1, :1]))
                changed = [(t - 1 - h - MARGIN, t)]
            else:
                raise ValueError(task)
            if s == self.stray_sample:
                changed = [(0, 2)]
            m = motion_io.motion_from_joints(j.astype(np.float32), prompt=p.get("prompt", ""))
            path = os.path.join(self.out_dir, f"edit_{self._n}_{s}.npz")
            np.savez(path, joints=m["joints"], poses=m["poses"], trans=m["trans"], rest_joints=m["rest_joints"],
                     fps=np.float32(20.0), prompt=np.array(p.get("prompt", "")), seed=np.int64(p.get("seed", 0)),
                     edit_changed=np.asarray(changed, np.int64))
            out.append({"path": path, "changed": [list(c) for c in changed], "prompt": p.get("prompt", ""),
                        "sample": s})
        return out
