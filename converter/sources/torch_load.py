"""Load a PyTorch model file, whatever way it was saved, into something callable.

What is in a version's artifacts is told by the file itself, never by MLflow's metadata:

- ``.pt2``: a ``torch.export`` program (MLflow 3's default ``data/model.pt2``), ``torch.export.load``;
- a TorchScript archive (``.pt``/``.ts``: a zip with ``code/`` and ``constants.pkl``), ``torch.jit.load``;
- a ``torch.save`` pickle (``.pth``/``.pt``/``.ckpt``), first with ``weights_only=True``:
  a state dict (or a checkpoint dict holding one) needs ``--model-class module:attr``; anything
  else is a pickled module (MLflow 2.x / ``serialization_format="pickle"``: ``data/model.pth``),
  loaded with ``weights_only=False``. Unpickling runs code: the converter only does it for the
  registry version the user named (README, "Security").

Every failure is a :class:`~converter.errors.ModelLoadError` naming the class, file or flag.
"""

from __future__ import annotations

import importlib
import logging
import pickletools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.errors import ModelLoadError

log = logging.getLogger(__name__)

TORCH_SUFFIXES = (".pt2", ".pt", ".pth", ".ts", ".ckpt")
# Keys under which training scripts (and Lightning) keep the model's weights in a checkpoint dict.
_STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")
_MISSING_ATTR = re.compile(r"Can't get attribute '([\w.]+)' on <module '([\w.]+)'")
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


@dataclass
class LoadedTorch:
    """What a file held: ``kind`` pt2 | torchscript | pickled-module | state-dict, and the object
    to call (an ``nn.Module``, a TorchScript module, or an ``ExportedProgram``)."""

    kind: str
    model: Any
    path: Path


def file_kind(path: Path) -> str:
    """pt2 | torchscript | pickle, from the file's contents (zip entries), then its suffix."""
    if not zipfile.is_zipfile(path):
        if path.suffix == ".pt2":
            raise ModelLoadError(f"{path.name} is not a torch.export archive (not a zip file); is the artifact corrupt?")
        return "pickle"  # legacy (pre-1.6) torch.save format
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names) or path.suffix == ".pt2":
        return "pt2"
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    return "pickle"


def load_torch(path: Path, model_class: str | None = None) -> LoadedTorch:
    """Load ``path`` on the CPU. ``model_class`` (``module:attr``) builds the module a state dict
    belongs to. Raises :class:`ModelLoadError` naming what is missing and the flag that fixes it."""
    import torch

    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path.name} is empty (0 bytes); re-log the model")
    kind = file_kind(path)
    if kind == "pt2":
        try:
            return LoadedTorch("pt2", torch.export.load(str(path)), path)
        except Exception as e:
            raise ModelLoadError(f"{path.name}: torch.export.load failed ({_first_line(e)}); is the artifact corrupt?") from None
    if kind == "torchscript":
        try:
            return LoadedTorch("torchscript", torch.jit.load(str(path), map_location="cpu"), path)
        except Exception as e:
            raise ModelLoadError(f"{path.name}: torch.jit.load failed ({_first_line(e)}); is the artifact corrupt?") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        if not _is_weights_only_refusal(e):
            raise ModelLoadError(f"{path.name} could not be loaded ({_first_line(e)}); is the artifact corrupt?") from None
        if model_class:
            log.info("--model-class is ignored: %s holds a whole pickled module, not a state dict", path.name)
        return LoadedTorch("pickled-module", _load_pickled_module(path), path)
    state = _state_dict_in(obj)
    if state is None:
        raise ModelLoadError(
            f"{path.name} holds a {type(obj).__name__} that is neither a module nor a state dict; "
            "log the model with mlflow.pytorch.log_model, or save its state_dict and pass --model-class module:attr"
        )
    if not model_class:
        raise ModelLoadError(
            f"{path.name} is a state dict ({len(state)} tensors) without its architecture; "
            "pass --model-class module:attr (an importable nn.Module class or factory)"
        )
    return LoadedTorch("state-dict", _module_from_state(path, state, model_class), path)


def _is_weights_only_refusal(e: Exception) -> bool:
    text = str(e)
    return "weights_only" in text or "Unsupported global" in text or "Weights only load failed" in text


def _load_pickled_module(path: Path) -> Any:
    import torch

    try:
        model = torch.load(str(path), map_location="cpu", weights_only=False)  # code execution: see module doc
    except (ModuleNotFoundError, AttributeError, ImportError) as e:
        raise ModelLoadError(_missing_class_message(path, e)) from None
    except Exception as e:
        raise ModelLoadError(f"{path.name} could not be unpickled ({_first_line(e)}); is the artifact corrupt?") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(
            f"{path.name} unpickles to a {type(model).__name__}, not a torch.nn.Module; "
            "log the model itself (mlflow.pytorch.log_model) or a state dict with --model-class module:attr"
        )
    return model


