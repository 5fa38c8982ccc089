"""The spec's integrity claim, proven exhaustively on the wire: every burst of up to 16 bits, in the
order a UART sends them (each byte LSB first), inside a frame of every type, is caught."""

from __future__ import annotations

import pytest

from runtime.link.protocol import FrameDecoder
from tests.runtime.link.burst_search import search_bursts
from tests.runtime.link.vectors import hexbytes, load_vectors

V = load_vectors()
ONE_PER_TYPE = {v["type"]: v for v in reversed(V["frames"])}  # the first vector of each type


@pytest.mark.parametrize("vec", ONE_PER_TYPE.values(), ids=lambda v: v["type"])
def test_every_burst_up_to_16_bits_on_the_wire_is_caught(vec: dict) -> None:
    frame = hexbytes(vec["hex"])
    result = search_bursts(frame, lsb_first=True)
    n = 8 * len(frame)
    assert result.bursts == sum(min(1 << 15, 1 << max(0, n - s - 1)) for s in range(n))  # all of them
    assert result.undetected == [], f"{len(result.undetected)} bursts pass the CRC, e.g. {result.undetected[0].hex(' ')}"


def test_search_finds_what_it_is_meant_to_find() -> None:
    """A search that cannot find anything proves nothing: a burst that turns one valid frame into
    another (possible for 32-bit bursts) must come out as undetected."""
    hb = hexbytes(next(v["hex"] for v in V["frames"] if v["type"] == "HEARTBEAT"))
    assert FrameDecoder().feed(hb)  # the search starts from a valid frame
    wide = search_bursts(hb, lsb_first=True, max_burst=17)  # 17 bits: the generator polynomial itself fits
    assert len(wide.undetected) == 16  # x^16+x^12+x^5+1 at each of the 16 starts inside SEQ..CRC
