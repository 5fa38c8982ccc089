"""Perception outputs: the flags' grammar, what the seed team's runs say (task_type), what shapes say
alone, and the refusals that name the kind and the flags (issue 19 items 1, 2, 4)."""

from __future__ import annotations

import json

import pytest

from converter.class_names import PerceptionContext
from converter.errors import ConverterError
from converter.model_outputs import Want, parse_outputs, resolve_outputs
from runtime.manifest import OutputSpec

SEG = {"out": (1, 2, 240, 320), "aux": (1, 2, 240, 320)}  # torchvision LRASPP/DeepLabV3 with aux
DET = {"boxes": (1, 100, 4), "scores": (1, 100), "labels": (1, 100)}  # the converter's fixed-size wrapper
YOLO = {"output0": (1, 84, 8400)}  # Ultralytics YOLOv8 COCO
COCO = tuple(f"c{i}" for i in range(80))


def _specs(shapes: dict, ctx: PerceptionContext, flag: str = "", tags: dict | None = None) -> dict[str, OutputSpec]:
    return {s.name: s for s in resolve_outputs(shapes, tags or {}, parse_outputs(flag), context=ctx)}


def test_flag_grammar_per_kind() -> None:
    got = parse_outputs("out=segmentation:layout=nhwc:activation=softmax,b=detection:boxes:scores=s:labels=l:"
                        "box_format=cxcywh:normalized:nms=runtime,h=detection:yolo:layout=NC:objectness,d=detection")
    assert got == [
        Want("out", "segmentation", {"kind": "segmentation", "layout": "NHWC", "activation": "softmax"}),
        Want("b", "detection", {"kind": "boxes", "scores": "s", "labels": "l", "box_format": "cxcywh",
                                "normalized": True, "nms": "runtime"}),
        Want("h", "detection", {"kind": "yolo", "layout": "NC", "objectness": True}),
        Want("d", "detection", None),  # boxes or yolo: told by the shape
    ]
    assert parse_outputs("m=segmentation:classes=bg|road:drivable=road")[0].decode == {
        "kind": "segmentation", "classes": ["bg", "road"], "drivable": ["road"]}


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("out=segmentation:lay=NCHW", r"cannot read 'lay=NCHW' in decoder segmentation; it takes segmentation\[:layout="),
        ("b=detection:scores=s", r"say the kind: detection:boxes\[:scores=...\].* or detection:yolo"),
        ("b=detection:boxes:normalized=maybe", r"normalized='maybe' is not a bool"),
        ("b=segmentation:boxes", r"decoder boxes decodes detection outputs, not segmentation"),
        ("b=steering:softmax", r"unknown decoder 'softmax'; decoders are scalar\[:GAIN\[:BIAS\]\], bins:LO:HI"),
        ("b=steer", r"meaning 'steer' is not one of steering, throttle, other, segmentation, detection"),
    ],
)
def test_malformed_flags_name_the_grammar(flag: str, message: str) -> None:
    with pytest.raises(ConverterError, match=message) as e:
        parse_outputs(flag)
    assert "\n" not in str(e.value)


def test_seed_segmentation_run_needs_no_output_flag() -> None:
    ctx = PerceptionContext(classes=("background", "road"), task="segmentation")
    got = _specs(SEG, ctx)
    assert got["out"].meaning == "segmentation" and got["aux"].meaning == "other"
    assert got["out"].decode == {"kind": "segmentation", "layout": "NCHW", "classes": ["background", "road"],
                                 "drivable": ["road"], "activation": "logits"}
    # Keras-style NHWC map, softmax activation known from the layer
    keras = _specs({"mask": (1, 120, 160, 3)}, PerceptionContext(classes=("sky", "grass", "road"), task="segmentation",
                                                                  activations={"mask": "softmax"}))
    assert keras["mask"].decode["layout"] == "NHWC" and keras["mask"].decode["activation"] == "softmax"
    # a one-channel map is two classes (negative, positive)
    binary = _specs({"out": (1, 1, 60, 80)}, PerceptionContext(classes=("other", "drivable"), task="segmentation"))
    assert binary["out"].decode["drivable"] == ["drivable"]


