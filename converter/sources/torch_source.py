"""A PyTorch model as a conversion source: names, shapes, reference outputs, and its ONNX export.

PyTorch models take NCHW: ``default_layout = "NCHW"`` and ``input_shapes`` are (1, C, H, W). The input
size comes from the file when it records one (a ``torch.export`` program), else from the
preprocessing (``--input-size`` / the ``edge.preprocess`` tag). Input names come from
``--inputs`` or ``forward``'s signature; output names from the model (a dict's keys) or, for a
tensor or tuple, from ``--outputs`` / the ``edge.outputs`` tag, in order. Reference outputs are
PyTorch's own, in eval mode without gradients.

The FP32 ONNX is ``torch.onnx.export`` (the current, ``dynamo=True`` exporter, which needs
``onnxscript``), fixed batch 1; TFLite builds are made from that ONNX (``converter.builders.onnx_tf``).
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ModelLoadError
from converter.sources.hints import SourceHints
from converter.sources.torch_load import LoadedTorch

log = logging.getLogger(__name__)

# "No ONNX function found for <OpOverload(op='aten.foo', overload='default')>"; older texts: aten::foo
_NO_FUNCTION = re.compile(r"OpOverload\(op='([\w.]+)'")
_ATEN_OP = re.compile(r"(aten[.:]{1,2}[A-Za-z_][\w.]*)")
# torch.export on a Python branch/loop over a data-dependent size: "Caused by: (file.py:8 in greedy)"
_DATA_DEPENDENT = re.compile(r"GuardOnDataDependentSymNode|data-dependent expression")
_CAUSED_BY = re.compile(r"Caused by: \(?([^\n)]*?:\d+ in \w+)")


class ExportError(RuntimeError):
    """``torch.onnx.export`` refused the model; the message names the op or the reason."""


class TorchSource:
    """A loaded PyTorch model behind the :class:`converter.sources.SourceModel` interface."""

    flavor = "pytorch"
    default_layout = "NCHW"  # read by the pipeline (converter.model_inputs)

    def __init__(self, loaded: LoadedTorch, hints: SourceHints) -> None:
        import torch

        self.loaded = loaded
        self.kind = loaded.kind
        self.workdir = hints.workdir
        self._program = loaded.model if loaded.kind == "pt2" else None
        if self._program is not None:
            _refuse_training_mode(self._program, loaded.path)
            self.module = self._program.module()
            names, shapes = _program_inputs(self._program)
        else:
            self.module = loaded.model.eval()
            if loaded.kind == "torchscript":
                _refuse_traced_in_training_mode(self.module, loaded.path)
            names, shapes = _signature_inputs(loaded.model, loaded.path), {}
        # --inputs renames, in forward's order; naming forward's own inputs (in any order) is no rename
        if hints.input_names and len(hints.input_names) == len(names) and set(hints.input_names) != set(names):
            shapes = {new: shapes[old] for new, old in zip(hints.input_names, names, strict=True) if old in shapes}
            names = list(hints.input_names)
        self.input_names: list[str] = names
        self.input_shapes: dict[str, tuple[int | None, ...]] = {
            n: shapes[n] if n in shapes else _shape_from_hints(n, len(names), hints, f"{loaded.path.name} ({loaded.kind})")
            for n in names
        }
        self._batch = {n: s[0] for n, s in self.input_shapes.items()}
        with torch.no_grad():
            probe = self._call(self._zeros())
        self.wrapped: str | None = None  # "detections" | "float-outputs" when the converter wrapped forward
        self._auto_names: tuple[str, ...] | None = None
        probe = self._wrap_outputs(probe, hints)
        self.output_names: list[str]
        if self.wrapped == "detections":
            from converter.sources.torch_detections import DETECTION_KEYS

            self.output_names = list(DETECTION_KEYS)
        else:
            self.output_names = _output_names(probe, hints.output_names or list(self._auto_names or ()),
                                              loaded.path.name)
        n_params = sum(p.numel() for p in self.module.parameters()) if hasattr(self.module, "parameters") else 0
        log.info("loaded %s (%s, %d params, inputs %s)", loaded.path.name, loaded.kind, n_params, self.input_shapes)
        self._onnx: dict[int, Path] = {}

    def _wrap_outputs(self, probe: Any, hints: SourceHints) -> Any:
        """Make a detector's outputs fixed-size float32 tensors (see ``torch_detections``): a list of
        dicts, or unbatched (n, 4)/(n,) tensors, becomes boxes (1, K, 4), scores (1, K), labels (1, K);
        integer tensors become float32. Returns the wrapped module's output on the same zeros."""
        import torch

        from converter.sources import torch_detections as td

        layout = td.detection_layout(probe)
        self._auto_names = td.tensor_detection_names(probe, batched=True)  # a (1, K, ...) detector's tuple
        if layout is not None:
            if len(self.input_names) != 1:
                raise ModelLoadError(
                    f"{self.loaded.path.name}: a detector returning per-image detections takes one image input, "
                    f"this one takes {self.input_names}; wrap it in a module with one image input"
                )
            k = hints.max_detections
            self.module = td.FixedDetections(self.module, k, layout)
            self.wrapped = "detections"
            log.info("%s returns per-image detections (%s); padded to boxes (1, %d, 4), scores (1, %d), "
                     "labels (1, %d)", self.loaded.path.name, td.describe(probe), k, k, k)
        elif td.needs_float_cast(probe):
            self.module = td.FloatOutputs(self.module)
            self.wrapped = "float-outputs"
        else:
            return probe
        with torch.no_grad():
            return self._call(self._zeros())

    # -- reference -----------------------------------------------------------------------------

    def _zeros(self, batch: int = 1) -> list[Any]:
        import torch

        out = []
        for n in self.input_names:
            shape = self.input_shapes[n]
            b = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else batch
            out.append(torch.zeros((b, *(int(d or 1) for d in shape[1:])), dtype=torch.float32))
        return out

    def _call(self, xs: list[Any]) -> Any:
        return self.module(*xs)

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{input name: (N, C, H, W) float32} -> {output name: (N, ...) float32}, PyTorch in eval
        mode without gradients. A program fixed to batch b (torch.export) runs b samples at a time, a
        wrapped detector one (``torch_detections``)."""
        import torch

        n = len(next(iter(feeds.values())))
        fixed = {b for b in self._batch.values() if isinstance(b, int)} if self._program is not None else set()
        step = next(iter(fixed)) if fixed else max(n, 1)
        if self.wrapped == "detections":
            step = 1  # the wrapper pads one image's detections, as the batch-1 export does
        parts: dict[str, list[np.ndarray]] = {k: [] for k in self.output_names}
        with torch.no_grad():
            for i in range(0, n, step):
                chunk = [np.ascontiguousarray(feeds[k][i:i + step], np.float32) for k in self.input_names]
                real = len(chunk[0])
                if real < step:  # pad the last chunk of a fixed-batch program
                    chunk = [np.concatenate([c, np.zeros((step - real, *c.shape[1:]), np.float32)]) for c in chunk]
                ys = _flatten(self._call([torch.from_numpy(c) for c in chunk]), self.output_names)
                for k, y in zip(self.output_names, ys, strict=True):
                    parts[k].append(y.detach().cpu().numpy().astype(np.float32)[:real])
        return {k: np.concatenate(v) for k, v in parts.items()}

    def rescales_inside(self) -> bool:
        return False  # unknowable from a module; the edge.preprocess tag or flags say

    def input_rescaling_layer(self) -> str | None:
        return None

    def export_saved_model(self, dest: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
        raise ModelLoadError("a PyTorch model has no SavedModel; its TFLite builds are made from its ONNX")

    # -- export --------------------------------------------------------------------------------

    def onnx_path(self, opset: int) -> Path:
        """The FP32 ONNX (batch 1, inputs/outputs by name), exported once per opset into the workdir."""
        if opset not in self._onnx:
            if self.workdir is None:
                raise ExportError("no work folder for the ONNX export")
            self.workdir.mkdir(parents=True, exist_ok=True)
            dest = self.workdir / f"torch_opset{opset}.onnx"
            t0 = time.perf_counter()
            self.export_onnx(dest, opset)
            log.info("torch.onnx.export (opset %d) took %.1f s", opset, time.perf_counter() - t0)
            self._onnx[opset] = dest
        return self._onnx[opset]

    def export_onnx(self, dest: Path, opset: int) -> Path:
        """``torch.onnx.export`` (dynamo), fixed batch 1; :class:`ExportError` naming the op."""
        import contextlib
        import io
        import warnings

        import torch

        target: Any = self.module  # a wrapper (detections, float outputs) exports around the program's module
        if self._program is not None and self.wrapped is None:
            target = self._program
            if any(b != 1 for b in self._batch.values()):
                target = self._rebatched_program()
        args = tuple(self._zeros(1))
        try:
            # The exporter prints its progress on stdout (convert-model --json owns stdout) and warns
            # about torchvision ops it skips; errors still raise.
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()) as chatter:
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    target, args, str(dest), input_names=self.input_names, output_names=self.output_names,
                    opset_version=opset, verbose=False, **self._exporter_kwargs(),
                )
            log.debug("torch.onnx.export: %s", chatter.getvalue()[-2000:])
        except Exception as e:
            dest.unlink(missing_ok=True)
            raise ExportError(_explain_export(e, opset)) from None
        if not dest.is_file():
            raise ExportError("torch.onnx.export wrote no file")
        return dest

    def _exporter_kwargs(self) -> dict[str, Any]:
        # torch.export (dynamo) cannot trace a TorchScript module: those take the TorchScript exporter.
        if self.kind == "torchscript":
            return {"dynamo": False}
        return {"dynamo": True, "external_data": False}

    def _rebatched_program(self) -> Any:
        import torch

        try:
            return torch.export.export(self.module, tuple(self._zeros(1)))
        except Exception as e:
            raise ExportError(
                f"the torch.export program is fixed to batch {sorted({b or 0 for b in self._batch.values()})} and cannot be re-exported "
                f"for batch 1 ({type(e).__name__}); log it with an input_example of batch 1"
            ) from None

    def toolchain(self) -> dict[str, str]:
        import importlib.metadata as md

        import torch

        dynamo = self._exporter_kwargs()["dynamo"]
        tc = {"torch": torch.__version__, "exporter": f"torch.onnx.export(dynamo={dynamo})", "source_kind": self.kind}
        if self.wrapped == "detections":
            tc["wrapper"] = f"converter.sources.torch_detections.FixedDetections(max_detections={self.module.max_detections})"
        elif self.wrapped:
            tc["wrapper"] = "converter.sources.torch_detections.FloatOutputs"
        tc["onnxscript"] = md.version("onnxscript")  # the dynamo exporter cannot run without it
        return tc


# aten ops whose ``training``/``train`` flag (argument index) a torch.export program records as a constant
_TRAIN_FLAG = {"batch_norm": 5, "native_batch_norm": 5, "_native_batch_norm_legit": 5,
               "_native_batch_norm_legit_functional": 5, "dropout": 2, "native_dropout": 2,
               "feature_dropout": 2, "alpha_dropout": 2, "feature_alpha_dropout": 2}


def _shape_from_hints(name: str, n_inputs: int, hints: SourceHints, file: str) -> tuple[int, ...]:
    """The shape of an input the file does not record: ``--input-shape NAME=...``, else the one its
    role (``--inputs`` / tag) fixes (wheel_speed (1, 1), imu (1, len(order)), memory (1, 2 x length),
    behavior (1, len(labels))), else for the camera input (role image, or the only input) (1, C, H, W)
    from the preprocessing; ModelLoadError naming the input and the flag otherwise."""
    from runtime.roles import ROLES

    if name in hints.input_shapes:
        return hints.input_shapes[name]
    entry = dict(hints.input_roles.get(name) or {})
    role = str(entry.pop("role", "") or ("image" if n_inputs == 1 else ""))
    spec = ROLES.get(role)
    if spec is not None and spec.fixed_shape is not None and (fixed := spec.fixed_shape(entry)) is not None:
        return fixed
    if role in ("image", "image_sequence") and hints.input_hw is not None:
        frame = (1, hints.channels, *hints.input_hw)
        if role == "image":
            return frame
        if entry.get("length"):
            return (1, int(entry["length"]), *frame[1:])
        raise ModelLoadError(f"{file} does not record the length of image_sequence input {name!r}; pass "
                             f"--inputs {name}=image_sequence:length=T or --input-shape {name}=1xTxCxHxW")
    if role in ("image", "image_sequence"):
        raise ModelLoadError(f"{file} does not record the size of image input {name!r}; pass --input-size WIDTHxHEIGHT "
                             "(or tag the version with edge.preprocess)")
    if spec is not None:  # a role whose shape depends on what the model does not say (memory without length)
        raise ModelLoadError(f"{file} does not record the shape of {role} input {name!r}; pass --input-shape {name}=1xK "
                             f"(or the role's own args in --inputs, e.g. {name}=memory:length=L)")
    return _refuse_unshaped(name, file)


def _refuse_unshaped(name: str, file: str) -> tuple[int, ...]:
    roles = "wheel_speed, imu and behavior:labels=... fix their own shape"
    raise ModelLoadError(f"{file} does not record the shape of input {name!r} (forward takes several); say what it "
                         f"is with --inputs {name}=ROLE ({roles}; image takes --input-size) or give --input-shape "
                         f"{name}=1x1")


def _training_mode_ops(ep: Any) -> list[str]:
    """The aten ops of a torch.export program that were traced in training mode (BatchNorm using
    the batch's statistics, Dropout zeroing at random), e.g. ``["aten.batch_norm", "aten.dropout"]``."""
    found: list[str] = []
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(getattr(node.target, "_overloadpacket", None), "__name__", "")
        i = _TRAIN_FLAG.get(name)
        if i is not None and len(node.args) > i and node.args[i] is True and f"aten.{name}" not in found:
            found.append(f"aten.{name}")
    return found


def _refuse_training_mode(ep: Any, path: Path) -> None:
    """A program exported in training mode cannot be put in eval mode (``ExportedProgram.module()``
    refuses ``eval()``): its outputs depend on the batch and on chance, so nothing built from it
    would match a model the car could use. Raises :class:`ModelLoadError` naming the ops and the fix."""
    ops = _training_mode_ops(ep)
    if ops:
        raise ModelLoadError(
            f"{path.name} was exported in training mode ({', '.join(ops)} in training mode: batch statistics, "
            "random dropout); call model.eval() before mlflow.pytorch.log_model / torch.export and register it again"
        )


def _refuse_traced_in_training_mode(module: Any, path: Path) -> None:
    """``torch.jit.trace`` records BatchNorm's and Dropout's training flag as a constant, so ``eval()``
    on the loaded module cannot change it (a scripted module reads ``self.training`` and is fine).
    Raises :class:`ModelLoadError` naming the ops and the fix."""
    found: list[str] = []
    for node in module.inlined_graph.nodes():
        name = node.kind().replace("aten::", "")
        i = _TRAIN_FLAG.get(name)
        if i is None:
            continue
        args = list(node.inputs())
        flag = args[i].node() if len(args) > i else None
        fixed_on = flag is not None and flag.kind() == "prim::Constant" and flag.output().toIValue() is True
        if fixed_on and f"aten.{name}" not in found:
            found.append(f"aten.{name}")
    if found:
        raise ModelLoadError(
            f"{path.name} was traced in training mode ({', '.join(found)} fixed to training mode: batch statistics, "
            "random dropout); call model.eval() before torch.jit.trace and save it again"
        )


def _program_inputs(ep: Any) -> tuple[list[str], dict[str, tuple[int | None, ...]]]:
    """User inputs of a torch.export program: names and (static) shapes, from its graph."""
    user = list(ep.graph_signature.user_inputs)
    shapes: dict[str, tuple[int | None, ...]] = {}
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user:
            val = node.meta.get("val")
            if val is None or not hasattr(val, "shape"):
                raise ModelLoadError(f"torch.export program input {node.name!r} is not a tensor; export a tensor-only forward")
            shapes[node.name] = tuple(int(d) if str(d).isdigit() else None for d in val.shape)
    return user, shapes


def _signature_inputs(model: Any, path: Path) -> list[str]:
    """Input names of forward (nn.Module or TorchScript); kwargs-only forwards are refused."""
    schema = getattr(getattr(model, "forward", None), "schema", None)
    if schema is not None:  # TorchScript
        return [a.name for a in schema.arguments if a.name != "self"]
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        raise ModelLoadError(f"{path.name}: cannot read forward's signature; pass --inputs NAME[,NAME]") from None
    bad = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY)]
    if bad:
        raise ModelLoadError(
            f"{path.name}: forward takes {', '.join('*' * (p.kind == p.VAR_POSITIONAL) + '**' * (p.kind == p.VAR_KEYWORD) + p.name for p in params if p.name in bad)}; "
            "the converter feeds tensors by position: wrap the model in a module whose forward takes named tensors"
        )
    required = [p.name for p in params if p.default is p.empty]
    return required or [p.name for p in params[:1]]


