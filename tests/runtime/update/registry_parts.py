"""Real parts for the rc-update tests: signed bundles logged to a real ``mlflow server`` the way
convert-model logs them (``bundle/`` artifacts of a run, a version tagged edge.conversion_run_id,
an alias), and a TCP relay in front of the server that can stall or cut one download (the network
fault; the server behind it is the real one)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from converter.bundle import Staging
from converter.signing import load_signer
from runtime.manifest import load_manifest
from tests.runtime.multi_input import image_input, write_bundle


def signed_bundle(root: Path, name: str, version: str, key: Path, wrong_outputs: bool = False) -> Path:
    """A small ONNX bundle (model.onnx + reference.npz) of ``version``, signed with ``key``.
    ``wrong_outputs``: the model no longer gives the outputs its reference frames say (steering off
    by 0.3: a model that parses and runs but drives differently), still validly signed."""
    plain = write_bundle(root / f"plain-{version}", name, [image_input()], reference=True)
    doc = json.loads((plain / "manifest.json").read_text())
    doc["model"]["version"] = version
    if wrong_outputs:
        ref = dict(np.load(plain / "reference.npz"))
        ref["out/steering"] = ref["out/steering"] + np.float32(0.3)
        with open(plain / "reference.npz", "wb") as out:
            np.savez_compressed(out, **ref)
        doc["source"]["reference"]["sha256"] = hashlib.sha256((plain / "reference.npz").read_bytes()).hexdigest()
    (plain / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    target = root / "builds" / name / f"v{version}"
    with Staging(target, seed_from=[]) as st:
        for f in plain.iterdir():
            if f.name != "manifest.json":
                shutil.copy2(f, st.path / f.name)
        st.commit(load_manifest(plain), load_signer(str(key)))
    return target


def publish(url: str, name: str, bundle: Path, alias: str = "champion") -> str:
    """Log ``bundle`` as a run's ``bundle/`` artifacts, register a version of ``name`` tagged with
    that run, point ``alias`` at it; the version number."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    exp = client.get_experiment_by_name("edge-conversion")
    exp_id = exp.experiment_id if exp else client.create_experiment("edge-conversion")
    run = client.create_run(exp_id)
    client.log_artifacts(run.info.run_id, str(bundle), artifact_path="bundle")
    client.set_terminated(run.info.run_id)
    try:
        client.create_registered_model(name)
    except Exception as e:  # already registered by an earlier publish
        if "already exists" not in str(e).lower():
            raise
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/bundle", run_id=run.info.run_id,
                                     tags={"edge.conversion_run_id": run.info.run_id})
    client.set_registered_model_alias(name, alias, mv.version)
    return str(mv.version)


def version_tags(url: str, name: str, version: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    return dict(MlflowClient(tracking_uri=url, registry_uri=url).get_model_version(name, version).tags)


class Relay:
    """A TCP relay to ``upstream`` (host, port). A request whose first line contains ``cut_on`` gets
    ``cut_after`` bytes of its answer, then the relay either holds the connection open (``stall``)
    or closes it. ``cut`` is set once that happened."""

    def __init__(self, upstream: tuple[str, int], cut_on: str, cut_after: int, stall: bool) -> None:
        self.upstream, self.cut_on, self.cut_after, self.stall = upstream, cut_on.encode(), cut_after, stall
        self.cut = threading.Event()
        self._done = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._done.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        up = socket.create_connection(self.upstream)
        head = client.recv(65536)
        cutting = self.cut_on in head.split(b"\r\n", 1)[0]
        up.sendall(head)
        pump: Callable[[], None] = lambda: _pipe(client, up)  # noqa: E731
        threading.Thread(target=pump, daemon=True).start()
        sent = 0
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                if cutting and sent + len(data) > self.cut_after:
                    client.sendall(data[:max(self.cut_after - sent, 0)])
                    self.cut.set()
                    if self.stall:
                        self._done.wait()
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass  # the client went away (killed): nothing left to relay
        finally:
            for s in (client, up):  # shutdown first: a close alone sends no FIN while the pump thread reads it
                with contextlib.suppress(OSError):  # already gone
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._done.set()
        self.sock.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        return
