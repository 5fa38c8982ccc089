"""``rc-runtime --metrics``: a running runtime (demo pilot, a shadow beside it, a looping video)
scraped over real HTTP while it drives; the text parsed by prometheus_client's own parser. A port in
use is exit 2 before the car is armed. The histogram's folding of the stats rings, wrap included."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.assembly import run
from runtime.cli import main
from runtime.metrics.collector import BOUNDS_S, RingHistogram
from runtime.metrics.listen import parse_listen
from runtime.shadow import ShadowConfig
from runtime.sim import CarSimulator
from runtime.stats import Ring
from tests.runtime.helpers import make_config
from tests.runtime.shadow.bundles import candidate_bundle

NEEDS = "the runtime extra's prometheus-client is not installed (make setup installs it)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, list[Any]]:
    """Samples by name: [(labels, value), ...]."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(m: dict[str, list[Any]], metric: str, **labels: str) -> float:
    return next(v for lab, v in m[metric] if all(lab.get(k) == x for k, x in labels.items()))


def test_a_running_runtime_is_scraped_while_it_drives(bundle: Path, clip_video: Path, tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client", reason=NEEDS)
    port = _free_port()
    cfg = make_config(bundle, f"file://{clip_video}?realtime=1&fps=30&loop=1", duration_s=4.0)
    cfg.metrics.listen = str(port)  # no host: loopback
    cfg.shadow = ShadowConfig(bundle=str(candidate_bundle(tmp_path)))
    result: dict[str, Any] = {}
    th = threading.Thread(target=lambda: result.update(run(cfg)))
    th.start()
    try:
        scrapes: list[dict[str, list[Any]]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(scrapes) < 2:
            try:
                m = scrape(port)
            except OSError:
                time.sleep(0.1)
                continue
            if m["rc_frames_total"][0][1] >= 15 * (len(scrapes) + 1):
                scrapes.append(m)
            time.sleep(0.2)
    finally:
        th.join(30)
    assert len(scrapes) == 2, "no scrape while driving"
    first, m = scrapes
    frames = value(m, "rc_frames_total")
    assert frames > value(first, "rc_frames_total") > 0 and value(m, "rc_fps") > 5  # a 30 fps camera
    count = value(m, "rc_stage_latency_seconds_count", stage="inference")
    assert abs(count - frames) <= 1  # the loop counts the frame just before its timings
    buckets = [v for lab, v in m["rc_stage_latency_seconds_bucket"] if lab["stage"] == "inference"]
    assert buckets == sorted(buckets) and buckets[-1] == count and len(buckets) == len(BOUNDS_S) + 1
    assert value(m, "rc_model_info", name=result["model"]["name"], version=str(result["model"]["version"])) == 1
    assert value(m, "rc_shadow_info", name="candidate") == 1 and value(m, "rc_shadow_pairs_total") > 0
    assert value(m, "rc_shadow_abs_diff", output="steering", quantile="0.5") > 0.2  # the far-off candidate
    assert "rc_camera_dropped_frames_total" in m
    assert result["end_reason"] == "duration" and result["frames"] >= frames
    with pytest.raises(OSError):  # the endpoint ends with the run
        scrape(port)


def test_a_port_in_use_is_exit_2_and_the_car_is_never_armed(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("prometheus_client", reason=NEEDS)
    car, link = sim
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["--bundle", str(bundle), "--camera", f"file://{clip_video}?realtime=1", "--serial", link,
                     "--metrics", f"127.0.0.1:{port}"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and line.startswith(f"rc-runtime: --metrics 127.0.0.1:{port}: cannot listen"), line
    assert not [e for e in list(car.events) if e["event"] in ("arm", "drive")]


def test_listen_forms() -> None:
    assert parse_listen("9108") == ("127.0.0.1", 9108)
    assert parse_listen("0.0.0.0:9108") == ("0.0.0.0", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    with pytest.raises(ValueError, match="write PORT or HOST:PORT"):
        parse_listen("localhost")


def test_the_histogram_folds_only_new_samples_and_survives_the_ring_wrapping() -> None:
    ring = Ring(8)
    h = RingHistogram(ring)
    for ms in (0.5, 1.5, 3.0):
        ring.add(ms)
    h.update()
    h.update()  # nothing new: nothing counted twice
    assert [c for _, c in h.buckets()][:3] == [1.0, 2.0, 3.0] and h.buckets()[-1][1] == 3.0
    for ms in np.full(10, 2000.0):  # wraps the 8-sample ring; 2 of the new ones are overwritten unseen
        ring.add(float(ms))
    h.update()
    assert h.buckets()[-1][1] == 11.0 and h.missed == 2 and h.buckets()[-2][1] == 3.0
    assert h.sum_ms == pytest.approx(5.0 + 8 * 2000.0)
