"""One format: build it, hash it, verify it against the source model's outputs, record it.

A failure here fails this format only; the file is removed and the other formats go on.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from converter.builders.base import BuildContext, BuildError, BuildResult, BuildSkipped
from converter.parity import compare, run_build
from converter.reference import Reference
from converter.summary import Outcome
from converter.task_parity import DEFAULT_GATES, headline
from runtime import formats
from runtime.backends import BackendUnavailable, backend_class
from runtime.manifest import BuildEntry, Manifest, sha256_file

log = logging.getLogger(__name__)


@dataclass
class BuildInputs:
    """What every format's build shares: the staging bundle, its manifest, the source model (None
    when extending a bundle), the reference samples, the request and the calibration set."""

    staging: Path
    manifest: Manifest
    source: Any  # converter.sources.SourceModel, or None when extending a bundle
    saved_model_dir: Path | None
    reference: Reference
    req: Any  # converter.pipeline.ConvertRequest
    calibration: Any = None  # calibration data for INT8 builds, when given
    format_keys: dict[str, str] = field(default_factory=dict)  # converter.cache.format_key per format

    _inputs: dict[str, np.ndarray] | None = None
    _heldout_want: dict[str, np.ndarray] | None = None

    def reference_inputs(self) -> dict[str, np.ndarray]:
        """{input name: (N, ...) float32}: every model input on the reference samples."""
        if self._inputs is None:
            self._inputs = self.reference.inputs(self.manifest)
        return self._inputs

    def calibration_feeds(self) -> dict[str, np.ndarray] | None:
        """{input name: (N, ...)} calibration data for every model input, or None without a set
        (see :func:`calibration.conversion.model_feeds`)."""
        return self.calibration.calib_feeds if self.calibration is not None else None

    def heldout_feeds(self) -> dict[str, np.ndarray]:
        """{input name: (M, ...)}: the set's held-out frames (never calibrated on), every input."""
        feeds: dict[str, np.ndarray] = self.calibration.heldout_feeds
        return feeds

    def heldout_reference(self) -> dict[str, np.ndarray]:
        """FP32 outputs on the calibration set's held-out frames: the source model's, or (extending
        a bundle, no TensorFlow) the bundle's own verified FP32 ONNX through ONNX Runtime."""
        if self._heldout_want is None:
            x = self.heldout_feeds()
            if self.source is not None:
                self._heldout_want = self.source.predict(x)
            else:
                from runtime.backends import open_backend

                with open_backend(self.staging, "onnxruntime", "onnx", self.manifest) as fp32:
                    self._heldout_want = run_build(fp32, x)
        return self._heldout_want


def resolve_builder(path: str) -> Any:
    """The builder function a format's ``module:function`` names (imported lazily)."""
    module, func = path.split(":")
    return getattr(importlib.import_module(module), func)


def build_format(fid: str, bi: BuildInputs) -> Outcome:
    """Build format ``fid``, verify it against the source (raw outputs by the format's tolerance,
    perception outputs by the task gates of :mod:`converter.task_parity`, INT8 by its held-out
    cost) and record it in the manifest; a failure removes the file and fails this format only."""
    fmt = formats.get(fid)
    explicit = bool(bi.req.explicit_formats)
    t0 = time.perf_counter()

    def done(status: str, reason: str | None = None, **kw: Any) -> Outcome:
        return Outcome(fid, status, seconds=time.perf_counter() - t0, reason=reason, explicit=explicit, **kw)

    if fmt.needs_calibration and bi.calibration is None:
        return done("failed" if explicit else "skipped", "needs a calibration set: --calibration DIR")
    ctx = BuildContext(
        fmt=fmt,
        staging=bi.staging,
        manifest=bi.manifest,
        source=bi.source,
        saved_model_dir=bi.saved_model_dir,
        calibration=bi.calibration_feeds(),
        calibration_id=getattr(bi.calibration, "sha256", None),
        options=bi.req.options,
    )
    try:
        result: BuildResult = resolve_builder(fmt.builder)(ctx)
    except BuildSkipped as e:
        return done("failed" if explicit else "skipped", str(e))
    except BuildError as e:
        return done("failed", str(e))
    except Exception as e:  # a builder bug must not take the other formats down
        log.debug("builder %s crashed", fid, exc_info=True)
        return done("failed", f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    path = bi.staging / result.file
    entry = BuildEntry(
        format=fid, precision=fmt.precision, file=result.file, sha256=sha256_file(path),
        bytes=path.stat().st_size, io=result.io, toolchain=result.toolchain, target=result.target,
        extra={**result.extra, **({"key": bi.format_keys[fid]} if fid in bi.format_keys else {})},
    )
    tolerance = bi.req.tolerance.get(fid, fmt.tolerance)
    gates = bi.req.task_gates or DEFAULT_GATES  # perception outputs: judged by task figures (task_parity)
    int8_failure = None
    try:
        with backend_class(fmt.runner)(path, entry, bi.manifest) as backend:  # type: ignore[call-arg,unused-ignore]
            parity = compare(run_build(backend, bi.reference_inputs()), bi.reference.outputs, tolerance,
                             bi.manifest.outputs, gates.for_format(fid), gates.level_of(fid))
            if fmt.needs_calibration and parity.ok:
                int8_failure = _int8_cost(backend, entry, bi)
    except BackendUnavailable as e:
        path.unlink(missing_ok=True)
        return done("failed", f"built but cannot be verified here: {e}")
    except Exception as e:
        path.unlink(missing_ok=True)
        log.debug("verifying %s crashed", fid, exc_info=True)
        return done("failed", f"verification failed: {type(e).__name__}: {str(e)[:200]}")
    entry.parity = parity.to_dict()
    ok = parity.ok and int8_failure is None
    out = done("built" if ok else "failed", None if ok else int8_failure or parity.failure(),
               file=result.file, bytes=entry.bytes, max_abs=parity.max_abs, mean_abs=parity.mean_abs,
               task=headline(parity.task) if parity.task else None)
    if ok:
        bi.manifest.builds.append(entry)
    else:
        path.unlink(missing_ok=True)
    return out


def _int8_cost(backend: Any, entry: BuildEntry, bi: BuildInputs) -> str | None:
    """What INT8 costs on held-out frames the calibration never saw; a failure reason over limits."""
    from calibration.conversion import int8_cost, over_limits

    cost = int8_cost(run_build(backend, bi.heldout_feeds()), bi.heldout_reference(),
                     {o.name: o.meaning for o in bi.manifest.outputs}, bi.manifest.outputs)
    entry.extra["int8_cost"] = cost
    return over_limits(cost, bi.req.int8_limits)
