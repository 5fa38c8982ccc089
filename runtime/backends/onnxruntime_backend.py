"""ONNX Runtime backend (CPU here; CUDA/TensorRT execution providers where installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.backends.base import Backend, BackendUnavailable
from runtime.manifest import BuildEntry, Manifest


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX build with ONNX Runtime's ``InferenceSession``
    (https://onnxruntime.ai/docs/api/python/api_summary.html). ``threads`` sets
    ``intra_op_num_threads`` (None: ONNX Runtime's default); ``providers`` defaults to
    ``["CPUExecutionProvider"]``. Raises :class:`BackendUnavailable` when onnxruntime is not installed,
    ``ValueError`` when a tensor the manifest names is not in the model.
    """

    name = "onnxruntime"

    def __init__(
        self, path: Path, build: BuildEntry, manifest: Manifest, threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        super().__init__(path, build, manifest)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime)") from e
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=providers or ["CPUExecutionProvider"]
        )
        self._out_names = [io.name for io in self.output_io.values()]
        have = {o.name for o in self.session.get_outputs()} | {i.name for i in self.session.get_inputs()}
        missing = [n for n in [io.name for io in self.input_io.values()] + self._out_names if n not in have]
        if missing:
            raise ValueError(f"{path.name}: tensors {missing} named in the manifest are not in the model ({sorted(have)})")

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ys = self.session.run(self._out_names, feeds)
        return dict(zip(self._out_names, ys, strict=True))
