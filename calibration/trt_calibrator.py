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
from collections.abc import Mapping
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
    input_shape: tuple[int, ...]  # one frame, batch 1 (the camera input)
    algorithm: str = ALGORITHM
    # A model with several inputs: every engine input tensor name with its batch-1 shape.
    inputs: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = [int(x) for x in self.input_shape]
        if self.inputs:
            d["inputs"] = {name: [int(x) for x in shape] for name, shape in self.inputs}
        else:
            d.pop("inputs")  # single-input keys read as before (existing caches stay valid)
        return d

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """{engine input name: batch-1 shape}; ``""`` stands for the one input of a single-input model."""
        return {name: tuple(shape) for name, shape in self.inputs} if self.inputs else {"": tuple(self.input_shape)}


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
              "onnx_sha256": "ONNX model", "input_shape": "input shape", "algorithm": "calibration algorithm",
              "inputs": "model inputs"}
    for field_name, label in labels.items():
        if meta.get(field_name) != want.get(field_name):
            return CacheCheck(False, f"{label} differs: cache made with {meta.get(field_name)!r}, "
                                     f"this build uses {want.get(field_name)!r}")
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


class CalibrationFeeds:
    """What the calibrator hands TensorRT, batch by batch, for every engine input.

    ``feeds``: {engine input tensor name: (N, ...) float32}, one row per calibration sample, all
    inputs the same N (sample i of every input belongs together: a frame with the IMU values, the
    memory and the behaviour recorded with it). ``shapes``: {name: batch-1 shape}. A single-input
    model may use the name ``""`` for its one input, whatever TensorRT calls it. Raises
    ``ValueError`` naming the input for a missing or extra input or a wrong shape."""

    def __init__(self, feeds: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]]) -> None:
        missing, extra = sorted(set(shapes) - set(feeds)), sorted(set(feeds) - set(shapes))
        if missing or extra:
            raise ValueError(f"calibration data lacks inputs {missing} / has unknown inputs {extra}; "
                             f"the engine takes {sorted(shapes)}")
        self.feeds: dict[str, np.ndarray] = {}
        counts = set()
        for name, a in feeds.items():
            if a.ndim != len(shapes[name]) or tuple(a.shape[1:]) != tuple(shapes[name][1:]):
                raise ValueError(f"calibration input {name or 'frames'!r} has shape {a.shape}, the model takes "
                                 f"{tuple(shapes[name])}")
            self.feeds[name] = np.ascontiguousarray(a, dtype=np.float32)
            counts.add(len(a))
        if len(counts) != 1:
            raise ValueError(f"calibration inputs have different sample counts {sorted(counts)}; give one row per "
                             "sample for every input")
        self.count = counts.pop()
        self.shapes = {k: tuple(v) for k, v in shapes.items()}

    def nbytes(self, batch: int) -> dict[str, int]:
        return {name: int(np.prod((batch, *shape[1:]))) * 4 for name, shape in self.shapes.items()}

    def resolve(self, names: list[str]) -> dict[str, str]:
        """{TensorRT's input name: our feed name}; ``ValueError`` naming what does not match."""
        if list(self.feeds) == [""] and len(names) == 1:
            return {names[0]: ""}
        if set(names) != set(self.feeds):
            raise ValueError(f"the network's inputs {sorted(names)} are not the calibration data's {sorted(self.feeds)}")
        return {n: n for n in names}

    def batch(self, start: int, size: int) -> dict[str, np.ndarray] | None:
        """Rows ``start .. start + size`` of every input, or None when fewer are left."""
        if start + size > self.count:
            return None
        return {name: a[start : start + size] for name, a in self.feeds.items()}


def make_entropy_calibrator(
    frames: np.ndarray | Mapping[str, np.ndarray] | None,
    cache_path: str | Path,
    key: CalibrationCacheKey,
    batch_size: int | None = None,
    device_id: int = 0,
) -> Any:
    """A ``tensorrt.IInt8EntropyCalibrator2`` fed from preprocessed samples: one (N, ...) float32
    array for a single-input model, or {engine input name: (N, ...)} for every input of a model
    with several (``key.inputs`` then names them with their shapes); see :class:`CalibrationFeeds`.

    With ``frames=None`` it can only replay a valid cache; that is refused up front when the cache
    is not valid, so TensorRT never calibrates on nothing. After the build, ``calibrator.failure``
    says why calibration stopped early (e.g. the network's inputs are not the data's), or is None.
    """
    cache_path = Path(cache_path)
    check = check_calibration_cache(cache_path, key)
    if check.usable:
        log.info("reusing INT8 calibration cache %s", cache_path)
    elif cache_path.exists():
        log.warning("recalibrating: the cache %s is not usable (%s)", cache_path, check.reason)
    if frames is None and not check.usable:
        raise ValueError(f"no calibration frames and no usable calibration cache ({check.reason})")
    feeds = None
    if frames is not None:
        mapping = frames if isinstance(frames, Mapping) else {"": frames}
        if isinstance(frames, Mapping) and not key.inputs:
            raise ValueError("calibration data for several inputs needs CalibrationCacheKey.inputs (name and shape of each)")
        feeds = CalibrationFeeds(mapping, key.shapes())
    batch = batch_size or batch_size_for(feeds.count if feeds is not None else 1)
    return _calibrator_class(import_tensorrt())(feeds, cache_path, key, batch, check.usable, device_id)


def _calibrator_class(trt: Any) -> Any:
    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(
            self, feeds: CalibrationFeeds | None, cache_path: Path, key: CalibrationCacheKey, batch: int,
            cache_usable: bool, device_id: int,
        ) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.feeds, self.cache_path, self.key, self.batch = feeds, cache_path, key, batch
            self.cache_usable = cache_usable
            self.next_index = 0
            self.failure: str | None = None
            self.cuda_ctx = CudaContext(device_id)
            sizes = feeds.nbytes(batch) if feeds is not None else {"": 4}
            with self.cuda_ctx.active() as cuda:
                self.device_inputs = {name: cuda.mem_alloc(n) for name, n in sizes.items()}
            if feeds is not None and feeds.count % batch:
                log.info("calibration uses %d of %d samples (whole batches of %d)",
                         feeds.count - feeds.count % batch, feeds.count, batch)

        def get_batch_size(self) -> int:
            return self.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.feeds is None:
                return None
            try:
                which = self.feeds.resolve(list(names))
            except ValueError as e:  # stopping here would calibrate on nothing: say so loudly
                self.failure = str(e)
                log.error("INT8 calibration stopped: %s", e)
                return None
            chunk = self.feeds.batch(self.next_index, self.batch)
            if chunk is None:
                return None  # TensorRT stops calibrating
            self.next_index += self.batch
            pointers = []
            with self.cuda_ctx.active() as cuda:
                for name in names:
                    mine = which[name]
                    cuda.memcpy_htod(self.device_inputs[mine], chunk[mine])
                    pointers.append(int(self.device_inputs[mine]))
            return pointers

        def read_calibration_cache(self) -> bytes | None:
            return self.cache_path.read_bytes() if self.cache_usable else None

        def write_calibration_cache(self, cache: Any) -> None:
            write_calibration_cache(self.cache_path, bytes(cache), self.key)
            log.info("wrote INT8 calibration cache %s (TensorRT %s)", self.cache_path, self.key.tensorrt)

        def release(self) -> None:
            with self.cuda_ctx.active():
                for buf in self.device_inputs.values():
                    buf.free()
            self.cuda_ctx.release()

    return EntropyCalibrator
