"""Handshake and option rules on hand-built replays."""

from __future__ import annotations

from dataclasses import replace

from pcapcheck.findings import Severity
from pcapcheck.replay.model import Close
from pcapcheck.segments import Side
from tests.builders import Conversation
from tests.test_checks_support import HANDSHAKE_STATES, handshake, last_time, only, replay_for, run_rule


# handshake-incomplete ------------------------------------------------------------------------


def test_unanswered_syns_are_an_incomplete_handshake_at_the_first_syn():
    conv = Conversation().client("S").client("S", seq=1000, dt=1).client("S", seq=1000, dt=2)
    [f] = only("handshake-incomplete", conv, close=Close.INCOMPLETE, capture_end=last_time(conv) + 5)
    assert (f.frame, f.endpoint, f.severity) == (1, None, Severity.WARNING)


def test_synack_never_acknowledged_is_an_incomplete_handshake():
    conv = Conversation().client("S").server("SA").server("SA", seq=5000, dt=1)
    [f] = only("handshake-incomplete", conv, close=Close.INCOMPLETE, capture_end=last_time(conv) + 5)
    assert f.frame == 1 and "never acknowledged" in f.message


def test_completed_handshake_is_not_incomplete():
    assert only("handshake-incomplete", handshake(), HANDSHAKE_STATES, close=Close.OPEN) == []


def test_unanswered_syns_until_the_capture_ends_are_an_incomplete_handshake():
    # The capture stops at the second retransmission: two timeouts expired without an answer.
    conv = Conversation().client("S").client("S", seq=1000, dt=1).client("S", seq=1000, dt=2)
    assert [f.frame for f in only("handshake-incomplete", conv, capture_end=last_time(conv))] == [1]


def test_capture_ending_just_after_a_syn_retransmission_is_not_an_incomplete_handshake():
    # editcap -r syn-answered-late.pcap 1-2: the retransmission 1.03 s after the first SYN may still
    # be answered; the capture ends with it.
    conv = Conversation().client("S").client("S", seq=1000, dt=1.03)
    assert only("handshake-incomplete", conv, close=Close.INCOMPLETE, capture_end=last_time(conv)) == []


def test_syn_retransmission_unanswered_for_its_timeout_is_an_incomplete_handshake():
    conv = Conversation().client("S").client("S", seq=1000, dt=1.03)
    assert [f.frame for f in only("handshake-incomplete", conv, capture_end=last_time(conv) + 1.5)] == [1]


def test_synack_retransmission_at_capture_end_is_not_an_incomplete_handshake():
    # The server's SYN-ACK is retransmitted once; its ACK may still come.
    conv = Conversation().client("S").server("SA").server("SA", seq=5000, dt=1.0)
    assert only("handshake-incomplete", conv, close=Close.INCOMPLETE, capture_end=last_time(conv) + 0.2) == []


def test_capture_ending_within_the_rto_of_the_syn_is_not_an_incomplete_handshake():
    conv = Conversation().client("S")
    assert only("handshake-incomplete", conv, close=Close.INCOMPLETE, capture_end=last_time(conv) + 0.5) == []


def test_refused_syn_is_not_an_incomplete_handshake():
    conv = Conversation().client("S").server("RA", seq=0)
    assert only("handshake-incomplete", conv, close=Close.REFUSED) == []


# connection-refused ------------------------------------------------------------------------


def test_syn_answered_by_rst_is_connection_refused_at_the_rst():
    conv = Conversation().client("S").server("RA", seq=0)
    [f] = only("connection-refused", conv, close=Close.REFUSED)
    assert (f.frame, f.endpoint, f.severity) == (2, Side.SERVER, Severity.INFO)


def test_rst_after_a_synack_is_not_connection_refused():
    conv = handshake().server("R")
    assert only("connection-refused", conv) == []


# synack-bad-ack ------------------------------------------------------------------------


def test_synack_not_acking_isn_plus_one_is_synack_bad_ack():
    conv = Conversation().client("S").server("SA", ack=7777).client("R", seq=7777)
    [f] = only("synack-bad-ack", conv)
    assert (f.frame, f.endpoint, f.severity) == (2, Side.SERVER, Severity.ERROR)
    assert "7777" in f.message


def test_synack_acking_isn_plus_one_is_not_synack_bad_ack():
    assert only("synack-bad-ack", handshake()) == []


def test_synack_without_a_captured_syn_is_not_synack_bad_ack():
    conv = Conversation().server("SA", ack=4242).client("A")
    assert only("synack-bad-ack", conv) == []


# syn-retransmit-too-early ------------------------------------------------------------------------


def test_syn_retransmitted_after_200_ms_is_too_early():
    conv = Conversation().client("S").client("S", seq=1000, dt=0.2)
    [f] = only("syn-retransmit-too-early", conv)
    assert (f.frame, f.endpoint, f.severity) == (2, Side.CLIENT, Severity.WARNING)


def test_syn_retransmitted_after_one_second_then_two_is_not_too_early():
    conv = Conversation().client("S").client("S", seq=1000, dt=1.0).client("S", seq=1000, dt=2.0)
    assert only("syn-retransmit-too-early", conv) == []


