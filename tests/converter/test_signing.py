"""``convert-model --sign``: bad keys refused before any work, and a signed bundle logged to MLflow.

Real keys (cryptography), a real sqlite MLflow store; no TensorFlow conversion. ~4 s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from converter.cli import main
from converter.errors import ConverterError
from converter.mlflow_log import SIGNED_BY_TAG, log_conversion
from converter.registry import Registry
from converter.signing import PASSPHRASE_ENV, load_signer
from converter.summary import Summary
from runtime.manifest import load_manifest
from runtime.manifest.signature import SIGNATURE_NAME, SignatureError, load_trusted_keys, verify_bundle
from tests.runtime.signing.keys import signed_bundle, write_keypair


def bad_key(tmp: Path, kind: str) -> Path:
    path = tmp / f"{kind}.pem"
    if kind == "garbage":
        path.write_text("not a key\n")
    elif kind == "public key":
        path = write_keypair(tmp, "k")[1]
    elif kind == "ec key":
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    elif kind == "encrypted":
        ed = Ed25519PrivateKey.generate()
        path.write_bytes(ed.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"s3cret")))
    return path  # "missing": never written


@pytest.mark.parametrize(("kind", "msg"), [
    ("missing", "cannot read the key"),
    ("garbage", "not a PEM private key"),
    ("public key", "not a PEM private key"),
    ("ec key", "not an ed25519 key"),
    ("encrypted", f"put its passphrase in ${PASSPHRASE_ENV}"),
])
def test_a_bad_signing_key_is_one_line_exit_2_and_nothing_written(
    kind: str, msg: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    out, db = tmp_path / "builds", tmp_path / "mlflow.db"
    code = main(["--name", "m", "--version", "1", "--tracking-uri", f"sqlite:///{db}", "--output", str(out),
                 "--sign", str(bad_key(tmp_path, kind))])
    err = capfd.readouterr().err.strip()
    assert code == 2
    assert msg in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not db.exists()  # refused before the registry or any build


def test_the_key_may_come_from_the_environment(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RC_SIGNING_KEY", str(tmp_path / "nowhere.pem"))
    assert main(["--name", "m", "--version", "1", "--output", str(tmp_path / "b")]) == 2
    assert "nowhere.pem: cannot read the key" in capfd.readouterr().err


def test_an_encrypted_key_loads_with_its_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = bad_key(tmp_path, "encrypted")
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret")
    assert load_signer(str(path)).key_id.startswith("sha256:")
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(ConverterError, match="wrong passphrase"):
        load_signer(str(path))


def test_an_existing_bundle_is_never_re_signed_in_place(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    private, _ = write_keypair(tmp_path, "team")
    bundle = signed_bundle(tmp_path, load_signer(str(private)))
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    assert main(["--bundle", str(bundle), "--formats", "onnx-fp16", "--sign", str(private)]) == 2
    assert "never re-signed in place" in capfd.readouterr().err
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


def test_the_signature_and_public_key_are_logged_with_the_bundle(tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    private, public = write_keypair(tmp_path, "team")
    signer = load_signer(str(private))
    bundle = signed_bundle(tmp_path, signer, name="m")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    client.create_model_version("m", source=(tmp_path / "plain").as_uri())
    registry = Registry(uri)
    ref = registry.resolve("m", "1")
    run_id = log_conversion(registry, ref, load_manifest(bundle), Summary("m", "1", bundle), bundle)

    assert client.get_run(run_id).data.tags[SIGNED_BY_TAG] == signer.key_id
    assert client.get_model_version("m", "1").tags[SIGNED_BY_TAG] == signer.key_id
    got = Path(download_artifacts(run_id=run_id, artifact_path="bundle", dst_path=str(tmp_path / "dl"),
                                  tracking_uri=uri))
    doc = json.loads((got / SIGNATURE_NAME).read_text())
    assert doc["public_key"] == signer.public_pem and doc["key_id"] == signer.key_id
    # What the car downloads from the run verifies against the team's public key.
    assert verify_bundle(got, load_trusted_keys([str(public)])) == signer.key_id


@pytest.mark.slow
def test_convert_model_signs_end_to_end_and_a_new_key_rebuilds_the_cached_bundle(
    demo_registry: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    """The demo model through convert-model --sign (onnx only), its MLflow run tagged; converting again
    with another key rebuilds the bundle signed by that key, never re-signing it in place."""
    from mlflow import MlflowClient

    registry = tmp_path / "registry"  # a copy: this test rewrites v3's edge.* tags
    shutil.copytree(demo_registry.root, registry)
    uri = f"sqlite:///{registry / 'mlflow.db'}"
    (team, team_pub), (other, other_pub) = write_keypair(tmp_path, "team"), write_keypair(tmp_path, "other")
    argv = ["--name", demo_registry.name, "--version", "3", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
            "--formats", "onnx", "--json"]
    assert main([*argv, "--sign", str(team)]) == 0
    summary = json.loads(capfd.readouterr().out)
    bundle = Path(summary["bundle"])
    assert verify_bundle(bundle, load_trusted_keys([str(team_pub)])).startswith("sha256:")
    run = MlflowClient(tracking_uri=uri).get_run(summary["mlflow_run_id"])
    assert run.data.tags[SIGNED_BY_TAG] == load_signer(str(team)).key_id

    assert main([*argv, "--sign", str(other)]) == 0
    again = json.loads(capfd.readouterr().out)
    assert again["cache_hit"] is False
    assert verify_bundle(bundle, load_trusted_keys([str(other_pub)])) == load_signer(str(other)).key_id
    with pytest.raises(SignatureError, match="not a trusted key"):
        verify_bundle(bundle, load_trusted_keys([str(team_pub)]))
    # The same key again: a cache hit (the signer's tag is not part of the cache key).
    assert main([*argv, "--sign", str(other)]) == 0
    assert json.loads(capfd.readouterr().out)["cache_hit"] is True
