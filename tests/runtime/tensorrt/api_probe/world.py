"""What the fake TensorRT answers: the network's tensors (:class:`Spec`), the :class:`World` of one
network/engine and its reference outputs, the inputs the scenarios use, and ``check``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.runtime.tensorrt import trt_checked as tc
from tests.runtime.tensorrt.api_probe.fake_trt import BuilderImpl, ConfigImpl, ParserImpl, RuntimeImpl
from tests.runtime.tensorrt.api_probe.state import CURRENT
from tests.runtime.tensorrt.fake_cuda import FakeDriver
from tests.runtime.tensorrt.trt_checked import Fake, fail


@dataclass
class Spec:
    name: str
    shape: tuple[int, ...]  # -1: dynamic


@dataclass
class World:
    """What the fake TensorRT objects answer: one network/engine and what the code did to it."""

    drv: FakeDriver
    inputs: list[Spec]
    parse_ok: bool = True
    refuse_engine: bool = False
    refuse_shape: str | None = None
    refuse_address: str | None = None
    output_specs: list[Spec] | None = None  # default: out_sum (B, 1) and out_vec (B, n inputs)
    network_flags: int = -1
    configs: list[ConfigImpl] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Spec]:
        if self.output_specs is not None:
            return self.output_specs
        return [Spec("out_sum", (-1, 1)), Spec("out_vec", (-1, len(self.inputs)))]

    @property
    def tensors(self) -> list[tuple[Spec, bool]]:
        return [(s, True) for s in self.inputs] + [(s, False) for s in self.outputs]

    def spec(self, name: str) -> Spec:
        for s, _ in self.tensors:
            if s.name == name:
                return s
        raise KeyError(name)

    def compute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return World.reference(feeds, [s.name for s in self.inputs], self.output_specs)

    @staticmethod
    def reference(feeds: dict[str, np.ndarray], order: list[str], outputs: list[Spec] | None = None) -> dict[str, np.ndarray]:
        """out_sum: all inputs summed per sample; out_vec: each input's sum, in input order.
        Other outputs: output k (of width m) is (k + 1) x the sum over inputs i of (i + 1) x input
        i's sum, m times (so inputs fed to the wrong tensor show)."""
        per = [feeds[n].reshape(len(feeds[n]), -1).sum(axis=1) for n in order]
        vec = np.stack(per, axis=1).astype(np.float32)
        if outputs is None:
            return {"out_sum": vec.sum(axis=1, keepdims=True), "out_vec": vec}
        weighted = (vec * np.arange(1, len(order) + 1, dtype=np.float32)).sum(axis=1, keepdims=True)
        return {o.name: np.repeat(weighted * (k + 1), o.shape[1], axis=1) for k, o in enumerate(outputs)}

    # -- constructors for trt.Builder / trt.Runtime / trt.OnnxParser
    def builder(self, logger: Any) -> Fake:
        return Fake(tc.REAL.Builder, BuilderImpl(self))

    def runtime(self, logger: Any) -> Fake:
        return Fake(tc.REAL.Runtime, RuntimeImpl(self), self.drv.trt_destroyed)

    def parser(self, network: Any, logger: Any) -> Fake:
        return Fake(tc.REAL.OnnxParser, ParserImpl(self))


IMG = Spec("img", (-1, 6, 8, 3))


IMU = Spec("imu", (-1, 6))


MEM = Spec("mem", (-1, 4))


def check(cond: bool, message: str) -> None:
    if not cond:
        raise fail(message)


@contextlib.contextmanager
def world(inputs: list[Spec], **kw: Any) -> Iterator[World]:
    drv = FakeDriver()
    drv.install()
    w = World(drv, inputs, **kw)
    CURRENT[0] = w
    yield w
