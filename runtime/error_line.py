"""One line for an error nobody expected, never a traceback unless asked: the last line of
defence of every command-line tool (the car's and the workstation's).

Tools that talk to MLflow add their own classification on top (:mod:`converter.cli_guard`);
this module knows nothing of them, so the lowest layer can use it.
"""

from __future__ import annotations

import sys
import traceback

EXIT_INTERNAL = 1
EXIT_USAGE = 2


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


def where(step: str | None, subject: str | None) -> str:
    """`` while loading the bundle (builds/x)``: what was being done, to what."""
    return "".join([f" while {step[0].lower() + step[1:]}" if step else "", f" ({subject})" if subject else ""])


def report_unexpected(prog: str, e: BaseException, debug: bool, code: int, step: str | None = None,
                      subject: str | None = None, message: str | None = None) -> int:
    """Write one line about ``e`` on stderr (the traceback first with ``debug``) and return ``code``:
    ``error`` for :data:`EXIT_USAGE` (the input is at fault), ``internal error`` otherwise.
    ``message`` replaces the exception's own line when the caller knows better."""
    if debug:
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    kind = "error" if code == EXIT_USAGE or message is not None else "internal error"
    line = f"{prog}: {kind}{where(step, subject)}: {message or one_line(e)}"
    if not debug and message is None:
        line += "; rerun with --debug for the traceback"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return code
