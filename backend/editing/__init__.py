"""Editing with the generator: masked generation with some tokens kept.

A source motion is encoded into both token streams of the RVQ-VAE (1D time tokens and 2D time x 6 joint-block
tokens, every residual layer); the masked transformers keep the tokens outside the hole and generate the rest
(text + retrieval conditioning and guidance as in generation); the residual transformers regenerate their layers
inside the hole only; after decoding, the frames outside the hole (plus a short margin) are the source's own
frames, bit for bit, the margin is a cross-fade, and the root drift is spread over the hole.

Modules (small, one job each):

- ``source``: a motion file / joints -> :class:`~backend.editing.source.Source` (features + joints), with the
  checks that refuse other skeletons.
- ``tokens``: features <-> token ids (normalise, RVQ-VAE encode / decode, long sequences in windows).
- ``sampler``: the constrained sampler (one batch of rows, each with its own kept tokens and prompt).
- ``canvas``: the frames an edit works on (source frames + new frames) and the window of tokens around a hole.
- ``stitch``: decoded features -> frames: exact outside, cross-fade, root drift spread over the hole.
- ``token_map`` (+ ``token_map.json``): which 2D tokens drive which joints (measured).
- ``bodypart``: body-part masks and the per-joint composite.
- ``tasks``: inpaint, inbetween, prefix, suffix, outpaint, loop, bodypart, "X while Y".
- ``timeline``: several prompts one after another, joined by in-painted transition tokens.
- ``request`` / ``cli``: the protocol's ``edit`` request and ``remomask edit``.
"""

from .source import EditError, Source, load_source, source_from_joints  # noqa: F401
