"""Reference samples: frames + the source model's outputs on them, stored in the bundle.

Every build is compared against these right after it is made. They travel in the bundle
(``reference.npz``) so the car can check the engine it builds, and benchmarks can measure
accuracy, without TensorFlow. Frames are stored as camera-like uint8 BGR; everyone
preprocesses them with the runtime's own function.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from converter.errors import ConverterError
from runtime.manifest import PreprocessSpec
from runtime.preprocess import preprocess_batch

log = logging.getLogger(__name__)

REFERENCE_FILE = "reference.npz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class Reference:
    frames_bgr: np.ndarray  # (N, H, W, 3) uint8
    outputs: dict[str, np.ndarray]  # logical output name -> (N, ...) float32 from the source model
    source: str  # where the frames came from

    def inputs(self, spec: PreprocessSpec) -> np.ndarray:
        return preprocess_batch(self.frames_bgr, spec)

    def save(self, path: Path) -> None:
        arrays = {"frames_bgr": self.frames_bgr, **{f"out/{k}": v for k, v in self.outputs.items()}}
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path, source: str = "") -> Reference:
        with np.load(path) as z:
            outs = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith("out/")}
            return cls(z["frames_bgr"], outs, source)


def synthetic_frames(spec: PreprocessSpec, n: int, seed: int = 0) -> np.ndarray:
    """Road-like frames from the demo track plus a few noise frames that span the input range."""
    from converter.demo.track import drive_sequence

    n_noise = max(1, n // 8)
    frames, _, _ = drive_sequence(n - n_noise, seed=seed, width=spec.width, height=spec.height)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n_noise, spec.height, spec.width, 3), dtype=np.uint8)
    return np.concatenate([frames, noise], axis=0)


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
