"""The last line of defence of the workstation CLIs: never a traceback without ``--debug``.

``convert-model``, ``rc-calibrate`` and ``rc-benchmark`` handle the errors they expect themselves;
anything else reaches :func:`report_unexpected`, which prints one line naming the step and the
model, and picks the exit code: 2 when the input is at fault, 1 for an internal error.
"""

from __future__ import annotations

import logging
import sys
import traceback

from converter.errors import EXIT_USAGE

log = logging.getLogger(__name__)

EXIT_INTERNAL = 1

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


def one_line(e: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line. A message whose first line only announces what follows
    (TensorFlow's "Graph execution error:") gets the line that says what went wrong."""
    lines = str(e).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if text.endswith(":") and len(lines) > 1:
        said = [ln.strip() for ln in lines[1:]
                if ln.strip() and not ln[0].isspace() and not ln.startswith("Detected at node")]
        if said:
            text = f"{text} {said[-1]}"
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def report_unexpected(prog: str, e: BaseException, debug: bool, step: str | None = None,
                      model: str | None = None, tracking_uri: str | None = None) -> int:
    """Print one line about an exception nobody expected (the traceback too with ``debug``) on
    stderr; returns the exit code. An MLflow 401/403 becomes the authentication error it is."""
    from converter.registry import auth_error

    auth = auth_error(e, tracking_uri or "(tracking URI unknown)", (step or "talking to MLflow").lower())
    code = EXIT_USAGE if auth is not None else exit_code_for(e)
    if debug:
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    where = "".join([f" while {step[0].lower() + step[1:]}" if step else "", f" ({model})" if model else ""])
    if auth is not None:
        line = f"{prog}: error{where}: {auth}"
    else:
        kind = "error" if code == EXIT_USAGE else "internal error"
        line = f"{prog}: {kind}{where}: {one_line(e)}"
        if not debug:
            line += "; rerun with --debug for the traceback"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return code
