"""A segment's SACK blocks sit in the peer's sequence space, unwrapped next to its ack (RFC 2018 §3)."""

from __future__ import annotations

from pcapcheck.connections import rebuild, segment_at, segment_list
from pcapcheck.segments import Side
from tests.builders import Conversation


def _with_sack(server_isn: int) -> list:
    conv = Conversation(server_isn=server_isn)
    conv.client("S").server("SA").client("A").server("PA", length=3000).client("A", ack=server_isn + 1001)
    rows = conv.rows()
    raw_ack = int(rows["ack"][4])
    rows["sack_count"][4] = 2
    rows["sack"][4][0] = ((raw_ack + 1000) & 0xFFFFFFFF, (raw_ack + 2000) & 0xFFFFFFFF)
    rows["sack"][4][1] = ((raw_ack + 2500) & 0xFFFFFFFF, (raw_ack + 3000) & 0xFFFFFFFF)
    return list(rebuild([rows]))


def test_sack_edges_are_numbered_like_the_ack_they_ride_on():
    (conn,) = _with_sack(server_isn=5000)
    bases = (conn.base(Side.CLIENT), conn.base(Side.SERVER))
    ack_segment = segment_at(conn, 4, bases)
    ack = ack_segment.ack
    assert ack_segment.sack_blocks == ((ack + 1000, ack + 2000), (ack + 2500, ack + 3000))
    assert segment_list(conn)[4] == ack_segment


def test_sack_edges_past_the_32_bit_wrap_stay_above_the_ack():
    # The server's numbers wrap between the ack and the SACK edges: still 1000 and 2000 above it.
    (conn,) = _with_sack(server_isn=2**32 - 1500)
    bases = (conn.base(Side.CLIENT), conn.base(Side.SERVER))
    ack_segment = segment_at(conn, 4, bases)
    ack = ack_segment.ack
    assert ack_segment.sack_blocks[0] == (ack + 1000, ack + 2000)
    assert segment_list(conn) == [segment_at(conn, i, bases) for i in range(conn.packets)]
