"""The Generate panel's example prompts: a drop-down of the examples the backend's last hello listed (the model
folder's ``coverage.json``) and a search button; before any hello, a button that asks the backend (Check Backend);
nothing when the backend answered without examples."""

from __future__ import annotations

from ..core import examples


def draw(layout) -> None:
    """Under the prompt field."""
    if examples.current():
        row = layout.row(align=True)
        row.operator_menu_enum("remomask.example_prompt", "example", text="Example prompts", icon='PRESET')
        row.operator("remomask.example_prompt", text="", icon='VIEWZOOM').search = True
    elif not examples.asked():
        layout.operator("remomask.check_backend", text="Show example prompts", icon='PRESET')
