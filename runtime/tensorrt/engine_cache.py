"""A cache of TensorRT engines built on this machine, keyed by everything an engine depends on.

An engine only works with the TensorRT version and the GPU it was built with, so the key is the
ONNX's sha256 + TensorRT version + compute capability + device + precision + input shapes + the
builder's workspace limit. Each engine has a JSON sidecar holding its key and sha256; the sidecar is
written last, so an engine without one (a crash mid-write) is never used. An engine that fails to deserialize is rebuilt.
Pure Python: TensorRT is only touched through the ``build`` and ``load`` callables.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from runtime.atomic import atomic_write_json
from runtime.manifest import sha256_file

log = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_ENV = "RC_TRT_CACHE_DIR"
DEFAULT_WORKSPACE_MB = 1024  # the builder's workspace limit (MiB) unless configured: one default for all


class EngineLoadError(RuntimeError):
    """An engine file TensorRT refused to deserialize (other version, other GPU, corrupt)."""


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on: the source ONNX's sha256 (64 hex digits), TensorRT version,
    compute capability (``"8.7"``), device, precision, and the batch-1 static shape of the first input
    (``other_inputs`` for the rest). ``ValueError`` for a malformed digest or a non-static shape.
    """

    onnx_sha256: str
    tensorrt: str
    compute_capability: str
    device: str
    precision: str
    input_shape: tuple[int, ...]
    # Models with several inputs: (tensor name, batch-1 shape) of each input but the first.
    other_inputs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # The builder's workspace limit (MiB) bounds the tactics it may choose, so a larger one can give
    # a faster engine: asking for another must not reuse the old engine.
    workspace_mb: int = DEFAULT_WORKSPACE_MB

    def __post_init__(self) -> None:
        if len(self.onnx_sha256) != 64:
            raise ValueError(f"onnx_sha256 must be a sha256 hex digest, got {self.onnx_sha256!r}")
        if any(int(d) <= 0 for d in self.input_shape):
            raise ValueError(f"input_shape must be fully static, got {self.input_shape}")

    def to_dict(self) -> dict[str, Any]:
        """The key as JSON-able values (single-input keys omit ``other_inputs``, keeping their old digest)."""
        d = asdict(self)
        d["input_shape"] = [int(x) for x in self.input_shape]
        if self.other_inputs:
            d["other_inputs"] = [[str(n), [int(x) for x in s]] for n, s in self.other_inputs]
        else:  # single-input keys keep the digest they always had
            del d["other_inputs"]
        if self.workspace_mb == DEFAULT_WORKSPACE_MB:  # as do keys at the default workspace
            del d["workspace_mb"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineKey:
        """The key a sidecar recorded; ``KeyError``/``ValueError`` for a malformed one."""
        return cls(
            onnx_sha256=str(d["onnx_sha256"]),
            tensorrt=str(d["tensorrt"]),
            compute_capability=str(d["compute_capability"]),
            device=str(d["device"]),
            precision=str(d["precision"]),
            input_shape=tuple(int(x) for x in d["input_shape"]),
            other_inputs=tuple((str(n), tuple(int(x) for x in s)) for n, s in d.get("other_inputs", ())),
            workspace_mb=int(d.get("workspace_mb", DEFAULT_WORKSPACE_MB)),
        )

    def digest(self) -> str:
        """sha256 (hex) of the key's canonical JSON."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def stem(self) -> str:
        """The cached file's name without suffix: precision, TensorRT version, sm<cc> and 16 digest hex
        digits.
        """
        cc = self.compute_capability.replace(".", "")
        return f"model_{self.precision}.trt{self.tensorrt}.sm{cc}.{self.digest()[:16]}"


def default_cache_dir() -> Path:
    """``$RC_TRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/rc-edge/tensorrt``, else ``~/.cache/rc-edge/tensorrt``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rc-edge" / "tensorrt"


def timing_cache_name(tensorrt: str, compute_capability: str) -> str:
    """Timing caches are only valid for one TensorRT version and GPU, like engines."""
    return f"trt{tensorrt}.sm{compute_capability.replace('.', '')}.timing.cache"


@dataclass
class CacheResult(Generic[T]):
    """What :meth:`EngineCache.get_or_build` returns: the loaded ``value``, the engine's path, and whether
    it was ``built`` now.
    """

    value: T
    engine_path: Path
    built: bool  # False: served from the cache


class EngineCache:
    """Engines and their JSON sidecars under ``root`` (see the module), plus per-version/GPU timing caches."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def engine_path(self, key: EngineKey) -> Path:
        """Where the engine for ``key`` lives (whether or not it exists)."""
        return self.root / f"{key.stem()}.engine"

    def sidecar_path(self, key: EngineKey) -> Path:
        """Where the JSON sidecar for ``key`` lives."""
        return self.root / f"{key.stem()}.json"

    def timing_cache_path(self, tensorrt: str, compute_capability: str) -> Path:
        """The timing cache for this TensorRT version and compute capability."""
        return self.root / timing_cache_name(tensorrt, compute_capability)

    def lookup(self, key: EngineKey) -> Path | None:
        """The cached engine for ``key`` if its sidecar matches the key and its sha256 matches the file."""
        engine, sidecar = self.engine_path(key), self.sidecar_path(key)
        if not engine.is_file():
            return None
        reason = self._sidecar_problem(key, engine, sidecar)
        if reason:
            log.warning("ignoring cached engine %s: %s", engine.name, reason)
            return None
        return engine

    def _sidecar_problem(self, key: EngineKey, engine: Path, sidecar: Path) -> str | None:
        try:
            meta = json.loads(sidecar.read_text())
        except FileNotFoundError:
            return "no sidecar (the build did not finish)"
        except (OSError, json.JSONDecodeError) as e:
            return f"sidecar unreadable ({e})"
        if not isinstance(meta, dict) or meta.get("key") != key.to_dict():
            return "sidecar key differs from the wanted key"
        if meta.get("engine_sha256") != sha256_file(engine):
            return "engine bytes do not match the sidecar's sha256"
        return None

    def commit(self, key: EngineKey, info: dict[str, Any] | None = None) -> Path:
        """Record a freshly written engine: the sidecar makes it visible to :meth:`lookup`."""
        engine = self.engine_path(key)
        atomic_write_json(
            self.sidecar_path(key),
            {"key": key.to_dict(), "engine_sha256": sha256_file(engine), "bytes": engine.stat().st_size,
             "build": info or {}},
            sort_keys=True,
        )
        return engine

    def invalidate(self, key: EngineKey) -> None:
        """Delete the engine and its sidecar for ``key`` (missing files are fine)."""
        self.sidecar_path(key).unlink(missing_ok=True)
        self.engine_path(key).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _lock(self, key: EngineKey) -> Iterator[None]:
        """One builder per key across processes (the service and a manual run may start together)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{key.stem()}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def get_or_build(
        self,
        key: EngineKey,
        build: Callable[[Path], dict[str, Any] | None],
        load: Callable[[Path], T],
    ) -> CacheResult[T]:
        """Load the cached engine, or build it (``build(engine_path)`` writes the file) and load that.

        A cached engine that ``load`` rejects with :class:`EngineLoadError` is deleted and rebuilt
        once; a freshly built engine that fails to load is a real error and propagates.
        """
        with self._lock(key):
            cached = self.lookup(key)
            if cached is not None:
                try:
                    return CacheResult(load(cached), cached, built=False)
                except EngineLoadError as e:
                    log.warning("cached engine %s failed to deserialize (%s); rebuilding it", cached.name, e)
                    self.invalidate(key)
            self.sidecar_path(key).unlink(missing_ok=True)
            engine = self.engine_path(key)
            info = build(engine)
            if not engine.is_file():
                raise RuntimeError(f"engine build reported success but wrote no {engine}")
            self.commit(key, info)
            log.info("built and cached TensorRT engine %s", engine)
            return CacheResult(load(engine), engine, built=True)
