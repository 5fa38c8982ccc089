"""What every ONNX build records: its tensor names by logical name, and its toolchain."""

from __future__ import annotations

from pathlib import Path

from converter.builders.base import BuildError
from runtime.manifest import Manifest, TensorIO

_ONNX_DTYPES = {1: "float32", 10: "float16", 2: "uint8", 3: "int8", 6: "int32", 7: "int64"}


def onnx_io(path: Path, manifest: Manifest) -> dict[str, TensorIO]:
    """Map logical names to the ONNX graph's own tensors, by name; refuse a graph that lacks one."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {i.name: i for i in graph.input}
    outputs = {o.name: o for o in graph.output}
    io: dict[str, TensorIO] = {}
    pairs = [*((i.name, inputs) for i in manifest.inputs), *((n, outputs) for n in manifest.output_names())]
    for logical, table in pairs:
        cand = table.get(logical) or table.get(f"{logical}:0")
        if cand is None:
            raise BuildError(f"{path.name} has no tensor named {logical!r} (it has {sorted(table)})")
        elem = cand.type.tensor_type.elem_type
        io[logical] = TensorIO(name=cand.name, dtype=_ONNX_DTYPES.get(elem, str(elem)))
    return io


def onnx_toolchain(path: Path, tf2onnx: bool = False) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    tc = {"onnx": onnx.__version__, "opset": str(opset)}
    if tf2onnx:
        import importlib.metadata as md

        tc["tf2onnx"] = md.version("tf2onnx")
        tc["tensorflow"] = md.version("tensorflow-cpu") if _has("tensorflow-cpu") else md.version("tensorflow")
    return tc


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False
