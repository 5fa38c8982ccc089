"""Signed bundles on the car: ``manifest.json.sig`` checked against the keys the car trusts.

The converter (``convert-model --sign``) signs the exact bytes of ``manifest.json`` with ed25519 and
keeps the detached signature beside it in ``manifest.json.sig`` (JSON; docs/contract.md). The
manifest lists every file's sha256, so a valid signature plus the sha256 checks cover the bundle.
Shared by ``rc-runtime --trust`` and the rc-update agent; ``cryptography`` does the crypto (it is
imported only when a check is asked for, so unsigned bundles still run without it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.manifest.document import MANIFEST_NAME, load_manifest
from runtime.manifest.errors import BundleError
from runtime.manifest.integrity import sha256_file, verified_path

SIGNATURE_NAME = MANIFEST_NAME + ".sig"
ALGORITHM = "ed25519"


class SignatureError(BundleError):
    """A bundle that is unsigned, signed by a key the car does not trust, or altered since signing."""


@dataclass(frozen=True)
class TrustedKey:
    """An ed25519 public key the car accepts signatures from, with its fingerprint and file."""

    key: Any  # cryptography's Ed25519PublicKey
    key_id: str
    source: str


def key_id(public_key: Any) -> str:
    """The fingerprint of an ed25519 public key: ``sha256:`` and the hex sha256 of its 32 raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def load_trusted_keys(paths: list[str] | tuple[str, ...]) -> list[TrustedKey]:
    """The public keys in ``paths`` (PEM, as ``openssl pkey -pubout`` writes them). ``SignatureError``
    naming the file and the fix for one that is missing, not PEM, or not an ed25519 public key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise SignatureError(f"--trust {p}: cannot read it ({e.strerror}); pass the signer's public key PEM") from None
        try:
            key = load_pem_public_key(data)
        except ValueError:
            raise SignatureError(f"--trust {p}: not a PEM public key; make one with "
                                 "`openssl pkey -in signing.pem -pubout -out signing.pub.pem`") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError(f"--trust {p}: a {type(key).__name__}, not an ed25519 public key; bundles are "
                                 "signed with ed25519 (openssl genpkey -algorithm ed25519)")
        keys.append(TrustedKey(key, key_id(key), str(p)))
    return keys


def read_signature(bundle_dir: str | Path) -> dict[str, Any] | None:
    """The bundle's ``manifest.json.sig`` document, or None for an unsigned bundle; ``SignatureError``
    when it is there but malformed."""
    path = Path(bundle_dir) / SIGNATURE_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SignatureError(f"{path}: unreadable signature ({e}); re-copy the bundle") from None
    if not isinstance(doc, dict) or doc.get("algorithm") != ALGORITHM or not isinstance(doc.get("signature"), str) \
            or not isinstance(doc.get("key_id"), str):
        raise SignatureError(f"{path}: not an {ALGORITHM} bundle signature; re-copy the bundle or re-sign it")
    return doc


def verify_bundle(bundle_dir: str | Path, trusted: list[TrustedKey]) -> str:
    """Check a bundle before any load: its signature is valid for one of ``trusted``, over the exact
    bytes of ``manifest.json``, and then every file the manifest lists matches its sha256. Returns the
    signer's key id. ``SignatureError`` (unsigned, untrusted signer, tampered manifest) or
    ``BundleError``/``IntegrityError`` (missing or altered file), each one line naming the fix."""
    from cryptography.exceptions import InvalidSignature

    bundle = Path(bundle_dir)
    if not trusted:
        raise SignatureError("no trusted keys given; pass --trust PUB.pem")
    doc = read_signature(bundle)
    if doc is None:
        raise SignatureError(f"{bundle} is not signed (no {SIGNATURE_NAME}) and signed bundles are required "
                             "(--trust); convert it with `convert-model --sign KEY`")
    signer = next((t for t in trusted if t.key_id == doc["key_id"]), None)
    if signer is None:
        raise SignatureError(f"{bundle} is signed by {doc['key_id'][:19]}…, which is not a trusted key "
                             f"({', '.join(t.key_id[:19] + '…' for t in trusted)}); add its public key with --trust")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
        manifest_bytes = (bundle / MANIFEST_NAME).read_bytes()
    except (binascii.Error, ValueError):
        raise SignatureError(f"{bundle / SIGNATURE_NAME}: signature is not base64; re-copy the bundle") from None
    except OSError as e:
        raise SignatureError(f"{bundle / MANIFEST_NAME}: cannot read it ({e.strerror})") from None
    try:
        signer.key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise SignatureError(f"{bundle / MANIFEST_NAME} does not match its signature by {signer.key_id[:19]}…: "
                             "the manifest was altered after signing; re-copy the bundle") from None
    manifest = load_manifest(bundle)
    for build in manifest.builds:
        verified_path(bundle, build)
    ref = manifest.source.get("reference")
    if ref:
        path = bundle / ref["file"]
        if not path.is_file() or sha256_file(path) != ref["sha256"]:
            raise SignatureError(f"{path} is missing or does not match the signed manifest's sha256; re-copy the bundle")
    return signer.key_id


def check_bundle_trust(bundle_dir: str | Path, trust: list[str] | tuple[str, ...], log: Any) -> str | None:
    """``rc-runtime``'s check before it loads a bundle: with ``trust`` (public key files), the bundle
    must pass :func:`verify_bundle` (``SignatureError``/``BundleError`` otherwise) and the signer's key
    id is returned; without, None, and ``log`` says the bundle is not verified (old bundles still run)."""
    if not trust:
        log.warning("bundle %s is not verified: no --trust key given, so its signature is not checked", bundle_dir)
        return None
    try:
        import cryptography  # noqa: F401  (on the car it comes with the runtime extra)
    except ImportError:
        raise SignatureError("--trust needs the `cryptography` package: pip install 'rc-edge[jetson]' "
                             "(or pip install cryptography)") from None
    signer = verify_bundle(bundle_dir, load_trusted_keys(trust))
    log.info("bundle %s verified: signed by %s", bundle_dir, signer)
    return signer
