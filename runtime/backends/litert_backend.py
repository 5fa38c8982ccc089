"""LiteRT backend (formerly TFLite): ``ai_edge_litert``, falling back to ``tflite_runtime`` (JetPack 5).

Tensors are resolved through the model's signature (names, not positions: TFLite reorders the
outputs of multi-output models), then driven with set_tensor/invoke/get_tensor, which is faster
per call than the signature runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import Backend, BackendUnavailable
from runtime.manifest import BuildEntry, Manifest


def load_interpreter_class() -> Any:
    """LiteRT's ``Interpreter`` (``ai_edge_litert.interpreter``,
    the API of https://www.tensorflow.org/api_docs/python/tf/lite/Interpreter), else ``tflite_runtime``'s;
    :class:`BackendUnavailable` naming the pip package when neither is installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError as e:
        raise BackendUnavailable("no LiteRT interpreter: pip install ai-edge-litert (or tflite-runtime)") from e


class LiteRTBackend(Backend):
    """Runs a ``.tflite`` build with the LiteRT interpreter on ``threads`` CPU threads (None: its default).
    Tensors come from the signature named in ``build.extra["signature"]`` (default ``serving_default``);
    ``ValueError`` when a tensor the manifest names is not in that signature. Integer (INT8) I/O is
    (de)quantized by :class:`~runtime.backends.base.Backend` with the manifest's scale and zero point.
    """

    name = "litert"

    def __init__(self, path: Path, build: BuildEntry, manifest: Manifest, threads: int | None = None) -> None:
        super().__init__(path, build, manifest)
        interpreter_cls = load_interpreter_class()
        self.interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        signature = build.extra.get("signature", "serving_default")
        runner = self.interpreter.get_signature_runner(signature)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        try:
            self._in_index = {io.name: ins[io.name]["index"] for io in self.input_io.values()}
            self._out_index = {io.name: outs[io.name]["index"] for io in self.output_io.values()}
        except KeyError as e:
            raise ValueError(
                f"{path.name}: signature {signature!r} has no tensor {e.args[0]!r} "
                f"(inputs {sorted(ins)}, outputs {sorted(outs)})"
            ) from None

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        it = self.interpreter
        for name, idx in self._in_index.items():
            it.set_tensor(idx, feeds[name])
        it.invoke()
        return {name: it.get_tensor(idx) for name, idx in self._out_index.items()}
