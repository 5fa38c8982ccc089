"""A real Prometheus server (Debian's ``prometheus``, started here) scrapes a running ``rc-runtime``
every second: the series it stored, read back through its HTTP query API, are the runtime's."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from runtime.assembly import run
from tests.runtime.helpers import make_config
from tests.runtime.metrics.test_endpoint import NEEDS, _free_port

pytestmark = pytest.mark.slow  # ~8 s here: a Prometheus start, a few scrapes


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    body = json.loads(urllib.request.urlopen(url, timeout=5).read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_stores_the_runtimes_series(bundle: Path, clip_video: Path, tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client", reason=NEEDS)
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("no prometheus server: apt-get install prometheus (.ci/install-optional.sh installs it)")
    rt_port, prom_port = _free_port(), _free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: rc-runtime\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{rt_port}']}}]\n")
    log = (tmp_path / "prometheus.log").open("w")
    prom = subprocess.Popen([exe, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{prom_port}"
    cfg = make_config(bundle, f"file://{clip_video}?realtime=1&fps=30&loop=1", duration_s=20.0)
    cfg.metrics.listen = f"127.0.0.1:{rt_port}"
    stop = threading.Event()
    result: dict[str, Any] = {}
    th = threading.Thread(target=lambda: result.update(run(cfg, stop)))
    th.start()
    try:
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                frames = query(base, 'rc_frames_total{job="rc-runtime"}')
            except OSError:
                continue  # Prometheus still starting
            if frames and float(frames[0]["value"][1]) >= 30 and len(query(base, "rc_model_info")) == 1:
                break
        assert frames and float(frames[0]["value"][1]) >= 30, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert query(base, 'up{job="rc-runtime"}')[0]["value"][1] == "1"
        info = query(base, "rc_model_info")[0]["metric"]
        assert info["backend"] and info["version"] and len(info["sha256"]) == 12
        inference = query(base, 'rc_stage_latency_seconds_count{stage="inference"}')
        assert float(inference[0]["value"][1]) > 0
        p99 = query(base, 'histogram_quantile(0.99, rc_stage_latency_seconds_bucket{stage="camera_to_command"})')
        assert 0 < float(p99[0]["value"][1]) <= 1.0  # seconds; a command within the deadline bucket range
    finally:
        stop.set()
        th.join(30)
        prom.send_signal(signal.SIGTERM)
        prom.wait(30)
        log.close()
    assert result["end_reason"] == "stopped"
