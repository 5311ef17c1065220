"""Close rules on hand-built replays: each fires on its failing ladder and stays silent on a clean one."""

from __future__ import annotations

from pcapcheck.findings import Severity
from pcapcheck.replay.model import NOTE_RETRANSMISSION, Close, Vantage
from pcapcheck.segments import Side
from tests.builders import Conversation
from tests.test_checks_support import HANDSHAKE_STATES, handshake, last_time, only, replay_for, run_rule

GRACEFUL_STATES = HANDSHAKE_STATES + ["FW1 CW", "FW2 CW", "FW2 LA", "TW C"]


def graceful() -> Conversation:
    """Client closes first; four-way close, every FIN acknowledged."""
    return handshake().client("FA").server("A").server("FA").client("A")


# rst-instead-of-final-ack ------------------------------------------------------------------------


def test_rst_answering_the_peers_fin_in_fin_wait_2_is_rst_instead_of_final_ack():
    conv = handshake().client("FA").server("A").server("FA").client("R")  # frames 4..7
    [f] = only("rst-instead-of-final-ack", conv, HANDSHAKE_STATES + ["FW1 CW", "FW2 CW", "TW LA", "C C"])
    assert (f.frame, f.endpoint, f.severity) == (7, Side.CLIENT, Severity.ERROR)
    assert "frame 6" in f.message and "frame 7" in f.message


def test_graceful_close_has_no_rst_instead_of_final_ack():
    assert only("rst-instead-of-final-ack", graceful(), GRACEFUL_STATES) == []


def test_rst_after_fin_wait_2_timer_expired_is_not_rst_instead_of_final_ack():
    # Linux drops an orphaned FIN-WAIT-2 after 60 s: RST to the late FIN is then correct.
    conv = handshake().client("FA").server("A").server("FA", dt=90).client("R")
    assert only("rst-instead-of-final-ack", conv) == []


def test_rst_to_a_fin_that_was_never_delivered_is_not_rst_instead_of_final_ack():
    conv = handshake().client("FA").server("A").server("FA").client("R")
    assert only("rst-instead-of-final-ack", conv, lost={6}) == []


def test_rst_after_the_final_ack_is_not_rst_instead_of_final_ack():
    conv = graceful().client("R")
    assert only("rst-instead-of-final-ack", conv) == []


# rst-answers-fin-retransmit ------------------------------------------------------------------------


def tw_not_kept() -> Conversation:
    conv = handshake().client("FA").server("A").server("FA")  # 4, 5, 6
    fin_seq = conv.records[-1]["seq"]
    conv.client("A")  # 7: final ACK, lost after the capture point
    conv.server("FA", seq=fin_seq, dt=0.2)  # 8: FIN retransmitted
    return conv.client("R")  # 9


def test_rst_answering_retransmitted_fin_is_reported_at_the_rst():
    [f] = only("rst-answers-fin-retransmit", tw_not_kept(), notes={8: {NOTE_RETRANSMISSION}}, lost={7})
    assert (f.frame, f.endpoint, f.severity) == (9, Side.CLIENT, Severity.ERROR)
    assert "frame 8" in f.message and "TIME-WAIT" in f.message


def test_retransmitted_fin_answered_by_ack_is_not_rst_answers_fin_retransmit():
    conv = handshake().client("FA").server("A").server("FA")
    fin_seq = conv.records[-1]["seq"]
    conv.client("A").server("FA", seq=fin_seq, dt=0.2).client("A")
    assert only("rst-answers-fin-retransmit", conv, notes={8: {NOTE_RETRANSMISSION}}) == []


def test_rst_to_a_first_fin_is_not_rst_answers_fin_retransmit():
    conv = handshake().client("FA").server("A").server("FA").client("R")
    assert only("rst-answers-fin-retransmit", conv) == []


def test_rst_to_retransmitted_fin_after_time_wait_expired_is_not_reported():
    conv = handshake().client("FA").server("A").server("FA")
    fin_seq = conv.records[-1]["seq"]
    conv.client("A").server("FA", seq=fin_seq, dt=61).client("R")  # linux TIME-WAIT is 60 s
    assert only("rst-answers-fin-retransmit", conv, notes={8: {NOTE_RETRANSMISSION}}) == []


# missing-fin-retransmit ------------------------------------------------------------------------


def test_unacknowledged_fin_not_retransmitted_in_a_capture_at_its_sender_is_reported():
    conv = handshake().client("A", length=100).server("A").client("FA")  # FIN is frame 6
    [f] = only("missing-fin-retransmit", conv, vantage=Vantage.CLIENT, capture_end=last_time(conv) + 10)
    assert (f.frame, f.endpoint, f.severity) == (6, Side.CLIENT, Severity.ERROR)


