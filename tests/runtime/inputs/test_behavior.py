"""Role behavior: the configured behaviour as a one-hot; an unknown name lists the model's labels."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.inputs import BehaviorProvider, InputContext, InputError
from tests.runtime.inputs.conftest import MakeFrame

LABELS = ["left", "right", "straight"]


def test_one_hot_of_the_chosen_label(make_frame: MakeFrame) -> None:
    p = BehaviorProvider("behavior_in", (1, 3), LABELS, "right")
    x = p.fill(make_frame(np.zeros((4, 4, 3), np.uint8)))
    assert x is not None and x.dtype == np.float32
    np.testing.assert_array_equal(x, [[0, 1, 0]])
    assert p.fill(make_frame(np.zeros((4, 4, 3), np.uint8))) is x  # fixed for the run
    assert p.recorded() == [0.0, 1.0, 0.0]


def test_an_unknown_name_lists_the_labels() -> None:
    with pytest.raises(InputError) as e:
        BehaviorProvider("behavior_in", (1, 3), LABELS, "lefft")
    msg = str(e.value)
    assert "'lefft'" in msg and "left, right, straight" in msg and "--behavior" in msg and "\n" not in msg


def test_none_chosen_is_an_error_naming_the_choices() -> None:
    class Spec:
        name, role, shape, layout, preprocess, length, order, labels = (
            "behavior_in", "behavior", (1, 3), "NC", None, None, None, LABELS)

    with pytest.raises(InputError, match=r"behavior input 'behavior_in'.*left, right, straight.*--behavior NAME"):
        BehaviorProvider.from_spec(Spec(), InputContext())
    assert BehaviorProvider.from_spec(Spec(), InputContext(behavior="straight")).out.tolist() == [[0, 0, 1]]


def test_labels_that_do_not_match_the_shape_are_refused() -> None:
    with pytest.raises(InputError, match="behavior_in"):
        BehaviorProvider("behavior_in", (1, 2), LABELS, "left")
