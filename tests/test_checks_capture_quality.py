"""Capture-quality notes: info, capture_quality=True, no endpoint; and no false violation next to them."""

from __future__ import annotations

from pcapcheck.checks import run_checks
from pcapcheck.config import Config
from pcapcheck.findings import Severity
from pcapcheck.replay.model import NOTE_ACKS_UNSEEN, Anomaly, Vantage
from pcapcheck.segments import Side
from tests.builders import Conversation
from tests.test_checks_support import catalogue, handshake, last_time, only, replay_for


def all_findings(conv, **kw):
    capture_end = kw.pop("capture_end", last_time(conv) + 1000)
    conn, rep = replay_for(conv, **kw)
    return run_checks(conn, rep, previous=None, capture_end=capture_end, config=Config(), catalogue=catalogue())


# capture-midstream ------------------------------------------------------------------------


def midstream() -> Conversation:
    conv = Conversation().skip_frame(40)
    return conv.client("PA", length=100).server("A").client("PA", length=100).server("A")


def test_connection_without_syn_is_capture_midstream_at_its_first_frame():
    [f] = only("capture-midstream", midstream())
    assert (f.frame, f.endpoint, f.severity, f.capture_quality) == (41, None, Severity.INFO, True)


def test_connection_with_syn_is_not_capture_midstream():
    assert only("capture-midstream", handshake()) == []


def test_midstream_anomaly_from_the_replay_is_capture_midstream():
    conv = handshake()
    anomaly = Anomaly("midstream-start", 1, conv.records[0]["time"], None, True)
    assert [f.frame for f in only("capture-midstream", conv, anomalies=[anomaly])] == [1]


def test_midstream_connection_ending_in_rst_gives_only_notes():
    conv = midstream().client("R", dt=1)
    assert {(f.rule, f.severity) for f in all_findings(conv)} == {("capture-midstream", Severity.INFO)}


# capture-gap ------------------------------------------------------------------------


def test_ack_of_unseen_data_is_a_capture_gap_at_that_ack():
    conv = handshake().client("PA", length=100)
    conv.next_seq[0] += 1000  # 1000 bytes the capture lost
    conv.server("A")  # frame 5 acknowledges them
    [f] = only("capture-gap", conv, notes={5: {NOTE_ACKS_UNSEEN}})
    assert (f.frame, f.endpoint, f.severity, f.capture_quality) == (5, None, Severity.INFO, True)


def test_gaps_are_noted_once_per_connection():
    conv = handshake().server("A").server("A")
    assert [f.frame for f in only("capture-gap", conv, notes={4: {NOTE_ACKS_UNSEEN}, 5: {NOTE_ACKS_UNSEEN}})] == [4]


def test_ack_beyond_the_peers_fin_is_not_a_capture_gap():
    conv = handshake().client("FA")
    conv.server("A", ack=conv.next_seq[0] + 10)  # frame 5: claims 10 bytes after the FIN
    assert only("capture-gap", conv, notes={5: {NOTE_ACKS_UNSEEN}}) == []


def test_synack_acking_more_than_the_syn_is_not_a_capture_gap():
    conv = Conversation().client("S").server("SA", ack=2001).client("R", seq=2001)
    assert only("capture-gap", conv, notes={2: {NOTE_ACKS_UNSEEN}}) == []


def test_no_unseen_acks_no_capture_gap():
    assert only("capture-gap", handshake().client("PA", length=10).server("A")) == []


# capture-one-direction ------------------------------------------------------------------------


def one_direction() -> Conversation:
    """Only the client's packets: SYN, ACK of an unseen SYN-ACK, data, FIN."""
    conv = Conversation()
    conv.client("S").client("A", ack=5001).client("PA", length=100, ack=5001).client("FA", ack=5001)
    return conv


def test_only_client_packets_with_acks_is_capture_one_direction():
    [f] = only("capture-one-direction", one_direction())
    assert (f.frame, f.endpoint, f.severity, f.capture_quality) == (1, None, Severity.INFO, True)
    assert "client" in f.message


def test_unanswered_syns_are_not_capture_one_direction():
    conv = Conversation().client("S").client("S", seq=1000, dt=1)
    assert only("capture-one-direction", conv) == []


def test_both_directions_is_not_capture_one_direction():
    assert only("capture-one-direction", handshake()) == []


def test_one_direction_capture_gives_no_violation():
    # The FIN is never acknowledged in the capture and the server "never" closes: both unknowable.
    found = all_findings(one_direction(), capture_end=last_time(one_direction()) + 600)
    assert {f.rule for f in found} == {"capture-one-direction"}


def test_one_direction_anomaly_silences_close_wait_leak_for_the_missing_side():
    conv = handshake().client("FA").server("A")
    anomaly = Anomaly("one-direction-missing", 5, conv.records[-1]["time"], Side.SERVER, True)
    assert only("close-wait-leak", conv, anomalies=[anomaly], capture_end=last_time(conv) + 600) == []


def test_capture_at_server_host_gives_no_missing_fin_retransmit_for_the_client():
    conv = handshake().client("FA")
    assert only("missing-fin-retransmit", conv, vantage=Vantage.SERVER, capture_end=last_time(conv) + 60) == []
