"""An ONNX model (``mlflow.onnx.log_model``'s ``model.onnx``, or a bare ``.onnx`` artifact) as a
conversion source, with ONNX Runtime (CPU, FP32) as the reference the builds are verified against.

Open dimensions (a symbolic batch, a dynamic image size) are fixed for the bundle: batch 1, and
H/W from the preprocessing (``--input-size`` / the ``edge.preprocess`` tag). The layout is read
from the input's shape: (N, 3, H, W) is NCHW (PyTorch exports), (N, H, W, 3) NHWC (tf2onnx).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ModelLoadError
from converter.sources.hints import SourceHints

log = logging.getLogger(__name__)


def guess_layout(shape: tuple[int | None, ...]) -> str:
    """NCHW | NHWC for a 4-D image input, from where its 1- or 3-channel axis is."""
    if len(shape) == 4:
        if shape[1] in (1, 3) and shape[3] not in (1, 3):
            return "NCHW"
        if shape[3] in (1, 3):
            return "NHWC"
    return "NCHW" if len(shape) == 4 else "NC"


def _refuse_non_float_inputs(path: Path, graph_inputs: list[Any]) -> None:
    """Every input the car feeds is float32 (preprocessed pixels, IMU values, one-hots); an input of
    another type (a uint8 image input, float16) would fail in ONNX Runtime at the first frame.
    Raises :class:`ModelLoadError` naming the input, its type and the fix."""
    from onnx import TensorProto

    for i in graph_inputs:
        elem = i.type.tensor_type.elem_type
        if elem != TensorProto.FLOAT:
            kind = TensorProto.DataType.Name(elem).lower() if elem in TensorProto.DataType.values() else str(elem)
            raise ModelLoadError(
                f"{path.name}: input {i.name!r} takes {kind} tensors, but the car feeds float32; re-export the "
                "model with a float32 input (for uint8 pixels: cast inside the model and convert with --scale 1)"
            )


class OnnxSource:
    """An ONNX file run by ONNX Runtime; ``onnx_path`` is the same graph with fixed batch-1 shapes."""

    flavor = "onnx"

    def __init__(self, path: Path, hints: SourceHints) -> None:
        import onnx
        import onnxruntime as ort

        if path.stat().st_size == 0:
            raise ModelLoadError(f"{path.name} is empty (0 bytes); re-log the model")
        self.path = path
        self.kind = "onnx"
        self.workdir = hints.workdir
        _refuse_missing_external_data(path)
        try:
            model = onnx.load(str(path))
            onnx.checker.check_model(model)
        except Exception as e:
            raise ModelLoadError(f"{path.name} is not a valid ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
        init = {i.name for i in model.graph.initializer}
        graph_inputs = [i for i in model.graph.input if i.name not in init]
        _refuse_non_float_inputs(path, graph_inputs)
        raw = {i.name: tuple(d.dim_value if d.HasField("dim_value") else None
                             for d in i.type.tensor_type.shape.dim) for i in graph_inputs}
        names = [i.name for i in graph_inputs]
        self.input_names: list[str] = names
        self.input_shapes: dict[str, tuple[int | None, ...]] = {}
        for n, shape in raw.items():
            self.input_shapes[n] = self._fixed(n, shape, hints)
        self.default_layout = guess_layout(self.input_shapes[names[0]]) if names else "NHWC"
        self.output_names: list[str] = [o.name for o in model.graph.output]
        self._model = model
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelLoadError(f"ONNX Runtime cannot run {path.name} ({type(e).__name__}: {str(e)[:200]})") from None
        self._fixed_batch = {i.name: i.shape[0] for i in self.session.get_inputs()}
        self._onnx: Path | None = None
        log.info("loaded %s (onnx, inputs %s, outputs %s)", path.name, self.input_shapes, self.output_names)

    def _fixed(self, name: str, shape: tuple[int | None, ...], hints: SourceHints) -> tuple[int | None, ...]:
        if len(shape) == 4 and (shape[2] is None or shape[3] is None or shape[1] is None):
            layout = guess_layout(shape)
            if hints.input_hw is None:
                raise ModelLoadError(
                    f"{self.path.name}: input {name!r} has open dimensions {shape}; pass --input-size WIDTHxHEIGHT"
                )
            h, w = hints.input_hw
            c = shape[1] if layout == "NCHW" else shape[3]
            c = c or hints.channels
            return (1, c, h, w) if layout == "NCHW" else (1, h, w, c)
        if any(d is None for d in shape[1:]):
            raise ModelLoadError(f"{self.path.name}: input {name!r} has open dimensions {shape} the converter cannot fix")
        return (1, *shape[1:])

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{input name: (N, ...) float32} -> {output name: (N, ...) float32} via ONNX Runtime (FP32)."""
        n = len(next(iter(feeds.values())))
        fixed = {b for b in self._fixed_batch.values() if isinstance(b, int)}
        step = next(iter(fixed)) if fixed else max(n, 1)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in self.output_names}
        for i in range(0, n, step):
            chunk = {k: np.ascontiguousarray(feeds[k][i:i + step], np.float32) for k in self.input_names}
            ys = self.session.run(self.output_names, chunk)
            for k, y in zip(self.output_names, ys, strict=True):
                parts[k].append(np.asarray(y, np.float32))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def rescales_inside(self) -> bool:
        return False

    def input_rescaling_layer(self) -> str | None:
        return None

    def export_saved_model(self, dest: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
        raise ModelLoadError("an ONNX model has no SavedModel; its TFLite builds are made from the ONNX")

    def onnx_path(self, opset: int) -> Path:
        """The graph with every input and output fixed to batch 1 and the resolved H/W, checked.
        The opset stays the file's own (``toolchain`` records it); ``opset`` is ignored here."""
        import onnx

        if self._onnx is None:
            if self.workdir is None:
                raise ModelLoadError("no work folder for the fixed-shape ONNX")
            self.workdir.mkdir(parents=True, exist_ok=True)
            model = onnx.ModelProto()
            model.CopyFrom(self._model)
            init = {i.name for i in model.graph.initializer}
            for inp in model.graph.input:
                if inp.name in init:
                    continue
                for d, v in zip(inp.type.tensor_type.shape.dim, self.input_shapes[inp.name], strict=True):
                    d.Clear()
                    d.dim_value = int(v or 1)
            for out in model.graph.output:
                dims = out.type.tensor_type.shape.dim
                if len(dims) and not dims[0].HasField("dim_value"):
                    dims[0].Clear()
                    dims[0].dim_value = 1
            del model.graph.value_info[:]  # stale symbolic shapes; re-inferred below
            model = onnx.shape_inference.infer_shapes(model)
            onnx.checker.check_model(model)
            dest = self.workdir / "source_fixed.onnx"
            onnx.save(model, str(dest))
            self._onnx = dest
        return self._onnx

    def toolchain(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"source_kind": "onnx", "reference": f"onnxruntime {ort.__version__}"}


def _refuse_missing_external_data(path: Path) -> None:
    """An ONNX file whose weights live in external data files (``save_as_external_data``, every
    model over 2 GB) needs them beside it; the version's artifacts often hold the ``.onnx`` alone.
    Name the missing files and the fix, rather than ONNX's text with a download folder's path."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # not ONNX at all: the full load says so
        return
    wanted = {ExternalDataInfo(t).location for t in graph.initializer if uses_external_data(t)}
    missing = sorted(loc for loc in wanted if not (path.parent / loc).is_file())
    if missing:
        raise ModelLoadError(
            f"{path.name} keeps its weights in external data ({', '.join(missing)}) that is not beside it in the "
            "version's artifacts; log the data file(s) in the same artifact folder as the .onnx "
            "(mlflow.onnx.log_model(..., save_as_external_data=True) does), or save a model under 2 GB as one "
            "file (onnx.save(model, path, save_as_external_data=False))")

