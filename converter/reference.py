"""Reference samples: frames (+ every other input's values) + the source model's outputs on them.

Every build is compared against these right after it is made. They travel in the bundle
(``reference.npz``) so the car can check the engine it builds, and benchmarks can measure
accuracy, without TensorFlow. Frames are stored as camera-like uint8 BGR (``frames_bgr``); everyone
preprocesses them with the runtime's own function. Inputs that are not images (IMU, memory,
behaviour, wheel speed) are stored as ``in/<name>`` (N, K) float32, with values like the car's: see
:func:`vector_inputs`. Sequence inputs are windows of consecutive frames, oldest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from converter.errors import ConverterError
from runtime.manifest import Manifest, PreprocessSpec
from runtime.preprocess import image_layout, preprocess_batch, sequence_windows
from runtime.roles import ROLES, Drive

log = logging.getLogger(__name__)

REFERENCE_FILE = "reference.npz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class Reference:
    frames_bgr: np.ndarray  # (N, H, W, 3) uint8
    outputs: dict[str, np.ndarray]  # logical output name -> (N, ...) float32 from the source model
    source: str  # where the frames came from
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # non-image input name -> (N, K) float32

    def inputs(self, manifest: Manifest) -> dict[str, np.ndarray]:
        """{input name: (N, ...) float32} for every model input, preprocessed as the car does.

        Raises ``KeyError`` when a non-image input has no stored values (a bundle made before it).
        """
        out: dict[str, np.ndarray] = {}
        for spec in manifest.inputs:
            if spec.is_image:
                assert spec.preprocess is not None
                frames = preprocess_batch(self.frames_bgr, spec.preprocess, image_layout(spec.layout))
                out[spec.name] = sequence_windows(frames, spec.length) if spec.length and spec.role != "image" else frames
            else:
                out[spec.name] = self.vectors[spec.name].astype(np.float32)
        return out

    def images(self, spec: PreprocessSpec) -> np.ndarray:
        """(N, H, W, C) preprocessed frames (the camera input of a one-input NHWC model)."""
        return preprocess_batch(self.frames_bgr, spec)

    def save(self, path: Path) -> None:
        arrays = {"frames_bgr": self.frames_bgr, **{f"out/{k}": v for k, v in self.outputs.items()},
                  **{f"in/{k}": v for k, v in self.vectors.items()}}
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path, source: str = "") -> Reference:
        with np.load(path) as z:
            outs = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith("out/")}
            ins = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith("in/")}
            return cls(z["frames_bgr"], outs, source, ins)


def vector_inputs(manifest: Manifest, steering: np.ndarray, throttle: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Values like the car's for every non-image input, one row per frame (N = len(steering)).

    The drive: a car at 0.4-2.8 m/s following the commanded steering, its yaw rate from the steering
    (bicycle model, as :mod:`converter.demo.track`). Each role's :attr:`runtime.roles.RoleSpec.sample`
    turns it into its input's values (e.g. ``imu``: ay = v * yaw rate, az = g; ``memory``: the
    previous commands; ``behavior``: a one-hot cycling in blocks of 8; ``wheel_speed``: v).
    """
    v = 0.4 + 2.4 * np.clip(throttle, 0.0, 1.0)
    gz = v * np.tan(0.45 * np.clip(steering, -1.0, 1.0)) / 0.26  # MAX_STEER_ANGLE, WHEELBASE of the demo car
    drive = Drive(np.asarray(steering), np.asarray(throttle), v, gz, np.random.default_rng([seed, 7]))
    out: dict[str, np.ndarray] = {}
    for spec in manifest.inputs:
        sample = ROLES[spec.role].sample
        if sample is not None:
            out[spec.name] = sample(spec, drive)
    return {k: v.astype(np.float32) for k, v in out.items()}


def synthetic_drive(spec: PreprocessSpec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames (N, H, W, 3) uint8, steering (N,), throttle (N,)): a continuous drive on the demo
    track, then a few noise frames (commands held) that span the input range."""
    from converter.demo.track import drive_sequence

    n_noise = max(1, n // 8)
    frames, steering, throttle = drive_sequence(n - n_noise, seed=seed, width=spec.width, height=spec.height)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n_noise, spec.height, spec.width, 3), dtype=np.uint8)
    hold = np.full(n_noise, 1.0)
    return (np.concatenate([frames, noise], axis=0), np.concatenate([steering, steering[-1:] * hold]),
            np.concatenate([throttle, throttle[-1:] * hold]))


def frames_from_path(path: Path, n: int) -> np.ndarray:
    """Up to n frames spread evenly over a video file or an image folder."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConverterError(f"--samples {path}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(n, len(files)))]
        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in picks]
    else:
        cap = cv2.VideoCapture(str(path))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if not cap.isOpened() or total <= 0:
            raise ConverterError(f"--samples {path}: not a readable video or image folder")
        frames = []
        for i in np.linspace(0, total - 1, min(n, total)).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, frame = cap.read()
            if ok:
                frames.append(frame)
        cap.release()
    good: list[np.ndarray] = [f for f in frames if f is not None]
    if not good:
        raise ConverterError(f"--samples {path}: no frame could be decoded")
    h, w = good[0].shape[:2]
    return np.stack([f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h)) for f in good])
