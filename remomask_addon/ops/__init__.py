"""The add-on's operators, grouped by what they do: ``session`` (the one backend client, the job table, the
main-thread poller ``poll_once``, its timer, the load handlers), ``generate`` (generate, cancel, new seed, history
apply), ``importing`` (import motion, batch), ``backend`` (check / release / set up the backend), ``render``
(render and export) and ``retarget``.

Rule: operators turn the panel's properties into calls of ``core`` (request objects, parsing) and ``blender``
(keying, retargeting, rendering); they hold no Blender data logic themselves. Modules here may import ``core``,
``blender`` and ``ui`` (properties, preferences, history), never the other way round.
"""
