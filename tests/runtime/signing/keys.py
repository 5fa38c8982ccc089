"""Real ed25519 key pairs and small signed bundles for the signing tests (runtime and converter)."""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from converter.bundle import Staging
from converter.signing import Signer
from runtime.manifest import load_manifest
from tests.runtime.multi_input import image_input, write_bundle


def write_keypair(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh ed25519 key pair as PEM files: (private, public)."""
    key = Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return private, public


def signed_bundle(root: Path, signer: Signer, name: str = "pilot") -> Path:
    """A small bundle rewritten through the converter's staging commit, signed by ``signer``."""
    plain = write_bundle(root / "plain", name, [image_input()], reference=True)
    target = root / "builds" / name / "v1"
    manifest = load_manifest(plain)
    with Staging(target, seed_from=[]) as st:
        for f in plain.iterdir():
            if f.name != "manifest.json":
                shutil.copy2(f, st.path / f.name)
        st.commit(manifest, signer)
    return target
