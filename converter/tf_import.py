"""Import TensorFlow lazily and without the native start-up chatter.

TensorFlow's C++ core prints INFO lines (oneDNN, absl) to fd 2 before its logging is set up, so
no environment variable silences them. We capture fd 2 during the import and replay every line
that is not known noise, so real warnings still reach the user.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

_NOISE = (
    b"All log messages before absl::InitializeLog",
    b"oneDNN custom operations are on",
    b"cpu_feature_guard",
    b"Unable to register cu",  # cuDNN/cuFFT/cuBLAS factory notices on CPU builds
    b"TF-TRT Warning",
    b"Created TensorFlow Lite XNNPACK delegate",
)


@contextmanager
def native_stderr_filtered(to_debug_log: bool = False) -> Iterator[None]:
    """Capture fd 2; replay what is not known noise to stderr, or to the debug log (build steps,
    whose native converter diagnostics are summarised in the failure reason anyway)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp:
                if any(n in line for n in _NOISE):
                    continue
                if to_debug_log:
                    log.debug("native: %s", line.decode(errors="replace").rstrip())
                else:
                    sys.stderr.buffer.write(line)
            sys.stderr.flush()


def import_tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_stderr_filtered():
        import tensorflow as tf
    return tf