def test_linux_linear_syn_timeouts_are_not_too_early():
    # tcp_syn_linear_timeouts: retries 1 s apart without doubling, each a full initial RTO.
    conv = Conversation().client("S").client("S", seq=1000, dt=1.02).client("S", seq=1000, dt=1.02)
    assert only("syn-retransmit-too-early", conv) == []


def test_syn_resent_right_after_resetting_a_bad_synack_is_not_too_early():
    conv = Conversation().client("S").server("SA", ack=4242).client("R", seq=4242)
    conv.client("S", seq=1000, dt=0.01)
    assert only("syn-retransmit-too-early", conv) == []


def test_same_syn_captured_twice_is_not_a_retransmission():
    conv = Conversation().client("S").client("S", seq=1000, dt=0.00001)
    assert only("syn-retransmit-too-early", conv) == []


def test_windows_profile_expects_a_three_second_initial_rto():
    from pcapcheck.config import Config

    conv = Conversation().client("S").client("S", seq=1000, dt=1.0)
    conn, rep = replay_for(conv)
    found = run_rule("syn-retransmit-too-early", conn, rep, config=Config(profile="windows"))
    assert [f.frame for f in found] == [2]


# simultaneous-open ------------------------------------------------------------------------


def test_two_crossing_syns_are_a_simultaneous_open_at_the_second_syn():
    conv = Conversation().client("S").server("S").client("SA").server("SA")
    [f] = only("simultaneous-open", conv)
    assert (f.frame, f.endpoint, f.severity) == (2, None, Severity.INFO)


def test_ordinary_handshake_is_not_a_simultaneous_open():
    assert only("simultaneous-open", handshake()) == []


# option-not-negotiated ------------------------------------------------------------------------


def test_sack_blocks_to_a_peer_that_did_not_permit_sack_are_reported():
    conv = handshake().client("PA", length=100).server("A")
    conn, rep = replay_for(conv)
    # Give the server's ACK a SACK block by hand: the builder has no SACK option.
    step = rep.steps[-1]
    rep.steps[-1] = replace(step, segment=step.segment._replace(sack_blocks=((1200, 1300),)))
    [f] = run_rule("option-not-negotiated", conn, rep, capture_end=last_time(conv))
    assert (f.frame, f.endpoint, f.severity) == (5, Side.SERVER, Severity.ERROR)
    assert "SACK" in f.message


def test_timestamps_without_negotiation_are_reported():
    conv = handshake().client("PA", length=10, ts=(100, 200))
    [f] = only("option-not-negotiated", conv)
    assert (f.frame, f.endpoint, f.rfc) == (4, Side.CLIENT, "RFC 7323 §3.2") and "timestamps" in f.message


def test_synack_offering_window_scaling_the_syn_did_not_is_reported_at_the_synack():
    conv = Conversation().client("S").server("SA", wscale=7).client("A")
    [f] = only("option-not-negotiated", conv)
    assert (f.frame, f.endpoint) == (2, Side.SERVER) and "window scaling" in f.message


def test_negotiated_options_are_not_reported():
    conv = Conversation().client("S", ts=(1, 0), wscale=7, sack_permitted=True)
    conv.server("SA", ts=(9, 1), wscale=7, sack_permitted=True).client("A", ts=(2, 9))
    conv.client("PA", length=10, ts=(3, 9)).server("A", ts=(10, 3))
    assert only("option-not-negotiated", conv) == []


def test_options_are_not_judged_when_the_snap_length_cut_the_syns():
    # snaplen 68: the SYNs' 20 option bytes are cut, later segments' timestamps fit.
    conv = Conversation().client("S").server("SA").client("A", ts=(2, 9)).client("PA", length=10, ts=(3, 9))
    conn, rep = replay_for(conv)
    for k in (0, 1):
        rep.steps[k] = replace(rep.steps[k], segment=rep.steps[k].segment._replace(truncated=True))
    assert run_rule("option-not-negotiated", conn, rep, capture_end=last_time(conv)) == []


def test_options_are_not_judged_without_both_syns():
    conv = Conversation().client("PA", length=10, ts=(100, 200)).server("A")
    assert only("option-not-negotiated", conv) == []


# timestamps-dropped ------------------------------------------------------------------------


def test_segment_without_timestamps_after_negotiation_is_timestamps_dropped():
    conv = Conversation().client("S", ts=(1, 0)).server("SA", ts=(9, 1)).client("A", ts=(2, 9))
    conv.client("PA", length=10)  # frame 4: no TSopt
    [f] = only("timestamps-dropped", conv)
    assert (f.frame, f.endpoint, f.severity) == (4, Side.CLIENT, Severity.WARNING)


def test_rst_without_timestamps_is_not_timestamps_dropped():
    conv = Conversation().client("S", ts=(1, 0)).server("SA", ts=(9, 1)).client("A", ts=(2, 9)).client("R")
    assert only("timestamps-dropped", conv) == []


def test_no_timestamps_anywhere_is_not_timestamps_dropped():
    assert only("timestamps-dropped", handshake().client("PA", length=5)) == []
