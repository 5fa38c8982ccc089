"""INT8 entropy calibration for TensorRT 8.6 (JetPack 6.0, x86), with a calibration cache that is
never used on the wrong TensorRT version or calibration set.

TensorRT 10 builds INT8 from the Q/DQ ONNX and 11 has no calibrators at all, so this module is the
8.x path only. The cache sits in the TensorRT cache directory next to the bundle; a JSON sidecar
records the TensorRT version, the calibration set's sha256, the ONNX's sha256 and the input shapes,
and the cache's own first line (``TRT-8601-EntropyCalibration2`` for 8.6.1) must agree with the
version. Any disagreement is logged and the cache is redone from the frames.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.atomic import atomic_write_bytes, atomic_write_json
from runtime.tensorrt.cuda_context import CudaContext
from runtime.tensorrt.shapes import EngineBuildError
from runtime.tensorrt.version import import_tensorrt, parse_version

TRT_VERSIONS = ("8.6",)
ALGORITHM = "EntropyCalibration2"
MAX_BATCH = 8
_HEADER = re.compile(rb"^TRT-(\d+)-(\w+)\s*$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationCacheKey:
    tensorrt: str  # full version, e.g. "8.6.2.3"
    calibration_sha256: str  # the calibration set (BuildContext.calibration_id)
    onnx_sha256: str
    input_shapes: Mapping[str, Sequence[int]]  # every network input by name, batch 1
    algorithm: str = ALGORITHM

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shapes"] = {str(k): [int(x) for x in v] for k, v in sorted(self.input_shapes.items())}
        return d


@dataclass(frozen=True)
class CacheCheck:
    usable: bool
    reason: str


def header_code(version: str) -> str:
    """The version number TensorRT writes in a calibration cache's header: 8.6.1 -> ``"8601"``."""
    v = (*parse_version(version), 0, 0)
    return str(v[0] * 1000 + v[1] * 100 + v[2])


def parse_header(data: bytes) -> tuple[str, str] | None:
    """``(version code, algorithm)`` from the cache's first line, or None if it has no such header."""
    first = data.split(b"\n", 1)[0]
    m = _HEADER.match(first)
    return (m.group(1).decode(), m.group(2).decode()) if m else None


def cache_paths(cache_dir: str | Path, onnx_sha256: str) -> tuple[Path, Path]:
    """(cache file, sidecar). One cache per ONNX; the sidecar says which TensorRT and set made it."""
    stem = Path(cache_dir) / f"calib.{onnx_sha256[:16]}.{ALGORITHM}.cache"
    return stem, stem.with_name(stem.name + ".json")


def check_calibration_cache(cache_path: str | Path, key: CalibrationCacheKey) -> CacheCheck:
    """Whether the cache at ``cache_path`` was made by this TensorRT version from this set and ONNX."""
    cache_path = Path(cache_path)
    sidecar = cache_path.with_name(cache_path.name + ".json")
    try:
        data = cache_path.read_bytes()
    except FileNotFoundError:
        return CacheCheck(False, "no calibration cache yet")
    except OSError as e:
        return CacheCheck(False, f"calibration cache unreadable ({e})")
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        return CacheCheck(False, "calibration cache has no sidecar, so its TensorRT version and set are unknown")
    except (OSError, json.JSONDecodeError) as e:
        return CacheCheck(False, f"calibration cache sidecar unreadable ({e})")
    if not isinstance(meta, dict):
        return CacheCheck(False, "calibration cache sidecar is not a JSON object")
    want = key.to_dict()
    labels = {"tensorrt": "TensorRT version", "calibration_sha256": "calibration set",
              "onnx_sha256": "ONNX model", "input_shapes": "input shapes", "algorithm": "calibration algorithm"}
    for field_name, label in labels.items():
        if meta.get(field_name) != want[field_name]:
            return CacheCheck(False, f"{label} differs: cache made with {meta.get(field_name)!r}, "
                                     f"this build uses {want[field_name]!r}")
    header = parse_header(data)
    if header is None:
        return CacheCheck(False, "calibration cache has no TRT-<version>-<algorithm> header")
    code, algorithm = header
    if code != header_code(key.tensorrt):
        return CacheCheck(False, f"cache header says TensorRT {code}, this is {key.tensorrt} ({header_code(key.tensorrt)})")
    if algorithm != key.algorithm:
        return CacheCheck(False, f"cache header says {algorithm}, this build uses {key.algorithm}")
    return CacheCheck(True, "calibration cache matches this TensorRT version, calibration set and ONNX")