def test_seed_detection_run_boxes_and_yolo_heads() -> None:
    ctx = PerceptionContext(classes=("background", "cone"), task="detection", input_size=(320, 240),
                            score_threshold=0.6)
    got = _specs(DET, ctx)
    assert got["boxes"].meaning == "detection" and got["scores"].meaning == got["labels"].meaning == "other"
    assert got["boxes"].decode == {"kind": "boxes", "scores": "scores", "labels": "labels", "box_format": "xyxy",
                                   "normalized": False, "classes": ["background", "cone"], "score_threshold": 0.6,
                                   "iou_threshold": 0.45, "input_size": [320, 240], "nms": "graph"}
    yolo = _specs(YOLO, PerceptionContext(classes=COCO, task="detection", input_size=(640, 640)))["output0"]
    assert (yolo.decode["kind"], yolo.decode["layout"], yolo.decode["objectness"]) == ("yolo", "CN", False)
    v5 = _specs({"out": (1, 25200, 7)}, PerceptionContext(classes=("a", "b"), task="detection", input_size=(640, 640)))
    assert (v5["out"].decode["layout"], v5["out"].decode["objectness"]) == ("NC", True)  # YOLOv5: + objectness


def test_without_a_task_only_unambiguous_shapes_are_recognised() -> None:
    assert _specs(DET, PerceptionContext(classes=("bg", "cone"), input_size=(320, 240)))["boxes"].meaning == "detection"
    assert _specs(YOLO, PerceptionContext(classes=COCO, input_size=(640, 640)))["output0"].meaning == "detection"
    only_map = {"out": (1, 2, 240, 320)}
    assert _specs(only_map, PerceptionContext(classes=("bg", "road")))["out"].meaning == "segmentation"
    # no class names, or names that do not fit the map: refused, naming the kind and the flags
    for ctx in (PerceptionContext(), PerceptionContext(classes=("a", "b", "c"))):
        with pytest.raises(ConverterError, match=r"output 'out' \[1, 2, 240, 320\] is not a steering or throttle value: "
                                                 r"it looks like a segmentation map .*--outputs out=segmentation with "
                                                 r"--classes and --drivable"):
            _specs(only_map, ctx)
    # a map beside a steering output is not taken for the model's segmentation without a task
    with pytest.raises(ConverterError, match="looks like a segmentation map"):
        _specs({"steering": (1, 1), "features": (1, 2, 24, 32)}, PerceptionContext(classes=("bg", "road")))


@pytest.mark.parametrize(
    ("shapes", "ctx", "message"),
    [
        (SEG, PerceptionContext(task="segmentation"),
         r"output 'out' is a segmentation map of 2 classes \(NCHW, shape \[1, 2, 240, 320\]\): pass --classes with its 2"),
        ({"out": (1, 3, 24, 32)}, PerceptionContext(task="segmentation", classes=("road", "lane", "sky")),
         r"which classes may the car drive on\? 2 classes are named like a road \(road, lane\).*pass --drivable"),
        ({"out": (1, 3, 24, 32)}, PerceptionContext(task="segmentation", classes=("bg", "lane_line", "sky")),
         r"no class is named like a road among bg, lane_line, sky; pass --drivable"),
        ({"out": (1, 2, 24, 2)}, PerceptionContext(task="segmentation", classes=("bg", "road")),
         r"which axis holds the classes\? pass --outputs out=segmentation:layout=NCHW"),
        ({"steering": (1, 1)}, PerceptionContext(task="segmentation"),
         r"the run says task_type=segmentation, but no output is one class-score map .*--outputs NAME=segmentation"),
        ({"out": (1, 3, 24, 32)}, PerceptionContext(task="detection"),
         r"the run says task_type=detection, but the outputs are neither boxes .*NAME=detection:boxes:scores=S"),
        (DET, PerceptionContext(task="detection", input_size=(320, 240)),
         r"output 'boxes' is a detector's boxes .*0 the background: list it\): pass --classes"),
        (YOLO, PerceptionContext(task="detection", input_size=(640, 640)),
         r"YOLO head of 84 values per candidate .*pass --classes with its 80 class names"),
        (YOLO, PerceptionContext(task="detection", classes=("a", "b"), input_size=(640, 640)),
         r"output 'output0': the head has 84 values per candidate .*classes is \['a', 'b'\]; pass --classes with 80 names"),
        (DET, PerceptionContext(task="detection", classes=("bg", "cone")),
         r"output 'boxes': its boxes are in input pixels, but the model's image size is unknown"),
    ],
)
def test_what_only_the_user_can_say_is_refused_naming_the_flag(shapes: dict, ctx: PerceptionContext,
                                                                message: str) -> None:
    with pytest.raises(ConverterError, match=message) as e:
        _specs(shapes, ctx)
    assert "\n" not in str(e.value)