def _missing_class_message(path: Path, e: Exception) -> str:
    """Name the class the pickle needs, from its own opcodes (Python's error names only the module)."""
    text = str(e)
    missing_module, missing_attr = None, None
    m = _MISSING_MODULE.search(text)
    if m:
        missing_module = m.group(1)
    m2 = _MISSING_ATTR.search(text)
    if m2:
        missing_attr, missing_module = m2.group(1), m2.group(2)
    classes = [f"{mod}.{name}" for mod, name in pickled_globals(path)
               if missing_module and (mod == missing_module or mod.startswith(missing_module + "."))
               and (missing_attr is None or name == missing_attr)]
    what = ", ".join(dict.fromkeys(classes)) or (f"{missing_module}.{missing_attr}" if missing_attr else missing_module)
    return (
        f"{path.name} is a pickled module of class {what}, which cannot be imported here ({text}); "
        "install or put its package on PYTHONPATH, or log its state_dict and pass --model-class module:attr"
    )


def pickled_globals(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every global a ``torch.save`` pickle refers to (read, never executed)."""
    try:
        with zipfile.ZipFile(path) as z:
            data = next((z.read(n) for n in z.namelist() if n.endswith("data.pkl")), b"")
    except (OSError, zipfile.BadZipFile):
        return []
    found: list[tuple[str, str]] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL" and isinstance(arg, str):
                mod, _, name = arg.partition(" ")
                found.append((mod, name))
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8") and isinstance(arg, str):
                strings.append(arg)
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append((strings[-2], strings[-1]))
    except (ValueError, EOFError) as e:  # a truncated pickle: keep what was read
        log.debug("pickle scan of %s stopped: %s", path.name, e)
    return found


def _state_dict_in(obj: Any) -> dict[str, Any] | None:
    """A state dict, or the one a checkpoint dict keeps under a usual key; None otherwise."""
    import torch

    def is_state(d: Any) -> bool:
        return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())

    if is_state(obj):
        return dict(obj)
    if isinstance(obj, dict):
        for key in _STATE_KEYS:
            if is_state(obj.get(key)):
                return dict(obj[key])
    return None


def import_model_class(spec: str) -> Any:
    """``module:attr`` -> the class or factory; :class:`ModelLoadError` naming the flag otherwise."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ModelLoadError(f"--model-class {spec!r}: expected module:attr, e.g. mypkg.nets:RoadNet")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise ModelLoadError(f"--model-class {spec!r}: {e}; is its package on PYTHONPATH?") from None
    except Exception as e:  # importing runs the module's code: whatever it raises is the import's failure
        raise ModelLoadError(_import_failure(spec, module, e)) from None
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as e:
        raise ModelLoadError(f"--model-class {spec!r}: {e}; is its package on PYTHONPATH?") from None
    if not callable(obj):
        raise ModelLoadError(f"--model-class {spec!r} is a {type(obj).__name__}, not a class or factory")
    return obj


def _import_failure(spec: str, module: str, e: Exception) -> str:
    """One line for a ``--model-class`` module whose import raised: what, and the fix. torchvision's
    C++ operators missing ("operator torchvision::nms does not exist") mean a torchvision wheel
    built for another torch, the usual case beside a CPU-only torch from PyPI."""
    import torch

    said = f"importing {module} failed ({_first_line(e)})"
    if "torchvision::" in str(e):
        cpu = torch.__version__.split("+")[0]
        return (f"--model-class {spec!r}: {said}: the installed torchvision was built for another torch than {cpu}; "
                f"install the torchvision released with torch {cpu} from the same index (e.g. pip install "
                "torchvision --index-url https://download.pytorch.org/whl/cpu)")
    return (f"--model-class {spec!r}: {said}; fix that import (python -c 'import {module}' shows it) or point "
            "--model-class at a module that imports here")


def _module_from_state(path: Path, state: dict[str, Any], spec: str) -> Any:
    import torch

    factory = import_model_class(spec)
    try:
        model = factory()
    except TypeError as e:
        raise ModelLoadError(f"--model-class {spec!r} cannot be built without arguments ({e}); "
                             "point it at a factory function that takes none") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"--model-class {spec!r} made a {type(model).__name__}, not a torch.nn.Module")
    # Checkpoints saved from DataParallel / Lightning prefix every key; strip a prefix they all share.
    own = set(model.state_dict())
    for prefix in ("module.", "model."):
        if not (set(state) & own) and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches raise even with strict=False
        lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln] or [_first_line(e)]
        raise ModelLoadError(
            f"{path.name} does not fit --model-class {spec!r}: {lines[0][:200]}"
            f"{f' (and {len(lines) - 1} more)' if len(lines) > 1 else ''}; is it the right class (and its arguments)?"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelLoadError(
            f"{path.name} does not fit --model-class {spec!r}: missing {_few(result.missing_keys)}, "
            f"unexpected {_few(result.unexpected_keys)}; is it the right class (and its arguments)?"
        )
    return model


def _few(keys: list[str]) -> str:
    return "[]" if not keys else "[" + ", ".join(keys[:4]) + (f", ... {len(keys)} in all" if len(keys) > 4 else "") + "]"


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__
