"""Signed bundles on the car: verify_bundle and ``rc-runtime --trust`` with real ed25519 keys.

Keys are generated with ``cryptography`` (and one with ``openssl genpkey`` when openssl is on PATH);
bundles are the small ONNX ones of tests/runtime/multi_input.py, signed the way convert-model signs
(converter.bundle.Staging.commit with a converter.signing.Signer). ~3 s in all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from converter.signing import load_signer
from runtime.cli import main
from runtime.manifest import IntegrityError, load_manifest
from runtime.manifest.signature import SIGNATURE_NAME, SignatureError, load_trusted_keys, verify_bundle
from runtime.sim import CarSimulator
from tests.runtime.helpers import host_neutrals
from tests.runtime.multi_input import image_input, write_bundle
from tests.runtime.signing.keys import signed_bundle, write_keypair


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return {n: write_keypair(tmp_path, n) for n in ("team", "other")}


@pytest.fixture
def bundle(tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> Path:
    return signed_bundle(tmp_path, load_signer(str(keys["team"][0])))


def test_a_signed_bundle_verifies_against_its_key(bundle: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    trusted = load_trusted_keys([str(keys["other"][1]), str(keys["team"][1])])
    assert verify_bundle(bundle, trusted) == trusted[1].key_id
    doc = json.loads((bundle / SIGNATURE_NAME).read_text())
    assert doc["key_id"] == trusted[1].key_id and "BEGIN PUBLIC KEY" in doc["public_key"]


def test_a_changed_manifest_byte_is_refused(bundle: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    data = bytearray((bundle / "manifest.json").read_bytes())
    i = data.index(b'"version": "1"') + len(b'"version": "')
    data[i : i + 1] = b"9"  # still a valid manifest: only the signature can tell
    (bundle / "manifest.json").write_bytes(bytes(data))
    load_manifest(bundle)
    with pytest.raises(SignatureError, match="altered after signing"):
        verify_bundle(bundle, load_trusted_keys([str(keys["team"][1])]))


def test_a_changed_model_file_fails_its_sha256(bundle: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    onnx = bundle / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        verify_bundle(bundle, load_trusted_keys([str(keys["team"][1])]))


def test_a_bundle_signed_by_another_key_is_refused(bundle: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    with pytest.raises(SignatureError, match="not a trusted key"):
        verify_bundle(bundle, load_trusted_keys([str(keys["other"][1])]))


def test_a_forged_signature_under_the_trusted_key_id_is_refused(
    bundle: Path, keys: dict[str, tuple[Path, Path]]
) -> None:
    """Signed by another key but claiming the trusted key's id: the signature itself fails."""
    other = load_signer(str(keys["other"][0]))
    doc = json.loads((bundle / SIGNATURE_NAME).read_text())
    doc["signature"] = other.signature_doc((bundle / "manifest.json").read_bytes())["signature"]
    (bundle / SIGNATURE_NAME).write_text(json.dumps(doc))
    with pytest.raises(SignatureError, match="does not match its signature"):
        verify_bundle(bundle, load_trusted_keys([str(keys["team"][1])]))


def test_an_unsigned_bundle_is_refused_when_keys_are_trusted(tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    plain = write_bundle(tmp_path, "pilot", [image_input()])
    with pytest.raises(SignatureError, match="is not signed"):
        verify_bundle(plain, load_trusted_keys([str(keys["team"][1])]))


def test_a_private_key_is_not_a_trusted_public_key(keys: dict[str, tuple[Path, Path]]) -> None:
    with pytest.raises(SignatureError, match="not a PEM public key"):
        load_trusted_keys([str(keys["team"][0])])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not on PATH")
def test_a_key_made_by_openssl_signs_and_verifies(tmp_path: Path) -> None:
    private, public = tmp_path / "signing.pem", tmp_path / "signing.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    bundle = signed_bundle(tmp_path, load_signer(str(private)))
    assert verify_bundle(bundle, load_trusted_keys([str(public)])).startswith("sha256:")


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("case", ["unsigned", "other key", "tampered manifest"])
def test_rc_runtime_with_trust_refuses_and_never_arms(
    case: str, bundle: Path, keys: dict[str, tuple[Path, Path]], clip_video: Path, sim: tuple[CarSimulator, str],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    trust = keys["team"][1]
    if case == "unsigned":
        (bundle / SIGNATURE_NAME).unlink()
    elif case == "other key":
        trust = keys["other"][1]
    else:
        text = (bundle / "manifest.json").read_text()
        (bundle / "manifest.json").write_text(text.replace('"version": "1"', '"version": "2"', 1))
    code = main(["--bundle", str(bundle), "--trust", str(trust), "--backend", "onnxruntime",
                 "--camera", f"file://{clip_video}", "--serial", port, "--max-frames", "5"])
    assert code == 2
    assert "rc-runtime:" in one_line_error(capsys)
    assert car.wait_for(lambda s: s.state == "disarmed" and len(host_neutrals(s)) >= 1, 1.0)
    assert not car.commands()


def test_rc_runtime_drives_a_trusted_bundle_and_without_trust_says_unverified(
    bundle: Path, keys: dict[str, tuple[Path, Path]], clip_video: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = tmp_path / "runtime.toml"
    config.write_text(f'[bundle]\ntrust = ["{keys["team"][1]}"]\n')
    common = ["--bundle", str(bundle), "--backend", "onnxruntime", "--camera", f"file://{clip_video}",
              "--serial", "null://", "--max-frames", "3"]
    with caplog.at_level("INFO", logger="runtime"):
        assert main([*common, "--config", str(config)]) == 0
    assert "verified: signed by sha256:" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="runtime"):
        assert main(common) == 0
    assert "is not verified" in caplog.text


def test_trust_in_the_config_is_a_typed_array_and_the_flag_replaces_it(tmp_path: Path) -> None:
    from runtime.cli_args import build_parser, config_from_args
    from runtime.config import ConfigError, load_config

    config = tmp_path / "runtime.toml"
    config.write_text('[bundle]\ntrust = ["/etc/rc-car/a.pub.pem"]\n')
    assert load_config(config).bundle.trust == ("/etc/rc-car/a.pub.pem",)
    args = build_parser().parse_args(["--config", str(config), "--trust", "b.pem", "--trust", "c.pem"])
    assert config_from_args(args).bundle.trust == ("b.pem", "c.pem")
    config.write_text('[bundle]\ntrust = "a.pub.pem"\n')
    with pytest.raises(ConfigError, match=r"\[bundle\] trust = 'a.pub.pem' must be an array"):
        load_config(config)
