"""The generator process: the JSON-lines protocol (``protocol``), the server and its job queue (``server``,
``jobs``), the generator adapter (``generators``) and what happens to a sample after the model: SMPL fit,
motion file, BVH (``postprocess``)."""
