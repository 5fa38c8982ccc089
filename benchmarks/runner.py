"""One benchmark of one bundle: per-build workers, then the real loop, into a results document."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.builds import Settings, aggregate, measure_builds, plan_builds
from benchmarks.e2e import LoopSettings, measure_loops
from benchmarks.machine import toolchain_versions
from benchmarks.results import SHARED_MACHINE_NOTE, new_results
from runtime.manifest import Manifest

log = logging.getLogger(__name__)

BUSY_LOAD_FRACTION = 0.25  # load average above this share of the cores: say the machine was busy


def load_notes(machine: dict[str, Any]) -> list[str]:
    cores = machine.get("logical_cores") or 1
    loads = [*machine.get("loadavg_start", []), *machine.get("loadavg_end", [])]
    if loads and max(loads) > BUSY_LOAD_FRACTION * cores:
        return [f"load average up to {max(loads):.2f} on {cores} cores during the run; {SHARED_MACHINE_NOTE}"]
    return []


def run_benchmark(
    bundle: Path,
    manifest: Manifest,
    machine: dict[str, Any],
    settings: Settings,
    loop: LoopSettings,
    only: list[str] | None = None,
    video: Path | None = None,
    notes: list[str] | None = None,
) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """(results document, per-format latency samples). ``machine`` gets ``loadavg_end``."""
    plans = plan_builds(manifest, only)
    video_label = str(video) if video else f"synthetic drive ({loop.frames} frames, converter.demo.track)"
    with tempfile.TemporaryDirectory(prefix="rc-bench-") as tmp:
        work = Path(tmp)
        measure_builds(bundle, plans, settings, work)
        loops: dict[str, dict[str, Any]] = {}
        if loop.enabled and any(p.status == "ok" for p in plans):
            if video is None:
                from benchmarks.loop_benchmark import make_video

                video = make_video(work / "drive.mp4", loop.frames)
            loops = measure_loops(bundle, plans, video, loop, settings.repeats, settings.threads)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    builds = []
    for p in plans:
        entry = aggregate(p)
        if p.format in loops:
            entry["loop"] = loops[p.format]
        builds.append(entry)
    settings_doc = {**asdict(settings), "formats": only or "all",
                    "loop": {**asdict(loop), "video": video_label}}
    all_notes = [*(notes or []), *load_notes(machine)]
    results = new_results(manifest, bundle, machine, toolchain_versions(), settings_doc, builds, all_notes)
    return results, {p.format: p.samples for p in plans if p.samples}
