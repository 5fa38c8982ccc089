"""Pull a registered model version from MLflow: resolve name + version/alias, download artifacts.

Only the registry API of MLflow 3 is used (aliases, not stages). Network errors get bounded
retries, then one clear error; a missing version lists the versions that exist.
"""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from converter.errors import RegistryError
from converter.tracking_store import open_store
from converter.tracking_store import resolve_tracking_uri as _resolve

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ModelVersionRef:
    """A resolved registry version: its tags, and the params of the run (and LoggedModel) it came
    from (e.g. the seed team's ``task_type``), read only; ``params`` is empty when there is no run."""

    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...]
    params: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def resolve_tracking_uri(cli_value: str | None, config_value: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the config's tracking_uri, else the project's local
    demo store (:func:`converter.tracking_store.resolve_tracking_uri`)."""
    return _resolve(cli_value, config_value)


_NO_SUCH_ARTIFACT = re.compile(r"No such artifact: '([^']*)'")
_AUTH_CODES = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}
_STATUS_IN_TEXT = re.compile(r"error code (40[13])\b|\b(40[13]) Client Error")


def http_auth_status(e: BaseException) -> int | None:
    """401 or 403 when ``e`` is a tracking server's authentication/permission refusal, else None."""
    code = getattr(getattr(e, "response", None), "status_code", None)
    if code in (401, 403):
        return int(code)
    by_name = _AUTH_CODES.get(str(getattr(e, "error_code", "")))
    if by_name:
        return by_name
    m = _STATUS_IN_TEXT.search(str(e))
    return int(m.group(1) or m.group(2)) if m else None


def auth_error(e: BaseException, tracking_uri: str, what: str) -> RegistryError | None:
    """A one-line RegistryError for a 401/403 while ``what`` (e.g. "reading the version"), naming the
    variables to set and the URI; None when ``e`` is not an authentication/permission refusal."""
    status = http_auth_status(e)
    if status is None:
        return None
    if status == 401:
        given = ("the credentials in MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD were refused"
                 if os.environ.get("MLFLOW_TRACKING_USERNAME") or os.environ.get("MLFLOW_TRACKING_TOKEN")
                 else "no credentials were given")
        return AuthError(
            f"the MLflow server at {tracking_uri} requires authentication (HTTP 401 while {what}; {given}); "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic auth) or MLFLOW_TRACKING_TOKEN"
        )
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    who = f"user {user!r}" if user else "these credentials"
    return AuthError(
        f"the MLflow server at {tracking_uri} refused {what}: {who} lacks permission (HTTP 403); ask its admin "
        "for READ on the model to convert it and EDIT on the experiment to log conversions, or pass --no-log"
    )


class AuthError(RegistryError):
    """The tracking server refused our credentials (401) or their permissions (403)."""


