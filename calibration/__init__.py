"""Calibration sets (recorded drives, videos, image folders) and INT8 tooling.

``rc-calibrate`` makes a set (calibration/cli.py); ``calibration.conversion`` is what
``convert-model`` calls for INT8 builds; ``calibration.trt_calibrator`` is TensorRT 8.x's
entropy calibrator. No TensorFlow or MLflow at import time.
"""

__version__ = "0.1.0"
