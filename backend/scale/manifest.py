"""The batch manifest: ``manifest.jsonl`` in the output folder, one JSON object per item.

While a batch runs, each finished (or finally failed) item is appended as one line and flushed to disk, so a
killed run loses at most the line being written (a torn last line is ignored when read). At the end the file is
rewritten atomically with exactly one line per item of the prompt file, in file order. ``--resume`` reads it:
an item counts as done when its latest line says ``"status": "ok"`` and every file it lists exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from backend.atomic import atomic_write_text

NAME = "manifest.jsonl"


def read(out_dir: Path) -> dict[str, dict]:
    """key -> the latest record (lines that do not parse, e.g. a torn last line, are skipped)."""
    path = Path(out_dir) / NAME
    records: dict[str, dict] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("key"), str):
            records[rec["key"]] = rec
    return records


def files_of(rec: dict) -> list[str]:
    return list(rec.get("files") or []) + list(rec.get("renders") or [])


def is_done(out_dir: Path, rec: dict | None) -> bool:
    return bool(rec) and rec.get("status") == "ok" and bool(rec.get("files")) and \
        all((Path(out_dir) / f).is_file() for f in files_of(rec))


class Appender:
    """Appends records as lines, each flushed and synced before the next item is counted."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / NAME
        self._fix_torn_tail()
        self.f = open(self.path, "a", encoding="utf-8")

    def _fix_torn_tail(self):
        try:
            with open(self.path, "rb+") as f:
                size = f.seek(0, os.SEEK_END)
                if size:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        f.write(b"\n")  # a torn line from a killed run stays alone on its (skipped) line
        except FileNotFoundError:
            pass

    def add(self, rec: dict) -> None:
        self.f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self):
        self.f.close()


def compact(out_dir: Path, keys: list[str]) -> int:
    """Rewrite the manifest atomically: one line per key (its latest record), in ``keys`` order. -> lines."""
    latest = read(out_dir)
    lines = [json.dumps(latest[k], sort_keys=True) for k in keys if k in latest]
    atomic_write_text(Path(out_dir) / NAME, "".join(line + "\n" for line in lines))
    return len(lines)
