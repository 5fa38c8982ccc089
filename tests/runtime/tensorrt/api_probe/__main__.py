"""Run every scenario and write the report: ``python -m tests.runtime.tensorrt.api_probe REPORT.json``."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from tests.runtime.tensorrt import trt_checked as tc
from tests.runtime.tensorrt.api_probe import state
from tests.runtime.tensorrt.api_probe.backend import scenario_backend, scenario_backend_model_kinds
from tests.runtime.tensorrt.api_probe.build import (
    scenario_build_errors,
    scenario_build_fp16,
    scenario_build_int8,
)
from tests.runtime.tensorrt.api_probe.converter import scenario_converter_builder
from tests.runtime.tensorrt.api_probe.logger import scenario_logger
from tests.runtime.tensorrt.api_probe.runner import (
    scenario_io_tensors,
    scenario_runner,
    scenario_runner_failures,
)
from tests.runtime.tensorrt.api_probe.state import CURRENT

SCENARIOS: dict[str, Callable[[str], None]] = {
    "logger": scenario_logger,
    "build_fp16": scenario_build_fp16,
    "build_errors": scenario_build_errors,
    "build_int8": scenario_build_int8,
    "io_tensors": scenario_io_tensors,
    "runner": scenario_runner,
    "runner_failures": scenario_runner_failures,
    "backend": scenario_backend,
    "backend_model_kinds": scenario_backend_model_kinds,
    "converter_builder": scenario_converter_builder,
}


def main(report_path: str) -> int:
    from runtime.tensorrt.gpu import GpuInfo
    from runtime.tensorrt.version import api_path

    state.GPU = GpuInfo("8.7", "Orin", "NVIDIA Jetson Orin Nano Developer Kit", "test")
    constructors = {
        "Builder": lambda *a, **k: CURRENT[0].builder(*a, **k),
        "Runtime": lambda *a, **k: CURRENT[0].runtime(*a, **k),
        "OnnxParser": lambda *a, **k: CURRENT[0].parser(*a, **k),
    }
    tc.install(constructors)
    api = api_path(tc.VERSION)
    ran = []
    for name, fn in SCENARIOS.items():
        before = len(tc.FAILURES)
        try:
            fn(api)
        except Exception as e:
            if not isinstance(e, tc.ApiMisuse):
                tc.FAILURES.append(f"TensorRT {tc.VERSION}: {type(e).__name__}: {e}")
            tc.FAILURES.append(f"  (scenario {name} stopped: {traceback.format_exc(limit=-3).strip().splitlines()[-3:]})")
        ran.append({"scenario": name, "failures": tc.FAILURES[before:]})
    Path(report_path).write_text(json.dumps({
        "version": tc.VERSION, "api": api, "failures": tc.FAILURES, "scenarios": ran,
        "observed": sorted(tc.OBSERVED), "unchecked_types": sorted(tc.UNCHECKED_TYPES),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
