"""The runtime's assembly: camera, backend, inputs, policy, link, watchdog and recorder built from a
:class:`~runtime.config.RuntimeConfig`, run as one :class:`~runtime.loop.DriveLoop`, and torn down
with the car in neutral. ``rc-runtime`` (runtime/cli.py) calls :func:`run`; tests and benchmarks
call it with parts of their own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends import BackendUnavailable, open_backend
from runtime.backends.base import Backend
from runtime.bundle_steps import WARMUP_RUNS, one_camera, warm_up
from runtime.camera import Camera, CameraError, open_camera
from runtime.config import ConfigError, RuntimeConfig
from runtime.events import Events
from runtime.guard_check import require_hard_deadline
from runtime.imu import ImuError, ImuSource, open_imu
from runtime.inputs import InputContext, InputError, make_providers
from runtime.link import DriveLink, LinkError, open_link
from runtime.link.report import link_report
from runtime.link.sent_commands import SentCommands
from runtime.loop import DriveLoop
from runtime.manifest import BundleError, Manifest, load_manifest
from runtime.manifest.signature import check_bundle_trust
from runtime.metrics.collector import Sources
from runtime.metrics.server import MetricsServer
from runtime.notify import notify, watchdog_interval_s
from runtime.odometry import OdometryError, SpeedSource, open_model_wheel_speed
from runtime.pilots import open_pilot
from runtime.policy import Policy
from runtime.preprocess import Preprocessor, image_layout
from runtime.recording import Recorder, RecordingError
from runtime.resources import peak_rss_mb
from runtime.safety import SafetyLayer
from runtime.shadow import ShadowRunner
from runtime.shadow.load import open_shadow, shadow_line
from runtime.state_file import StateFile, default_state_path
from runtime.stats import LoopStats
from runtime.telemetry import Telemetry
from runtime.watchdog import Watchdog

log = logging.getLogger("runtime")

# Errors that mean "bad input": one line, exit status 2.
INPUT_ERRORS: tuple[type[Exception], ...] = (
    ConfigError, BundleError, CameraError, BackendUnavailable, LinkError, RecordingError, InputError, ImuError,
    OdometryError, FileNotFoundError, PermissionError,
)


def load_notify() -> Callable[[str], Any] | None:
    """systemd's notify, when running under systemd (``$NOTIFY_SOCKET`` set)."""
    return notify if os.environ.get("NOTIFY_SOCKET") else None


def open_drive_link(uri: str) -> DriveLink:
    """The link named by ``uri`` (``serial:///dev/ttyACM0?baud=115200``, ``null://``), opened. A device
    that is missing yet is waited for by the link; a URI that can never work raises ``LinkError``."""
    link = open_link(uri)
    link.open()
    return link


def model_info(manifest: Manifest, backend: Backend) -> dict[str, Any]:
    """The stats' ``model`` entry: the registered model, the backend, and the build that runs (sha256)."""
    return {
        "name": manifest.model.name,
        "version": manifest.model.version,
        "run_id": manifest.model.run_id,
        "source_uri": manifest.model.source_uri,
        "backend": backend.describe(),
        "build": {"format": backend.build.format, "precision": backend.build.precision,
                  "file": backend.build.file, "sha256": backend.build.sha256},
    }


