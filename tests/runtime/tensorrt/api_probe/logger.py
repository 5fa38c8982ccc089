"""Probe of the logger bridge: TensorRT's C++ trampoline calls our ``ILogger.log`` override."""

from __future__ import annotations

import logging
import sys

from tests.runtime.tensorrt import trt_checked as tc
from tests.runtime.tensorrt.api_probe.world import check


def scenario_logger(api: str) -> None:
    from runtime.tensorrt import api_common

    trt = sys.modules["tensorrt"]
    logger = api_common.get_logger(trt)
    tc.check_override(tc.REAL.ILogger, type(logger), "log")
    records: list[tuple[int, str]] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.levelno, record.getMessage()))

    log = logging.getLogger("tensorrt")
    handler = Catch(level=1)
    log.addHandler(handler)
    log.setLevel(1)
    try:
        sev = tc.REAL.ILogger.Severity
        want = [(sev.INTERNAL_ERROR, logging.CRITICAL), (sev.ERROR, logging.ERROR), (sev.WARNING, logging.WARNING),
                (sev.INFO, logging.DEBUG), (sev.VERBOSE, 5)]
        for s, _ in want:
            tc.REAL.ILogger.log(logger, s, f"message {s.name}")  # TensorRT's C++ calls our override
    finally:
        log.removeHandler(handler)
    check(records == [(lvl, f"message {s.name}") for s, lvl in want], f"logger bridge forwarded {records}")
