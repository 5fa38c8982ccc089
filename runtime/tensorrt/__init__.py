"""TensorRT on the car and the workstation: version detection, engine building per TensorRT version,
the engine cache and the pycuda runner. ``tensorrt`` and ``pycuda`` are imported only when used,
so everything here imports on machines without them.

Modules: version (which TensorRT, which API path), gpu (compute capability, device),
sources (which ONNX each path builds from), builder (``build_engine``), engine_cache,
api_common / api_v8 / api_v10 / api_v11 / tensor_api (the version-specific calls), runner (pycuda),
cuda_context, shapes, atomic.
"""
