"""The host's SEQ counter, shared with the deadline guard process so that SEQ on the wire never goes
back: both take the next number at the moment they write (docs/protocol.md, "Host obligations").

The counter is a u16 in a one-page memfd that the guard maps too (its fd is passed to the guard).
There is no cross-process lock on purpose: a lock held by a runtime that was stopped (SIGSTOP, a
stuck C call) would stop the guard. Without one, a guard NEUTRAL and a host frame written at the
same instant may share a number; a smaller number than one already written never goes out, because
each writer stores only ``the number it read + 1`` right after its own write.
"""

from __future__ import annotations

import mmap
import os
import struct
import weakref

from runtime.link.protocol import SEQ_MOD

_U16 = struct.Struct("<H")


class SharedSeq:
    """A u16 SEQ counter in shared memory. ``fd`` (a memfd) is what another process maps with
    :meth:`attach`; created without ``fd`` it makes its own."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = os.memfd_create("rc-link-seq", os.MFD_CLOEXEC)
            os.ftruncate(fd, mmap.PAGESIZE)
        self.fd = fd
        self._map = mmap.mmap(fd, mmap.PAGESIZE)
        self._closer = weakref.finalize(self, _release, self._map, fd)

    @classmethod
    def attach(cls, fd: int) -> SharedSeq:
        """Map the counter another process created (the guard's side)."""
        return cls(fd)

    def peek(self) -> int:
        """The SEQ the next frame will carry."""
        return int(_U16.unpack_from(self._map, 0)[0])

    def used(self, seq: int) -> None:
        """A frame with ``seq`` went out (some or all of its bytes): the next one gets ``seq + 1``."""
        _U16.pack_into(self._map, 0, (seq + 1) % SEQ_MOD)

    def close(self) -> None:
        """Unmap and close the memfd (the other process keeps its own mapping); also done when
        garbage collected."""
        self._closer()


def _release(mapping: mmap.mmap, fd: int) -> None:
    mapping.close()
    os.close(fd)