def test_fin_the_peer_keeps_acknowledging_below_and_never_retransmitted_is_reported():
    conv = handshake().client("FA")  # FIN is frame 4, lost on the way
    fin_seq = conv.records[-1]["seq"]
    conv.server("PA", length=10, ack=fin_seq, dt=0.5)  # the server never got it
    [f] = only("missing-fin-retransmit", conv, capture_end=last_time(conv) + 10)
    assert (f.frame, f.endpoint) == (4, Side.CLIENT)


def test_unacknowledged_fin_without_proof_the_ack_was_missing_is_not_reported():
    # Captured in the middle, nothing more from the server: the capture may have lost its ACK.
    conv = handshake().client("A", length=100).server("A").client("FA")
    assert only("missing-fin-retransmit", conv, capture_end=last_time(conv) + 10) == []


def test_ack_of_the_fin_captured_just_before_it_counts_as_acknowledgement():
    # Two taps merged: the server's ACK of the FIN (frame 4) sorts 20 µs before the FIN (frame 5).
    conv = handshake().client("FA").server("A", dt=0.00002)
    fin, ack = conv.records[-2], conv.records[-1]
    fin["frame"], ack["frame"] = ack["frame"], fin["frame"]
    fin["time"], ack["time"] = ack["time"], fin["time"]
    conv.records[-2:] = [ack, fin]
    assert only("missing-fin-retransmit", conv, vantage=Vantage.CLIENT, capture_end=last_time(conv) + 10) == []


def test_fin_retransmitted_after_the_senders_backed_off_rto_is_not_missing_fin_retransmit():
    # RFC 6298 §5.5: data retransmitted 0.2, 0.4, 0.8, 1.6, 3.2 s apart; the FIN rides on the next
    # transmission and is retransmitted 6.4 s later, exactly as the doubled RTO says.
    conv = handshake().client("PA", length=100)
    data_seq = conv.records[-1]["seq"]
    for gap in (0.2, 0.4, 0.8, 1.6, 3.2):
        conv.client("PA", length=100, seq=data_seq, dt=gap)
    conv.client("FPA", length=100, seq=data_seq, dt=3.2).client("FPA", length=100, seq=data_seq, dt=6.4)
    assert only("missing-fin-retransmit", conv, vantage=Vantage.CLIENT, capture_end=last_time(conv) + 1) == []


def test_fin_retransmitted_within_rto_is_not_missing_fin_retransmit():
    conv = handshake().client("FA")
    fin_seq = conv.records[-1]["seq"]
    conv.client("FA", seq=fin_seq, dt=1.0).server("A")
    assert only("missing-fin-retransmit", conv, capture_end=last_time(conv) + 10) == []


def test_acknowledged_fin_is_not_missing_fin_retransmit():
    assert only("missing-fin-retransmit", graceful(), capture_end=last_time(graceful()) + 10) == []


def test_capture_ending_before_the_rto_gives_no_missing_fin_retransmit():
    conv = handshake().client("FA")
    assert only("missing-fin-retransmit", conv, capture_end=last_time(conv) + 0.5) == []


def test_capture_taken_at_the_peers_host_gives_no_missing_fin_retransmit():
    conv = handshake().client("FA")
    assert only("missing-fin-retransmit", conv, vantage=Vantage.SERVER, capture_end=last_time(conv) + 10) == []


def test_fin_answered_by_rst_is_not_missing_fin_retransmit():
    conv = handshake().client("FA").server("R", dt=5)
    assert only("missing-fin-retransmit", conv, capture_end=last_time(conv) + 10) == []


# close-wait-leak ------------------------------------------------------------------------


def test_server_silent_after_the_clients_fin_beyond_threshold_is_a_close_wait_leak():
    conv = handshake().client("FA").server("A")  # client's FIN is frame 4
    [f] = only("close-wait-leak", conv, capture_end=last_time(conv) + 120)
    assert (f.frame, f.endpoint, f.severity) == (4, Side.SERVER, Severity.WARNING)
    assert "capture ended" in f.message


def test_late_fin_after_threshold_is_a_close_wait_leak():
    conv = handshake().client("FA").server("A").server("FA", dt=90).client("A")
    [f] = only("close-wait-leak", conv)
    assert f.frame == 4 and "frame 6" in f.message


def test_close_within_threshold_is_not_a_close_wait_leak():
    conv = handshake().client("FA").server("A").server("FA", dt=5).client("A")
    assert only("close-wait-leak", conv) == []


def test_capture_ending_before_threshold_is_not_a_close_wait_leak():
    conv = handshake().client("FA").server("A")
    assert only("close-wait-leak", conv, capture_end=last_time(conv) + 30) == []


