"""RC car edge deployment toolchain: MLflow model -> edge bundle -> Jetson runtime.

Extras keep the car's install small: the car installs ``.[jetson]`` (no TensorFlow, no MLflow,
no pip OpenCV: JetPack's system OpenCV carries GStreamer for the CSI camera).
Exact, proven-together versions live in ``requirements/constraints.txt``.
"""

from setuptools import find_packages, setup

RUNTIME = [
    "numpy>=1.24",
    "pyserial>=3.5",
    "cryptography>=42",  # signed bundles (runtime/manifest/signature.py); cp310 aarch64 wheels
    "tomli>=2.0; python_version<'3.11'",
    "prometheus-client>=0.17",  # rc-runtime --metrics (runtime/metrics/; pure Python, imported only then)
]
# Off the car (workstation, CI): pip OpenCV plus the CPU backends.
RUNTIME_CPU = [
    "opencv-python-headless>=4.8",
    "onnxruntime>=1.17",
    "ai-edge-litert>=2.0",
]
CONVERTER = [
    *RUNTIME,
    *RUNTIME_CPU,
    "tensorflow-cpu>=2.16",
    "tf2onnx>=1.16",
    "onnx>=1.15",
    "mlflow[auth]>=3.0",  # [auth]: the basic-auth fleet server the tests run against
    "rich>=13",
    "psutil>=5.9",
]
BENCHMARKS = [*CONVERTER, "matplotlib>=3.7"]
MUTATION = ["mutmut>=3.8,<4"]  # `make mutation` (pinned in requirements/constraints.txt)
# PyTorch sources (workstation only; the car never imports torch). Install torch's CPU build first
# (`make setup` does: the machine's wheelhouse or PyTorch's CPU index), or pip fetches the CUDA one.
# onnx2tf makes the TFLite builds from the exported ONNX; it declares no dependencies of its own, hence
# the list. It also imports tf_keras, which `make setup` installs with --no-deps (see constraints).
TORCH = [
    "torch>=2.6",
    "onnxscript>=0.2",
    "onnx2tf>=1.28,<1.29",
    "onnx-graphsurgeon>=0.5",
    "sng4onnx>=1.0",
]

setup(
    name="rc-edge",
    version="0.1.0",
    description="Edge deployment toolchain for an autonomous RC car (MLflow -> ONNX/TFLite/TensorRT -> Jetson)",
    python_requires=">=3.10",
    packages=find_packages(include=["converter*", "runtime*", "calibration*", "benchmarks*"]),
    package_data={"benchmarks": ["*.toml"], "runtime": ["*.toml"]},
    install_requires=RUNTIME,
    extras_require={
        "runtime": [*RUNTIME, *RUNTIME_CPU],
        # tensorrt, pycuda, cv2: from JetPack (jetson/install.sh, requirements/car-constraints.txt); systemd's
        # notify protocol is runtime/notify.py (no sdnotify)
        "jetson": [*RUNTIME],
        "imu": ["smbus2>=0.4"],  # mpu6050:// IMU source on I2C (imported only when used)
        "converter": CONVERTER,
        "benchmarks": BENCHMARKS,
        "torch": [*CONVERTER, *TORCH],
        "dev": [*BENCHMARKS, "pytest>=8", "pytest-timeout>=2", "hypothesis>=6", "ruff>=0.5", "mypy>=1.10", "pybind11-stubgen>=2.5",
                *MUTATION],
    },
    entry_points={
        "console_scripts": [
            "convert-model=converter.cli:main",
            "rc-demo-registry=converter.demo.seed:main",
            "rc-runtime=runtime.cli:main",
            "rc-update=runtime.update.cli:main",  # stdlib HTTP + cryptography: nothing beyond the runtime extra
            "rc-car-sim=runtime.sim.cli:main",
            "rc-calibrate=calibration.cli:main",
            "rc-benchmark=benchmarks.cli:main",
        ]
    },
)