def _flatten(out: Any, names: list[str]) -> list[Any]:
    if isinstance(out, dict):
        return [out[n] for n in names]
    if isinstance(out, list | tuple):
        return list(out)
    return [out]


def _output_names(probe: Any, hints: list[str], file: str) -> list[str]:
    import torch

    hinted = list(dict.fromkeys(hints))
    if isinstance(probe, dict):
        bad = [k for k, v in probe.items() if not isinstance(v, torch.Tensor)]
        if bad or not all(isinstance(k, str) for k in probe):
            raise ModelLoadError(f"{file}: forward returns a dict whose entries {bad} are not tensors keyed by name")
        return list(probe)
    if isinstance(probe, torch.Tensor):
        if len(hinted) > 1:
            raise ModelLoadError(
                f"{file}: forward returns one tensor but the output mapping names {hinted}; "
                f"pass --outputs NAME=steering for that one tensor"
            )
        return hinted or ["output"]
    if isinstance(probe, list | tuple) and all(isinstance(t, torch.Tensor) for t in probe):
        if len(hinted) != len(probe):
            raise ModelLoadError(
                f"{file}: forward returns {len(probe)} unnamed tensors; name them in order with "
                f"--outputs {','.join(f'out{i}=MEANING' for i in range(len(probe)))} (or the edge.outputs tag)"
            )
        return hinted
    raise ModelLoadError(
        f"{file}: forward returns a {_describe_output(probe)}; the converter needs tensors, a dict of them, or "
        "torchvision-style detections (a list of dicts of boxes (n, 4), scores (n,), labels (n,)): "
        "wrap the model in a module that returns those"
    )


