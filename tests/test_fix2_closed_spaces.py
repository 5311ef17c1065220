"""After a close, a segment numbered far outside the closed connection opens a new incarnation.

Second review, items 1 and 3.  samples/tw-reuse-client.pcap holds two connections on one tuple:
frames 1-11 (client FIN 8, server FIN 10, final ACK 11) and frames 12-22 (client SYN 12, server
SYN-ACK 13, client ACK 14, 2 s later).  The new ISNs lie 2^16 + 2 (client, Linux's old SND.NXT +
65537) and ~2^25 (server) away from the old numbers.  When the capture lost the new handshake, the
first segment seen of the new connection is a plain ACK or data: a sequence space closed by its FIN
never grows (RFC 9293 §3.10.4, §3.10.7.4), so that segment cannot belong to the old connection.
Expected: two connections and no error or warning, capture-quality notes at most.
"""

from __future__ import annotations

import dpkt
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapcheck.capture import open_capture
from pcapcheck.connections import _incarnation_starts, _split_connections, rebuild
from tests.builders import Conversation
from tests.test_connections_rebuild import rebuilt
from tests.test_fix_incarnations import SAMPLES, derive, sent_by_client, verdict, without


def test_reused_tuple_whose_new_syn_and_syn_ack_were_lost_reopens_at_the_handshake_ack(tmp_path):
    assert verdict(derive(tmp_path, "tw-reuse-client.pcap", without(12, 13))) == (2, [])
    assert verdict(derive(tmp_path, "tw-reuse-server.pcap", without(12, 13))) == (2, [])


def test_merged_taps_with_the_new_syn_lost_reopen_at_the_ack_sorted_before_the_syn_ack(tmp_path):
    # The server-side tap runs 50 µs late: the client's handshake ACK sorts before the SYN-ACK.
    def late_server_without_syn(frame, ts, buf):
        if frame == 12:
            return None
        return ts if sent_by_client(buf) else ts + 0.00005

    assert verdict(derive(tmp_path, "tw-reuse-client.pcap", late_server_without_syn)) == (2, [])


def test_client_side_capture_with_the_new_syn_lost_reopens_beyond_the_clients_fin(tmp_path):
    client_only = derive(
        tmp_path, "tw-reuse-client.pcap", lambda frame, ts, buf: ts if sent_by_client(buf) and frame != 12 else None
    )
    assert verdict(client_only) == (2, [])


def test_server_side_capture_with_the_new_syn_ack_lost_reopens_beyond_the_servers_fin(tmp_path):
    server_only = derive(
        tmp_path, "tw-reuse-client.pcap", lambda frame, ts, buf: None if sent_by_client(buf) or frame == 13 else ts
    )
    assert verdict(server_only) == (2, [])


def test_short_time_wait_reuse_whose_handshake_was_lost_is_two_connections_and_no_alarm(tmp_path):
    # crafted-short-time-wait: SYN 9 and SYN-ACK 10 of the reopening lost; the short TIME-WAIT
    # cannot be judged without the SYN that ended it.
    assert verdict(derive(tmp_path, "crafted-short-time-wait.pcap", without(9, 10))) == (2, [])


def test_an_ack_a_little_beyond_the_peers_fin_stays_in_its_connection():
    # The fin-ack-mismatch case: a wrong ack 11 beyond the FIN is a violation, not a new connection.
    conv = Conversation(client_isn=1000, server_isn=5000)
    conv.client("S").server("SA").client("A").client("FA").server("FA")
    conv.client("A", ack=5012)
    assert len(rebuilt(conv)) == 1


def test_data_far_beyond_both_fins_is_a_new_incarnation_picked_up_mid_stream():
    conv = Conversation(client_isn=1000, server_isn=5000)
    conv.client("S").server("SA").client("A").client("FA").server("FA").client("A")
    conv.client("PA", seq=1002 + 65537, ack=5000 + 2**25, length=10, dt=2.0)
    conns = rebuilt(conv)
    assert [(c.incarnation, c.packets, c.roles_inferred) for c in conns] == [(1, 6, False), (2, 1, True)]
    assert (str(conns[1].client), str(conns[1].server)) == ("198.18.0.1:40000", "198.18.0.2:8080")


def test_a_segment_beyond_its_senders_fin_by_more_than_a_window_is_a_new_incarnation():
    # Only the client has closed; its next segment lies 65537 past its FIN (Linux's reused ISN), more
    # than any unscaled window: the peer could not even accept it on the old connection.
    conv = Conversation(client_isn=1000, server_isn=5000)
    conv.client("S").server("SA").client("A").client("FA").server("A")
    conv.client("A", seq=1002 + 65537, ack=5001, dt=2.0)
    assert [c.packets for c in rebuilt(conv)] == [5, 1]


def test_duplicate_tap_copies_of_a_closed_connection_stay_in_it(tmp_path):
    # Item 3: a second tap's exact copies, 50 ms later, of the whole of crafted-synack-bad-ack
    # (what ``mergecap`` of the sample and ``editcap -t 0.05`` of it makes).
    with open(SAMPLES / "crafted-synack-bad-ack.pcap", "rb") as f:
        reader = dpkt.pcap.Reader(f)
        packets = [(ts, buf) for ts, buf in reader]
        linktype = reader.datalink()
    merged = sorted(packets + [(ts + 0.05, buf) for ts, buf in packets], key=lambda p: p[0])
    path = tmp_path / "two-taps.pcap"
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=linktype, nano=True)
        for ts, buf in merged:
            writer.writepkt(buf, ts=ts)
    conns = list(rebuild(open_capture([str(path)]).batches()))
    assert [(c.first_frame, c.last_frame) for c in conns] == [(1, 22)]


KINDS = ["S", "SA", "A", "PA", "FA", "R", "RA"]
NUMBERS = [1000, 1001, 1101, 5001, 5012, 1002 + 65537, 5000 + 2**20, 2**31 + 5]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from(KINDS), st.sampled_from(NUMBERS), st.sampled_from(NUMBERS)),
        min_size=1,
        max_size=14,
    )
)
def test_the_vectorised_split_after_a_close_cuts_where_the_row_by_row_walk_does(segments):
    conv = Conversation(client_isn=1000, server_isn=5000)
    for side, flags, seq, ack in segments:
        conv.send(side, flags, seq=seq, ack=ack, length=100 if "P" in flags else 0)
    split = _split_connections(conv.rows())
    assert split.starts.tolist() == _incarnation_starts(split.rows, split.direction)
