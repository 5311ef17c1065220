"""Rebuilding connections: grouping by tuple, incarnations, roles, unwrapped sequence numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapcheck.capture import open_capture
from pcapcheck.connections import Endpoint, _incarnation_starts, _split_connections, rebuild
from pcapcheck.segments import ACK, FIN, PSH, RST, SYN, Side

from .builders import Conversation
from .test_capture_support import DATA


def connections(*names: str):
    return list(rebuild(open_capture([str(DATA / n) for n in names]).batches()))


def summary(conn):
    return (conn.id, str(conn.client), str(conn.server), conn.incarnation, conn.previous_id, conn.first_frame, conn.last_frame)


def test_real_capture_rebuilds_six_connections_in_order_of_first_frame():
    assert [summary(c) for c in connections("real-eth.pcap")] == [
        (1, "198.18.0.1:54484", "198.18.0.2:8080", 1, None, 1, 10),
        (2, "198.18.0.1:40001", "198.18.0.2:8081", 1, None, 11, 20),
        (3, "198.18.0.1:40001", "198.18.0.2:8081", 2, 2, 21, 30),  # same tuple, reopened
        (4, "198.18.0.1:52872", "198.18.0.2:8089", 1, None, 31, 32),  # refused
        (5, "198.18.0.1:54488", "198.18.0.2:8080", 1, None, 33, 38),  # abortive close
        (6, "[fd00::1]:49220", "[fd00::2]:8080", 1, None, 39, 48),
    ]


def test_real_capture_counts_packets_bytes_and_flags_per_side():
    conns = connections("real-eth.pcap")
    first = conns[0]
    assert (first.packets_sent(Side.CLIENT), first.bytes_sent(Side.CLIENT)) == (6, 1000)
    assert (first.packets_sent(Side.SERVER), first.bytes_sent(Side.SERVER)) == (4, 200)
    assert first.flags_seen == SYN | ACK | FIN | PSH
    assert conns[3].flags_seen == SYN | RST | ACK
    assert not any(c.roles_inferred for c in conns)


def test_relative_numbers_match_what_wireshark_shows():
    first = connections("real-eth.pcap")[0]
    segs = list(first.segments())
    # tshark: frame 7 "8080 -> 54484 [PSH, ACK] Seq=1 Ack=1002 Len=200"
    assert [(s.frame, s.sender, s.rel_seq, s.rel_ack, s.length) for s in segs if s.frame == 7] == [
        (7, Side.SERVER, 1, 1002, 200)
    ]
    assert first.client_isn == 2920663010 and first.server_isn == 948586033


def test_retransmitted_syn_is_not_a_new_incarnation_but_each_reopening_is():
    conns = connections("incarnations.pcap")
    assert [(c.id, c.incarnation, c.previous_id, c.first_frame, c.last_frame) for c in conns] == [
        (1, 1, None, 1, 10),  # SYN, retransmitted SYN (frame 2), ..., graceful close
        (2, 2, 1, 11, 19),  # new SYN after FIN both ways
        (3, 3, 2, 20, 21),  # refused: SYN, RST-ACK
        (4, 4, 3, 22, 27),  # new SYN after the RST; still open at frame 27
        (5, 5, 4, 28, 36),  # SYN 2**31 away from the open connection's sequence space
    ]
    assert conns[0].client_isn == 1000 and conns[1].client_isn == 500_000
    assert all(c.client == Endpoint("198.18.0.1", 40030) for c in conns)


def test_sequence_numbers_unwrap_past_2_32_on_both_sides():
    (conn,) = connections("seq-wrap.pcap")
    assert conn.client_isn == 2**32 - 100 and conn.server_isn == 2**32 - 50
    segs = list(conn.segments())
    fin_c = next(s for s in segs if s.fin and s.sender is Side.CLIENT)
    assert (fin_c.seq, fin_c.rel_seq, fin_c.rel_ack) == (2**32 - 100 + 301, 301, 201)
    last = segs[-1]
    assert (last.seq, last.ack) == (2**32 - 100 + 302, 2**32 - 50 + 202)
    assert (last.rel_seq, last.rel_ack) == (302, 202)
    assert np.all(np.diff(conn.seq[conn.sender == 0]) >= 0)


def test_mid_stream_pickups_infer_roles_from_syn_ack_or_ports():
    mid, synack_only = connections("midstream.pcap")
    assert mid.roles_inferred and str(mid.server) == "198.18.0.4:8443"  # lower port
    assert (mid.client_isn, mid.server_isn) == (None, None)
    assert synack_only.roles_inferred and str(synack_only.server) == "198.18.0.6:5432"  # sent the SYN-ACK
    assert synack_only.server_isn == 40_000 and synack_only.client_isn is None


def test_connections_on_reused_tuples_across_several_files_interleave_by_first_frame():
    conns = connections("midstream.pcap", "incarnations.pcap")
    assert [c.id for c in conns] == list(range(1, 8))
    assert [c.first_frame for c in conns] == sorted(c.first_frame for c in conns)


def test_no_segments_no_connections():
    assert list(rebuild([])) == []
    assert list(rebuild([np.zeros(0, dtype=Conversation().rows().dtype)])) == []


def rebuilt(conv: Conversation):
    rows = conv.rows()
    return list(rebuild([rows[: len(rows) // 2], rows[len(rows) // 2 :]]))


def test_rebuild_of_a_built_conversation_is_the_connection_the_builder_describes():
    conv = Conversation(client_isn=2**32 - 10, server_isn=77)
    conv.client("S").server("SA").client("A").client("PA", length=100).server("A").client("FA").server("FA").client("A")
    (conn,) = rebuilt(conv)
    expected = conv.connection()
    assert (conn.client, conn.server, conn.roles_inferred) == (expected.client, expected.server, False)
    assert conn.sender.tolist() == expected.sender.tolist()
    assert conn.seq.tolist() == expected.seq.tolist()
    assert conn.ack.tolist() == expected.ack.tolist()
    assert (conn.client_isn, conn.server_isn) == (expected.client_isn, expected.server_isn)


def test_a_rst_with_sequence_zero_does_not_shift_the_numbers_after_it():
    conv = Conversation(client_isn=3_000_000_000, server_isn=10)
    conv.client("S").server("SA").client("A").client("PA", length=50)
    conv.client("R", seq=0)  # a bogus RST (e.g. from a middlebox)
    conv.client("PA", length=50).server("A")
    (conn,) = rebuilt(conv)
    client_seqs = conn.seq[conn.sender == 0].tolist()
    assert client_seqs[-1] == 3_000_000_000 + 51  # not off by 2**32
    assert client_seqs[3] == 2**32  # the RST itself: raw 0 placed nearest the numbers around it


def test_a_listener_talked_to_from_several_ports_is_the_server_of_a_mid_stream_pickup():
    first = Conversation(client=("198.18.0.1", 40000), server=("198.18.0.2", 50000))
    second = Conversation(client=("198.18.0.1", 40001), server=("198.18.0.2", 50000), start=1_700_000_001.0)
    for conv in (first, second):
        conv.client("PA", length=10).server("A")
    rows = np.concatenate([first.rows(), second.rows()])
    rows["frame"] = np.arange(1, len(rows) + 1)
    conns = list(rebuild([rows]))
    assert [str(c.server) for c in conns] == ["198.18.0.2:50000", "198.18.0.2:50000"]
    assert all(c.roles_inferred for c in conns)


def test_ids_follow_first_frames_even_when_tuples_sort_the_other_way():
    late = Conversation(client=("198.18.0.1", 1000), server=("198.18.0.2", 80))
    early = Conversation(client=("198.18.0.9", 2000), server=("198.18.0.2", 80))
    late.skip_frame(5).client("S")
    early.client("S")
    conns = list(rebuild([np.sort(np.concatenate([early.rows(), late.rows()]), order="frame")]))
    assert [(c.id, c.client.addr) for c in conns] == [(1, "198.18.0.9"), (2, "198.18.0.1")]


@pytest.mark.parametrize("flags_between", ["FA/FA", "R", "RA"])
def test_a_closed_tuple_is_reopened_by_a_new_syn(flags_between):
    conv = Conversation()
    conv.client("S").server("SA").client("A")
    if flags_between == "FA/FA":
        conv.client("FA").server("FA").client("A")
    else:
        conv.server(flags_between)
    conv.client("S", seq=90_000).server("SA", seq=70_000, ack=90_001).client("A", seq=90_001, ack=70_001)
    conns = rebuilt(conv)
    assert [(c.incarnation, c.previous_id, c.client_isn) for c in conns] == [(1, None, 1000), (2, 1, 90_000)]


def test_a_new_isn_near_the_open_connections_space_is_not_a_new_incarnation():
    conv = Conversation()
    conv.client("S").server("SA").client("A").client("PA", length=10)
    conv.client("S", seq=5000)  # in-window SYN on an open connection (RFC 5961 §4 challenge case)
    assert len(rebuilt(conv)) == 1


SEGMENT_KINDS = ["S", "SA", "A", "PA", "FA", "R", "RA"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from(SEGMENT_KINDS), st.sampled_from([1000, 1001, 90_000, 2**31 + 5])),
        min_size=1,
        max_size=14,
    )
)
def test_the_vectorised_reopening_rule_cuts_where_the_row_by_row_walk_does(segments):
    conv = Conversation()
    for side, flags, seq in segments:
        conv.send(side, flags, seq=seq)
    rows = conv.rows()
    split = _split_connections(rows)
    walk_cuts = _incarnation_starts(split.rows, split.direction)
    assert split.starts.tolist() == walk_cuts
