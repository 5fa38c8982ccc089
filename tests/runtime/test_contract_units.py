"""Small contract pieces checked against values worked out by hand: the policy built from a
manifest's outputs, the batch decoder parity uses, parity's decoded comparison (max error of the
decoded command, bin-flip rate), sequence windows and layouts. Fast: they run against every mutant
in ``make mutation``."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from converter.parity import compare
from runtime.decode import OutputDecoders
from runtime.manifest import BundleError, Manifest, OutputSpec
from runtime.policy import Policy, PolicyConfig
from runtime.preprocess import image_layout, sequence_windows

BASE: dict[str, Any] = {
    "schema_version": 2, "converter_version": "0.1.0", "created_at": "2026-11-23T10:00:00+00:00",
    "model": {"name": "rc_pilot", "version": "3", "run_id": "r", "source_uri": "models:/m-1", "flavor": "keras"},
    "inputs": [{"name": "image", "role": "image", "shape": [1, 4, 6, 3], "dtype": "float32", "layout": "NHWC",
                "preprocess": {"width": 6, "height": 4}}],
    "outputs": [{"name": "angle_out", "shape": [1, 5], "meaning": "steering",
                 "decode": {"kind": "bins", "bins": 5, "range": [-1, 1]}},
                {"name": "xy", "shape": [1, 2], "meaning": "throttle",
                 "decode": {"kind": "component", "index": 1, "gain": 0.5, "bias": 0.1}}],
    "builds": [], "source": {}, "not_built": [],
}
ONE_HOT = np.eye(5, dtype=np.float32)  # bin i of 5 over [-1, 1] means -1 + i/2


def manifest(**changes: Any) -> Manifest:
    d = copy.deepcopy(BASE)
    d.update(changes)
    return Manifest.from_dict(d)


def test_policy_for_manifest_uses_each_outputs_decoder() -> None:
    p = Policy.for_manifest(PolicyConfig(max_throttle=1.0, throttle_slew_rate=0), manifest())
    cmd = p({"angle_out": ONE_HOT[3:4], "xy": np.array([[9.0, 0.8]], np.float32)}, 0.0)
    assert cmd.valid and cmd.steering == pytest.approx(0.5)  # bin 3: -1 + 3/2
    assert cmd.throttle == pytest.approx(0.8 * 0.5 + 0.1)  # component 1, gain, bias; component 0 ignored
    assert (p.steering_output, p.throttle_output, p.max_gap_s) == ("angle_out", "xy", 0.1)
    assert Policy.for_manifest(PolicyConfig(), manifest(), max_gap_s=0.25).max_gap_s == 0.25


def test_policy_for_manifest_without_steering_or_throttle() -> None:
    outputs = copy.deepcopy(BASE["outputs"])
    outputs[0]["meaning"] = "other"
    with pytest.raises(BundleError, match=r"no output with meaning 'steering' \(outputs: angle_out=other, xy=throttle\)"):
        Policy.for_manifest(PolicyConfig(), manifest(outputs=outputs))
    steer_only = copy.deepcopy(BASE["outputs"])[:1]
    with pytest.raises(BundleError, match=r"policy\.constant_throttle"):
        Policy.for_manifest(PolicyConfig(), manifest(outputs=steer_only))
    p = Policy.for_manifest(PolicyConfig(constant_throttle=0.3, throttle_slew_rate=0), manifest(outputs=steer_only))
    cmd = p({"angle_out": ONE_HOT[0:1]}, 0.0)
    assert (cmd.steering, cmd.throttle, p.throttle_output) == (-1.0, 0.3, None)


def test_batch_decoding_frame_by_frame() -> None:
    dec = OutputDecoders(manifest().outputs)
    assert dec.meanings == ["steering", "throttle"]
    raw = {"angle_out": ONE_HOT[[0, 2, 4]], "xy": np.array([[0, 0.0], [0, 1.0], [0, -1.0]], np.float32)}
    out = dec.batch(raw)
    assert out["steering"].dtype == np.float64 and out["steering"].tolist() == [-1.0, 0.0, 1.0]
    assert out["throttle"].tolist() == pytest.approx([0.1, 0.6, -0.4])


def test_parity_decoded_errors_and_bin_flips() -> None:
    outputs = manifest().outputs
    want = {"angle_out": ONE_HOT[[0, 1, 2, 3]], "xy": np.zeros((4, 2), np.float32)}
    got = copy.deepcopy(want)
    got["angle_out"][2] = ONE_HOT[4] * 0.9  # frame 2: bin 2 -> bin 4 (decoded 0 -> 1)
    got["xy"][3, 1] = 0.25  # frame 3: throttle 0.1 -> 0.225
    r = compare(got, want, tolerance=2.0, outputs=outputs)
    assert r.decoded is not None
    assert r.decoded["steering"] == {"max_abs": pytest.approx(1.0), "bin_flip_rate": 0.25}
    assert r.decoded["throttle"] == {"max_abs": pytest.approx(0.125)}
    d = r.to_dict()
    assert d["decoded"] == r.decoded and d["samples"] == 4 and d["tolerance"] == 2.0
    assert d["max_abs"] == r.max_abs == pytest.approx(1.0) and set(r.per_output) == {"angle_out", "xy"} and d["per_output"] == r.per_output
    assert "decoded" not in compare(want, want, 1.0).to_dict()


def test_sequence_windows_oldest_first_clamped_at_the_start() -> None:
    frames = np.arange(5, dtype=np.float32).reshape(5, 1) * 10  # frame i holds 10 * i
    w = sequence_windows(frames, 3)
    assert w.shape == (5, 3, 1)
    assert w[:, :, 0].tolist() == [[0, 0, 0], [0, 0, 10], [0, 10, 20], [10, 20, 30], [20, 30, 40]]
    assert sequence_windows(frames, 1)[:, 0, 0].tolist() == [0, 10, 20, 30, 40]


def test_image_layouts() -> None:
    assert (image_layout("NTHWC"), image_layout("NTCHW"), image_layout("NHWC"), image_layout("NCHW")) == (
        "NHWC", "NCHW", "NHWC", "NCHW")


def test_output_spec_is_what_the_manifest_holds() -> None:
    o = manifest().outputs[1]
    assert isinstance(o, OutputSpec) and o.shape == (1, 2) and o.decode["index"] == 1


def test_a_passing_comparison_reports_no_swap() -> None:
    want = {"steering": np.array([[0.1], [0.2]]), "throttle": np.array([[0.1], [0.2]])}  # swap-symmetric
    r = compare(want, want, 1e-3)
    assert r.ok and r.swapped is None
