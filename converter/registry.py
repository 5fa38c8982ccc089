"""Pull a registered model version from MLflow: resolve name + version/alias, download artifacts.

Only the registry API of MLflow 3 is used (aliases, not stages). Network errors get bounded
retries, then one clear error; a missing version lists the versions that exist.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from converter.errors import RegistryError

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///.demo/mlflow.db"
T = TypeVar("T")


@dataclass(frozen=True)
class ModelVersionRef:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def resolve_tracking_uri(cli_value: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the project's local demo store."""
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _is_connection_error(e: BaseException) -> bool:
    import requests

    if isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError):
        return True
    text = str(e)
    return any(s in text for s in ("Max retries exceeded", "Connection refused", "Failed to establish"))


def with_retries(what: str, fn: Callable[[], T], attempts: int = 3, delay_s: float = 1.0) -> T:
    """Retry only connection failures (bounded); anything else is an answer and is raised."""
    for i in range(1, attempts + 1):
        try:
            return fn()
        except Exception as e:
            if not _is_connection_error(e):
                raise
            if i == attempts:
                raise RegistryError(
                    f"MLflow registry unreachable while {what} after {attempts} tries ({type(e).__name__}); "
                    "check --tracking-uri / MLFLOW_TRACKING_URI and that the server is up"
                ) from None
            log.warning("registry unreachable while %s (try %d/%d); retrying in %.1fs", what, i, attempts, delay_s)
            time.sleep(delay_s)
            delay_s *= 2
    raise AssertionError("unreachable")


class Registry:
    """A thin, typed view of the MLflow model registry."""

    def __init__(self, tracking_uri: str, retries: int = 3) -> None:
        # Fail fast on a dead server: MLflow's own HTTP retries default to minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.retries = retries
        try:
            self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            self.client._get_registry_client()  # an unsupported URI scheme fails here, not mid-run
        except MlflowException as e:
            raise RegistryError(f"tracking URI {tracking_uri!r} is not usable: {str(e).splitlines()[0][:200]}") from None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return with_retries(what, fn, attempts=self.retries)

    def versions(self, name: str) -> list[str]:
        mvs = self._call("listing versions", lambda: self.client.search_model_versions(f"name='{name}'"))
        return sorted((str(mv.version) for mv in mvs), key=lambda v: int(v) if v.isdigit() else 0)

    def resolve(self, name: str, version: str | None = None, alias: str | None = None) -> ModelVersionRef:
        from mlflow.exceptions import MlflowException

        if (version is None) == (alias is None):
            raise RegistryError("give exactly one of --version N or --alias NAME")
        try:
            if alias is not None:
                mv = self._call("resolving the alias", lambda: self.client.get_model_version_by_alias(name, alias))
            else:
                mv = self._call("reading the version", lambda: self.client.get_model_version(name, str(version)))
        except MlflowException as e:
            raise self._not_found(name, version, alias, e) from None
        return ModelVersionRef(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or None,
            source=mv.source or "",
            tags=dict(mv.tags or {}),
            aliases=tuple(getattr(mv, "aliases", ()) or ()),
        )

    def _not_found(self, name: str, version: str | None, alias: str | None, e: Exception) -> RegistryError:
        what = f"version {version}" if version is not None else f"alias @{alias}"
        try:
            have = self.versions(name)
        except Exception as inner:  # listing is best effort: the original error is the answer
            log.debug("could not list versions of %s: %s", name, inner)
            have = []
        if not have:
            known = self._model_names()
            hint = f"registered models: {', '.join(known)}" if known else "the registry has no registered models"
            return RegistryError(f"model {name!r} not found at {self.tracking_uri} ({hint}); check --name")
        return RegistryError(f"model {name!r} has no {what}; versions that exist: {', '.join(have)}")

    def _model_names(self) -> list[str]:
        try:
            return sorted(m.name for m in self.client.search_registered_models(max_results=50))
        except Exception as e:  # best effort, only used to enrich an error message
            log.debug("could not list registered models: %s", e)
            return []

    def download(self, ref: ModelVersionRef, dest: Path) -> Path:
        """Download the version's artifacts into dest; returns the local root."""
        import mlflow.artifacts

        dest.mkdir(parents=True, exist_ok=True)
        try:
            uri = self._artifact_uri(ref)
        except RegistryError:
            raise
        except Exception as e:
            raise RegistryError(f"could not locate the artifacts of {ref.uri}: {e}") from None

        def fetch() -> str:
            return mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(dest), tracking_uri=self.tracking_uri
            )

        try:
            local = self._call("downloading artifacts", fetch)
        except RegistryError:
            raise
        except Exception as e:
            raise RegistryError(f"could not download artifacts of {ref.uri} from {uri}: {e}") from None
        return Path(local)

    def _artifact_uri(self, ref: ModelVersionRef) -> str:
        # Resolve through our own client: download_artifacts would resolve models:/ URIs against
        # the process-global registry URI, not the one this command was given.
        return self._call(
            "locating artifacts", lambda: self.client.get_model_version_download_uri(ref.name, ref.version)
        )

    def set_version_tags(self, ref: ModelVersionRef, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self._call("tagging the version", partial(self.client.set_model_version_tag, ref.name, ref.version, k, v))


def describe(ref: ModelVersionRef) -> dict[str, Any]:
    return {"name": ref.name, "version": ref.version, "run_id": ref.run_id, "source": ref.source}
