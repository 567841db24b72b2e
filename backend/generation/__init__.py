"""Prompt -> joints: the pipeline (``pipeline``), the one model-folder loader (``model_folder``) over the two
weight layouts (``official_release``, ``project_weights``), and splitting sequential prompts (``prompt_parts``)."""
