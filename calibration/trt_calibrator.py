"""INT8 entropy calibration for TensorRT 8.5/8.6 (JetPack 5), with a calibration cache that is
never used on the wrong TensorRT version or calibration set.

TensorRT 10 builds INT8 from the Q/DQ ONNX and 11 has no calibrators at all, so this module is the
8.x path only. The cache sits in the TensorRT cache directory next to the bundle; a JSON sidecar
records the TensorRT version, the calibration set's sha256, the ONNX's sha256 and the input shape,
and the cache's own first line (``TRT-8601-EntropyCalibration2`` for 8.6.1) must agree with the
version. Any disagreement is logged and the cache is redone from the frames.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.tensorrt.atomic import atomic_write_bytes, atomic_write_json
from runtime.tensorrt.cuda_context import CudaContext
from runtime.tensorrt.version import import_tensorrt, parse_version

TRT_VERSIONS = ("8.5", "8.6")
ALGORITHM = "EntropyCalibration2"
MAX_BATCH = 8
_HEADER = re.compile(rb"^TRT-(\d+)-(\w+)\s*$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationCacheKey:
    tensorrt: str  # full version, e.g. "8.5.2.2"
    calibration_sha256: str  # the calibration set (BuildContext.calibration_id)
    onnx_sha256: str
    input_shape: tuple[int, ...]  # one frame, batch 1
    algorithm: str = ALGORITHM

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = [int(x) for x in self.input_shape]
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
              "onnx_sha256": "ONNX model", "input_shape": "input shape", "algorithm": "calibration algorithm"}
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
    atomic_write_json(cache_path.with_name(cache_path.name + ".json"), key.to_dict())


def batch_size_for(n_frames: int, max_batch: int = MAX_BATCH) -> int:
    if n_frames <= 0:
        raise ValueError("the calibration set is empty")
    return max(1, min(max_batch, n_frames))


def make_entropy_calibrator(
    frames: np.ndarray | None,
    cache_path: str | Path,
    key: CalibrationCacheKey,
    batch_size: int | None = None,
    device_id: int = 0,
) -> Any:
    """A ``tensorrt.IInt8EntropyCalibrator2`` fed from (N, H, W, 3) float32 preprocessed frames.

    With ``frames=None`` it can only replay a valid cache; that is refused up front when the cache
    is not valid, so TensorRT never calibrates on nothing.
    """
    cache_path = Path(cache_path)
    check = check_calibration_cache(cache_path, key)
    if check.usable:
        log.info("reusing INT8 calibration cache %s", cache_path)
    elif cache_path.exists():
        log.warning("recalibrating: the cache %s is not usable (%s)", cache_path, check.reason)
    if frames is None and not check.usable:
        raise ValueError(f"no calibration frames and no usable calibration cache ({check.reason})")
    if frames is not None:
        if frames.ndim != 4 or frames.shape[1:] != tuple(key.input_shape[1:]):
            raise ValueError(f"calibration frames have shape {frames.shape}, the model takes {key.input_shape}")
        frames = np.ascontiguousarray(frames, dtype=np.float32)
    batch = batch_size or batch_size_for(len(frames) if frames is not None else 1)
    return _calibrator_class(import_tensorrt())(frames, cache_path, key, batch, check.usable, device_id)


def _calibrator_class(trt: Any) -> Any:
    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(
            self, frames: np.ndarray | None, cache_path: Path, key: CalibrationCacheKey, batch: int,
            cache_usable: bool, device_id: int,
        ) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.frames, self.cache_path, self.key, self.batch = frames, cache_path, key, batch
            self.cache_usable = cache_usable
            self.next_index = 0
            self.cuda_ctx = CudaContext(device_id)
            nbytes = int(np.prod((batch, *key.input_shape[1:]))) * 4
            with self.cuda_ctx.active() as cuda:
                self.device_input = cuda.mem_alloc(nbytes)
            if frames is not None and len(frames) % batch:
                log.info("calibration uses %d of %d frames (whole batches of %d)",
                         len(frames) - len(frames) % batch, len(frames), batch)

        def get_batch_size(self) -> int:
            return self.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            if len(names) != 1:
                raise ValueError(f"the calibrator feeds one input, the network has {names}")
            frames = self.frames
            if frames is None or self.next_index + self.batch > len(frames):
                return None  # TensorRT stops calibrating
            chunk = frames[self.next_index : self.next_index + self.batch]
            self.next_index += self.batch
            with self.cuda_ctx.active() as cuda:
                cuda.memcpy_htod(self.device_input, chunk)
            return [int(self.device_input)]

        def read_calibration_cache(self) -> bytes | None:
            return self.cache_path.read_bytes() if self.cache_usable else None

        def write_calibration_cache(self, cache: Any) -> None:
            write_calibration_cache(self.cache_path, bytes(cache), self.key)
            log.info("wrote INT8 calibration cache %s (TensorRT %s)", self.cache_path, self.key.tensorrt)

        def release(self) -> None:
            with self.cuda_ctx.active():
                self.device_input.free()
            self.cuda_ctx.release()

    return EntropyCalibrator