def test_flags_come_first_and_the_run_fills_in_the_rest() -> None:
    ctx = PerceptionContext(classes=("bg", "road"), task="segmentation")
    with pytest.raises(ConverterError, match=r"^output 'out' has shape \[1, 2, 240, 320\]: decoder component reads a "
                                             "vector"):
        _specs(SEG, ctx, "out=steering:component:0")  # the flag's own refusal, not the task's
    assert _specs(SEG, ctx, "out=segmentation:drivable=bg")["aux"].meaning == "other"
    assert _specs(SEG, ctx, "aux=other")["out"].meaning == "segmentation"


def test_flags_and_tags_say_what_the_shapes_cannot() -> None:
    ctx = PerceptionContext(classes=("bg", "road"))
    got = _specs({"m": (1, 2, 24, 2)}, ctx, "m=segmentation:layout=NHWC:drivable=bg")
    assert got["m"].decode["layout"] == "NHWC" and got["m"].decode["drivable"] == ["bg"]
    tag = {"edge.outputs": json.dumps({"b": {"meaning": "detection", "decode": {"kind": "boxes", "scores": "s",
                                                                               "normalized": True}}})}
    tagged = _specs({"b": (1, 10, 4), "s": (1, 10)}, PerceptionContext(classes=("cone",)), tags=tag)
    assert tagged["b"].decode["input_size"] is None and tagged["s"].meaning == "other"
    explicit = _specs({"head": (1, 8400, 6)}, PerceptionContext(classes=("a", "b"), input_size=(640, 480)),
                      "head=detection")  # kind from the shape
    assert explicit["head"].decode["kind"] == "yolo" and explicit["head"].decode["input_size"] == [640, 480]


@pytest.mark.parametrize(
    ("shapes", "flag", "looks"),
    [
        ({"out": (1, 2, 240, 320)}, "", "a segmentation map"),
        ({"out": (1, 2, 240, 320)}, "out=steering", "a segmentation map"),
        ({"out": (1, 2, 240, 320)}, "out=steering:component:0", "a segmentation map"),  # issue 19's pixel-0 car
        ({"output0": (1, 84, 8400), "steering": (1, 1)}, "", "a detection head"),
        ({"output0": (1, 84, 8400)}, "output0=throttle:bins:0:1", "a detection head"),
        ({"logits": (1, 1000)}, "", "class scores"),
        ({"logits": (1, 1000)}, "logits=steering", "class scores"),
        ({"logits": (1, 1000)}, "logits=steering:component:3", "class scores"),
        ({"steering": (1, 1000)}, "", "class scores"),
    ],
)
def test_no_steering_decoder_is_suggested_for_a_map_a_head_or_class_scores(shapes: dict, flag: str,
                                                                             looks: str) -> None:
    with pytest.raises(ConverterError, match=f"looks like {looks}") as e:
        _specs(shapes, PerceptionContext(), flag)
    text = str(e.value)
    assert "\n" not in text
    assert "=steering:component" not in text and "=steering[:DECODER]" not in text
    assert "=steering:bins" not in text


def test_class_scores_drive_only_as_bins_on_purpose() -> None:
    with pytest.raises(ConverterError, match=r"cannot tell what output 'logits' \(shape \[1, 10\]\)"):
        _specs({"logits": (1, 10)}, PerceptionContext())  # a 10-class classifier is not guessed into steering
    got = _specs({"logits": (1, 10)}, PerceptionContext(), "logits=steering:bins:-1:1")
    assert got["logits"].decode["kind"] == "bins" and got["logits"].decode["bins"] == 10


def test_a_perception_model_needs_no_steering_but_some_meaning() -> None:
    assert _specs(SEG, PerceptionContext(classes=("bg", "road"), task="segmentation"))["out"].is_command is False
    with pytest.raises(ConverterError, match=r"no output means steering, segmentation or detection \(outputs: a \[1, 1\], "
                                             r"m \[1, 2, 24, 32\]\); pass --outputs a=steering \(or throttle, other\); "
                                             r"or m looks like a segmentation map"):
        _specs({"a": (1, 1), "m": (1, 2, 24, 32)}, PerceptionContext(), "a=throttle,m=other")
