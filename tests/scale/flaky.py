"""The real (tiny) pipeline with failures on cue, for the batch tests (``--generator tests.scale.flaky:make``).

A prompt containing ``always fails`` raises every time; ``fails once`` raises the first time it is seen;
``kills its worker`` ends the worker process (``os._exit``) the first time; ``slowly`` sleeps a second first;
``takes ages`` waits a minute unless cancelled.
"First time" is remembered by a marker file in the models folder, so it holds across processes and nodes.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from backend.serving.generators import Cancelled, PipelineGenerator


class Flaky(PipelineGenerator):
    def _first_time(self, prompt: str) -> bool:
        marker = Path(self.models_dir) / f".seen-{hashlib.sha1(prompt.encode()).hexdigest()[:12]}"
        if marker.exists():
            return False
        marker.touch()
        return True

    def generate(self, request, progress, cancelled):
        for prompt in request.prompts:
            if "always fails" in prompt:
                raise RuntimeError(f"injected failure for {prompt!r}")
            if "fails once" in prompt and self._first_time(prompt):
                raise RuntimeError(f"injected first-time failure for {prompt!r}")
            if "kills its worker" in prompt and self._first_time(prompt):
                os._exit(3)
            if "slowly" in prompt:
                time.sleep(1.0)
            if "takes ages" in prompt:  # a minute, unless cancelled (checked every 10 ms)
                progress("text", 0.0)
                end = time.monotonic() + 60
                while time.monotonic() < end:
                    if cancelled():
                        raise Cancelled()
                    time.sleep(0.01)
        return super().generate(request, progress, cancelled)


def make():
    return Flaky()
