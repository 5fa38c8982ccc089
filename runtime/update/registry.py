"""MLflow's REST API over stdlib HTTP: the few calls the car needs.

Paths (checked against ``mlflow server`` 3.x with proxied artifacts, tests/runtime/update):
``GET /api/2.0/mlflow/registered-models/alias``, ``GET /api/2.0/mlflow/model-versions/get``,
``GET /api/2.0/mlflow/runs/get``, ``GET /api/2.0/mlflow/artifacts/list``, the proxied download
``GET /api/2.0/mlflow-artifacts/artifacts/<path>`` and ``POST /api/2.0/mlflow/model-versions/set-tag``.
Credentials from the environment as the MLflow client reads them: ``MLFLOW_TRACKING_TOKEN`` (bearer)
or ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

TIMEOUT_S = 30.0
CHUNK = 1 << 20


class RegistryUnreachable(Exception):
    """The server did not answer, or answered with a server error: try again later."""


class RegistryError(Exception):
    """The server answered but refused the request (unknown model/alias, no bundle, no access)."""


@dataclass(frozen=True)
class ArtifactFile:
    """A file under the run's artifacts: ``path`` relative to the artifact root, ``size`` in bytes."""

    path: str
    size: int | None


def auth_header(environ: dict[str, str] | None = None) -> str | None:
    """The Authorization header the MLflow client would send, or None."""
    env = os.environ if environ is None else environ
    token = env.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return f"Bearer {token}"
    user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
    if user and password is not None:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


class Registry:
    """The REST calls against ``tracking_uri`` (http or https, possibly under a path prefix)."""

    def __init__(self, tracking_uri: str, timeout_s: float = TIMEOUT_S) -> None:
        parsed = urllib.parse.urlparse(tracking_uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"--tracking-uri {tracking_uri!r}: the car talks to an MLflow server over HTTP; "
                             "pass http://HOST:5000 or https://…")
        self.base = tracking_uri.rstrip("/")
        self.timeout_s = timeout_s
        self._auth = auth_header()

    def _open(self, path: str, query: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> Any:
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout_s)
        except urllib.error.HTTPError as e:
            detail = _error_message(e)
            if e.code >= 500 or e.code == 429:
                raise RegistryUnreachable(f"{self.base}: HTTP {e.code} {detail}") from None
            if e.code in (401, 403):
                raise RegistryError(f"{self.base}: HTTP {e.code} {detail}; set MLFLOW_TRACKING_TOKEN or "
                                    "MLFLOW_TRACKING_USERNAME/PASSWORD") from None
            raise RegistryError(f"HTTP {e.code} {detail}") from None
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise RegistryUnreachable(f"{self.base} cannot be reached: {reason}") from None

    def _json(self, path: str, query: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> Any:
        with self._open(path, query, body) as resp:
            try:
                return json.loads(resp.read() or b"{}")
            except ValueError:
                raise RegistryUnreachable(f"{self.base}{path}: not a JSON answer; is this an MLflow server?") from None
            except (OSError, http.client.HTTPException) as e:
                raise RegistryUnreachable(f"{self.base}{path}: connection lost ({e!r})") from None

    def alias_version(self, name: str, alias: str) -> dict[str, Any]:
        """The model version ``name@alias`` points at (its REST dict, tags included)."""
        try:
            doc = self._json("/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias})
        except RegistryError as e:
            raise RegistryError(f"models:/{name}@{alias}: {e}; check --name and --alias "
                                "(`mlflow` UI → the model → Aliases)") from None
        version = doc.get("model_version", {}).get("version")
        if version is None:
            raise RegistryError(f"models:/{name}@{alias}: the server gave no version")
        return self.model_version(name, str(version))

    def model_version(self, name: str, version: str) -> dict[str, Any]:
        """``model-versions/get`` for ``name`` ``version``."""
        doc = self._json("/api/2.0/mlflow/model-versions/get", {"name": name, "version": version})
        mv: dict[str, Any] = doc.get("model_version", {})
        return mv

    def artifact_uri(self, run_id: str) -> str:
        """The run's artifact root (``mlflow-artifacts:/…`` on a server that proxies artifacts)."""
        doc = self._json("/api/2.0/mlflow/runs/get", {"run_id": run_id})
        return str(doc.get("run", {}).get("info", {}).get("artifact_uri", ""))

    def list_files(self, run_id: str, path: str) -> list[ArtifactFile]:
        """Every file under ``path`` in the run's artifacts (folders walked)."""
        out: list[ArtifactFile] = []
        doc = self._json("/api/2.0/mlflow/artifacts/list", {"run_id": run_id, "path": path})
        for f in doc.get("files", []):
            if f.get("is_dir"):
                out.extend(self.list_files(run_id, f["path"]))
            else:
                size = f.get("file_size")
                out.append(ArtifactFile(f["path"], int(size) if size is not None else None))
        return out

    def download(self, run_id: str, artifact_uri: str, path: str, dest: Path,
                 on_chunk: Callable[[int], None] | None = None) -> None:
        """Stream the artifact ``path`` into ``dest`` (overwritten). Through the proxied
        ``mlflow-artifacts`` endpoint when the run's artifacts are proxied, else ``get-artifact``."""
        proxied = proxied_path(artifact_uri)
        if proxied is not None:
            resp = self._open("/api/2.0/mlflow-artifacts/artifacts/" + urllib.parse.quote(f"{proxied}/{path}"))
        else:
            resp = self._open("/get-artifact", {"run_id": run_id, "path": path})
        length = resp.headers.get("Content-Length")
        with resp, open(dest, "wb") as f:
            got = _copy(resp, f, on_chunk, f"{self.base}: download of {path}")
        # http.client's read(n) ends quietly at EOF: a cut connection would look like a whole file
        if length is not None and length.isdigit() and got != int(length):
            raise RegistryUnreachable(f"{self.base}: download of {path} broke off after {got} of {length} bytes")

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        """``model-versions/set-tag``: the car's report on the version."""
        self._json("/api/2.0/mlflow/model-versions/set-tag",
                   body={"name": name, "version": version, "key": key, "value": value})


def proxied_path(artifact_uri: str) -> str | None:
    """``mlflow-artifacts:/1/abc/artifacts`` (or ``mlflow-artifacts://host/…``) → ``1/abc/artifacts``."""
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme != "mlflow-artifacts":
        return None
    return parsed.path.strip("/")


def _copy(resp: BinaryIO, f: BinaryIO, on_chunk: Callable[[int], None] | None, what: str) -> int:
    total = 0
    while True:
        try:
            chunk = resp.read(CHUNK)
        except (TimeoutError, OSError, http.client.HTTPException) as e:  # IncompleteRead: the server went away
            raise RegistryUnreachable(f"{what} broke off: {e!r}") from None
        if not chunk:
            return total
        f.write(chunk)
        total += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(e.read() or b"{}")
    except (ValueError, OSError):
        return e.reason or ""
    return str(doc.get("message") or doc.get("error_code") or e.reason or "")
