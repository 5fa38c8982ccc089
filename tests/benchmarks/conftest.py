"""Fixtures the benchmark tests share with the runtime tests: the demo bundle and a generated drive
video (defined once, in tests/runtime/conftest.py)."""

from tests.runtime.conftest import bundle, clip_frames, clip_video

__all__ = ["bundle", "clip_frames", "clip_video"]
