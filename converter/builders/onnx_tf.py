"""ONNX -> a TensorFlow SavedModel (``onnx2tf``), so PyTorch/ONNX sources get TFLite builds too.

``onnx2tf`` (what Ultralytics uses for its TFLite export) rewrites the graph into TensorFlow ops
and, by default, moves image inputs to NHWC. We keep the inputs as the ONNX has them
(``keep_ncw_or_nchw_or_ncdhw_input_names``): every build of a bundle then takes the layout the
manifest records, and the one transpose TFLite needs is inside the graph, not in the car's loop.

The result is re-signed: one ``serving_default`` signature whose inputs and outputs carry the
ONNX names (onnx2tf's own signature names outputs ``output_0``, ``output_1`` by position), so the
existing TFLite builders (``tflite``, ``tflite_int8``) convert it and map every tensor by name.
Outputs keep the ONNX's shapes too: onnx2tf moves the channel axis of every rank-3+ output last
((1, K, H, W) segmentation logits come out (1, H, W, K), a YOLO head (1, 4 + K, N) as (1, N, 4 + K)),
and the manifest's decoders read the ONNX layout, so such outputs are transposed back in the graph.

Before onnx2tf, the graph's constant subgraphs are folded (ONNX Runtime's basic, standard-op
optimisations, what onnxsim would do): onnx2tf cannot convert an output that is a constant
computation (e.g. an anchor grid built from Range/Expand in a legacy-exported detection head) and
fails at that op (``onnx_op_name: /Expand``).
onnx2tf runs in a child process: it owns its TF graph state, prints freely, and a crash in it
fails the TFLite formats only.

    python -m converter.builders.onnx_tf MODEL.onnx DEST_DIR
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from converter.builders.base import BuildError

log = logging.getLogger(__name__)

_NOT_IMPLEMENTED = re.compile(r"(\w+) OP is not yet implemented")
_FAILED_OP = re.compile(r"onnx_op_type\W+(\w+)")
_FAILED_NODE = re.compile(r"onnx_op_name: (\S+)")
DONE = "ONNX_TF_SAVED_MODEL_OK"
# onnx2tf fetches 20 sample images from GitHub for its own per-op output check whenever every input
# looks like an NHWC image (3 channels last, batch <= 20: e.g. a tf2onnx export), so an offline
# workstation failed there. It reads this file from the working directory first.
_ONNX2TF_SAMPLES = "calibration_image_sample_data_20x128x128x3_float32.npy"


def saved_model_from_onnx(onnx_path: Path, dest: Path) -> Path:
    """Convert ``onnx_path`` into a named-signature SavedModel at ``dest``; :class:`BuildError`
    naming the op onnx2tf cannot convert, or its last error line."""
    if (dest / "saved_model.pb").is_file():
        return dest
    # onnx2tf rewrites the file it is given (op names, shapes): hand it a private copy, folded.
    private = dest.parent / (dest.name + ".input.onnx")
    fold_constants(onnx_path, private)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "converter.builders.onnx_tf", str(private), str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    out = _plain(proc.stdout + "\n" + proc.stderr)
    log.debug("onnx2tf output:\n%s", out[-4000:])
    if proc.returncode == 0 and DONE in out and (dest / "saved_model.pb").is_file():
        return dest
    m = _NOT_IMPLEMENTED.search(out)
    if m:
        raise BuildError(f"onnx2tf cannot convert ONNX op {m.group(1)} to TensorFlow (TFLite builds need it)")
    ops = _FAILED_OP.findall(out)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip() and ("Error" in ln or "ERROR" in ln)
             and not ln.strip().startswith(("ERROR: onnx_op_name", "ERROR: input_onnx_file_path"))]
    why = lines[-1][:240] if lines else f"exit {proc.returncode}"
    node = _FAILED_NODE.findall(out)
    if node:
        op_type, data_dependent = _node_info(private, node[-1])
        where = f"ONNX node {node[-1]}" + (f" ({op_type})" if op_type else "")
        if data_dependent:
            raise BuildError(
                f"onnx2tf cannot convert {where} of the graph's data-dependent post-processing (NonZero: a score "
                "threshold keeping n boxes); TFLite needs fixed shapes: build onnx, onnx-fp16, onnx-int8 or trt-* "
                "for this detector, or log it without its post-processing (the raw head, decoded with nms: runtime)"
            )
        raise BuildError(f"onnx2tf failed at {where}: {why}")
    raise BuildError(f"onnx2tf failed{' at ONNX op ' + ops[-1] if ops else ''}: {why}")


def _node_info(path: Path, name: str) -> tuple[str | None, bool]:
    """(op type of node ``name``, whether the graph has a NonZero, i.e. tensors of data-dependent size)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:  # the message then names the node only
        log.debug("could not read %s: %s", path, e)
        return None, False
    op = next((n.op_type for n in graph.node if n.name == name), None)
    return op, any(n.op_type == "NonZero" for n in graph.node)


