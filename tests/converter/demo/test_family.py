"""The donkeycar-kind family: donkeycar's names and shapes, its binning, inputs that carry real
information, and (slow) quick training + registration in which every kind learns the road."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converter.demo import family_data
from converter.demo.family import (
    GRAY_PREPROCESS,
    KINDS,
    THROTTLE_BIN_RANGE,
    edge_tags,
    linear_bin,
    linear_unbin,
    output_names,
    throttle_bin,
    throttle_unbin,
)
from converter.demo.family_data import drive_clip, memory_values, sequence_index
from tests.converter.demo.family_helpers import FAMILY_TIMEOUT_S, seeded_family

# donkeycar/parts/keras.py (autorope/donkeycar cde8bbe9): input names -> shape without batch, and
# output names -> shape without batch, per kind.
DONKEYCAR_IO = {
    "linear": ({"img_in": (120, 160, 3)}, {"n_outputs0": (1,), "n_outputs1": (1,)}),
    "categorical": ({"img_in": (120, 160, 3)}, {"angle_out": (15,), "throttle_out": (20,)}),
    "imu": ({"img_in": (120, 160, 3), "imu_in": (6,)}, {"out_0": (1,), "out_1": (1,)}),
    "memory": ({"img_in": (120, 160, 3), "mem_in": (6,)}, {"n_outputs0": (1,), "n_outputs1": (1,)}),
    "behavior": (
        {"img_in": (120, 160, 3), "xbehavior_in": (2,)},
        {"angle_out": (15,), "throttle_out": (20,)},
    ),
    "lstm": ({"img_in": (3, 120, 160, 3)}, {"model_outputs": (2,)}),
    "3dcnn": ({"img_in": (3, 120, 160, 3)}, {"outputs": (2,)}),
    "gray": ({"img_in": (120, 160, 1)}, {"n_outputs0": (1,), "n_outputs1": (1,)}),
    "dynamic": ({"img_in": (None, None, 3)}, {"n_outputs0": (1,), "n_outputs1": (1,)}),
}


@pytest.mark.parametrize("key", list(KINDS))
def test_each_kind_has_donkeycars_names_and_shapes(key: str) -> None:
    kind = KINDS[key]
    model = kind.build()
    inputs, outputs = DONKEYCAR_IO[key]
    assert {t.name: tuple(t.shape[1:]) for t in model.inputs} == inputs
    assert {n: tuple(t.shape[1:]) for n, t in zip(model.output_names, model.outputs, strict=True)} == outputs
    assert tuple(model.output_names) == output_names(kind)
    softmax = [
        layer.name
        for layer in model.layers
        if getattr(layer, "activation", None).__class__.__name__ == "function"
        and layer.activation.__name__ == "softmax"
    ]
    assert softmax == (["angle_out", "throttle_out"] if kind.outputs == "bins" else [])


def _dk_linear_bin(a: float, n: int = 15, offset: float = 1, r: float = 2.0) -> np.ndarray:
    """donkeycar.utils.linear_bin, verbatim apart from names."""
    a = a + offset
    b = round(a / (r / (n - offset)))
    arr = np.zeros(n)
    arr[int(min(max(b, 0), n - 1))] = 1
    return arr


def _dk_linear_unbin(arr: np.ndarray, n: int = 15, offset: float = -1, r: float = 2.0) -> float:
    return float(np.argmax(arr) * (r / (n + offset)) + offset)


def test_binning_is_donkeycars() -> None:
    values = np.linspace(-1.2, 1.2, 97)
    ours = linear_bin(values)
    for v, row in zip(values, ours, strict=True):
        np.testing.assert_array_equal(row, _dk_linear_bin(float(v)))
        assert linear_unbin(row[None])[0] == pytest.approx(_dk_linear_unbin(row))
    # angle: bin i means -1 + i * 2/14; the extremes decode to exactly -1 and 1
    assert linear_unbin(np.eye(15)).tolist() == pytest.approx(np.linspace(-1, 1, 15).tolist())
    thr = np.linspace(0.0, 0.9, 50)
    for v, row in zip(thr, throttle_bin(thr), strict=True):
        np.testing.assert_array_equal(row, _dk_linear_bin(float(v), n=20, offset=0.0, r=0.8))
        assert throttle_unbin(row[None])[0] == pytest.approx(_dk_linear_unbin(row, n=20, offset=0.0, r=0.8))
    # throttle bin i means i * 0.8 / 20: the range the manifest's bins decoder needs is [0, 0.76]
    lo, hi = THROTTLE_BIN_RANGE
    assert throttle_unbin(np.eye(20)).tolist() == pytest.approx(np.linspace(lo, hi, 20).tolist())
    assert (lo, hi) == pytest.approx((0.0, 0.76))


def test_sequence_index_is_oldest_first_and_clamped_at_each_clip_start() -> None:
    clip = np.array([0, 0, 0, 0, 1, 1])
    assert sequence_index(clip, 3).tolist() == [
        [0, 0, 0],
        [0, 0, 1],
        [0, 1, 2],
        [1, 2, 3],
        [4, 4, 4],
        [4, 4, 5],
    ]


def test_memory_holds_previous_commands_interleaved_and_zeros_before_the_start() -> None:
    clip = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], np.float32)
    t = s + 1
    m = memory_values(s, t, clip, 3)
    assert m.shape == (6, 6)
    np.testing.assert_allclose(m[3], [0.1, 1.1, 0.2, 1.2, 0.3, 1.3])  # oldest first, (s, t) pairs
    np.testing.assert_allclose(m[1], [0, 0, 0, 0, 0.1, 1.1])  # neutral before the clip started
    np.testing.assert_allclose(m[4], np.zeros(6))  # a new clip starts from neutral
    np.testing.assert_allclose(m[5], [0, 0, 0, 0, 0.5, 1.5])


def test_extra_inputs_carry_real_information() -> None:
    c = drive_clip(240, seed=3)
    assert c.imu.shape == (240, 6) and c.imu.dtype == np.float32
    # gyro z counter-clockwise positive: steering right (> 0) turns the car clockwise
    assert np.corrcoef(c.imu[:, 5], c.steering)[0, 1] < -0.5
    # lateral acceleration = v * yaw rate; gravity on z; physical magnitudes
    assert np.corrcoef(c.imu[:, 1], c.imu[:, 5])[0, 1] > 0.9
    assert np.all(np.abs(c.imu[:, 2] - family_data.GRAVITY) < 0.5)
    assert np.abs(c.imu[:, 5]).max() < 6.0 and np.abs(c.imu[:, 1]).max() < 20.0
    # the left lane's centre is left of the road's: following it means steering further left
    left, right = c.lane == 0, c.lane == 1
    assert left.any() and right.any()
    assert np.all(c.lane_steering[left] <= c.steering[left] + 1e-6)
    assert np.all(c.lane_steering[right] >= c.steering[right] - 1e-6)
    assert np.mean(np.abs(c.lane_steering - c.steering)) > 0.1


def test_imu_csv_has_the_runtime_header(tmp_path) -> None:
    c = drive_clip(5, seed=1)
    path = family_data.write_imu_csv(tmp_path / "imu.csv", c.imu)
    lines = path.read_text().splitlines()
    assert lines[0] == "t,ax,ay,az,gx,gy,gz" and len(lines) == 6
    assert float(lines[2].split(",")[0]) == pytest.approx(1 / 30, abs=1e-6)


def test_tags_give_preprocessing_and_only_what_the_names_do_not_say() -> None:
    for key, kind in KINDS.items():
        tags = edge_tags(kind)
        pre = json.loads(tags["edge.preprocess"])
        assert (pre == GRAY_PREPROCESS) == (key == "gray") and pre["width"] == 160 and pre["height"] == 120
        assert ("edge.inputs" in tags) == (key == "behavior")
    beh = json.loads(edge_tags(KINDS["behavior"])["edge.inputs"])
    assert beh == {"xbehavior_in": {"role": "behavior", "labels": ["Left_Lane", "Right_Lane"]}}
    for kind in KINDS.values():  # donkeycar's output names need no tag
        assert ("edge.outputs" in edge_tags(kind)) == (kind.logged_as == "keras-savedmodel")
    assert json.loads(edge_tags(KINDS["gray"])["edge.outputs"]) == {
        "output_0": "steering",
        "output_1": "throttle",
    }


# --- slow: train and register every kind, quick mode ------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(FAMILY_TIMEOUT_S)
def test_every_kind_is_registered_with_its_tags(tmp_path_factory: pytest.TempPathFactory) -> None:
    from mlflow import MlflowClient

    result = seeded_family(tmp_path_factory)
    assert result["seeded"] and not result["skipped"]
    uri = result["tracking_uri"]
    client = MlflowClient(uri, registry_uri=uri)
    for key, kind in KINDS.items():
        mv = client.get_model_version(kind.name, "1")
        assert mv.tags["demo.logged_as"] == kind.logged_as
        for tag, value in edge_tags(kind).items():
            assert mv.tags[tag] == value
        assert mv.run_id is not None
        run = client.get_run(mv.run_id)
        assert run.data.params["kind"] == key
        assert run.data.metrics["val_mae_steering"] == pytest.approx(
            result["kind_by_name"][key]["metrics"]["val_mae_steering"]
        )
    styles = {k.logged_as for k in KINDS.values()}
    assert styles == {"artifact-h5", "keras-savedmodel", "tensorflow-keras"}


@pytest.mark.slow
@pytest.mark.timeout(FAMILY_TIMEOUT_S)
@pytest.mark.parametrize("key", list(KINDS))
def test_each_kind_learns_the_road(tmp_path_factory: pytest.TempPathFactory, key: str) -> None:
    m = seeded_family(tmp_path_factory)["kind_by_name"][key]["metrics"]
    # held-out drive clips (other roads, other looks): well below predicting the training mean
    assert m["baseline_mae_steering"] > 0.15, m
    assert m["mae_ratio_steering"] < 0.8, m
    if KINDS[key].extra is not None:
        # the second input matters: taken from other frames (behaviour: the other lane), worse
        assert m["shuffled_mae_steering"] > 1.05 * m["val_mae_steering"], m


@pytest.mark.slow
@pytest.mark.timeout(FAMILY_TIMEOUT_S)
def test_a_second_call_keeps_what_is_registered(tmp_path_factory: pytest.TempPathFactory) -> None:
    from converter.demo.family_seed import seed_family

    first = seeded_family(tmp_path_factory)
    again = seed_family(first["tracking_uri"], first["artifact_root"], ["linear", "gray"], quick=True)
    assert not again["seeded"] and sorted(again["skipped"]) == ["dk_gray", "dk_linear"]


def test_unknown_kind_is_a_one_line_error(tmp_path) -> None:
    from converter.demo.seed import main

    assert (
        main(
            [
                "--family",
                "--kinds",
                "linear,resnet",
                "--tracking-uri",
                f"sqlite:///{tmp_path}/m.db",
                "--artifact-root",
                str(tmp_path / "a"),
            ]
        )
        == 2
    )
    with pytest.raises(SystemExit) as e:
        main(["--kinds", "linear"])
    assert e.value.code == 2
