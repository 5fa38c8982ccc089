"""Shadow mode (``rc-runtime --shadow BUNDLE``, ``[shadow]``): a candidate bundle run on the frames
and inputs the driving model gets, with its own preprocessing and decoders, that never actuates. It
is how a candidate is judged on the car without driving it: A/B is by drive (or by car), never per
frame, because control is stateful.

- :mod:`runtime.shadow.config`: the ``[shadow]`` section;
- :mod:`runtime.shadow.load`: opening the bundle (the driving bundle's steps, reused);
- :mod:`runtime.shadow.runner`: the low-priority thread with its one-frame mailbox;
- :mod:`runtime.shadow.compare`: disagreement statistics over pairs on the same frame;
- :mod:`runtime.shadow.clips`: episodes of large disagreement (where to cut a clip).
"""

from __future__ import annotations

from runtime.shadow.compare import Disagreement
from runtime.shadow.config import ShadowConfig
from runtime.shadow.runner import ShadowRunner, lower_priority

__all__ = ["Disagreement", "ShadowConfig", "ShadowRunner", "lower_priority"]
