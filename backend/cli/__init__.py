"""``remomask`` command line, one module per command: ``generate``, ``info``, ``train``, and the Blender-side
``render``/``export``/``demo`` (``blender``); ``main`` builds the parser and applies the error contract
(backend/errors.py): a ``UserError`` prints one ``error: ...`` line and exits with its ``exit_code``."""

from .main import main

__all__ = ["main"]
