"""The ``[shadow]`` config section: a candidate bundle run beside the driving one, never actuating."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.backend_names import BACKEND_NAMES, canonical_backend


@dataclass
class ShadowConfig:
    """``rc-runtime --shadow BUNDLE`` / ``[shadow]``: judge a candidate on the frames the car drives.

    ``bundle``: the candidate ("" = no shadow); ``backend``, ``format`` as in ``[model]``; ``threads``:
    its intra-op threads (1: it must not take cores from the driving model); ``nice``: the shadow
    thread's Linux niceness (0-19; it only gets the time the driving loop leaves). Pairs whose
    steering (throttle) differs by at least ``large_steering`` (``large_throttle``) are large
    disagreements, kept as episodes (frame ids and source indexes); a sign flip is opposite signs
    with both values beyond ``sign_deadband``. Raises ``ValueError`` naming the key.
    """

    bundle: str = ""
    backend: str = "auto"
    format: str = ""
    threads: int = 1
    nice: int = 10
    large_steering: float = 0.3
    large_throttle: float = 0.3
    sign_deadband: float = 0.05

    def __post_init__(self) -> None:
        self.backend = canonical_backend(self.backend)
        if self.backend not in ("auto", *BACKEND_NAMES):
            raise ValueError(f"shadow.backend = {self.backend!r}; choose from auto, {', '.join(BACKEND_NAMES)}")
        if self.threads < 0:
            raise ValueError(f"shadow.threads = {self.threads} must be >= 0 (1 is the default)")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"shadow.nice = {self.nice} must be in [0, 19]")
        for name in ("large_steering", "large_throttle"):
            if not 0.0 < getattr(self, name) <= 2.0:
                raise ValueError(f"shadow.{name} = {getattr(self, name)} must be in (0, 2]")
        if not 0.0 <= self.sign_deadband < 1.0:
            raise ValueError(f"shadow.sign_deadband = {self.sign_deadband} must be in [0, 1)")
