"""``convert-model --sign KEY``: sign a new bundle's manifest with an ed25519 private key.

The key is a PEM file as ``openssl genpkey -algorithm ed25519 -out signing.pem`` writes it (also
``$RC_SIGNING_KEY``; an encrypted key's passphrase in ``$RC_SIGNING_KEY_PASSPHRASE``). It is loaded
and checked before any work, so a bad key writes nothing. The signature covers the exact bytes of
``manifest.json``; the car checks it with runtime/manifest/signature.py.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.errors import ConverterError
from runtime.manifest import sha256_file
from runtime.manifest.signature import ALGORITHM, SIGNATURE_NAME, key_id, read_signature

KEY_ENV = "RC_SIGNING_KEY"
PASSPHRASE_ENV = "RC_SIGNING_KEY_PASSPHRASE"


@dataclass(frozen=True)
class Signer:
    """A loaded ed25519 private key, its public key PEM and fingerprint."""

    key: Any  # cryptography's Ed25519PrivateKey
    key_id: str
    public_pem: str
    source: str

    def signature_doc(self, manifest_bytes: bytes) -> dict[str, Any]:
        """The ``manifest.json.sig`` document for these manifest bytes."""
        import hashlib

        return {
            "algorithm": ALGORITHM,
            "signed_file": "manifest.json",
            "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
            "key_id": self.key_id,
            "public_key": self.public_pem,
            "signature": base64.b64encode(self.key.sign(manifest_bytes)).decode("ascii"),
        }

    def write_signature(self, bundle_dir: Path, manifest_bytes: bytes) -> Path:
        """Write ``manifest.json.sig`` for ``manifest_bytes`` into ``bundle_dir`` (a staging directory)."""
        path = bundle_dir / SIGNATURE_NAME
        path.write_text(json.dumps(self.signature_doc(manifest_bytes), indent=2) + "\n", encoding="utf-8")
        return path

    def has_signed(self, bundle_dir: Path) -> bool:
        """Whether ``bundle_dir`` already holds this key's signature of its current manifest."""
        try:
            doc = read_signature(bundle_dir)
        except ValueError:
            return False
        return (doc is not None and doc["key_id"] == self.key_id
                and doc.get("manifest_sha256") == sha256_file(bundle_dir / "manifest.json"))


def signing_key_path(flag: str | None) -> str | None:
    """The key file: ``--sign``, else ``$RC_SIGNING_KEY``, else None (no signing)."""
    return flag or os.environ.get(KEY_ENV) or None


def load_signer(path: str) -> Signer:
    """The ed25519 private key in ``path``. ``ConverterError`` (exit 2, one line) for a missing or
    unreadable file, a file that is not a PEM private key, another key type, or an encrypted key whose
    passphrase is not in ``$RC_SIGNING_KEY_PASSPHRASE`` (or is wrong)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    make = "make one with `openssl genpkey -algorithm ed25519 -out signing.pem`"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConverterError(f"--sign {path}: cannot read the key ({e.strerror}); {make}") from None
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = load_pem_private_key(data, password=passphrase.encode() if passphrase else None)
    except TypeError:  # encrypted without a passphrase, or a passphrase for a plain key
        if passphrase:
            raise ConverterError(f"--sign {path}: the key is not encrypted; unset ${PASSPHRASE_ENV}") from None
        raise ConverterError(f"--sign {path}: the key is encrypted; put its passphrase in ${PASSPHRASE_ENV}") from None
    except (ValueError, UnsupportedAlgorithm):
        hint = "wrong passphrase in $" + PASSPHRASE_ENV + " or " if passphrase else ""
        raise ConverterError(f"--sign {path}: {hint}not a PEM private key; {make}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConverterError(f"--sign {path}: a {type(key).__name__.lstrip('_')}, not an ed25519 key; {make}")
    public = key.public_key()
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return Signer(key, key_id(public), pem, path)
