"""Replay: a SYN-ACK the capture lost (review item B).

Only a SYN-SENT endpoint that received the peer's SYN acknowledges it (RFC 9293 §3.10.7.3), so the
client's ACK after its SYN, with the server's segments following, proves the SYN-ACK: the replay
infers it, records a capture-quality gap, and both endpoints end as if it had been captured.
"""

from pathlib import Path

from pcapcheck.capture import open_capture
from pcapcheck.connections import rebuild
from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.replay.model import ANOMALY_ACK_UNSEEN_DATA, Close, State
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
C, S = Side.CLIENT, Side.SERVER


def server_close_without_synack() -> Conversation:
    conv = Conversation().client("S")
    conv.next_seq[1] += 1  # the SYN-ACK (seq 5000) was sent and lost by the capture
    conv.client("A").client("PA", length=23).server("A").server("PA", length=31).client("A")
    return conv.server("FA").client("A").client("FA").server("A")


def test_lost_synack_keeps_the_server_path_to_time_wait():
    rep = replay(server_close_without_synack().connection(), LINUX)
    assert rep.final_state == {C: State.CLOSED, S: State.TIME_WAIT}
    assert rep.close is Close.GRACEFUL


def test_lost_synack_is_a_capture_gap_at_the_clients_ack():
    rep = replay(server_close_without_synack().connection(), LINUX)
    assert [(a.kind, a.frame, a.capture_quality) for a in rep.anomalies] == [(ANOMALY_ACK_UNSEEN_DATA, 2, True)]


def test_server_answering_a_syn_with_rst_still_refuses():
    conv = Conversation().client("S").server("RA", seq=0, ack=1001)
    rep = replay(conv.connection(), LINUX)
    assert rep.close is Close.REFUSED
    assert rep.anomalies == []


def test_graceful_server_close_sample_without_its_synack_ends_as_the_sample_does():
    # samples/graceful-server-close.toml: client CLOSED, server TIME-WAIT, graceful.  Frame 2 (the
    # SYN-ACK) lost: the same, plus the capture gap at the client's ACK (frame 3).
    capture = open_capture([str(Path(__file__).resolve().parent.parent / "samples" / "graceful-server-close.pcap")])
    batches = [batch[batch["frame"] != 2] for batch in capture.batches()]
    [conn] = list(rebuild(iter(batches)))
    rep = replay(conn, LINUX, capture_end=capture.info.last_time)
    assert rep.final_state == {C: State.CLOSED, S: State.TIME_WAIT}
    assert rep.close is Close.GRACEFUL
    assert [(a.kind, a.frame, a.capture_quality) for a in rep.anomalies] == [(ANOMALY_ACK_UNSEEN_DATA, 3, True)]
