"""The Describe button's and the Library panel's properties (``scene.remomask_library``): the library folder,
the index job's progress, the search field, the result list, the described action's captions and the status
line. Registered by the package's ``__init__`` with the other property groups."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, IntProperty, StringProperty


class REMOMASK_PG_library_caption(bpy.types.PropertyGroup):
    caption: StringProperty(name="Caption")
    score: FloatProperty(name="Score")


class REMOMASK_PG_library_hit(bpy.types.PropertyGroup):
    file: StringProperty(name="Take")              # the file's path relative to the library folder
    path: StringProperty(name="Path", subtype='FILE_PATH')
    start: IntProperty(name="Start frame (20 fps)")
    end: IntProperty(name="End frame (20 fps)")
    start_s: FloatProperty(name="Start (s)")
    end_s: FloatProperty(name="End (s)")
    score: FloatProperty(name="Score")
    prompt: StringProperty(name="The file's own prompt")


class REMOMASK_PG_library(bpy.types.PropertyGroup):
    folder: StringProperty(name="Library folder", subtype='DIR_PATH',
                           description="A folder of motion files (.npz, .npy, .bvh) to index and search")
    query: StringProperty(name="Search", description="What to look for, e.g. 'someone jumps over something'")
    k: IntProperty(name="Results", default=10, min=1, max=100, description="How many windows to list")
    hits: CollectionProperty(type=REMOMASK_PG_library_hit)
    hit_index: IntProperty(name="Selected result", default=0)
    # the index job
    indexing: BoolProperty(name="Indexing", default=False)
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype='FACTOR')
    messages: CollectionProperty(type=REMOMASK_PG_library_caption)   # one per file that could not be indexed
    # describe
    describing: BoolProperty(name="Describing", default=False)
    described_action: StringProperty(name="Described action")
    captions: CollectionProperty(type=REMOMASK_PG_library_caption)
    # the last message (one line)
    status: StringProperty(name="Status")
    status_is_error: BoolProperty(default=False)
    preview: StringProperty(name="Preview still", subtype='FILE_PATH')


CLASSES = (REMOMASK_PG_library_caption, REMOMASK_PG_library_hit, REMOMASK_PG_library)
