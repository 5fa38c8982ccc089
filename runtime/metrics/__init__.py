"""On-car metrics (``rc-runtime --metrics [HOST:]PORT``, ``[metrics] listen``): a Prometheus endpoint
read at scrape time from what the loop already keeps (runtime/stats.py, runtime/telemetry.py, the
camera, the events, the shadow); nothing is added to the loop's per-frame work.

- :mod:`runtime.metrics.listen`: ``[HOST:]PORT`` (loopback when no host is given);
- :mod:`runtime.metrics.collector`: the metric families, built from the run's parts per scrape;
- :mod:`runtime.metrics.server`: the HTTP endpoint (``prometheus_client``, imported only when asked for).
"""

from __future__ import annotations

from runtime.metrics.listen import parse_listen

__all__ = ["parse_listen"]
