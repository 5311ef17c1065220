"""Replay: a FIN the capture lost, proved by the peer's ACK of it (review items A8, A9).

A FIN occupies one sequence number (RFC 9293 §3.4).  When the peer acknowledges exactly one past
the end of what the capture saw of a side, and never more, that side sent a FIN the capture missed:
a capture-quality note, and both endpoints go through the close as if the FIN had been captured.
"""

from pathlib import Path

import numpy as np

from pcapcheck.capture import open_capture
from pcapcheck.connections import rebuild
from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.replay.model import ANOMALY_ACK_OF_UNSENT, ANOMALY_ACK_UNSEEN_DATA, Close, State
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
C, S = Side.CLIENT, Side.SERVER


def established():
    return Conversation().client("S").server("SA").client("A")


def test_peer_ack_of_a_lost_fin_proves_it_and_is_a_capture_gap():
    # The server closes; the client's FIN (seq 1001) is lost by the capture; the server's ACK 1002
    # proves it; then the client's RST (seq = its SND.NXT 1002) ends the server's TIME-WAIT.
    conv = established().server("PA", length=4).server("FA").client("A")
    conv.server("A", ack=1002).client("R", seq=1002)
    rep = replay(conv.connection(), LINUX)
    kinds = [a.kind for a in rep.anomalies]
    assert ANOMALY_ACK_OF_UNSENT not in kinds
    assert [a.capture_quality for a in rep.anomalies if a.kind == ANOMALY_ACK_UNSEEN_DATA] == [True]
    server_path = [(t.from_state, t.to_state) for t in rep.transitions if t.endpoint is S]
    assert (State.FIN_WAIT_2, State.TIME_WAIT) in server_path
    assert (State.TIME_WAIT, State.CLOSED) in server_path  # the RST assassinated TIME-WAIT
    rst = rep.steps[-1]
    assert rst.sender_before is State.CLOSED  # LAST-ACK -> CLOSED on the server's ACK, not CLOSE-WAIT


def test_synchronized_rst_carrying_snd_nxt_does_not_refute_the_ack_before_it():
    # §3.10.7.4: a synchronized endpoint answers an ACK of unsent data with an ACK, never with
    # <SEQ=SEG.ACK><CTL=RST>; its RST with seq == that ACK only says it sent everything acked.
    conv = established().client("PA", length=10).server("A", ack=1012).client("R", seq=1012)
    rep = replay(conv.connection(), LINUX)
    assert [a.kind for a in rep.anomalies] == [ANOMALY_ACK_UNSEEN_DATA]


def test_client_ack_of_the_servers_lost_fin_takes_both_through_the_close():
    # Client closes first; the server's FIN (seq 5001) is lost by the capture; the client ACKs 5002.
    conv = established().client("FA").server("A").client("A", ack=5002)
    rep = replay(conv.connection(), LINUX, capture_end=conv.time + 1)
    assert rep.final_state == {C: State.TIME_WAIT, S: State.CLOSED}
    assert rep.close is Close.GRACEFUL
    assert [(a.kind, a.capture_quality) for a in rep.anomalies] == [(ANOMALY_ACK_UNSEEN_DATA, True)]
    server_path = [(t.from_state, t.to_state) for t in rep.transitions if t.endpoint is S]
    assert server_path[-2:] == [(State.CLOSE_WAIT, State.LAST_ACK), (State.LAST_ACK, State.CLOSED)]


def test_lost_fin_of_a_side_closing_first_makes_its_rst_a_reply_not_an_abort_from_established():
    # The client's FIN (seq 1024) is lost; the server ACKs 1025 and closes later; the client,
    # orphaned, had dropped the connection (FIN-WAIT-2 -> TIME-WAIT -> dropped): it answers the
    # server's FIN with RST from CLOSED, not aborting from ESTABLISHED.
    conv = established().client("PA", length=23).server("A").server("A", ack=1025)
    conv.server("FA", ack=1025, dt=2.0).client("R", seq=1025)
    rep = replay(conv.connection(), LINUX)
    rst = rep.steps[-1]
    assert (rst.sender_before, rst.receiver_before) == (State.CLOSED, State.LAST_ACK)
    assert [(a.kind, a.capture_quality) for a in rep.anomalies] == [(ANOMALY_ACK_UNSEEN_DATA, True)]


def test_ack_beyond_one_unseen_byte_infers_no_fin():
    # Two unseen sequence numbers are data (a FIN is only ever the last one): no close inferred.
    conv = established().server("A", ack=1003)
    rep = replay(conv.connection(), LINUX)
    assert rep.final_state == {C: State.ESTABLISHED, S: State.ESTABLISHED}


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def replay_without(sample: str, dropped_frames: set[int]):
    """The sample's single connection replayed as if the capture had lost ``dropped_frames``."""
    capture = open_capture([str(SAMPLES / sample)])
    batches = [batch[~np.isin(batch["frame"], list(dropped_frames))] for batch in capture.batches()]
    [conn] = list(rebuild(iter(batches)))
    return replay(conn, LINUX, capture_end=capture.info.last_time)


def test_time_wait_assassination_with_the_clients_fin_lost_keeps_its_verdict_states():
    # Frame 7, the client's FIN, lost: the server's ACK 2 (frame 8) proves it; then as in the
    # sample the server enters TIME-WAIT and the client's RST (frame 9) assassinates it.
    rep = replay_without("crafted-time-wait-assassination.pcap", {7})
    assert rep.final_state == {C: State.CLOSED, S: State.CLOSED}
    assert rep.close is Close.GRACEFUL
    assert [(a.kind, a.frame, a.capture_quality) for a in rep.anomalies] == [(ANOMALY_ACK_UNSEEN_DATA, 8, True)]
    assert [t.ended_by for t in rep.time_waits] == ["rst"]


def test_server_close_with_the_clients_lost_fin_sends_rst_from_closed_not_established():
    # samples/tw-buckets-zero-orphan without frame 6 (the client's FIN): the server's ACK 25
    # (frame 7) proves it; the client's RST (frame 9) answers the server's FIN from a closing
    # client, never an abort of an established connection.
    rep = replay_without("tw-buckets-zero-orphan.pcap", {6})
    rst = rep.steps[-1]
    assert rst.segment.rst and rst.sender_before not in (State.ESTABLISHED, State.CLOSE_WAIT)
    assert [(a.kind, a.frame) for a in rep.anomalies] == [(ANOMALY_ACK_UNSEEN_DATA, 7)]