def _describe_output(out: Any) -> str:
    """``list of 1 dict (keys masks, boxes)``-like account of an output that is not tensors."""
    if isinstance(out, list | tuple) and out:
        first = out[0]
        inner = f"dict (keys {', '.join(map(str, first))})" if isinstance(first, dict) else type(first).__name__
        return f"{type(out).__name__} of {len(out)} {inner}"
    return type(out).__name__


def _explain_export(e: Exception, opset: int) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    if _DATA_DEPENDENT.search(text):
        where = _CAUSED_BY.search(text)
        return (
            f"torch.onnx.export (opset {opset}): forward branches or loops on a data-dependent size"
            f"{' at ' + where.group(1).strip() if where else ''} (e.g. a Python loop over the boxes found, "
            "as a greedy NMS, or an `if` on how many there are), which no fixed graph can hold; write that step "
            "loop-free (torchvision.ops.batched_nms, a tensor-only NMS) or log the model without its "
            "post-processing (the raw head, decoded with nms: runtime)"
        )
    ops = sorted(set(_NO_FUNCTION.findall(text))) or sorted(set(_ATEN_OP.findall(text)))
    if ops:
        return f"torch.onnx.export (opset {opset}) cannot express op(s) {', '.join(ops[:6])}"
    # The dynamo exporter's text starts with generic advice; the cause follows "Exception summary".
    summary = text.split("## Exception summary", 1)[-1]
    lines = [ln.strip() for ln in summary.strip().splitlines() if ln.strip() and not ln.startswith("<class")] \
        or [ln.strip() for ln in summary.strip().splitlines() if ln.strip()] or [type(e).__name__]
    return f"torch.onnx.export (opset {opset}) failed: {type(e).__name__}: {lines[0][:240]}"
