"""What a conversion did, per format: the data behind the table, --json and the MLflow run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from converter.errors import EXIT_BUILD_FAILED, EXIT_OK


@dataclass
class Outcome:
    """One format's result: status, file, size, raw error, seconds, the reason when not built and,
    for perception builds, the headline task figures."""

    format: str
    status: str  # built | cached | skipped | failed
    file: str | None = None
    bytes: int | None = None
    max_abs: float | None = None
    mean_abs: float | None = None
    seconds: float = 0.0
    reason: str | None = None
    explicit: bool = False  # asked for by name on the command line
    task: dict[str, float] | None = None  # perception builds: converter.task_parity.headline figures

    @property
    def ok(self) -> bool:
        """Built, cached, or skipped without being asked for by name."""
        return self.status in ("built", "cached") or (self.status == "skipped" and not self.explicit)


@dataclass
class Summary:
    """A conversion: its outcomes, bundle, MLflow run and exit code."""

    model: str
    version: str
    bundle: Path | None
    cache_hit: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    started_ms: int | None = None  # wall clock at the start (MLflow's run start_time), not an interval
    run_id: str | None = None
    log_error: str | None = None

    @property
    def exit_code(self) -> int:
        """``EXIT_BUILD_FAILED`` when a format failed or MLflow logging did, else ``EXIT_OK``."""
        failed = any(not o.ok for o in self.outcomes) or self.log_error is not None
        return EXIT_BUILD_FAILED if failed else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "model": self.model,
            "version": self.version,
            "bundle": str(self.bundle) if self.bundle else None,
            "cache_hit": self.cache_hit,
            "seconds": round(self.seconds, 3),
            "mlflow_run_id": self.run_id,
            "mlflow_error": self.log_error,
            "exit_code": self.exit_code,
            "formats": [{k: v for k, v in asdict(o).items() if k != "explicit"} for o in self.outcomes],
        }