def write_calibration_cache(cache_path: str | Path, data: bytes, key: CalibrationCacheKey) -> None:
    """Cache first, sidecar last (both atomic): a cache without its sidecar is never trusted."""
    cache_path = Path(cache_path)
    atomic_write_bytes(cache_path, data)
    atomic_write_json(cache_path.with_name(cache_path.name + ".json"), key.to_dict(), sort_keys=True)


def batch_size_for(n_frames: int, max_batch: int = MAX_BATCH) -> int:
    """Batch for a network whose batch is dynamic: up to ``max_batch`` samples."""
    return calibration_batch(None, n_frames, max_batch)


def calibration_batch(network_batch: int | None, n_samples: int, max_batch: int = MAX_BATCH) -> int:
    """The batch TensorRT calibrates with: the network's own when fixed (TensorRT requires the
    calibration batch to match it), else up to ``max_batch`` samples. ``ValueError`` when the set is
    empty or smaller than one fixed batch."""
    if n_samples <= 0:
        raise ValueError("the calibration set is empty")
    if network_batch is not None:
        if n_samples < network_batch:
            raise ValueError(f"the network takes batches of {network_batch}, the calibration set has {n_samples} samples")
        return int(network_batch)
    return max(1, min(max_batch, n_samples))


def calibration_feeds(
    data: Mapping[str, np.ndarray] | np.ndarray, input_shapes: Mapping[str, Sequence[int]]
) -> dict[str, np.ndarray]:
    """Check calibration data against the network's inputs: ``{input name: (N, ...) float32}``.

    A bare array is accepted for a one-input network. ``ValueError`` naming the input when one is
    missing, unknown, of the wrong per-sample shape, or when the inputs have different N.
    """
    if isinstance(data, np.ndarray):
        if len(input_shapes) != 1:
            raise ValueError(f"the network has inputs {sorted(input_shapes)}: give calibration data for each, by name")
        data = {next(iter(input_shapes)): data}
    missing = sorted(set(input_shapes) - set(data))
    unknown = sorted(set(data) - set(input_shapes))
    if missing or unknown:
        raise ValueError(f"calibration data lacks inputs {missing} / has inputs the network lacks {unknown}; "
                         f"the network takes {sorted(input_shapes)}")
    out: dict[str, np.ndarray] = {}
    for name, shape in input_shapes.items():
        arr = np.asarray(data[name])
        if arr.ndim != len(shape) or arr.shape[1:] != tuple(int(d) for d in shape[1:]):
            raise ValueError(f"calibration data for {name} has shape {arr.shape}, the model takes {tuple(shape)}")
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
    counts = {len(a) for a in out.values()}
    if len(counts) > 1:
        raise ValueError(f"calibration inputs have different sample counts: { {k: len(v) for k, v in out.items()} }")
    return out


def make_entropy_calibrator(
    data: Mapping[str, np.ndarray] | np.ndarray | None,
    cache_path: str | Path,
    key: CalibrationCacheKey,
    device_id: int = 0,
) -> Any:
    """A ``tensorrt.IInt8EntropyCalibrator2`` fed from ``{input name: (N, ...) float32}`` (a bare
    (N, ...) array for a one-input model), already preprocessed.

    The batch is fixed later by :meth:`prepare` (runtime.tensorrt.api_v8 calls it with the
    network's inputs). With ``data=None`` it can only replay a valid cache; that is refused up front
    when the cache is not valid, so TensorRT never calibrates on nothing. ``ValueError`` for data that
    does not fit the model.
    """
    cache_path = Path(cache_path)
    check = check_calibration_cache(cache_path, key)
    if check.usable:
        log.info("reusing INT8 calibration cache %s", cache_path)
    elif cache_path.exists():
        log.warning("recalibrating: the cache %s is not usable (%s)", cache_path, check.reason)
    if data is None and not check.usable:
        raise ValueError(f"no calibration frames and no usable calibration cache ({check.reason})")
    feeds = calibration_feeds(data, key.input_shapes) if data is not None else None
    return _calibrator_class(import_tensorrt())(feeds, cache_path, key, check.usable, device_id)


