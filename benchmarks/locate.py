"""Which bundle to benchmark: ``--bundle DIR``, or name + version/alias as ``convert-model`` takes them.

Name: ``--name``, else ``$RC_MODEL_NAME``, else the repo config's ``[model] name``. Tracking URI:
``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else the config's ``[model] tracking_uri``, else the
local demo store (``converter.tracking_store``). The bundle is ``<output>/<name>/v<version>`` (``--output``, else the config's
``[convert] output``) — exactly where ``convert-model`` writes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from converter.bundle import bundle_dir_for
from converter.config import load_config
from converter.registry import Registry, resolve_tracking_uri
from runtime.manifest import Manifest, load_manifest


class LocateError(ValueError):
    """No bundle to benchmark; the message says which command makes it."""


@dataclass
class Target:
    bundle: Path
    manifest: Manifest
    name: str
    version: str
    tracking_uri: str


def locate(
    *, bundle: Path | None = None, version: str | None = None, alias: str | None = None, name: str | None = None,
    tracking_uri: str | None = None, output: Path | None = None, config: Path | None = None,
) -> Target:
    cfg = load_config(config)
    uri = resolve_tracking_uri(tracking_uri, cfg.model.tracking_uri)
    if bundle is not None:
        if not (bundle / "manifest.json").is_file():
            raise LocateError(f"--bundle {bundle}: no manifest.json there; make the bundle with convert-model first")
        m = load_manifest(bundle)
        return Target(bundle, m, m.model.name, str(m.model.version), uri)
    model = name or os.environ.get("RC_MODEL_NAME") or cfg.model.name
    if not model:
        raise LocateError("no model name: pass --name, set RC_MODEL_NAME, or set [model] name in rc-edge.toml")
    if alias is not None:
        version = Registry(uri).resolve(model, alias=alias).version
    if version is None:
        raise LocateError("give one of --version N, --alias NAME or --bundle DIR")
    root = output or Path(cfg.convert.output)
    path = bundle_dir_for(root, model, str(version))
    if not (path / "manifest.json").is_file():
        raise LocateError(
            f"no bundle for {model} v{version} at {path}; run convert-model first: "
            f"convert-model --name {model} --version {version}"
            + (f" --tracking-uri {uri}" if tracking_uri else "")
            + (f" --output {root}" if output else "")
        )
    m = load_manifest(path)
    if (m.model.name, str(m.model.version)) != (model, str(version)):
        raise LocateError(
            f"{path} holds {m.model.name} v{m.model.version}, not {model} v{version}; re-run convert-model"
        )
    return Target(path, m, model, str(version), uri)
