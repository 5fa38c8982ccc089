"""TensorRT backend: a bundle's engine when it was built for this TensorRT + GPU, else one built here
from the bundle's ONNX and cached (engines are not portable across versions or GPUs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from runtime import formats
from runtime.backends.base import Backend, BackendUnavailable
from runtime.manifest import BuildEntry, BundleError, Manifest, sha256_file, verified_path
from runtime.tensorrt.api_paths import needs_calibrator, select_source
from runtime.tensorrt.builder import build_engine
from runtime.tensorrt.cuda_context import PycudaUnavailable
from runtime.tensorrt.engine_cache import (
    DEFAULT_WORKSPACE_MB,
    EngineCache,
    EngineKey,
    EngineLoadError,
    default_cache_dir,
)
from runtime.tensorrt.gpu import GpuInfo, GpuUnavailable, detect_gpu
from runtime.tensorrt.runner import EngineRunner
from runtime.tensorrt.shapes import engine_input_shapes
from runtime.tensorrt.version import TensorRTUnavailable, UnsupportedTensorRT, api_path, installed_version

log = logging.getLogger(__name__)

TARGET_KEYS = ("tensorrt", "compute_capability", "device")


def target_matches(engine_target: dict[str, Any] | None, here: dict[str, Any]) -> bool:
    """An engine runs only where TensorRT version, compute capability and device all match."""
    if not engine_target:
        return False
    return all(str(engine_target.get(k)) == str(here[k]) for k in TARGET_KEYS)


def _environment(device_id: int) -> tuple[str, str, dict[str, str], GpuInfo]:
    """(TensorRT version, API path, target dict, GPU) or BackendUnavailable saying what is missing."""
    try:
        version = installed_version()
        api = api_path(version)
        gpu = detect_gpu(device_id)
    except (TensorRTUnavailable, UnsupportedTensorRT, GpuUnavailable) as e:
        raise BackendUnavailable(str(e)) from e
    return version, api, {"tensorrt": version, "compute_capability": gpu.compute_capability, "device": gpu.device}, gpu


class TensorRTBackend(Backend):
    """Runs a serialized TensorRT engine through :class:`~runtime.tensorrt.runner.EngineRunner` (pycuda),
    on the API path of the installed version (8.x bindings, 10.x/11.x tensor API: see
    https://docs.nvidia.com/deeplearning/tensorrt/11.4.1/api/migration/tensorrt-8x-to-10x-python-api-patterns.html).
    Usually opened with :meth:`from_bundle`. Raises :class:`BackendUnavailable` without TensorRT,
    pycuda or a GPU, :class:`~runtime.tensorrt.engine_cache.EngineLoadError` for an engine built by
    another TensorRT version, :class:`BundleError` when the engine's tensors do not match the manifest.
    """

    name = "tensorrt"

    def __init__(self, path: Path, build: BuildEntry, manifest: Manifest, device_id: int = 0) -> None:
        super().__init__(path, build, manifest)
        try:
            self.trt_version = installed_version()
            self.api = api_path(self.trt_version)
        except (TensorRTUnavailable, UnsupportedTensorRT) as e:
            raise BackendUnavailable(str(e)) from e
        built_for = (build.target or {}).get("tensorrt")
        if built_for and str(built_for) != self.trt_version:
            raise EngineLoadError(f"{path.name} was built with TensorRT {built_for}, this is {self.trt_version}")
        try:
            shapes = engine_input_shapes(manifest, build.io)
        except ValueError as e:
            raise BundleError(f"{path.name}: {e}") from e
        try:
            self.runner = EngineRunner(Path(path).read_bytes(), self.api, shapes, device_id)
        except PycudaUnavailable as e:
            raise BackendUnavailable(str(e)) from e
        try:
            self._check_io(path, shapes)
        except BaseException:
            self.runner.close()
            raise

    def _check_io(self, path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
        """Every tensor the manifest names is in the engine, as input or output, with the right
        kind of dtype; the engine has no input the manifest does not feed."""
        inputs = {t.name: t for t in self.runner.inputs}
        outputs = {t.name: t for t in self.runner.outputs}
        problems = [f"input {n} is not an engine input" for n in shapes if n not in inputs]
        problems += [f"engine input {n} is not fed by the manifest" for n in inputs if n not in shapes]
        problems += [f"output {io.name} is not an engine output" for io in self.output_io.values() if io.name not in outputs]
        for io in self.input_io.values():
            if io.name in inputs and io.quantized and self.runner.dtype(io.name).kind == "f":
                problems.append(f"the manifest gives {io.name} a quantized integer input, the engine takes floats")
        if problems:
            raise BundleError(f"{path.name} does not match its manifest: " + "; ".join(problems)
                              + f" (engine inputs {sorted(inputs)}, outputs {sorted(outputs)})")

    @property
    def last_timings_ms(self) -> dict[str, float]:
        """GPU time of the last call: ``h2d``, ``compute`` and ``d2h`` in milliseconds (CUDA events)."""
        return self.runner.last_timings_ms

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.runner.run(feeds)

    def close(self) -> None:
        """Free the engine, its context and the device buffers (safe to call twice)."""
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()

    def describe(self) -> dict[str, Any]:
        """The base description plus the TensorRT version, API path and the engine's target."""
        d = super().describe()
        d.update({"tensorrt": self.trt_version, "api_path": self.api, "target": self.build.target})
        return d

    @classmethod
    def from_bundle(
        cls,
        bundle_dir: str | Path,
        manifest: Manifest,
        fmt: str,
        cache_dir: str | Path | None = None,
        device_id: int = 0,
        workspace_mb: int = DEFAULT_WORKSPACE_MB,
        **opts: Any,
    ) -> TensorRTBackend:
        """The bundle's engine for this TensorRT + GPU, else one built from its ONNX into the cache.

        Every file is sha256-checked against the manifest first; a mismatch is refused, never
        rebuilt around. Other backends' options (e.g. ``threads``) are ignored.
        """
        if opts:
            log.debug("tensorrt backend ignores options %s", sorted(opts))
        bundle_dir = Path(bundle_dir)
        precision = formats.get(fmt).precision
        version, api, here, gpu = _environment(device_id)
        for b in manifest.builds:
            if b.format == fmt and target_matches(b.target, here):
                path = verified_path(bundle_dir, b)
                try:
                    return cls(path, b, manifest, device_id=device_id)
                except EngineLoadError as e:
                    log.warning("the bundle's engine %s does not load here (%s); building one from the ONNX", b.file, e)
        if needs_calibrator(api, precision):
            raise BackendUnavailable(
                f"{fmt}: the bundle has no INT8 engine for TensorRT {version} on {here['device']}, and TensorRT 8.x "
                f"must calibrate to build one; on this machine run: convert-model --bundle {bundle_dir} "
                f"--formats {fmt} --calibration SET"
            )
        try:
            src = select_source(manifest, precision, api)
        except BundleError as e:
            raise BackendUnavailable(str(e)) from e
        onnx_path = verified_path(bundle_dir, src)
        try:
            shapes = engine_input_shapes(manifest, src.io)
        except ValueError as e:
            raise BundleError(str(e)) from e
        (_, first_shape), *others = shapes.items()
        key = EngineKey(src.sha256, version, here["compute_capability"], here["device"], precision, first_shape,
                        tuple(others), workspace_mb=workspace_mb)
        cache = EngineCache(cache_dir or default_cache_dir())
        timing_cache = cache.timing_cache_path(version, here["compute_capability"])

        def build(engine_path: Path) -> dict[str, Any]:
            info = build_engine(onnx_path, precision, engine_path, workspace_mb, timing_cache, None, input_shapes=shapes,
                                gpu=gpu)
            return {**info.to_dict(), "source_build": src.format}

        def load(engine_path: Path) -> TensorRTBackend:
            entry = BuildEntry(
                format=fmt, precision=precision, file=str(engine_path), sha256=sha256_file(engine_path),
                bytes=engine_path.stat().st_size, io=dict(src.io), toolchain={"tensorrt": version},
                target=dict(here), extra={"source_build": src.format, "cached": True},
            )
            return cls(engine_path, entry, manifest, device_id=device_id)

        result = cache.get_or_build(key, build, load)
        log.info("%s engine %s (%s)", fmt, result.engine_path, "built now" if result.built else "from cache")
        return result.value
