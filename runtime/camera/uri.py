"""Camera URIs, jetson-inference style: ``csi://0``, ``v4l2:///dev/video0``, ``file://x.mp4``, a folder.

Options go in the query string and unknown options are errors::

    csi://0?width=1280&height=720&fps=30&flip=0&out_width=320&out_height=240
    v4l2:///dev/video0?width=640&height=480&fps=30&fourcc=MJPG
    file://drive.mp4?loop=1&realtime=1&fps=20     (relative path; file:///abs/path.mp4 for absolute)
    file:///data/frames?realtime=0                (a directory of images, sorted by name)

A bare path is read as ``file://`` (or ``v4l2://`` when it starts with ``/dev/video``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from runtime.camera.base import CameraConfigError

KINDS = ("csi", "v4l2", "file")

# kind -> option -> type; values are checked here, so sources get typed values.
OPTIONS: dict[str, dict[str, type]] = {
    "csi": {"width": int, "height": int, "fps": int, "flip": int, "out_width": int, "out_height": int},
    "v4l2": {"width": int, "height": int, "fps": int, "fourcc": str},
    "file": {"loop": bool, "realtime": bool, "fps": float},
}

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class CameraURI:
    """A parsed camera URI: ``kind`` (csi, v4l2, file), ``target`` (sensor number, device path or
    file/folder path), typed ``options`` from the query string and the original ``uri``.
    """

    kind: str  # csi | v4l2 | file
    target: str  # sensor id, device path, or file/folder path
    options: dict[str, int | float | bool | str] = field(default_factory=dict)
    uri: str = ""

    def opt(self, name: str, default: int | float | bool | str) -> int | float | bool | str:
        """The option's value, or ``default`` when the URI does not set it."""
        return self.options.get(name, default)


def parse_camera_uri(uri: str) -> CameraURI:
    """Parse and validate a camera URI; :class:`CameraConfigError` names the problem and the fix."""
    text = uri.strip()
    if not text:
        raise CameraConfigError("camera URI is empty; use csi://0, v4l2:///dev/video0, file://video.mp4 or a folder")
    if "://" not in text:
        kind = "v4l2" if text.startswith("/dev/video") else "file"
        text = f"{kind}://{text}"
    parts = urlsplit(text)
    kind = parts.scheme.lower()
    if kind not in KINDS:
        raise CameraConfigError(
            f"camera URI {uri!r}: unknown scheme {parts.scheme!r}; use csi://N, v4l2:///dev/videoN, "
            "file://video.mp4 or file://folder"
        )
    target = unquote(parts.netloc + parts.path)
    if kind == "csi":
        if not target.isdigit():
            raise CameraConfigError(f"camera URI {uri!r}: csi:// needs a sensor number, e.g. csi://0")
    elif not target:
        raise CameraConfigError(f"camera URI {uri!r} names no device or file")
    if kind == "v4l2" and not target.startswith("/"):
        raise CameraConfigError(f"camera URI {uri!r}: use an absolute device path, e.g. v4l2:///dev/video0")
    if kind == "file":
        target = str(Path(target).expanduser())
    return CameraURI(kind, target, _parse_options(uri, kind, parts.query), uri)


def _parse_options(uri: str, kind: str, query: str) -> dict[str, int | float | bool | str]:
    allowed = OPTIONS[kind]
    out: dict[str, int | float | bool | str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise CameraConfigError(f"camera URI {uri!r}: malformed options {query!r}; write key=value&key=value") from None
    for key, raw in pairs:
        if key not in allowed:
            raise CameraConfigError(
                f"camera URI {uri!r}: unknown option {key!r} for {kind}://; allowed: {', '.join(sorted(allowed))}"
            )
        typ = allowed[key]
        try:
            if typ is bool:
                low = raw.lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError
                out[key] = low in _TRUE
            else:
                out[key] = typ(raw)
        except ValueError:
            raise CameraConfigError(f"camera URI {uri!r}: option {key}={raw!r} is not a valid {typ.__name__}") from None
        value = out[key]
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise CameraConfigError(f"camera URI {uri!r}: option {key}={raw} must not be negative")
    return out
