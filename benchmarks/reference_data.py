"""The bundle's reference frames and the source model's outputs on them (``reference.npz``).

The converter stores them at conversion time, so accuracy against the *source* model is measured
here without TensorFlow. The file is sha256-checked against the manifest like any model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.agreement import perception_reads, task_agreement
from runtime.backends.base import Backend
from runtime.decode import OutputDecoders
from runtime.manifest import BundleError, Manifest, sha256_file


@dataclass
class ReferenceSet:
    """The bundle's reference frames as model inputs and the source model's outputs on them."""

    inputs: dict[str, np.ndarray]  # input name -> (N, ...) float32, preprocessed exactly as the runtime does
    outputs: dict[str, np.ndarray]  # logical output name -> (N, ...) from the source model
    source: str


def load_reference(bundle: Path, manifest: Manifest) -> ReferenceSet | None:
    """The verified reference set, or None when the bundle has none (older converters)."""
    from converter.reference import REFERENCE_FILE, Reference

    info = manifest.source.get("reference") or {}
    path = bundle / str(info.get("file") or REFERENCE_FILE)
    if not path.is_file():
        return None
    want = info.get("sha256")
    if want and sha256_file(path) != want:
        raise BundleError(f"{path.name}: sha256 does not match the manifest; the bundle was modified, re-copy it")
    ref = Reference.load(path, str(info.get("frames", "")))
    return ReferenceSet(ref.inputs(manifest), ref.outputs, ref.source)


def accuracy(backend: Backend, ref: ReferenceSet) -> dict[str, object]:
    """Per-output mean and max absolute error of ``backend`` vs the source model, batch 1 per frame;
    for a perception bundle also ``task`` ({meaning: figures}, :func:`runtime.agreement.task_agreement`:
    mIoU / drivable IoU / pixel agreement, or F1 / matched box IoU / missed / extra), the same
    figures the converter gated the build by."""
    names = [n for n in ref.outputs if n in backend.output_io]
    if not names:
        raise BundleError(f"reference.npz has outputs {sorted(ref.outputs)}, the build has {sorted(backend.output_io)}")
    errs: dict[str, list[np.ndarray]] = {n: [] for n in names}
    got_all: dict[str, list[np.ndarray]] = {n: [] for n in names}
    count = len(next(iter(ref.inputs.values())))
    for i in range(count):
        y = backend.infer({k: v[i : i + 1] for k, v in ref.inputs.items()})  # every input, sample i
        for n in names:
            want = np.asarray(ref.outputs[n][i], np.float64).reshape(-1)
            errs[n].append(np.abs(np.asarray(y[n], np.float64).reshape(-1) - want))
            got_all[n].append(np.asarray(y[n]))
    per_output = {}
    for n, e in errs.items():
        a = np.concatenate(e)
        per_output[n] = {"max_abs": float(a.max()), "mean_abs": float(a.mean())}
    got: dict[str, np.ndarray] = {n: np.concatenate(g, 0) for n, g in got_all.items()}
    task = task_agreement(backend.manifest.outputs, got, ref.outputs) if perception_reads(backend.manifest.outputs) \
        else None
    return {
        "samples": count,
        "frames": ref.source,
        "max_abs": float(np.max([v["max_abs"] for v in per_output.values()])),  # NaN propagates
        "mean_abs": float(np.mean([v["mean_abs"] for v in per_output.values()])),
        "per_output": per_output,
        "decoded": decoded_errors(backend, got, ref.outputs),
        **({"task": task} if task else {}),
    }


def decoded_errors(
    backend: Backend, got: dict[str, np.ndarray], want: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """Per meaning (steering, throttle): mean and max abs error of the decoded commands, what the
    car would do differently (a categorical output's raw bins can differ while the decoded value
    does not, and the reverse)."""
    outputs = [o for o in backend.manifest.outputs if o.meaning != "other" and o.name in got and o.name in want]
    if not outputs:
        return {}
    dec = OutputDecoders(outputs)
    a, b = dec.batch(got), dec.batch({o.name: np.asarray(want[o.name]) for o in outputs})
    return {m: {"max_abs": float(np.max(np.abs(a[m] - b[m]))), "mean_abs": float(np.mean(np.abs(a[m] - b[m])))}
            for m in a}
