"""Drive our TensorRT code against one real TensorRT binding (run by test_trt_real_api.py).

    python -m tests.runtime.tensorrt.api_probe REPORT.json

must run where ``import tensorrt`` finds a real binding module (real_trt.py arranges that with a
stub libnvinfer). It stands checked proxies in for TensorRT (trt_checked.py) and a simulated CUDA
driver in for pycuda (fake_cuda.py), then runs every path of our code that the version's API path
uses: the logger bridge through TensorRT's own C++ trampoline, engine builds (FP16/INT8, one input
and several, fixed and dynamic batch, parse errors, timing caches), INT8 calibration on 8.x, the
engine runner (several inputs and outputs by name, 20 open/close cycles, close from another thread,
failures while opening) and the teardown order. The report lists every failure (API misuse or a
wrong result), the (class, member) pairs touched, and the types no check understood.

One module per part: ``world`` and ``fake_trt`` (what the fake TensorRT answers), ``state``, and
the scenarios by API area: ``logger``, ``build``, ``runner``, ``backend``, ``converter``;
``__main__`` runs them in order and writes the report.
"""
