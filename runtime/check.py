"""``rc-runtime --check``: is this car ready to drive with this config? Touches nothing that moves.

It checks, in order, and reports every problem (one line each) rather than stopping at the first:

- the config (already validated when this runs: a bad key never gets here),
- the bundle: manifest, the signature when ``--trust`` is given, every listed file's sha256,
- the model: the backend opens the build it would run (a TensorRT engine is built and cached from the
  ONNX here, as on a first start) and infers once on zeros,
- the camera: it opens and gives one frame of the size it is configured for,
- the port: it exists, is a tty (by its device number, from ``/proc/tty/drivers``), is readable and
  writable by this user, and no other process holds it.

The port is never opened: opening a USB board's tty resets many of them (DTR), and nothing here
sends a frame, arms the car or starts the deadline guard. ``null://`` and ``sim://`` have no port.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from runtime.config import RuntimeConfig

log = logging.getLogger(__name__)

CAMERA_TIMEOUT_S = 10.0  # a CSI camera takes a few seconds to give its first frame after nvargus starts


def run_check(cfg: RuntimeConfig) -> tuple[list[str], list[str]]:
    """Check ``cfg`` as described in the module doc; returns (what is fine, problems), one line each."""
    ok: list[str] = []
    problems: list[str] = []
    for name, step in (("bundle", _bundle), ("model", _model), ("camera", _camera), ("port", _port)):
        try:
            line = step(cfg)
        except Exception as e:  # each step's failure is a finding, not the end of the check
            problems.append(f"{name}: {_one_line(e)}")
        else:
            if line:
                ok.append(f"{name}: {line}")
    return ok, problems


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _bundle(cfg: RuntimeConfig) -> str:
    from runtime.manifest import load_manifest, verified_path
    from runtime.manifest.signature import check_bundle_trust

    if not cfg.model.bundle:
        raise ValueError("no bundle given: pass --bundle DIR or set [model] bundle in the config")
    check_bundle_trust(cfg.model.bundle, cfg.bundle.trust, log)
    manifest = load_manifest(cfg.model.bundle)
    bad = []
    for build in manifest.builds:
        try:
            verified_path(cfg.model.bundle, build)
        except Exception as e:
            bad.append(_one_line(e))
    if bad:
        raise ValueError("; ".join(bad))
    signed = "signature verified, " if cfg.bundle.trust else ""
    return (f"{manifest.model.name} v{manifest.model.version} in {cfg.model.bundle}: {signed}"
            f"{len(manifest.builds)} files match their sha256")


def _model(cfg: RuntimeConfig) -> str:
    from runtime.backends import open_backend
    from runtime.manifest import load_manifest

    if not cfg.model.bundle:
        return ""  # reported by the bundle step
    manifest = load_manifest(cfg.model.bundle)
    options = {"threads": cfg.model.threads} if cfg.model.threads else {}
    backend = open_backend(cfg.model.bundle, cfg.model.backend, cfg.model.format or None, manifest, **options)
    try:
        backend.infer({i.name: np.zeros(i.shape, np.float32) for i in manifest.inputs})
        return f"{backend.name} runs {backend.build.format} ({backend.build.file}): opens and infers"
    finally:
        backend.close()


def _camera(cfg: RuntimeConfig) -> str:
    from runtime.camera import open_camera
    from runtime.events import Events

    camera = open_camera(cfg.camera.uri, Events(), cfg.camera.reconnect_interval_s)
    try:
        frame = camera.get(CAMERA_TIMEOUT_S)
        if frame is None:
            raise ValueError(f"{cfg.camera.uri} opened but gave no frame within {CAMERA_TIMEOUT_S:.0f} s")
        h, w = frame.image.shape[:2]
        return f"{cfg.camera.uri} gives {w}x{h} frames"
    finally:
        camera.stop()


def _port(cfg: RuntimeConfig) -> str:
    uri = cfg.link.uri
    port = _port_path(uri)
    if port is None:
        return f"{uri}: no serial port (nothing is driven)"
    try:
        st = os.stat(port)
    except FileNotFoundError:
        raise ValueError(f"{port} does not exist: is the car's board plugged in (udev makes /dev/rc-car)?") from None
    if not stat.S_ISCHR(st.st_mode) or not _is_tty_device(st.st_rdev, _tty_majors()):
        raise ValueError(f"{port} is not a tty; point --serial at the car's port (e.g. /dev/rc-car)")
    if not os.access(port, os.R_OK | os.W_OK):
        raise ValueError(f"no read/write permission on {port}; add the user to the 'dialout' group")
    holder = _lock_holder(port)
    if holder:
        raise ValueError(f"{port} is held by {holder}: stop it first (systemctl stop rc-runtime)")
    real = os.path.realpath(port)
    return f"{port}{' -> ' + real if real != port else ''} is a tty, readable and writable (not opened)"


def _port_path(uri: str) -> str | None:
    from urllib.parse import urlsplit

    if uri.startswith("/"):
        return uri
    parts = urlsplit(uri)
    if parts.scheme != "serial":
        return None  # null://, sim://: no port
    return parts.path or None


def _tty_majors(drivers: Path = Path("/proc/tty/drivers")) -> list[tuple[int, int, int]]:
    """(major, first minor, last minor) of every tty driver the kernel lists."""
    out: list[tuple[int, int, int]] = []
    try:
        lines = drivers.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or not parts[-3].isdigit():
            continue
        lo, _, hi = parts[-2].partition("-")
        if lo.isdigit():
            out.append((int(parts[-3]), int(lo), int(hi) if hi.isdigit() else int(lo)))
    return out


def _is_tty_device(rdev: int, majors: list[tuple[int, int, int]]) -> bool:
    major, minor = os.major(rdev), os.minor(rdev)
    return any(m == major and lo <= minor <= hi for m, lo, hi in majors)


def _lock_holder(port: str) -> str | None:
    from runtime.link.port_checks import lock_holder

    holder = lock_holder(port)
    return holder if holder.startswith("pid ") else None


def check_main(cfg: RuntimeConfig, out: Callable[[str], Any], err: Callable[[str], Any]) -> int:
    """Run :func:`run_check`; what is fine goes to ``out`` and each problem, one line, to ``err``.
    Returns the exit status: 0 when ready, 2 when anything is wrong."""
    ok, problems = run_check(cfg)
    for line in ok:
        out(f"ok: {line}")
    for line in problems:
        err(f"rc-runtime --check: {line}")
    verdict = "ready" if not problems else f"{len(problems)} problem(s)"
    out(f"rc-runtime --check: {verdict}; the link was not opened and the car not armed")
    return 0 if not problems else 2
