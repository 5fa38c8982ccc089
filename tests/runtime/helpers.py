"""Helpers for the runtime tests (fixtures are in conftest.py)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.backends.base import Backend
from runtime.config import (
    CameraSection,
    LinkSection,
    ModelSection,
    RunSection,
    RuntimeConfig,
    WatchdogSection,
)
from runtime.link import SerialDriveLink
from runtime.manifest import PreprocessSpec, load_manifest
from runtime.policy import PolicyConfig
from runtime.sim import CarSimulator

N_FRAMES = 48
# The policy that passes the model's outputs through unchanged (for checking commands).
PASS_THROUGH = PolicyConfig(max_throttle=1.0, max_reverse=1.0, throttle_slew_rate=0.0)
# A wire unit is 1/1000 and the link rounds to it.
WIRE_TOL = 0.0006


def hand_preprocess(frame_bgr: np.ndarray, spec: PreprocessSpec, layout: str) -> np.ndarray:
    """The manifest's preprocessing written out again with plain numpy (an oracle independent of
    ``runtime.preprocess``): resize (OpenCV INTER_AREA), drop ``crop_top`` rows, channel order by
    indexing, ``(x * scale - mean) / std`` per channel. -> (1, H, W, C) or (1, C, H, W) float32."""
    assert spec.color in ("RGB", "BGR"), "the demo model takes colour frames"
    img = frame_bgr
    if img.shape[:2] != (spec.height, spec.width):
        img = cv2.resize(img, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    img = img[spec.crop_top:]
    img = img[:, :, ::-1] if spec.color == "RGB" else img
    x = (img.astype(np.float64) * spec.scale - np.array(spec.mean)) / np.array(spec.std)
    if layout == "NCHW":
        x = np.moveaxis(x, 2, 0)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def reference_outputs(bundle: Path, frames: list[np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Steering and throttle for each frame from the bundle's FP32 ONNX model run by ONNX Runtime
    directly, with :func:`hand_preprocess` and a hand-written scalar decode: none of the loop's own
    code (backends, ``runtime.preprocess``, ``runtime.decode``) computes the expected commands."""
    import onnxruntime as ort

    manifest = load_manifest(bundle)
    build = manifest.build("onnx")
    image = manifest.camera_input
    assert image is not None and image.preprocess is not None
    sess = ort.InferenceSession(str(bundle / build.file), providers=["CPUExecutionProvider"])
    feed = build.io[image.name].name
    out: dict[str, list[float]] = {"steering": [], "throttle": []}
    for f in frames:
        y = dict(zip([o.name for o in sess.get_outputs()],
                     sess.run(None, {feed: hand_preprocess(f, image.preprocess, image.layout)}), strict=True))
        for meaning in out:
            spec = manifest.output_by_meaning(meaning)
            assert spec is not None
            dec = spec.decode or {"kind": "scalar"}
            assert dec.get("kind", "scalar") == "scalar", "the demo model's outputs are scalars"
            raw = float(y[build.io[spec.name].name].reshape(-1)[0])
            out[meaning].append(raw * float(dec.get("gain", 1.0)) + float(dec.get("bias", 0.0)))
    return {k: np.array(v) for k, v in out.items()}


def make_config(
    bundle: Path, camera: str, link: str = "null://", backend: str = "onnxruntime",
    policy: PolicyConfig = PASS_THROUGH, deadline_ms: float = 100.0, **run: float | int | str,
) -> RuntimeConfig:
    return RuntimeConfig(
        model=ModelSection(bundle=str(bundle), backend=backend),
        camera=CameraSection(uri=camera, reconnect_interval_s=0.05),
        link=LinkSection(uri=link),
        policy=policy,
        watchdog=WatchdogSection(deadline_ms=deadline_ms),
        run=RunSection(**run),  # type: ignore[arg-type]
    )


def host_neutrals(simulator: CarSimulator) -> list[float]:
    """Times at which the car received a neutral command from the host."""
    return [e["t"] for e in list(simulator.events) if e["event"] == "neutral"]


def drives(simulator: CarSimulator) -> list[dict[str, Any]]:
    return simulator.commands()


class FaultyBackend(Backend):
    """A real backend with injected faults on chosen calls: raise, hang, or NaN outputs.

    Only the fault is simulated (a real model cannot be made to fail on demand); every other call
    runs the real model. Calls are counted from 1, including the runtime's warm-up runs."""

    name = "faulty"

    def __init__(
        self, inner: Backend, raise_on: range = range(0), hang_on: range = range(0), hang_s: float = 0.0,
        nan_on: range = range(0),
    ) -> None:
        super().__init__(inner.path, inner.build, inner.manifest)
        self.inner, self.raise_on, self.hang_on, self.hang_s, self.nan_on = inner, raise_on, hang_on, hang_s, nan_on
        self.calls = 0

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.calls in self.raise_on:
            raise RuntimeError(f"injected failure on call {self.calls}")
        if self.calls in self.hang_on:
            time.sleep(self.hang_s)
        out = self.inner._run(feeds)
        if self.calls in self.nan_on:
            out = {k: np.full_like(v, np.nan) for k, v in out.items()}
        return out

    def close(self) -> None:
        self.inner.close()


def drives_after(simulator: CarSimulator, t: float) -> list[dict[str, Any]]:
    return [c for c in simulator.commands() if c["t"] > t]


def first_neutral_after(simulator: CarSimulator, t: float, timeout: float = 1.0) -> float | None:
    """Time of the first host neutral after ``t`` (waiting up to ``timeout`` for it)."""
    simulator.wait_for(lambda s: any(n > t for n in host_neutrals(s)), timeout)
    later = [n for n in host_neutrals(simulator) if n > t]
    return min(later) if later else None


def longest_unrefreshed_drive(simulator: CarSimulator) -> float:
    """The longest time any drive command stood before a newer drive or a host neutral replaced it
    (what the watchdog bounds by its deadline)."""
    events = [(e["t"], e["event"]) for e in list(simulator.events) if e["event"] in ("drive", "neutral")]
    worst = 0.0
    for (t, kind), (t_next, _) in itertools.pairwise(events):
        if kind == "drive":
            worst = max(worst, t_next - t)
    return worst


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    """Poll ``cond`` every 2 ms until it holds (True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= end:
            return False
        time.sleep(0.002)
    return True


def open_armed_link(port: str, timeout_s: float = 2.0) -> SerialDriveLink:
    """A real serial link to the simulator at ``port``, opened and ARMed, once the car has confirmed
    (protocol v2 withholds DRIVE until then). The caller closes it."""
    link = SerialDriveLink(port)
    link.open()
    link.arm()  # the watchdog arms on its first command; a confirmed car gets that command at once
    end = time.monotonic() + timeout_s
    while not link.car_armed and time.monotonic() < end:
        link.poll()
        time.sleep(0.002)
    return link