def run(
    cfg: RuntimeConfig,
    stop: threading.Event | None = None,
    *,
    backend: Backend | None = None,
    link: DriveLink | None = None,
    camera: Camera | None = None,
    safety_backend: Backend | None = None,
    telemetry: Telemetry | None = None,
) -> dict[str, Any]:
    """Assemble and run the runtime; return the stats summary. Parts may be passed in (tests,
    benchmarks; ``safety_backend`` for the ``[safety]`` bundle's detector; ``telemetry`` to read every
    frame's report); the car is left in neutral however this returns or raises."""
    stop = stop or threading.Event()
    events = Events()
    if not cfg.model.bundle:
        raise ConfigError("no bundle given: pass --bundle DIR or set [model] bundle in the config")
    link = link if link is not None else open_drive_link(cfg.link.uri)
    sent = SentCommands(link)  # memory inputs are fed from what really went out
    notify_fn = load_notify()
    wd = Watchdog(
        sent, events, deadline_s=cfg.watchdog.deadline_ms / 1000.0, rate_hz=cfg.watchdog.rate_hz,
        neutral_repeat_s=cfg.watchdog.neutral_repeat_ms / 1000.0, notify=notify_fn,
        notify_s=watchdog_interval_s(), halt=stop,
    ).start()  # neutral from here on, until the first valid inference
    recorder: Recorder | None = None
    imu: ImuSource | None = None
    sources: dict[str, SpeedSource] = {}  # role -> sensor source (wheel_speed)
    own_backend, own_safety_backend = backend is None, safety_backend is None
    safety: SafetyLayer | None = None
    shadow: ShadowRunner | None = None
    metrics: MetricsServer | None = None
    state: StateFile | None = None
    summary: dict[str, Any] = {}
    try:
        require_hard_deadline(link, cfg.guard.allow_soft_deadline, notify_fn)  # before anything arms
        check_bundle_trust(cfg.model.bundle, cfg.bundle.trust, log)  # before any load; the car stays in neutral
        if cfg.safety.bundle:
            check_bundle_trust(cfg.safety.bundle, cfg.bundle.trust, log)
        if cfg.shadow.bundle:
            check_bundle_trust(cfg.shadow.bundle, cfg.bundle.trust, log)
        manifest = load_manifest(cfg.model.bundle)
        one_camera(manifest, cfg.model.bundle)
        pilot = open_pilot(cfg.model.pilot, manifest, cfg.lane, cfg.model.bundle)
        safety_manifest = open_safety_manifest(cfg)
        imu = open_model_imu(cfg, manifest)
        speed = open_model_wheel_speed(cfg.wheel_speed.uri, (i.role for i in manifest.inputs))
        sources = {"wheel_speed": speed} if speed is not None else {}
        camera_layout = image_layout(manifest.camera_input.layout)
        ctx = InputContext(
            deadline_s=cfg.watchdog.deadline_ms / 1000.0, prepare=Preprocessor,
            camera_spec=manifest.preprocess, camera_layout=camera_layout, behavior=cfg.model.behavior,
            imu=imu, commands=sent, sources=dict(sources),
        )
        inputs = make_providers(manifest.inputs, ctx)  # before the backend: a typo fails fast
        if backend is None:
            options = {"threads": cfg.model.threads} if cfg.model.threads else {}
            backend = open_backend(cfg.model.bundle, cfg.model.backend, cfg.model.format or None, manifest, **options)
        policy = Policy(cfg.policy, max_gap_s=cfg.watchdog.deadline_ms / 1000.0, throttle_given=pilot.gives_throttle)
        warm_up(backend, {p.name: p.out for p in inputs}, pilot, manifest)
        info = model_info(manifest, backend)
        log.info("model %s v%s on %s (%s), pilot %s; inputs: %s", info["name"], info["version"], backend.name,
                 backend.build.format, pilot.describe(), ", ".join(f"{p.name} ({p.role})" for p in inputs))
        shadow = open_shadow(cfg, sent, imu)  # before the car may move: a bad shadow is exit 2, never armed
        if safety_manifest is not None:
            if safety_backend is None:
                options = {"threads": cfg.safety.threads} if cfg.safety.threads else {}
                safety_backend = open_backend(cfg.safety.bundle, cfg.safety.backend, cfg.safety.format or None,
                                              safety_manifest, **options)
            safety = SafetyLayer(safety_backend, safety_manifest, cfg.safety, wd, events,
                                 cfg.watchdog.deadline_ms / 1000.0)
            for _ in range(WARMUP_RUNS):
                safety_backend.infer({safety_manifest.camera_input.name: np.zeros(safety_manifest.camera_input.shape, np.float32)})
            safety.start()
            log.info("safety layer: %s v%s on %s (%s), stops for %s", safety_manifest.model.name,
                     safety_manifest.model.version, safety_backend.name, safety_backend.build.format,
                     ", ".join(sorted(safety.rule.classes)))
        if camera is None:
            spec = manifest.preprocess
            camera = open_camera(cfg.camera.uri, events, cfg.camera.reconnect_interval_s,
                                 prepare=lambda: Preprocessor(spec, camera_layout))
        else:
            camera.events = events
            camera.start()  # no-op if the caller started it
        if cfg.record.dir:
            recorder = Recorder(cfg.record.dir, {
                "model": info, "preprocess": manifest.preprocess.to_dict(),
                "input": {"name": manifest.camera_input.name, "shape": list(manifest.camera_input.shape)},
                "inputs": [i.to_dict() for i in manifest.inputs],
                "behavior": cfg.model.behavior or None, "imu": cfg.imu.uri or None,
                "outputs": [{"name": o.name, "meaning": o.meaning} for o in manifest.outputs],
                "bundle": str(Path(cfg.model.bundle).resolve()), "camera": cfg.camera.uri,
                "policy": cfg.to_dict()["policy"], "deadline_ms": cfg.watchdog.deadline_ms,
                "pilot": pilot.kind, "lane": cfg.to_dict()["lane"] if pilot.kind == "lane_follow" else None,
                "safety": safety_header(cfg, safety_manifest),
            }, events, cfg.record.every, cfg.record.jpeg_quality, overlay=cfg.record.overlay,
                overlay_every=cfg.record.overlay_every)
        stats = LoopStats()
        telemetry = telemetry if telemetry is not None else Telemetry()
        if shadow is not None:
            telemetry.subscribe(shadow.on_frame)
            shadow.start()
            log.info("shadow: %s v%s on %s (%s), never drives", shadow.manifest.model.name,
                     shadow.manifest.model.version, shadow.backend.name, shadow.backend.build.format)
        loop = DriveLoop(camera, backend, inputs, policy, wd, events, stats, recorder, notify_fn,
                         max_frames=cfg.run.max_frames or None, duration_s=cfg.run.duration_s or None,
                         pilot=pilot, safety=safety, telemetry=telemetry)
        if cfg.metrics.listen:  # before the loop: a port in use is exit 2 with the car never armed
            metrics = MetricsServer(cfg.metrics.listen, Sources(stats, telemetry, camera, events, info, shadow)).start()
        state = open_state_file(cfg, info, events, stats)
        if state is not None:
            telemetry.subscribe(state.on_frame)
        try:
            reason = loop.run(stop)
        finally:
            camera.stop()
        summary = stats.summary({
            "end_reason": reason, "camera": camera.stats(), "model": info,
        })
        if imu is not None:
            summary["imu"] = imu.stats()
        summary.update({role: source.stats() for role, source in sources.items()})
        summary["pilot"] = pilot.kind
    finally:
        if metrics is not None:
            metrics.stop()
        if state is not None:
            state.stop()  # parked, not armed: the update agent may swap now
        if safety is not None:
            safety.stop()
            summary["safety"] = safety.stats()
        if shadow is not None:
            shadow.stop()
            summary["shadow"] = shadow.stats()
            log.info("%s", shadow_line(summary["shadow"]))
            shadow.backend.close()
        if notify_fn is not None:
            notify_fn("STOPPING=1")
        link_state = link_report(link)  # before close() releases the port
        wd.stop()  # final neutral
        try:
            link.close()  # sends neutral + disarm
        except Exception as e:  # the neutral above already went out; report and go on
            log.warning("closing the link failed: %s", e)
        if imu is not None:
            imu.stop()
        for source in sources.values():
            source.stop()
        if own_backend and backend is not None:
            backend.close()
        if own_safety_backend and safety_backend is not None:
            safety_backend.close()
        summary["watchdog"] = wd.stats()
        summary["link"] = {**_link_stats(link), **link_state}
        summary["process"] = {"peak_rss_mb": peak_rss_mb()[0], "pid": os.getpid()}
        summary["events"] = events.summary()
        if recorder is not None:
            recorder.close(summary)
            summary["recording"] = recorder.stats()
    return summary