def _calibrator_class(trt: Any) -> Any:
    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """TensorRT calls these methods from C++ during the build. Exceptions raised in them are
        swallowed by TensorRT's trampoline, so every failure is kept in ``self.error`` and raised by
        :meth:`verify` after the build instead."""

        def __init__(
            self, feeds: dict[str, np.ndarray] | None, cache_path: Path, key: CalibrationCacheKey,
            cache_usable: bool, device_id: int,
        ) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.feeds, self.cache_path, self.key = feeds, cache_path, key
            self.cache_usable = cache_usable
            self.batch = 0  # set by prepare()
            self.next_index = 0
            self.batches_fed = 0
            self.cache_read = False
            self.error: str | None = None
            self.device: dict[str, Any] = {}
            self.cuda_ctx = CudaContext(device_id)

        @property
        def n_samples(self) -> int:
            return len(next(iter(self.feeds.values()))) if self.feeds else 0

        def prepare(self, network_shapes: Mapping[str, Sequence[int]], dynamic: set[str]) -> int:
            """Fix the batch from the network's inputs (batch-1 shapes by name, the dynamic ones
            named) and allocate one device buffer per input; returns the batch."""
            if sorted(network_shapes) != sorted(self.key.input_shapes):
                raise EngineBuildError(f"the network's inputs {sorted(network_shapes)} are not the calibrated "
                                       f"model's {sorted(self.key.input_shapes)}")
            fixed = {int(s[0]) for n, s in network_shapes.items() if n not in dynamic}
            if len(fixed) > 1:
                raise EngineBuildError(f"the network's inputs have different fixed batches {sorted(fixed)}")
            network_batch = fixed.pop() if fixed else None
            if self.feeds is None:  # replaying a cache: TensorRT asks for no batch
                self.batch = network_batch or 1
                return self.batch
            try:
                self.batch = calibration_batch(network_batch, self.n_samples)
            except ValueError as e:
                raise EngineBuildError(str(e)) from e
            if self.n_samples % self.batch:
                log.info("calibration uses %d of %d samples (whole batches of %d)",
                         self.n_samples - self.n_samples % self.batch, self.n_samples, self.batch)
            with self.cuda_ctx.active() as cuda:
                for name, arr in self.feeds.items():
                    self.device[name] = cuda.mem_alloc(int(np.prod((self.batch, *arr.shape[1:]))) * 4)
            return self.batch

        def get_batch_size(self) -> int:
            return self.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                if self.feeds is None or self.next_index + self.batch > self.n_samples:
                    return None  # TensorRT stops calibrating
                if sorted(names) != sorted(self.device):
                    raise ValueError(f"TensorRT asks for inputs {names}, the calibration data has {sorted(self.device)}")
                lo, hi = self.next_index, self.next_index + self.batch
                with self.cuda_ctx.active() as cuda:
                    for name in names:
                        cuda.memcpy_htod(self.device[name], self.feeds[name][lo:hi])
                self.next_index = hi
                self.batches_fed += 1
                return [int(self.device[name]) for name in names]
            except Exception as e:  # TensorRT would swallow it and calibrate on nothing
                log.exception("INT8 calibration batch failed")
                self.error = f"{type(e).__name__}: {e}"
                return None

        def read_calibration_cache(self) -> bytes | None:
            if not self.cache_usable:
                return None
            self.cache_read = True
            return self.cache_path.read_bytes()

        def write_calibration_cache(self, cache: Any) -> None:
            try:
                write_calibration_cache(self.cache_path, bytes(cache), self.key)
            except Exception as e:  # see get_batch
                log.exception("writing the INT8 calibration cache failed")
                self.error = f"{type(e).__name__}: {e}"
                return
            log.info("wrote INT8 calibration cache %s (TensorRT %s)", self.cache_path, self.key.tensorrt)

        def verify(self) -> None:
            """After the build: ``EngineBuildError`` when calibration failed or saw no data."""
            if self.error:
                raise EngineBuildError(f"INT8 calibration failed: {self.error}")
            if not self.cache_read and self.batches_fed == 0:
                raise EngineBuildError("INT8 calibration fed no batch to TensorRT (and no calibration cache was used)")

        def release(self) -> None:
            """Free the device buffers and the context; idempotent."""
            if self.cuda_ctx.released:
                return
            try:
                with self.cuda_ctx.active():
                    for mem in self.device.values():
                        mem.free()
                    self.device.clear()
            finally:
                self.cuda_ctx.release()

    return EntropyCalibrator
