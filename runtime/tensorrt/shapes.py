"""Shapes and I/O descriptions shared by every TensorRT API path (pure Python, no TensorRT)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from runtime.manifest import Manifest, TensorIO


class EngineBuildError(RuntimeError):
    """TensorRT could not build an engine from this ONNX (the message says why)."""


@dataclass(frozen=True)
class IOTensor:
    """One engine input or output as the execution code needs it."""

    name: str
    is_input: bool
    shape: tuple[int, ...]  # -1 for dimensions fixed only at run time
    dtype: np.dtype
    index: int  # binding index (TensorRT 8 bindings API) or I/O tensor index


def engine_input_shape(manifest_shape: Sequence[int]) -> tuple[int, ...]:
    """The static shape engines are built for: the manifest's input with batch 1.

    Converters write the batch dimension as -1/0 (dynamic); the car infers one frame at a time.
    """
    shape = tuple(int(d) for d in manifest_shape)
    if not shape:
        raise ValueError("the manifest's input shape is empty")
    if any(d <= 0 for d in shape[1:]):
        raise ValueError(f"input shape {list(shape)} has dynamic non-batch dimensions; export a fixed-size model")
    return (1, *shape[1:])


def engine_input_shapes(manifest: Manifest, io: Mapping[str, TensorIO]) -> dict[str, tuple[int, ...]]:
    """Every model input's engine shape (batch 1), keyed by the build's own tensor name.

    ``io`` is the build's logical-name -> TensorIO map. ``ValueError`` for an input the build does
    not name or a dynamic non-batch dimension.
    """
    out: dict[str, tuple[int, ...]] = {}
    for spec in manifest.inputs:
        if spec.name not in io:
            raise ValueError(f"the build names no tensor for the model input {spec.name!r}")
        out[io[spec.name].name] = engine_input_shape(spec.shape)
    return out


def resolve_shape(dims: Sequence[int], wanted: Sequence[int] | None, name: str = "input") -> tuple[int, ...]:
    """Fill the dynamic (-1) dimensions of a network input from ``wanted``.

    Static dimensions must agree with ``wanted``; a dynamic batch dimension without ``wanted``
    becomes 1. Anything else dynamic without a value is an error naming the tensor.
    """
    dims = tuple(int(d) for d in dims)
    if wanted is not None:
        wanted = tuple(int(d) for d in wanted)
        if len(wanted) != len(dims):
            raise EngineBuildError(f"{name}: the ONNX has rank {len(dims)} {list(dims)}, the bundle says {list(wanted)}")
    out = []
    for i, d in enumerate(dims):
        w = wanted[i] if wanted is not None else -1
        if d >= 0:
            if w > 0 and w != d:
                raise EngineBuildError(f"{name}: dimension {i} is {d} in the ONNX but {w} in the bundle's input shape")
            out.append(d)
        elif w > 0:
            out.append(w)
        elif i == 0:
            out.append(1)
        else:
            raise EngineBuildError(f"{name}: dimension {i} is dynamic and the bundle gives no size for it")
    return tuple(out)


def with_batch(shape: Sequence[int], batch: int) -> tuple[int, ...]:
    """``shape`` with its first (batch) dimension replaced by ``batch``."""
    return (int(batch), *(int(d) for d in shape[1:]))
