"""The shadow bundle opened the way the driving bundle is (runtime/bundle_steps.py's steps:
manifest, one camera, pilot, input providers, backend, warm-up), each refusal one line naming the
shadow and the fix, before the car may move."""

from __future__ import annotations

import logging
from typing import Any, cast

from runtime.backends import BackendUnavailable, open_backend
from runtime.bundle_steps import one_camera, warm_up
from runtime.config import RuntimeConfig
from runtime.imu import ImuError, ImuSource, open_imu
from runtime.inputs import InputContext, InputError, make_providers
from runtime.link.sent_commands import SentCommands
from runtime.manifest import BundleError, Manifest, load_manifest
from runtime.pilots import Pilot, PilotError, open_pilot
from runtime.preprocess import Preprocessor
from runtime.shadow.runner import ShadowRunner

log = logging.getLogger(__name__)


class SentView:
    """What the shadow's memory inputs may read of the sent commands: ``last``, and nothing that
    writes (the link stays out of the shadow's reach)."""

    __slots__ = ("_sent",)

    def __init__(self, sent: SentCommands) -> None:
        self._sent = sent

    @property
    def last(self) -> tuple[float, float]:
        """The (steering, throttle) the car is under now."""
        return self._sent.last


def open_shadow(cfg: RuntimeConfig, sent: SentCommands, imu: ImuSource | None) -> ShadowRunner | None:
    """The ``[shadow]`` bundle's runner (not started), or None without one. Its providers have their
    own preprocessing (from the frame image, never the capture thread's buffer), the configured
    behaviour and IMU (``imu``, the driving model's; or its own from ``[imu] uri`` when only the shadow
    has an imu input), and a read-only view of ``sent``. ``BundleError``/``InputError``/``ImuError``
    naming the fix."""

    sh = cfg.shadow
    if not sh.bundle:
        return None
    where = f"--shadow {sh.bundle}"
    try:
        manifest = load_manifest(sh.bundle)
        one_camera(manifest, sh.bundle)
        pilot = open_pilot("auto", manifest, cfg.lane, sh.bundle)
    except PilotError as e:
        raise BundleError(f"{where}: {e}; the shadow must be a bundle that could drive") from None
    except (BundleError, FileNotFoundError) as e:
        raise BundleError(f"{where}: {e}") from None
    own_imu = None
    if imu is None and cfg.imu.uri and any(i.role == "imu" for i in manifest.inputs):
        try:
            imu = own_imu = open_imu(cfg.imu.uri)  # the driving model has no imu input: none was opened
        except ImuError as e:
            raise ImuError(f"{where}: {e}") from None
    try:
        return _build(cfg, manifest, pilot, sent, imu, own_imu, where)
    except BaseException:
        if own_imu is not None:
            own_imu.stop()
        raise


def _build(cfg: RuntimeConfig, manifest: Manifest, pilot: Pilot, sent: SentCommands, imu: ImuSource | None,
           own_imu: ImuSource | None, where: str) -> ShadowRunner:

    sh = cfg.shadow
    ctx = InputContext(
        deadline_s=cfg.watchdog.deadline_ms / 1000.0, prepare=Preprocessor, behavior=cfg.model.behavior, imu=imu,
        commands=cast(SentCommands, SentView(sent)),  # MemoryProvider reads only .last
    )
    try:
        inputs = make_providers(manifest.inputs, ctx)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    options: dict[str, Any] = {"threads": sh.threads} if sh.threads else {}
    try:
        backend = open_backend(sh.bundle, sh.backend, sh.format or None, manifest, **options)
    except BundleError as e:  # a file that does not match its sha256, a missing build
        raise BundleError(f"{where}: {e}") from None
    except BackendUnavailable as e:
        raise BackendUnavailable(f"{where}: {e}") from None
    try:
        warm_up(backend, {p.name: p.out for p in inputs}, pilot, manifest)
    except Exception as e:
        backend.close()
        raise BundleError(f"{where}: the model does not run on its own inputs ({type(e).__name__}: {e}); "
                          "re-convert it or pass another bundle") from None
    return ShadowRunner(backend, manifest, pilot, inputs, sh, own_imu)


def shadow_line(stats: dict[str, Any]) -> str:
    """One log line of a run's shadow figures (see :meth:`ShadowRunner.stats`)."""
    d = stats["disagreement"]
    s, t = d["steering_abs_diff"], d["throttle_abs_diff"]

    def fig(x: dict[str, Any]) -> str:
        return f"p50 {x['p50']:.3f} p99 {x['p99']:.3f}" if x.get("count") else "n/a"

    rate = d["large_per_min"]
    return (f"shadow {stats['model']['name']} v{stats['model']['version']}: {d['pairs']} pairs "
            f"({stats['skipped']} frames skipped, {stats['errors']} errors); steering |diff| {fig(s)}; "
            f"throttle |diff| {fig(t)}; sign flips {d['sign_flips']}; large {d['large']} "
            f"({'n/a' if rate is None else f'{rate:.1f}'}/min) in {d['episodes']} episode(s)")
