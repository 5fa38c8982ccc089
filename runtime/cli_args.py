"""``rc-runtime``'s command line: the flags, and the :class:`~runtime.config.RuntimeConfig` they
make together with the TOML file (flags override the file; ``None`` means "not given")."""

from __future__ import annotations

import argparse

from runtime.backend_names import DEPRECATED_BACKEND_NAMES
from runtime.config import BACKEND_CHOICES, PILOT_CHOICES, RuntimeConfig, load_config


def build_parser() -> argparse.ArgumentParser:
    """``rc-runtime``'s flags; each overrides the TOML config's key of the same meaning."""
    p = argparse.ArgumentParser(prog="rc-runtime", description="Drive the RC car from camera frames through a model.")
    a = p.add_argument
    a("--check", action="store_true", help="check config, bundle (sha256), model, camera and port, then exit "
      "(0 ready, 2 with one line per problem); never opens the link nor arms the car")
    a("--config", help="TOML config (see runtime/runtime.example.toml); flags below override it")
    a("--bundle", help="bundle directory made by convert-model")
    a("--trust", action="append", metavar="PUB.pem", help="refuse a bundle not signed by this ed25519 public key "
      "(repeatable; replaces [bundle] trust); without it unsigned bundles run, logged as not verified")
    a("--backend", choices=BACKEND_CHOICES + tuple(DEPRECATED_BACKEND_NAMES), metavar="{" + ",".join(BACKEND_CHOICES) + "}",
      help="inference backend (default auto; tflite, the old name of litert, still works)")
    a("--format", help="build to run, e.g. onnx, tflite-fp16, trt-fp16 (default: the backend's usual one)")
    a("--threads", type=int, help="CPU threads for ONNX Runtime / LiteRT")
    a("--camera", help="csi://0, v4l2:///dev/video0, file://video.mp4?loop=1&realtime=1, or an image folder")
    a("--serial", help="serial device or link URI (e.g. /dev/rc-car; null:// only logs)")
    a("--imu", help="IMU for a model with an imu input: mpu6050://1?addr=0x68 or file://imu.csv (replay)")
    a("--wheel-speed", help="speed source for a model with a wheel_speed input: file://speed.csv (t,speed replay)")
    a("--behavior", help="for a model with a behavior input: one of its labels, e.g. left")
    a("--pilot", choices=PILOT_CHOICES, help="how outputs become commands (default auto: the bundle's task decides: "
      "end_to_end for a driving model, lane_follow for a segmentation model; see [lane])")
    a("--safety", help="a detection bundle run beside the pilot that stops the car for obstacles in the path "
      "(see [safety])")
    a("--shadow", help="a candidate bundle run on the same frames that never drives: its disagreement with "
      "--bundle goes into the stats (see [shadow])")
    a("--deadline-ms", type=float, help="watchdog deadline: neutral when the newest command is older (default 100)")
    a("--max-throttle", type=float, help="throttle limit in [0, 1]")
    a("--max-frames", type=int, help="stop after N inferred frames")
    a("--duration", type=float, help="stop after S seconds")
    a("--stats-json", help="write the run summary to this JSON file")
    a("--record", help="record frames, commands and timings into this directory")
    a("--record-every", type=int, help="save the image of every Nth frame (default 1)")
    a("--overlay", action="store_true", default=None, help="with --record: also write overlay.mp4 (mask, "
      "centreline, look-ahead, boxes, verdict; one frame in [record] overlay_every)")
    a("--metrics", metavar="[HOST:]PORT", help="serve Prometheus metrics on this address (loopback when no "
      "host is given; see [metrics])")
    a("--allow-soft-deadline", action="store_true", default=None, help="drive even when the deadline guard "
      "cannot get SCHED_FIFO (e.g. a shell without ulimit -r 10; [guard] allow_soft_deadline)")
    a("--state-file", help="publish armed/parked/bundle/health here for rc-update (default: $RUNTIME_DIRECTORY "
      "or /run/rc-runtime when it exists; off: none; see [state])")
    a("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    return p


def config_from_args(args: argparse.Namespace) -> RuntimeConfig:
    """The validated config: ``--config``'s TOML with the given flags on top. ``ConfigError`` (one
    line naming the key and the fix) for an unknown key or a bad value."""
    return load_config(args.config, {
        "model.bundle": args.bundle, "bundle.trust": args.trust, "model.backend": args.backend, "model.format": args.format,
        "model.threads": args.threads, "camera.uri": args.camera, "link.uri": args.serial,
        "imu.uri": args.imu, "wheel_speed.uri": args.wheel_speed, "model.behavior": args.behavior, "model.pilot": args.pilot,
        "safety.bundle": args.safety, "shadow.bundle": args.shadow, "record.overlay": args.overlay,
        "watchdog.deadline_ms": args.deadline_ms, "policy.max_throttle": args.max_throttle,
        "run.max_frames": args.max_frames, "run.duration_s": args.duration, "run.stats_json": args.stats_json,
        "record.dir": args.record, "record.every": args.record_every, "log.level": args.log_level,
        "metrics.listen": args.metrics, "state.file": args.state_file,
        "guard.allow_soft_deadline": args.allow_soft_deadline,
    })
