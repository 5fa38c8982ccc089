"""What a model output of a given shape looks like, for messages that name the fix.

A map or a detection head is never read as a steering value; when a converter or a decoder refuses
one, it names the kind the output looks like and the decoder to pass instead.
"""

from __future__ import annotations

# Steering/throttle decoders read vectors of at most this many values (JetRacer's (x, y), an LSTM
# pilot's (angle, throttle), donkeycar's 15 or 20 bins); more is a classifier, a map or a head.
MAX_VECTOR_VALUES = 32


def looks_like(shape: tuple[int, ...]) -> str:
    """A short description of what an output of ``shape`` (batch first) probably is, with the decoder
    that fits it: a segmentation map, a detection head, boxes, class scores or a vector."""
    dims = [abs(int(d)) for d in shape[1:]]
    if len(dims) == 3:
        k = min(dims[0], dims[2])
        return (f"a segmentation map ({k} classes per pixel?): pass --outputs NAME=segmentation "
                "with --classes and --drivable")
    if len(dims) == 2:
        small, large = min(dims), max(dims)
        if small == 4:
            return "detection boxes: pass --outputs NAME=detection:boxes with the scores output"
        if small > 4 and large >= 64:
            return (f"a detection head ({small} values per candidate: 4 box coordinates + {small - 4} class "
                    "scores?): pass --outputs NAME=detection:yolo with --classes")
        return "a map or a sequence, not a command vector"
    if len(dims) == 1 and dims[0] > MAX_VECTOR_VALUES:
        # bins and component read at most MAX_VECTOR_VALUES values: suggesting bins here would send
        # the user to another refusal.
        return (f"class scores or features ({dims[0]} values), which no steering decoder reads (at most "
                f"{MAX_VECTOR_VALUES} values): a classifier cannot steer this car; carry it as NAME=other "
                "beside a steering output")
    return "a vector"
