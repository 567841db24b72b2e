"""The example prompts the model offers: the ``examples`` of the backend's last ``hello`` (``models.examples``: a
list of ``{"family", "label", "prompt"}``, written from the model folder's ``coverage.json``). No bpy here.

The session (``ops/session.py``) remembers them with the client settings they came from; a backend started with
other settings (another model folder, a remote server) makes them stale, so they are forgotten then. The
Generate panel offers them in a drop-down (``ops/examples.py``) only when the backend gave some; before the first
hello it offers a button that asks (Check Backend).
"""

from __future__ import annotations

from typing import NamedTuple


class Example(NamedTuple):
    key: str       # stable identifier: "<family>/<n>" (the n-th example of that family)
    family: str
    label: str
    prompt: str


_STATE: dict = {"settings": None, "examples": (), "asked": False}


def parse(models) -> tuple[Example, ...]:
    """hello's ``models`` -> its examples; entries that are not {family, label, prompt} strings are skipped, and
    so is everything when ``models`` has no list of them (an official release, an older backend)."""
    raw = models.get("examples") if isinstance(models, dict) else None
    if not isinstance(raw, list):
        return ()
    out, seen, count = [], set(), {}
    for e in raw:
        if not isinstance(e, dict):
            continue
        fam, label, prompt = e.get("family"), e.get("label"), e.get("prompt")
        if not (isinstance(fam, str) and fam and isinstance(prompt, str) and prompt.strip()):
            continue
        if prompt in seen:
            continue
        seen.add(prompt)
        n = count[fam] = count.get(fam, 0) + 1
        out.append(Example(f"{fam}/{n}", fam, label if isinstance(label, str) and label else fam, prompt.strip()))
    return tuple(out)


def remember(hello_result, settings=None) -> tuple[Example, ...]:
    """Keep the examples of a ``hello`` result, got with client settings ``settings``; returns them."""
    models = hello_result.get("models") if isinstance(hello_result, dict) else None
    _STATE["settings"], _STATE["examples"], _STATE["asked"] = settings, parse(models), True
    return _STATE["examples"]


def keep_for(settings) -> None:
    """A client with ``settings`` is in use: forget examples that came from a backend with other settings."""
    if _STATE["settings"] != settings:
        forget()


def forget() -> None:
    _STATE["settings"], _STATE["examples"], _STATE["asked"] = None, (), False


def asked() -> bool:
    """Whether a hello has been answered since the examples were last forgotten (an answer without examples
    means the model lists none)."""
    return _STATE["asked"]


def current() -> tuple[Example, ...]:
    return _STATE["examples"]


def find(key: str) -> Example | None:
    return next((e for e in _STATE["examples"] if e.key == key), None)


def enum_items(examples) -> list[tuple[str, str, str]]:
    """EnumProperty items: (key, "Label: prompt", description), in the backend's order."""
    return [(e.key, f"{e.label}: {e.prompt}", f"Put '{e.prompt}' into the prompt field ({e.family})")
            for e in examples]
