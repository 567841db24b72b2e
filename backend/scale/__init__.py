"""Past one machine, on Ray (the optional ``[scale]`` extra): batch generation and rendering over a cluster
(``batch.py``, ``remomask batch``) and the shared generator service (``service.py``, ``remomask serve``).

Ray is imported only inside this package, and only when a command asks for it; the add-on never imports it.
"""

from __future__ import annotations

from backend.errors import EXIT_FAIL, UserError

INSTALL_HINT = "install the [scale] extra: pip install 'ray[serve]==2.60.0'"


def import_ray():
    """-> the ``ray`` module, or one clear UserError when the extra is not installed."""
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        raise UserError(f"this needs Ray: {INSTALL_HINT}", exit_code=EXIT_FAIL) from None
    return ray
