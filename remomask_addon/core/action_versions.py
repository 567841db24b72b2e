"""Action versions, bpy-free: every Edit-panel operation makes a NEW action (a version) and keeps the one it was
made from. The versions of one action share a root (the user's own action, whose name is never changed: other
NLA strips, scripts and files may refer to it); version k (k >= 2) is named "<root>.v<k>".

What an action records (its custom properties, read through a plain mapping here):
``remomask_edit_root`` (the root action's name), ``remomask_edit_version`` (k), ``remomask_edit_of`` (the action
it was made from), ``remomask_edit_op`` (what was done, shown in the panel).
"""

from __future__ import annotations

ROOT, VERSION, OF, OP = "remomask_edit_root", "remomask_edit_version", "remomask_edit_of", "remomask_edit_op"


def root_of(name: str, props) -> str:
    """The root action's name of an action called ``name`` with custom properties ``props``."""
    return str(props.get(ROOT, name)) if props is not None else name


def version_of(props) -> int:
    return int(props.get(VERSION, 1)) if props is not None else 1


def next_version(root: str, actions) -> int:
    """The next version number of ``root``; ``actions``: (name, props) of every action in the file."""
    top = 1
    for name, props in actions:
        if name == root or root_of(name, props) == root:
            top = max(top, version_of(props) if name != root else 1)
    return top + 1


def version_name(root: str, k: int) -> str:
    return f"{root}.v{k}"


def versions(root: str, actions) -> list[tuple[int, str, str]]:
    """(version, name, what was done) of every version of ``root`` that exists, the root itself first."""
    out = []
    for name, props in actions:
        if name == root:
            out.append((1, name, "original"))
        elif props is not None and root_of(name, props) == root:
            out.append((version_of(props), name, str(props.get(OP, ""))))
    return sorted(out)


def describe(op: str, prompt: str, window) -> str:
    """One line for the versions list: the operation, the frames it wrote and its prompt."""
    label = {"REGENERATE": "Regenerate", "INBETWEEN": "In-between", "EXTEND": "Extend", "LEAD_IN": "Lead in",
             "LOOP": "Loop", "BODYPART": "Body part"}.get(op, op)
    frames = f" {window[0]}-{window[1]}" if window else ""
    return f"{label}{frames}" + (f": {prompt}" if prompt else "")
