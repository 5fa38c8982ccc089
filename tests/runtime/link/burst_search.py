"""Exhaustive burst-error search over a frame, in the bit order a UART puts on the wire.

A UART sends each byte least significant bit first, so a burst of ``L`` bits on the wire flips bits
``s .. s+L-1`` of the frame read LSB-first per byte. For every start ``s`` and every burst pattern
of length <= 16 (first and last bit flipped, anything between), this builds the corrupted frame and
asks whether a receiver could find a CRC-valid frame anywhere in it: at any offset holding 0xA5, a
header naming a known type with its length, and a matching CRC. "No CRC-valid frame at any offset"
implies that the decoder returns nothing (every frame it returns is one of those); each candidate
the search does find is then run through the real FrameDecoder.

The CRC is taken from ``runtime.link.protocol.crc16`` as a black box: any CRC is affine over GF(2),
so crc(x) = crc(0) ^ XOR_j table_j[x_j] with per-byte-position tables made by calling crc16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.link.protocol import CRC_LEN, HEADER_LEN, PAYLOAD_LEN, SYNC, FrameDecoder, crc16

MAX_BURST = 16
_REVERSE = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], dtype=np.uint8)


@dataclass
class BurstResult:
    bursts: int  # bursts tried
    candidates: int  # corrupted frames holding a CRC-valid frame somewhere
    undetected: list[bytes]  # corrupted frames from which the real decoder returns a frame


class _AffineCrc:
    """Vectorised ``crc16`` for bodies of one length (rows of a uint8 matrix)."""

    def __init__(self, length: int) -> None:
        self.zero = crc16(bytes(length))
        self.tables = np.zeros((length, 256), dtype=np.uint16)
        for j in range(length):
            body = bytearray(length)
            for v in range(256):
                body[j] = v
                self.tables[j, v] = crc16(body) ^ self.zero

    def __call__(self, bodies: np.ndarray) -> np.ndarray:
        out = np.full(len(bodies), self.zero, dtype=np.uint16)
        for j in range(bodies.shape[1]):
            out ^= self.tables[j][bodies[:, j]]
        return out


_CRCS: dict[int, _AffineCrc] = {}
_HEADER_LEN = np.full((256, 256), -1, dtype=np.int16)  # [LEN, TYPE] -> payload length or -1
for _t, _n in PAYLOAD_LEN.items():
    _HEADER_LEN[_n, _t] = _n


def _crc_valid_anywhere(rows: np.ndarray) -> np.ndarray:
    """For each row (a corrupted byte string), whether any offset starts a CRC-valid frame."""
    hit = np.zeros(len(rows), dtype=bool)
    n = rows.shape[1]
    for k in range(n - HEADER_LEN - CRC_LEN + 1):
        idx = np.nonzero((rows[:, k] == SYNC) & ~hit)[0]
        if not len(idx):
            continue
        plen = _HEADER_LEN[rows[idx, k + 1], rows[idx, k + 2]]
        for length in np.unique(plen):
            end = k + HEADER_LEN + int(length)
            if length < 0 or end + CRC_LEN > n:
                continue
            sel = idx[plen == length]
            crc = _CRCS.setdefault(end - k - 1, _AffineCrc(end - k - 1))
            got = crc(rows[sel, k + 1 : end])
            sent = rows[sel, end].astype(np.uint16) | (rows[sel, end + 1].astype(np.uint16) << 8)
            hit[sel[got == sent]] = True
    return hit


def search_bursts(frame: bytes, lsb_first: bool = True, max_burst: int = MAX_BURST) -> BurstResult:
    """Every burst of 1..``max_burst`` bits inside ``frame``; ``lsb_first``: the wire's bit order
    (False: MSB-first, the order a non-reflected CRC's guarantee is stated in)."""
    base = np.frombuffer(frame, dtype=np.uint8)
    nbits = 8 * len(frame)
    all_masks = np.arange(1, 1 << max_burst, 2, dtype=np.uint64)  # bit 0 set: the burst's first bit
    bursts, candidates, undetected = 0, 0, []
    for s in range(nbits):
        masks = all_masks[all_masks < (1 << min(max_burst, nbits - s))]
        err = masks << np.uint64(s % 8)  # spans at most 3 bytes from byte s // 8
        rows = np.tile(base, (len(masks), 1))
        for i in range(3):
            col = s // 8 + i
            if col >= len(frame):
                break
            e = ((err >> np.uint64(8 * i)) & np.uint64(0xFF)).astype(np.uint8)
            rows[:, col] ^= e if lsb_first else _REVERSE[e]
        bursts += len(masks)
        for r in np.nonzero(_crc_valid_anywhere(rows))[0]:
            candidates += 1
            data = rows[r].tobytes()
            dec = FrameDecoder()
            if dec.feed(data, now=0.0) + dec.expire(1.0):
                undetected.append(data)
    return BurstResult(bursts, candidates, undetected)
