"""The Generate panel's example prompts: a drop-down of the examples the backend's last hello listed (the model
folder's ``coverage.json``), and a search button; nothing when the backend listed none."""

from __future__ import annotations

from ..core import examples


def draw(layout) -> None:
    """Under the prompt field: the drop-down and the search button, only when there are examples."""
    if not examples.current():
        return
    row = layout.row(align=True)
    row.operator_menu_enum("remomask.example_prompt", "example", text="Example prompts", icon='PRESET')
    row.operator("remomask.example_prompt", text="", icon='VIEWZOOM').search = True