def fold_constants(src: Path, dest: Path) -> Path:
    """Write ``src`` to ``dest`` with its constant subgraphs folded by ONNX Runtime's basic
    optimisations (standard ONNX ops only; also folds BatchNorm into Conv). A graph ONNX Runtime
    cannot optimise is copied as it is (onnx2tf then reports what it cannot convert)."""
    import onnx
    import onnxruntime as ort

    try:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(dest)
        so.log_severity_level = 3  # its "could not constant fold" warnings are about ops it leaves
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        model = onnx.load(str(dest))
        # ORT lists every domain it knows; keep the ones the graph uses (onnx2tf reads the default one)
        used = {n.domain for n in model.graph.node} | {""}
        keep = [o for o in model.opset_import if o.domain in used]
        del model.opset_import[:]
        model.opset_import.extend(keep)
        onnx.save(model, str(dest))
    except Exception as e:
        log.info("constant folding before onnx2tf skipped (%s: %s)", type(e).__name__, str(e)[:200])
        shutil.copyfile(src, dest)
    return dest


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # onnx2tf colours its log


def _convert(onnx_path: Path, dest: Path) -> None:
    """In the child: onnx2tf -> tf_keras model -> SavedModel with ONNX names on both sides."""
    import onnx
    import onnx2tf
    import tensorflow as tf

    onnx_path, dest = onnx_path.resolve(), dest.resolve()
    _local_onnx2tf_samples(dest.parent)
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    init = {i.name for i in graph.initializer}
    in_names = [i.name for i in graph.input if i.name not in init]
    out_names = [o.name for o in graph.output]
    keep = [i.name for i in graph.input if i.name not in init and len(i.type.tensor_type.shape.dim) >= 3]
    model = onnx2tf.convert(
        input_onnx_file_path=str(onnx_path),
        output_folder_path=str(dest.parent / (dest.name + ".onnx2tf")),
        keep_ncw_or_nchw_or_ncdhw_input_names=keep or None,
        not_use_onnxsim=True,  # onnxsim is not installed; the exporter already optimised the graph
        disable_model_save=True,
        non_verbose=True,
    )
    if model is None:
        raise SystemExit("onnx2tf returned no model")
    specs = [tf.TensorSpec(tuple(t.shape), tf.float32, name=n) for n, t in zip(in_names, model.inputs, strict=True)]
    want = _onnx_output_shapes(onnx_path)
    back = [channel_last_undo(want.get(n), tuple(t.shape)) for n, t in zip(out_names, model.outputs, strict=True)]

    class Serve(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=specs)
        def serve(self, *xs: tf.Tensor) -> dict[str, tf.Tensor]:
            ys = self.model(list(xs) if len(xs) > 1 else xs[0], training=False)
            ys = ys if isinstance(ys, list | tuple) else [ys]
            # onnx2tf's Keras model returns its outputs in the ONNX graph's output order
            ys = [y if perm is None else tf.transpose(y, perm) for y, perm in zip(ys, back, strict=True)]
            return dict(zip(out_names, ys, strict=True))

    module = Serve()
    tf.saved_model.save(module, str(dest), signatures={"serving_default": module.serve})
    sys.stdout.write(DONE + "\n")  # the parent's proof the child got this far


def _onnx_output_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each graph output's static shape (after shape inference); outputs with open dims are left out."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    shapes: dict[str, tuple[int, ...]] = {}
    for o in model.graph.output:
        dims = o.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[o.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def channel_last_undo(onnx_shape: tuple[int, ...] | None, tf_shape: tuple[int | None, ...]) -> list[int] | None:
    """The transpose that puts an onnx2tf output back in the ONNX's layout, or None when it already is.

    onnx2tf moves axis 1 last: ONNX (N, C, d1, ..., dk) -> TF (N, d1, ..., dk, C). Given both shapes,
    return ``[0, r-1, 1, ..., r-2]`` when the TF shape is exactly that move of the ONNX shape and not
    already equal to it (a shape the move leaves unchanged, e.g. (1, 4, 4, 4), is taken as kept)."""
    if onnx_shape is None or len(onnx_shape) < 3 or len(onnx_shape) != len(tf_shape):
        return None
    if tuple(tf_shape) == tuple(onnx_shape):
        return None
    moved = (onnx_shape[0], *onnx_shape[2:], onnx_shape[1])
    if tuple(tf_shape) != moved:
        log.warning("onnx2tf output shape %s is neither the ONNX's %s nor its channel-last form", tf_shape, onnx_shape)
        return None
    r = len(onnx_shape)
    return [0, r - 1, *range(1, r - 1)]


def _local_onnx2tf_samples(workdir: Path) -> None:
    """Put onnx2tf's sample images (20x128x128x3 float32 in [0, 1]; it only runs the ONNX and TF
    graphs on them, our parity check follows) in ``workdir`` and make it the working directory, so
    onnx2tf never reaches for the network. Called in the child only."""
    import numpy as np

    path = workdir / _ONNX2TF_SAMPLES
    if not path.is_file():
        np.save(path, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    os.chdir(workdir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m converter.builders.onnx_tf", description=__doc__.splitlines()[0])
    p.add_argument("onnx", type=Path)
    p.add_argument("dest", type=Path)
    args = p.parse_args(argv)
    _convert(args.onnx, args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