def test_half_closed_server_still_sending_data_is_not_a_close_wait_leak():
    conv = handshake().client("FA").server("A")
    for _ in range(4):
        conv.server("PA", length=1000, dt=30).client("A")
    conv.server("FA", dt=30).client("A")
    assert only("close-wait-leak", conv) == []


def test_midstream_fin_to_a_side_that_may_have_closed_before_is_not_a_close_wait_leak():
    conv = Conversation().skip_frame(10).client("FA").server("A")
    assert only("close-wait-leak", conv, capture_end=last_time(conv) + 600) == []


def test_close_wait_leak_threshold_is_a_parameter():
    from pcapcheck.config import Config

    conv = handshake().client("FA").server("A").server("FA", dt=20).client("A")
    conn, rep = replay_for(conv)
    config = Config(params={"close-wait-leak": {"threshold": 10}})
    assert [f.frame for f in run_rule("close-wait-leak", conn, rep, capture_end=last_time(conv), config=config)] == [4]


# fin-wait-2-timeout ------------------------------------------------------------------------


def test_fin_wait_2_held_past_the_profile_timer_is_reported_at_the_ack_of_the_fin():
    conv = handshake().client("FA").server("A").server("FA", dt=90).client("A")  # ACK of FIN is frame 5
    [f] = only("fin-wait-2-timeout", conv)
    assert (f.frame, f.endpoint, f.severity) == (5, Side.CLIENT, Severity.WARNING)


def test_fin_wait_2_ended_by_rst_after_the_timer_is_not_fin_wait_2_timeout():
    conv = handshake().client("FA").server("A").server("FA", dt=90).client("R")
    assert only("fin-wait-2-timeout", conv) == []


def test_short_fin_wait_2_is_not_fin_wait_2_timeout():
    assert only("fin-wait-2-timeout", graceful()) == []


def test_silence_in_fin_wait_2_proves_nothing():
    conv = handshake().client("FA").server("A")
    assert only("fin-wait-2-timeout", conv, capture_end=last_time(conv) + 600) == []


# data-after-fin ------------------------------------------------------------------------


def test_new_data_after_own_fin_is_data_after_fin():
    conv = handshake().client("FA").client("PA", length=10)  # frame 5 after FIN frame 4
    [f] = only("data-after-fin", conv)
    assert (f.frame, f.endpoint, f.severity) == (5, Side.CLIENT, Severity.ERROR)


def test_retransmitted_data_before_the_fin_is_not_data_after_fin():
    conv = handshake().client("PA", length=100)
    data_seq = conv.records[-1]["seq"]
    conv.client("FA").client("PA", length=100, seq=data_seq, dt=1)
    assert only("data-after-fin", conv) == []


def test_keepalive_probe_after_fin_is_not_data_after_fin():
    conv = handshake().client("FA").server("A")
    fin_seq = conv.records[-2]["seq"]
    conv.client("A", length=1, seq=fin_seq, dt=30)  # Windows-style keep-alive at SND.NXT-1
    assert only("data-after-fin", conv) == []


# fin-ack-mismatch ------------------------------------------------------------------------


def test_ack_beyond_the_peers_fin_is_fin_ack_mismatch():
    conv = handshake().client("FA")
    fin_seq = conv.records[-1]["seq"]
    conv.server("A", ack=fin_seq + 5)  # frame 5
    [f] = only("fin-ack-mismatch", conv)
    assert (f.frame, f.endpoint, f.severity) == (5, Side.SERVER, Severity.ERROR)


def test_ack_of_exactly_fin_plus_one_is_not_fin_ack_mismatch():
    assert only("fin-ack-mismatch", graceful()) == []


# simultaneous-close ------------------------------------------------------------------------


def test_fins_crossing_are_a_simultaneous_close_at_the_second_fin():
    conv = handshake()
    client_fin_end = conv.next_seq[0] + 1
    conv.client("FA").server("FA", ack=client_fin_end - 1).client("A").server("A")
    [f] = only("simultaneous-close", conv)
    assert (f.frame, f.endpoint, f.severity) == (5, None, Severity.INFO)


def test_ordinary_close_is_not_simultaneous():
    assert only("simultaneous-close", graceful()) == []


def test_close_summary_is_not_required_by_the_close_rules():
    # The checks read steps, not Replay.close: a replay that calls it graceful changes nothing.
    conv = handshake().client("FA").server("A").server("FA").client("R")
    assert [f.frame for f in only("rst-instead-of-final-ack", conv, close=Close.GRACEFUL)] == [7]


def test_data_after_a_long_pause_restarts_the_close_wait_clock():
    conv = handshake().client("FA").server("A").server("PA", length=10, dt=90).client("A")
    conv.server("FA", dt=10).client("A")
    assert only("close-wait-leak", conv) == []
