"""The metrics endpoint: ``prometheus_client``'s HTTP server on its own registry, serving
:class:`~runtime.metrics.collector.RuntimeCollector` (in a daemon thread of its own)."""

from __future__ import annotations

import logging
from typing import Any

from runtime.config import ConfigError
from runtime.metrics.collector import RuntimeCollector, Sources
from runtime.metrics.listen import parse_listen

log = logging.getLogger(__name__)


class MetricsServer:
    """Serves ``/metrics`` for ``sources`` on ``listen`` (``[HOST:]PORT``) from :meth:`start` to
    :meth:`stop`; ``port`` is the bound one (``listen`` port 0: any free port)."""

    def __init__(self, listen: str, sources: Sources) -> None:
        self.host, self.port = parse_listen(listen)
        self.collector = RuntimeCollector(sources)
        self._httpd: Any = None

    def start(self) -> MetricsServer:
        """Listen; :class:`ConfigError` (one line, the fix) without prometheus_client or when the address
        cannot be bound."""
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError:
            raise ConfigError("--metrics needs prometheus_client: pip install 'rc-edge[runtime]' "
                              "(or pip install prometheus-client)") from None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        try:
            self._httpd, _ = start_http_server(self.port, addr=self.host, registry=registry)
        except OSError as e:
            raise ConfigError(f"--metrics {self.host}:{self.port}: cannot listen ({e}); pick a free port "
                              "or another address") from None
        self.port = int(self._httpd.server_port)
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