def open_state_file(cfg: RuntimeConfig, info: dict[str, Any], events: Events, stats: LoopStats) -> StateFile | None:
    """The state file rc-update reads (``[state] file``), started; None when off or no default place."""
    if cfg.state.file == "off":
        return None
    path = Path(cfg.state.file) if cfg.state.file else default_state_path()
    if path is None:
        return None
    try:
        return StateFile(path, bundle=cfg.model.bundle or "", model_version=info.get("version"), events=events,
                         stats=stats, parked_after_s=cfg.state.parked_after_s).start()
    except OSError as e:  # before the loop: the car was never armed
        raise ConfigError(f"[state] file {path}: cannot write it ({e.strerror}); pass --state-file PATH or off") from None


def open_safety_manifest(cfg: RuntimeConfig) -> Manifest | None:
    """The ``[safety]`` bundle's manifest, checked to be a one-camera detection model, or None without
    one. ``BundleError`` naming the fix otherwise (a pilot bundle given as ``--safety``, say)."""
    if not cfg.safety.bundle:
        return None
    m = load_manifest(cfg.safety.bundle)
    if m.task != "detection":
        raise BundleError(f"--safety {cfg.safety.bundle} is a {m.task} model; the safety layer needs a detection "
                          "bundle (an output with meaning detection); pass the pilot as --bundle")
    one_camera(m, cfg.safety.bundle)
    return m


def safety_header(cfg: RuntimeConfig, manifest: Manifest | None) -> dict[str, Any] | None:
    """The recording header's ``safety`` entry: the detector and the rule, or None without one."""
    if manifest is None:
        return None
    return {**cfg.to_dict()["safety"], "model": {"name": manifest.model.name, "version": manifest.model.version},
            "preprocess": manifest.preprocess.to_dict()}


def open_model_imu(cfg: RuntimeConfig, manifest: Manifest) -> ImuSource | None:
    """The started IMU source when the model has an imu input and one is configured (a model
    with an imu input and none configured fails in its provider, naming the flag)."""
    roles = {i.role for i in manifest.inputs}
    if cfg.model.behavior and "behavior" not in roles:
        log.warning("the model has no behavior input; ignoring behavior %r", cfg.model.behavior)
    if "imu" not in roles:
        if cfg.imu.uri:
            log.warning("the model has no imu input; ignoring the IMU source %s", cfg.imu.uri)
        return None
    return open_imu(cfg.imu.uri) if cfg.imu.uri else None


def _link_stats(link: DriveLink) -> dict[str, Any]:
    stats = getattr(link, "stats", None)
    as_dict = getattr(stats, "as_dict", None)
    return as_dict() if callable(as_dict) else {}
