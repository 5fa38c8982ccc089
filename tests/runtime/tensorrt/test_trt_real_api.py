"""Our TensorRT code against the real binding classes of every TensorRT version it claims.

The real ``tensorrt`` extension modules (from .ci/fetch-trt-bindings.sh) are imported, one version
per process, over a stub libnvinfer built here with the C compiler (real_trt.py). api_probe/ then
runs every path of our TensorRT code on that version with checked stand-ins for the objects only a
GPU can make (trt_checked.py: every class, member, argument count, keyword and argument type is
checked against the real pybind11 classes and their docstring signatures) and a simulated CUDA
driver behind pycuda (fake_cuda.py: context stacks, primary-context retain count, what pycuda frees
on a dead context). The tests below assert that:

* no call, attribute or property assignment disagrees with the real binding, and the paths give
  the right results (I/O bound by name with several inputs and outputs, INT8 batches, flags);
* every TensorRT name the source mentions (including calls through ``self._context`` and
  friends) was exercised on every version its module claims, so no call escapes the check;
* teardown destroys TensorRT objects in order while their context is current, frees everything,
  and leaves the context stacks and the primary context's retain count as they were;
* bugs injected into a copy of the source (the four of issue 13, and three teardown/INT8 ones)
  each make the probe fail, so the check is known to bite.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.tensorrt import real_trt
from tests.runtime.tensorrt.trt_names import REPO, Binding, load_bindings, mentions_tensorrt, used_trt_names

BINDINGS_DIR = Path(os.environ.get("TRT_BINDINGS_DIR") or REPO / ".cache" / "trt-bindings")
BINDINGS = load_bindings(BINDINGS_DIR)
NO_BINDINGS = f"no TensorRT bindings in {BINDINGS_DIR}: `make test` fetches them (.ci/fetch-trt-bindings.sh)"
SCANNED = ("runtime", "calibration", "converter")


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return real_trt.build_stub(tmp_path_factory.mktemp("nvinfer-stub"))
    except real_trt.StubUnavailable as e:
        pytest.skip(str(e))


class Probes:
    """One probe run per (source tree, binding), shared by the tests of this module."""

    def __init__(self, stub: Path, work: Path) -> None:
        self.stub, self.work = stub, work
        self.done: dict[tuple[str, str], dict[str, Any]] = {}

    def run(self, binding: Binding, source: Path = REPO) -> dict[str, Any]:
        key = (str(source), binding.version)
        if key not in self.done:
            work = self.work / f"{len(self.done)}"
            work.mkdir()
            self.done[key] = real_trt.probe(binding.directory, self.stub, work, source)
        return self.done[key]


@pytest.fixture(scope="module")
def probes(stub_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Probes:
    return Probes(stub_dir, tmp_path_factory.mktemp("probes"))


def _incompatible(binding: Binding) -> str | None:
    """Why this interpreter cannot import the binding (its wheel's Python and machine tags), or None."""
    wheel = (binding.directory / ".complete").read_text().split()[0]
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    if f"-{here}-" not in wheel or platform.machine() not in wheel:
        return (f"{wheel} is not for {here} on {platform.machine()}: the real-binding tests run under the "
                f"interpreter .ci/fetch-trt-bindings.sh fetched for (the main venv in `make test`)")
    return None


def _binding(version: str) -> Binding:
    for b in BINDINGS:
        if b.version == version:
            why = _incompatible(b)
            if why:
                pytest.skip(why)
            return b
    pytest.skip(f"TensorRT {version} binding not fetched: {NO_BINDINGS}")


VERSIONS = [b.version for b in BINDINGS] or ["none"]


@pytest.mark.parametrize("version", VERSIONS)
def test_our_tensorrt_code_agrees_with_the_real_binding(version: str, probes: Probes) -> None:
    if not BINDINGS:
        pytest.skip(NO_BINDINGS)
    report = probes.run(_binding(version))
    assert report["version"] == version
    assert not report["failures"], "\n".join(report["failures"])
    assert [s["scenario"] for s in report["scenarios"]] == [
        "logger", "build_fp16", "build_errors", "build_int8", "io_tensors", "runner", "runner_failures", "backend",
        "backend_model_kinds", "converter_builder"]


def _modules() -> list[Path]:
    return [p for top in SCANNED for p in sorted((REPO / top).rglob("*.py")) if mentions_tensorrt(p)]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_tensorrt_name_in_the_source_was_exercised(version: str, probes: Probes) -> None:
    """A call the probe never reaches is a call nothing checks: each must be driven on each version
    its module claims (add a scenario to api_probe/ for a new path)."""
    if not BINDINGS:
        pytest.skip(NO_BINDINGS)
    binding = _binding(version)
    observed = {member for _, member in probes.run(binding)["observed"]}
    missing = []
    for path in _modules():
        used = used_trt_names(path)
        if not any(binding.claimed_by(c) for c in used.versions or ()):
            continue
        missing += [f"{used.module}:{line} {name}" for name, line in sorted(used.names.items()) if name not in observed]
    assert not missing, f"never exercised on TensorRT {version}: " + ", ".join(missing)


# (name, file, old text, new text, binding versions to run, text a failure must contain)
INJECTED = [
    ("BuilderFlag.BF16 on the 11.x path", "runtime/tensorrt/api_v11.py",
     "    # Nothing to set: the ONNX chosen for this precision (runtime.tensorrt.api_paths) carries it.\n",
     "    config.set_flag(trt.BuilderFlag.BF16)\n", ("11.0.0.114", "11.4.0.106"), "has no member 'BF16'"),
    ("get_tensor_location in place of get_tensor_mode", "runtime/tensorrt/tensor_api.py",
     "engine.get_tensor_mode(name)", "engine.get_tensor_location(name)", ("10.3.0", "11.4.0.106"),
     "io_tensors read the engine as [('img', False"),
    ("self._context.execute_async_v2 in the runner", "runtime/tensorrt/runner.py",
     "if not self._execute(stream.handle):",
     "if not self._context.execute_async_v2([int(self._device[t.name]) for t in self.tensors], stream.handle):",
     ("10.0.1", "10.3.0", "11.4.0.106"), "IExecutionContext has no member 'execute_async_v2'"),
    ("set_tensor_address arguments swapped", "runtime/tensorrt/tensor_api.py",
     "context.set_tensor_address(t.name, int(addresses[t.name]))",
     "context.set_tensor_address(int(addresses[t.name]), t.name)", ("10.3.0", "11.0.0.114"),
     "IExecutionContext.set_tensor_address(int:"),
    ("pycuda detach alone releases the primary context", "runtime/tensorrt/cuda_context.py",
     "        ctx.push()  # pycuda's stack and the driver's: [.., ctx]\n        popped = driver_pop_current()",
     "        popped = int(ctx.handle)", ("10.3.0",), "context stacks (1, 0), were (0, 0)"),
    ("the execute closure keeps the execution context alive", "runtime/tensorrt/runner.py",
     "                self._execute = None\n", "", ("10.3.0", "8.6.1"),
     "close destroyed ['ICudaEngine', 'Runtime']"),
    ("INT8 calibration batch ignores the network's fixed batch", "calibration/trt_calibrator.py",
     "self.batch = calibration_batch(network_batch, self.n_samples)",
     "self.batch = calibration_batch(None, self.n_samples)", ("8.6.1",),
     "calibration batch 5 does not match the network's fixed batch [1]"),
]


@pytest.mark.parametrize("name,file,old,new,versions,expect", INJECTED, ids=[i[0] for i in INJECTED])
def test_injected_bug_fails_the_check(name: str, file: str, old: str, new: str, versions: tuple[str, ...],
                                      expect: str, probes: Probes, tmp_path: Path) -> None:
    if not BINDINGS:
        pytest.skip(NO_BINDINGS)
    src = tmp_path / "src"
    for top in ("runtime", "calibration"):
        shutil.copytree(REPO / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    target = src / file
    text = target.read_text()
    assert text.count(old) == 1, f"the code to mutate is no longer in {file}: update INJECTED"
    target.write_text(text.replace(old, new))
    for version in versions:
        failures = probes.run(_binding(version), src)["failures"]
        assert any(expect in f for f in failures), f"{name} was not caught on TensorRT {version}: {failures}"
