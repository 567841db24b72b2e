"""What several commands share: the models folder a command uses, loading it, a progress bar on stderr."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from backend.errors import LoadFailed, ModelError, UserError

MODELS_ENV = "REMOMASK_MODELS"


def models_dir(given: str | None) -> Path:
    """``--models`` when given, else ``$REMOMASK_MODELS``, else the shipped starter model."""
    if given:
        return Path(given).expanduser()
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV]).expanduser()
    from backend.generation.project_weights import STARTER_DIR

    return STARTER_DIR


def add_models_argument(p) -> None:
    p.add_argument("--models", default=None,
                   help=f"models folder: an official release, a trained folder or the starter (default: "
                        f"${MODELS_ENV}, else the shipped starter model)")


def require_models_dir(models: Path) -> None:
    if not models.is_dir():
        from backend.generation.project_weights import STARTER_DIR

        hint = " (the shipped starter model is missing from this installation; pass --models <folder>)" \
            if models == STARTER_DIR else ""
        raise UserError(f"models folder not found: {models}{hint}")


def load_generator(models: Path, device_arg: str, generator_spec: str | None = None):
    """-> (generator, device). A folder that cannot be used raises its ModelError (exit 2); anything unexpected
    while loading becomes one LoadFailed line (exit 1)."""
    from backend.serving.generators import make_generator, resolve_device

    require_models_dir(models)
    try:
        device = resolve_device(device_arg)
        gen = make_generator(generator_spec)
        gen.load(models, device)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable files etc.: one line, not a traceback
        raise LoadFailed(f"could not load the models from {models}: {type(exc).__name__}: {exc}") from None
    return gen, device


BLENDER_LOG = Path(tempfile.gettempdir()) / "remomask-blender.log"


def _real_fd(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # e.g. a test's captured stream


@contextmanager
def blender_output_to_log(verbose: bool = False):
    """Blender prints from C to the process's stdout ("Append frame ...", "Saved: ...": hundreds of lines for a
    video) and stderr (EGL notices). Unless ``verbose``, file descriptors 1 and 2 go to ``BLENDER_LOG`` inside the
    block; Python's own ``sys.stderr`` (progress bars, notes) keeps writing to the real stderr. stdout then
    carries only the paths the command prints afterwards."""
    if verbose:
        yield None
        return
    sys.stdout.flush()
    sys.stderr.flush()
    fds = [fd for fd in (1, 2) if fd == 1 or _real_fd(sys.stderr) == 2]
    saved = {fd: os.dup(fd) for fd in fds}
    old_stderr, new_stderr = sys.stderr, None
    try:
        if 2 in saved:
            new_stderr = os.fdopen(os.dup(saved[2]), "w", buffering=1)
            sys.stderr = new_stderr
        with open(BLENDER_LOG, "ab") as log:
            for fd in fds:
                os.dup2(log.fileno(), fd)
        yield BLENDER_LOG
    finally:
        sys.stdout.flush()
        for fd, dup in saved.items():
            os.dup2(dup, fd)
            os.close(dup)
        if new_stderr is not None:
            sys.stderr = old_stderr
            new_stderr.close()


def progress_bar(label: str | None = None):
    """A tqdm bar on stderr (hidden when stderr is not a terminal) -> (bar, update(stage, fraction))."""
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", file=sys.stderr, disable=None, desc=label,
               bar_format="{desc:<10} {bar} {n:.0f}%")

    def update(stage_or_fraction, fraction: float | None = None) -> None:
        if fraction is None:
            stage_or_fraction, fraction = None, stage_or_fraction
        if stage_or_fraction is not None:
            bar.set_description_str(stage_or_fraction)
        bar.n = round(100 * fraction, 1)
        bar.refresh()

    return bar, update
