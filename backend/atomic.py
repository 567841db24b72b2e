"""The one atomic file writer: every file the project writes goes through :func:`atomic_write`.

A file is written under a unique temporary name in its own folder, flushed to disk, given the mode a normal new
file gets (0666 less the umask, or the mode of the file it replaces), and renamed over the target in one step.
On any failure the temporary file is removed and an existing target is left as it was: a reader never sees a
half-written file, and two writers never share a temporary name.

Pure standard library, no project imports: the Blender add-on keeps a byte-identical copy
(``remomask_addon/core/atomic.py``, checked by ``tests/shared/test_atomic.py``) because it cannot import the backend.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_write", "atomic_write_stream", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "atomic_dir", "new_file_mode"]


def new_file_mode(replacing: str | os.PathLike | None = None) -> int:
    """The mode a new file gets from the user's umask (0666 & ~umask); the old mode when it replaces a file."""
    if replacing is not None:
        try:
            return os.stat(replacing).st_mode & 0o7777
        except OSError:
            pass
    return 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], *, make_parents: bool = True,
                 suffix: str = ".tmp") -> Path:
    """Create ``path`` atomically: ``write(tmp_path)`` fills a temporary file next to it (it may open the path
    or hand it to a library that writes by name; ``suffix`` ends the temporary name, for writers that pick
    the format from the extension), then the file gets the user's mode and replaces ``path``. Returns
    ``path``. Any exception from ``write`` or the file system propagates, with nothing left behind."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:  # flush what the writer wrote, whichever way it wrote it
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode(path if path.exists() else None))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_stream(path: str | os.PathLike, write: Callable, **kw) -> Path:
    """Like :func:`atomic_write`, but ``write(fh)`` gets the temporary file open for binary writing (for
    writers that would add a suffix to a path, such as ``numpy.save``)."""
    def by_name(tmp):
        with open(tmp, "wb") as fh:
            write(fh)
    return atomic_write(path, by_name, **kw)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, **kw) -> Path:
    return atomic_write_stream(path, lambda fh: fh.write(data), **kw)


def atomic_write_text(path: str | os.PathLike, text: str, **kw) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), **kw)


def atomic_write_json(path: str | os.PathLike, obj, *, indent: int = 1, sort_keys: bool = True, **kw) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n", **kw)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_dir(out) as tmp:`` fill the temporary folder ``tmp``; on success it replaces ``out``
    (a folder that did not exist appears whole; an existing one is swapped out and removed), on failure it is
    removed and ``out`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a folder gets the user's usual mode
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / path.name, path)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
