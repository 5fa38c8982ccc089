"""``onnx``: FP32 ONNX from the SavedModel export via tf2onnx (the source of every TensorRT engine)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

from converter.builders.base import BuildContext, BuildError, BuildResult
from converter.builders.from_onnx import has_onnx_graph, source_onnx
from converter.builders.from_onnx import toolchain as source_toolchain
from converter.builders.onnx_io import onnx_io, onnx_toolchain

log = logging.getLogger(__name__)

# tf2onnx logs "Unsupported ops: Counter({'Lgamma': 1})" and still exits 0 with a broken graph.
_UNSUPPORTED = re.compile(r"Unsupported ops: Counter\((\{[^)]*\})\)")


def build(ctx: BuildContext) -> BuildResult:
    if has_onnx_graph(ctx.source):
        return _build_from_source_onnx(ctx)
    if ctx.saved_model_dir is None:
        raise BuildError("onnx needs the source model (a SavedModel export); convert from the registry")
    out = ctx.staging / ctx.fmt.file
    # tf2onnx in a child process: it owns its TF graph state and its logging, and a crash in it
    # (it has a few on exotic ops) cannot take the whole conversion down.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [
        sys.executable, "-m", "tf2onnx.convert",
        "--saved-model", str(ctx.saved_model_dir),
        "--output", str(out),
        "--opset", str(ctx.options.opset),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    log.debug("tf2onnx stderr:\n%s", proc.stderr[-4000:])
    m = _UNSUPPORTED.search(proc.stderr)
    if m:
        out.unlink(missing_ok=True)
        ops = ", ".join(sorted(set(re.findall(r"'(\w+)'", m.group(1))))) or m.group(1)
        raise BuildError(f"ONNX opset {ctx.options.opset} (tf2onnx) cannot express op(s) {ops}")
    if proc.returncode != 0 or not out.is_file():
        out.unlink(missing_ok=True)
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        raise BuildError(f"tf2onnx failed (exit {proc.returncode}): {tail[0][:300]}")
    return BuildResult(
        file=ctx.fmt.file,
        io=onnx_io(out, ctx.manifest),
        toolchain=onnx_toolchain(out, tf2onnx=True),
    )


def _build_from_source_onnx(ctx: BuildContext) -> BuildResult:
    """PyTorch (torch.onnx.export) or ONNX sources: their own FP32 graph, copied into the bundle."""
    import shutil

    out = ctx.staging / ctx.fmt.file
    shutil.copyfile(source_onnx(ctx), out)
    return BuildResult(
        file=ctx.fmt.file, io=onnx_io(out, ctx.manifest), toolchain={**onnx_toolchain(out), **source_toolchain(ctx)}
    )
