"""The last line of defence of the workstation CLIs: never a traceback without ``--debug``.

``convert-model``, ``rc-calibrate`` and ``rc-benchmark`` handle the errors they expect themselves;
anything else reaches :func:`report_unexpected`, which prints one line naming the step and the
model, and picks the exit code: 2 when the input is at fault, 1 for an internal error.
"""

from __future__ import annotations

import logging

from converter.errors import EXIT_USAGE
from runtime import error_line
from runtime.error_line import EXIT_INTERNAL

log = logging.getLogger(__name__)

# MLflow error codes that mean "what you asked for is wrong", not "we broke".
_INPUT_MLFLOW_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS",
                       "UNAUTHENTICATED", "PERMISSION_DENIED", "BAD_REQUEST", "INVALID_STATE"}


def exit_code_for(e: BaseException) -> int:
    """2 for bad input (files, registry answers, credentials), 1 for anything else."""
    from converter.errors import ConverterError
    from runtime.manifest import BundleError

    if isinstance(e, ConverterError | BundleError | OSError):
        return EXIT_USAGE
    if str(getattr(e, "error_code", "")) in _INPUT_MLFLOW_CODES:
        return EXIT_USAGE
    return EXIT_INTERNAL


def report_unexpected(prog: str, e: BaseException, debug: bool, step: str | None = None,
                      model: str | None = None, tracking_uri: str | None = None) -> int:
    """Print one line about an exception nobody expected (the traceback too with ``debug``) on
    stderr; returns the exit code. An MLflow 401/403 becomes the authentication error it is."""
    from converter.registry import auth_error

    auth = auth_error(e, tracking_uri or "(tracking URI unknown)", (step or "talking to MLflow").lower())
    code = EXIT_USAGE if auth is not None else exit_code_for(e)
    return error_line.report_unexpected(prog, e, debug, code, step, model,
                                        message=None if auth is None else str(auth))
