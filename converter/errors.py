"""Errors the converter reports to users: one line naming the problem and the fix.

Exit codes (a contract of `convert-model`): 0 every requested format built and verified,
1 some formats failed (the others are built and listed), 2 bad usage or input.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUILD_FAILED = 1
EXIT_USAGE = 2


class ConverterError(Exception):
    """Bad usage or input: the whole conversion stops with exit code 2 and writes nothing."""

    exit_code = EXIT_USAGE


class RegistryError(ConverterError):
    """The registry is unreachable, or the model/version/alias does not exist."""


class ModelLoadError(ConverterError):
    """The version's artifacts hold no loadable model (corrupt, empty, unknown layer...)."""
