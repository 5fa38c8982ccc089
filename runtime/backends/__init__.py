"""Backends behind one interface, chosen by name or ``auto``."""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path
from typing import Any

from runtime import formats
from runtime.backend_names import canonical_backend
from runtime.backends.base import Backend, BackendUnavailable
from runtime.manifest import BundleError, Manifest, load_manifest, verified_path

log = logging.getLogger(__name__)

# backend name -> "module:class"; imported only when chosen (TensorRT/pycuda exist on the car only).
BACKENDS: dict[str, str] = {
    "tensorrt": "runtime.backends.tensorrt_backend:TensorRTBackend",
    "onnxruntime": "runtime.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "litert": "runtime.backends.litert_backend:LiteRTBackend",
}
# What `--backend auto` tries, best first, with the build each one runs by default.
AUTO_ORDER: tuple[tuple[str, str], ...] = (("tensorrt", "trt-fp16"), ("onnxruntime", "onnx"), ("litert", "tflite-fp32"))

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "backend_class", "canonical_backend", "open_backend"]


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name`` (imported now; an old name such as ``tflite`` is read
    as its new one). ``ValueError`` for an unknown name, :class:`BackendUnavailable` when its library
    cannot be imported here.
    """
    name = canonical_backend(name)
    try:
        module, cls = BACKENDS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}") from None
    try:
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return,unused-ignore]
    except ImportError as e:
        raise BackendUnavailable(f"backend {name!r} is not available here: {e}") from e


def open_backend(
    bundle_dir: str | Path,
    backend: str = "auto",
    fmt: str | None = None,
    manifest: Manifest | None = None,
    **options: Any,
) -> Backend:
    """Open a build of a bundle after verifying its sha256.

    ``backend="auto"`` tries TensorRT, ONNX Runtime, then LiteRT (``tflite``, the old name, is read
    as ``litert``); ``fmt`` picks the build (default: the backend's usual one). ``options`` go to the
    backend (``threads``, ``cache_dir``, ``device_id`` ...); those it does not take are dropped. A
    sha256 mismatch is never worked around.

    Raises :class:`BundleError` when the bundle has no such build or ``fmt`` runs on another
    backend, :class:`~runtime.manifest.IntegrityError` for a file whose sha256 differs,
    :class:`BackendUnavailable` when no (or not the named) backend can run here, ``ValueError``
    for an unknown backend name or format id.
    """
    bundle_dir = Path(bundle_dir)
    manifest = manifest or load_manifest(bundle_dir)
    if backend == "auto":
        if fmt is not None and formats.get(fmt).runner != "tensorrt":
            manifest.build(fmt)  # a named build the bundle lacks: BundleError listing what it has
        errors = []
        for name, default_fmt in AUTO_ORDER:
            want = fmt or default_fmt
            if formats.get(want).runner != name:
                continue
            if name != "tensorrt" and not manifest.has(want):
                continue
            try:
                return open_backend(bundle_dir, name, want, manifest, **options)
            except BackendUnavailable as e:
                errors.append(str(e))
        raise BackendUnavailable("no backend can run this bundle here: " + "; ".join(errors or ["no matching build"]))
    backend = canonical_backend(backend)
    cls = backend_class(backend)
    if fmt is None:
        fmt = next(f for n, f in AUTO_ORDER if n == backend)
    spec = formats.get(fmt)
    if spec.runner != backend:
        raise BundleError(f"format {fmt!r} runs on the {spec.runner} backend, not {backend}")
    if backend == "tensorrt":
        # The TensorRT backend finds or builds an engine for this GPU from the bundle's ONNX.
        return cls.from_bundle(bundle_dir, manifest, fmt, **options)  # type: ignore[attr-defined,no-any-return,unused-ignore]
    build = manifest.build(fmt)
    path = verified_path(bundle_dir, build)
    log.debug("opening %s with %s", path, backend)
    return cls(path, build, manifest, **_accepted(cls, options))  # type: ignore[call-arg,unused-ignore]


def _accepted(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """Options meant for another backend (e.g. TensorRT's cache_dir under ``auto``) are dropped."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    dropped = set(options) - set(params)
    if dropped:
        log.debug("%s ignores options %s", cls.__name__, sorted(dropped))
    return {k: v for k, v in options.items() if k in params}