def is_file_store(tracking_uri: str) -> bool:
    """A local MLflow file store (``mlruns``, ``./mlruns``, ``file:///...``), not sqlite or http."""
    scheme = urllib.parse.urlparse(tracking_uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def file_store_root(tracking_uri: str) -> Path:
    parsed = urllib.parse.urlparse(tracking_uri)
    path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else tracking_uri
    return Path(path).expanduser().resolve()


FILE_STORE_WRITE_RULE = (
    "MLflow 3 writes to a file store only when MLFLOW_ALLOW_FILE_STORE=true (it is in maintenance mode); "
    "set it to log the conversion there, pass --no-log, or migrate the store (mlflow migrate-filestore) "
    "and use the sqlite URI"
)


def logging_failure(e: BaseException, tracking_uri: str) -> str:
    """One line for a failed write-back (the bundle itself is fine), never cut before its fix."""
    if isinstance(e, RegistryError):
        return str(e)
    err = auth_error(e, tracking_uri, "logging the conversion")
    if err is not None:
        return str(err)
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if len(text) > 300:  # a server's whole response body: the head says what failed
        text = text[:300] + "..."
    return f"{type(e).__name__}: {text}"


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
    """A thin, typed view of the MLflow model registry. ``write``: this command will log to the store;
    ``allow_upgrade``: MLflow may migrate an older store it writes to (--allow-upgrade). An older
    sqlite store only read is read from a migrated copy (:mod:`converter.tracking_store`)."""

    def __init__(self, tracking_uri: str, retries: int = 3, write: bool = False, allow_upgrade: bool = False) -> None:
        # Fail fast on a dead server: MLflow's own HTTP retries default to minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.store = open_store(tracking_uri, write=write, allow_upgrade=allow_upgrade)
        self.store_uri = self.store.open_uri  # what MLflow opens: the store, or a migrated copy of an older one
        self.retries = retries
        self.file_store: Path | None = None
        # Whether this process may write to a file store: the user's own MLFLOW_ALLOW_FILE_STORE.
        self.file_store_writable = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1")
        try:
            if is_file_store(tracking_uri):
                self.client, self.file_store = self._open_file_store(tracking_uri)
            else:
                self.client = MlflowClient(tracking_uri=self.store_uri, registry_uri=self.store_uri)
                self.client._get_registry_client()  # an unsupported URI scheme fails here, not mid-run
        except MlflowException as e:
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RegistryError(f"tracking URI {tracking_uri!r} is not usable: {text}") from None

    def _open_file_store(self, tracking_uri: str) -> tuple[Any, Path]:
        """A client on an existing ``mlruns`` folder, for reading (reading is safe; MLflow 3 refuses
        file stores unless opted in, so we opt in while this client's two stores are built)."""
        from mlflow.tracking import MlflowClient

        root = file_store_root(tracking_uri)
        if not root.is_dir():
            raise RegistryError(
                f"tracking URI {tracking_uri!r}: no MLflow file store at {root}; check --tracking-uri / "
                "MLFLOW_TRACKING_URI (e.g. the training project's mlruns folder, or sqlite:///mlflow.db)"
            )
        before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        try:
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            _ = client._tracking_client.store  # both stores are built now, and kept
            _ = client._get_registry_client().store
        finally:
            if before is None:
                os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
            else:
                os.environ["MLFLOW_ALLOW_FILE_STORE"] = before
        log.info("reading the MLflow file store at %s", root)
        return client, root

    def check_writable(self) -> None:
        """RegistryError when writing here would break MLflow's own rule for file stores."""
        if self.file_store is not None and not self.file_store_writable:
            raise RegistryError(f"not logged to the file store {self.file_store}: {FILE_STORE_WRITE_RULE}")
        if not self.store.writable:  # opened for reading: an older store, read from a copy
            open_store(self.tracking_uri, write=True)  # raises the refusal naming the fix

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return with_retries(what, fn, attempts=self.retries)
        except RegistryError:
            raise
        except Exception as e:
            err = auth_error(e, self.tracking_uri, what)
            if err is not None:
                raise err from None
            raise

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
            params=self._source_params(mv.run_id or None, mv.source or ""),
        )

    def _source_params(self, run_id: str | None, source: str) -> dict[str, str]:
        """The params of the version's LoggedModel (``models:/m-...``) and of its source run (the run's
        win), read only. Enrichment, never a reason to fail: a run deleted or unreadable gives what
        was read so far, with a warning (the flags can say what the params would have)."""
        params: dict[str, str] = {}
        try:
            if source.startswith("models:/m-"):
                logged = self.client.get_logged_model(source.removeprefix("models:/").split("/")[0])
                params.update({str(k): str(v) for k, v in (logged.params or {}).items()})
                run_id = run_id or logged.source_run_id
            if run_id:
                run = self._call("reading the run's params", lambda: self.client.get_run(run_id))
                params.update({str(k): str(v) for k, v in run.data.params.items()})
        except Exception as e:  # e.g. READ on the model but not on its experiment (HTTP 403)
            log.warning("could not read the params of the run behind this version (%s: %s); pass the flags they "
                        "would have set (e.g. --outputs for task_type)", type(e).__name__, str(e).splitlines()[0] if
                        str(e) else "")
        return params

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
                artifact_uri=uri, dst_path=str(dest), tracking_uri=self.store_uri
            )

        if is_file_store(uri) and not file_store_root(uri).exists():  # known before MLflow's multi-line answer
            raise self._artifacts_gone(ref, uri, uri.rstrip("/").rsplit("/", 1)[-1])
        try:
            local = self._call("downloading artifacts", fetch)
        except RegistryError:
            raise
        except Exception as e:
            gone = _NO_SUCH_ARTIFACT.search(str(e))
            if gone is not None or isinstance(e, FileNotFoundError):
                raise self._artifacts_gone(ref, uri, gone.group(1) if gone else uri.rstrip("/").rsplit("/", 1)[-1]) \
                    from None
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RegistryError(f"could not download artifacts of {ref.uri} from {uri}: {text}") from None
        return Path(local)

    def _artifacts_gone(self, ref: ModelVersionRef, uri: str, missing: str) -> RegistryError:
        """One line for a version whose files were deleted from the artifact store (MLflow's own
        answer is a multi-line "No such artifact" with no fix)."""
        try:
            others = [v for v in self.versions(ref.name) if v != ref.version]
        except Exception as e:  # best effort: only enriches the message
            log.debug("could not list versions of %s: %s", ref.name, e)
            others = []
        instead = f"convert another version ({', '.join(others)})" if others else "convert another version"
        return RegistryError(
            f"{ref.name} v{ref.version}: its artifacts were deleted ({missing!r} is missing at {uri}); restore them "
            f"to that place, register the model again from its files, or {instead}"
        )

    def _artifact_uri(self, ref: ModelVersionRef) -> str:
        # Resolve through our own client: download_artifacts would resolve models:/ URIs against
        # the process-global registry URI, not the one this command was given.
        uri = self._call(
            "locating artifacts", lambda: self.client.get_model_version_download_uri(ref.name, ref.version)
        )
        return self._rebased(uri)

    def _rebased(self, uri: str) -> str:
        """A file store records absolute artifact paths; a store copied or cloned elsewhere still
        holds its artifacts under itself, so a missing path is looked up under this store's root."""
        if self.file_store is None or not is_file_store(uri):
            return uri
        path = file_store_root(uri)
        if path.exists():
            return uri
        parts = path.parts
        name = self.file_store.name
        if name in parts:
            i = len(parts) - 1 - parts[::-1].index(name)
            moved = self.file_store.joinpath(*parts[i + 1:])
            if moved.exists():
                log.info("artifacts recorded at %s found at %s (the store was moved)", path, moved)
                return moved.as_uri()
        return uri

    def set_version_tags(self, ref: ModelVersionRef, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self._call("tagging the version", partial(self.client.set_model_version_tag, ref.name, ref.version, k, v))


def describe(ref: ModelVersionRef) -> dict[str, Any]:
    return {"name": ref.name, "version": ref.version, "run_id": ref.run_id, "source": ref.source}
