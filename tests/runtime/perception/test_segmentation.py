"""The segmentation decoder: class maps in either layout, drivable classes, binary maps, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.manifest import BundleError
from runtime.perception import SegmentationDecoder, perception_decoder_for

CLASSES = ["background", "road", "line"]


def seg(shape: tuple[int, ...], **kw: object) -> SegmentationDecoder:
    d = {"kind": "segmentation", "classes": CLASSES, "drivable": ["road"], **kw}
    dec = perception_decoder_for("segmentation", d, shape, "out")
    assert isinstance(dec, SegmentationDecoder)
    return dec


def test_nchw_and_nhwc_maps_give_the_same_labels_and_mask() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((1, 3, 6, 8)).astype(np.float32)
    a = seg((1, 3, 6, 8))({"out": y})
    b = seg((1, 6, 8, 3), layout="NHWC")({"out": np.transpose(y, (0, 2, 3, 1))})
    want = np.argmax(y[0], axis=0)
    np.testing.assert_array_equal(a.labels, want)
    np.testing.assert_array_equal(b.labels, want)
    np.testing.assert_array_equal(a.drivable, want == 1)
    assert a.drivable_fraction == pytest.approx(float(np.mean(want == 1)))


def test_a_nan_pixel_is_never_drivable() -> None:
    y = np.zeros((1, 3, 2, 2), np.float32)
    y[0, 1] = 5.0  # road everywhere
    y[0, 2, 0, 0] = np.nan
    r = seg((1, 3, 2, 2))({"out": y})
    assert r.drivable.tolist() == [[False, True], [True, True]]


@pytest.mark.parametrize(("activation", "threshold"), [("logits", 0.0), ("sigmoid", 0.5)])
def test_a_one_channel_map_is_thresholded(activation: str, threshold: float) -> None:
    dec = perception_decoder_for("segmentation", {"kind": "segmentation", "classes": ["off", "road"],
                                                  "drivable": ["road"], "activation": activation}, (1, 1, 1, 3), "m")
    y = np.array([[[[threshold - 0.1, threshold + 0.1, threshold + 2]]]], np.float32)
    assert dec({"m": y}).drivable.tolist() == [[False, True, True]]
    assert dec.to_dict()["classes"] == ["off", "road"]


@pytest.mark.parametrize(
    ("shape", "decode", "message"),
    [
        ((1, 3), {}, "a segmentation map is \\(1, K, H, W\\) or \\(1, H, W, K\\)"),
        ((1, 4, 6, 8), {}, "the map has 4 class channels .* but classes is .*; pass --classes with 4 distinct names"),
        ((1, 3, 6, 8), {"drivable": ["grass"]}, "drivable \\['grass'\\] must name at least one of the classes"),
        ((1, 3, 6, 8), {"drivable": []}, "pass --drivable"),
        ((1, 3, 6, 8), {"layout": "CHW"}, "layout 'CHW' is not one of NCHW, NHWC"),
        ((1, 3, 6, 8), {"activation": "relu"}, "activation 'relu'"),
        ((1, 3, 6, 8), {"threshold": 1}, "decoder segmentation has no keys \\['threshold'\\]"),
    ],
)
def test_what_does_not_fit_is_refused_naming_the_fix(shape: tuple[int, ...], decode: dict[str, object],
                                                     message: str) -> None:
    with pytest.raises(BundleError, match=message):
        seg(shape, **decode)


def test_a_segmentation_kind_is_not_a_detection_decoder() -> None:
    with pytest.raises(BundleError, match="decoder segmentation decodes segmentation outputs, not detection"):
        perception_decoder_for("detection", {"kind": "segmentation"}, (1, 3, 4, 4), "out")
    with pytest.raises(BundleError, match="unknown decoder 'bins'; segmentation decoders are segmentation"):
        perception_decoder_for("segmentation", {"kind": "bins"}, (1, 3, 4, 4), "out")


def test_to_dict_round_trips() -> None:
    dec = seg((1, 3, 6, 8))
    again = perception_decoder_for("segmentation", dec.to_dict(), (1, 3, 6, 8), "out")
    assert again.to_dict() == dec.to_dict() == {"kind": "segmentation", "layout": "NCHW", "classes": CLASSES,
                                                "drivable": ["road"], "activation": "logits"}
