"""The three stages of one batch item, shared by the one-process path and the Ray path (``batch.py``).

1. ``ItemGenerator.generate``: a loaded generator (kept warm: one per process, or one Ray actor per GPU/CPU
   worker) turns a generate request into samples (joints + features), nothing written.
2. ``fit_and_pack``: SMPL fitting, the motion files and BVH, written by the same ``run_generate`` as
   ``remomask generate`` (the samples are replayed into it) into a private temporary folder; returns the
   files' bytes, so no stage needs a filesystem shared with the driver.
3. ``render_pack``: the project's headless render presets (``remomask render``'s code) on each motion file;
   returns the rendered file's bytes. On Ray it runs only on nodes that advertise the ``blender`` resource.

Every stage returns plain data (dicts of bytes, numbers, strings) and the node it ran on.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from backend.serving import protocol as P


@dataclass
class BatchOptions:
    models: str | None = None          # models folder (None: $REMOMASK_MODELS, else the starter)
    device: str = "auto"
    samples: int = 1
    seed: int = 0                      # item i gets seed + i
    fit: bool = True
    smpl_dir: str | None = None
    render: str = "none"               # "video", "sequence" or "none"
    render_resolution: str = "360p"
    render_scale: int = 50
    max_renders: int | None = None     # render only the first N items of the file (None: all)
    generator: str | None = None       # hidden: a test stand-in "module:factory"
    fitter: str | None = None          # hidden: a test stand-in fitter "module:function"


def node_id() -> str:
    """The Ray node this runs on, or ``local:<host>`` outside Ray."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ray.get_runtime_context().get_node_id()
    return f"local:{socket.gethostname()}"


def _noop(*_args):
    return None


def _never() -> bool:
    return False


class ItemGenerator:
    """A generator loaded once; ``generate(request params) -> {"samples", "warnings", "generate_s", ...}``."""

    def __init__(self, opts: BatchOptions):
        from backend.cli.common import load_generator, models_dir

        self.generator, self.device = load_generator(models_dir(opts.models), opts.device, opts.generator)

    def ready(self) -> dict:
        return {"device": self.device, "node": node_id()}

    def generate(self, raw: dict) -> dict:
        params = P.validate_generate(raw)
        t0 = time.monotonic()
        samples = list(self.generator.generate(params, _noop, _never) or [])
        notes = getattr(self.generator, "warnings_for", None)
        warnings = [str(w) for w in notes(params) or []] if callable(notes) else []
        return {"samples": samples, "warnings": warnings, "generate_s": time.monotonic() - t0,
                "generate_node": node_id(), "device": self.device}


class _Replay:
    """Hands already generated samples to ``run_generate`` (which then fits and writes them)."""

    def __init__(self, generated: dict):
        self.generated = generated

    def generate(self, params, progress, cancelled):
        progress("joints", 1.0)
        return self.generated["samples"]

    def warnings_for(self, params):
        return self.generated["warnings"]


def fit_and_pack(generated: dict, raw: dict, opts: BatchOptions) -> dict:
    """Stage 2: fit + write into a temporary folder -> the files' bytes and the motions' metadata."""
    from backend.serving import postprocess
    from backend.serving.jobs import run_generate

    if opts.fitter:
        postprocess.set_fitter(opts.fitter)
    params = P.validate_generate(raw)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="remomask-batch-") as tmp:
        out = run_generate(_Replay(generated), params, Path(tmp), _noop, _never, bvh=params.fit,
                           smpl_dir=opts.smpl_dir, device="cpu")
        files = {p.name: p.read_bytes() for p in out.paths}
    motions = [{**m, "path": Path(m["path"]).name} for m in out.motions]
    return {**{k: v for k, v in generated.items() if k != "samples"}, "files": files, "motions": motions,
            "warnings": list(out.warnings), "fit_s": time.monotonic() - t0, "fit_node": node_id()}


def render_pack(packed: dict, opts: BatchOptions, caption: str, quiet: bool = False) -> dict:
    """Stage 3: render every motion file of an item with the headless presets -> the renders' bytes."""
    from backend.cli.common import blender_output_to_log
    from remomask_addon.blender import headless, render_presets as rp

    t0 = time.monotonic()
    renders: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="remomask-render-") as tmp, blender_output_to_log(not quiet):
        for name, data in packed["files"].items():
            if not name.endswith(".npz"):
                continue
            src = Path(tmp) / name
            src.write_bytes(data)
            target = Path(tmp) / "out" / rp.default_output_name(opts.render, src.stem)
            target.parent.mkdir(exist_ok=True)
            options = rp.RenderOptions(mode=opts.render, quality="preview", resolution=opts.render_resolution,
                                       scale_percent=opts.render_scale, caption=caption[:120], overwrite=True)
            written = Path(headless.render_file(str(src), str(target), options))
            renders[written.name] = written.read_bytes()
    return {**packed, "renders": renders, "render_s": time.monotonic() - t0, "render_node": node_id()}
