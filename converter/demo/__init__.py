"""The demo: a synthetic track, a small Keras pilot trained on it, and a local MLflow registry.

``track`` (numpy + OpenCV only) may be imported anywhere; ``model``, ``train`` and ``seed`` import
Keras/TensorFlow/MLflow lazily.
"""

from runtime.manifest import PreprocessSpec

# How the car turns a camera frame into the demo pilot's input: the whole 160x120 frame, RGB, /255.
DEMO_PREPROCESS = PreprocessSpec(width=160, height=120, crop_top=0, color="RGB", scale=1 / 255)
# For the variant that rescales inside the model (raw 0..255 floats in).
DEMO_PREPROCESS_RAW = PreprocessSpec(
    width=160, height=120, crop_top=0, color="RGB", scale=1.0, model_rescales=True
)
