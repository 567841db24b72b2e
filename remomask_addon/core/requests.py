"""What the add-on asks the generator, as objects: ``GenerateRequest`` and ``HelloRequest`` hold a request's
fields, ``method`` names the protocol method and ``to_params()`` gives exactly the JSON params the backend's
protocol expects (backend/serving/protocol.py; tests/shared/test_shared_facts.py sends them through its
validator). Also the protocol's limits the panel needs, and the batch text format. No bpy: the operators build
these from the panel's properties (ops/generate.py, ops/importing.py, ops/backend.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# Copies of the protocol's limits (backend/serving/protocol.py; the add-on cannot import the backend:
# tests/shared/test_shared_facts.py checks that they agree, and that every panel property stays inside them).
MAX_SECONDS = 9.8        # 196 frames at 20 fps, the model's longest motion
MIN_SECONDS = 0.2        # 4 frames, the shortest
MAX_SAMPLES = 8
MAX_TIME_STEPS = 100
MIN_TEMPERATURE = 0.01   # the protocol needs > 0 (0 would divide the logits by zero)


@dataclass(frozen=True)
class GenerateRequest:
    """``generate``: one prompt -> ``samples`` motions. length_s None: the model's length estimator; cond_scale,
    time_steps, temperature, topk None: the model's own sampling settings; out_dir None: the backend's folder."""

    method: ClassVar[str] = "generate"

    prompt: str
    length_s: float | None = None
    seed: int = 0
    samples: int = 1
    cond_scale: float | None = None
    time_steps: int | None = None
    temperature: float | None = None
    topk: float | None = None
    use_retrieval: bool = True
    fit: bool = True
    ground_feet: bool = True
    out_dir: str | None = None
    literal: bool = False  # the prompt as typed, not read in the model's training words

    def to_params(self) -> dict:
        params = {"prompt": self.prompt, "length_s": _opt(float, self.length_s), "seed": int(self.seed),
                  "samples": int(self.samples), "cond_scale": _opt(float, self.cond_scale),
                  "time_steps": _opt(int, self.time_steps), "temperature": _opt(float, self.temperature),
                  "topk": _opt(float, self.topk), "use_retrieval": bool(self.use_retrieval), "fit": bool(self.fit),
                  "ground_feet": bool(self.ground_feet)}
        if self.out_dir:
            params["out_dir"] = self.out_dir
        if self.literal:  # only when asked: a backend from before the field refuses unknown keys
            params["literal"] = True
        return params


@dataclass(frozen=True)
class HelloRequest:
    """``hello``: the backend's version, device and models; a remote server wants its token."""

    method: ClassVar[str] = "hello"

    token: str | None = None

    def to_params(self) -> dict:
        return {"token": self.token} if self.token else {}


def _opt(kind, value):
    return None if value is None else kind(value)


def check_length(seconds: float) -> str | None:
    """A user-facing message when ``seconds`` is outside the model's range, else None."""
    if not (MIN_SECONDS <= seconds <= MAX_SECONDS):
        return (f"Length must be between {MIN_SECONDS} and {MAX_SECONDS} s (the model makes at most 196 frames at "
                f"20 fps), not {seconds:g} s. Or tick 'Automatic length'.")
    return None


def parse_batch(text: str) -> list[tuple[str, float | None]]:
    """One prompt per line, optional ``| seconds``; blank lines and ``#`` comments are skipped.
    Raises ValueError naming the line for a bad length."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        prompt, sep, secs = line.partition("|")
        prompt = prompt.strip()
        if not prompt:
            raise ValueError(f"line {n}: empty prompt")
        length = None
        if sep and secs.strip():
            try:
                length = float(secs.strip())
            except ValueError:
                raise ValueError(f"line {n}: {secs.strip()!r} is not a number of seconds") from None
            err = check_length(length)
            if err:
                raise ValueError(f"line {n}: {err}")
        out.append((prompt, length))
    return out
