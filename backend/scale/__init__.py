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


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A ``host:port`` Ray address that does not answer -> one UserError now (``ray.init`` would retry for
    minutes). Other forms (``auto``, ``ray://...``) are left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or "/" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"no Ray cluster answers at {address}: {exc.strerror or exc} (start one with "
                        "'ray start --head', or leave out the address)", exit_code=EXIT_FAIL) from None
