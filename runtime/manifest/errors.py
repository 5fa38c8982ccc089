"""The bundle contract's errors: a bundle that cannot be used, and a file that fails its sha256."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle that cannot be used: missing, malformed, or a build that is not in it."""


class IntegrityError(BundleError):
    """A model file whose bytes do not match the manifest's sha256."""
