"""The one error contract of the CLI, the generator server and (through the protocol) the add-on.

A :class:`UserError` is a problem the person can act on. Its message is written for people and shown as is
(one line, never a traceback); ``code`` is the protocol's error code for it and ``exit_code`` the CLI's exit
status. ``field``/``problem`` name the request parameter at fault, so that the CLI can say ``--temperature
must be > 0`` where the protocol says ``'temperature' must be > 0`` without rewriting the sentence.

Every other exception is a bug or an unexpected failure: the server answers it as ``model_error`` (during
generation) or ``internal``, the CLI prints one line and exits 1.
"""

from __future__ import annotations

# Protocol error codes (the only values of error.code; the add-on checks its copy in tests).
BAD_REQUEST = "bad_request"          # not JSON, not an object, missing/invalid id or method, duplicate id
UNKNOWN_METHOD = "unknown_method"
INVALID_PARAMS = "invalid_params"    # a request the user can correct
BUSY = "busy"                        # the queue is full
CANCELLED = "cancelled"
MODEL_ERROR = "model_error"          # models failed to load, or generation raised
INTERNAL = "internal"                # writing results failed, or a bug
UNAUTHORIZED = "unauthorized"        # TCP mode only: missing or wrong token
ERROR_CODES = (BAD_REQUEST, UNKNOWN_METHOD, INVALID_PARAMS, BUSY, CANCELLED, MODEL_ERROR, INTERNAL,
               UNAUTHORIZED)

# CLI exit codes.
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UserError(Exception):
    """A problem the user can fix. ``str(err)`` is the message for people."""

    code = INVALID_PARAMS
    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, code: str | None = None, exit_code: int | None = None,
                 field: str | None = None, problem: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if exit_code is not None:
            self.exit_code = exit_code
        self.field = field        # the request parameter at fault, if one is
        self.problem = problem    # the message without the parameter's name: "must be > 0" follows the name,
        #                           "task 'loop' needs {name}" places it

    def message_for(self, names: dict[str, str]) -> str:
        """The message with the parameter named as the caller names it (e.g. a CLI flag)."""
        if self.field in names and self.problem:
            name = names[self.field]
            return self.problem.format(name=name) if "{name}" in self.problem else f"{name} {self.problem}"
        return self.message


class InvalidInput(UserError, ValueError):
    """Input that cannot be used: a request parameter, a motion file, a frame range ..."""


class ModelError(UserError):
    """A models folder that is missing, incomplete or holds weights that do not fit."""

    code = MODEL_ERROR


class LoadFailed(ModelError):
    """Loading failed in an unexpected way (an unreadable file, a library error)."""

    exit_code = EXIT_FAIL


class GenerationFailed(UserError):
    """The model raised while generating (reported in one line; the server's log has the details)."""

    code = MODEL_ERROR
    exit_code = EXIT_FAIL


class WriteFailed(UserError):
    """Results could not be written (disk full, permissions ...); nothing half-written is left."""

    code = INTERNAL
    exit_code = EXIT_FAIL
