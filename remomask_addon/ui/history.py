"""History of generated motions (scene.remomask.history) and its UIList."""

from __future__ import annotations

import os

import bpy


def add(scene, motion: dict, action_name: str = "") -> None:
    """Append one generated motion (a result entry of the backend) to the scene's history."""
    props = scene.remomask
    item = props.history.add()
    item.prompt = str(motion.get("prompt", ""))
    item.seed = int(motion.get("seed", 0) or 0) % (2**31)
    item.sample = int(motion.get("sample", 0) or 0)
    fps = float(motion.get("fps", 20) or 20)
    item.length_s = float(motion.get("frames", 0) or 0) / fps
    item.path = str(motion.get("path", ""))
    item.retrieved = " | ".join(str(c) for c in (motion.get("retrieved") or []))
    item.action = action_name
    props.history_index = len(props.history) - 1


class REMOMASK_UL_history(bpy.types.UIList):
    bl_idname = "REMOMASK_UL_history"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        missing = not os.path.isfile(item.path)
        row = layout.row(align=True)
        row.label(text=item.prompt or "(no prompt)", icon='ERROR' if missing else 'ARMATURE_DATA')
        row.label(text=f"seed {item.seed}  {item.length_s:.1f} s")

    def filter_items(self, context, data, propname):
        items = getattr(data, propname)
        flags = [self.bitflag_filter_item] * len(items)
        if self.filter_name:
            needle = self.filter_name.lower()
            flags = [self.bitflag_filter_item if needle in it.prompt.lower() else 0 for it in items]
        return flags, []
