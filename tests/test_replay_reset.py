"""Replay: RST acceptability (RFC 9293 §3.10.7, RFC 5961 §3.2) and TIME-WAIT."""

from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.replay.model import (
    NOTE_RST_EXACT,
    NOTE_RST_IN_WINDOW,
    NOTE_RST_OUT_OF_WINDOW,
    NOTE_TIME_WAIT_RESTART,
    Close,
    State,
)
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
C, S = Side.CLIENT, Side.SERVER


def established():
    return Conversation().client("S").server("SA").client("A")


def test_rst_with_seq_equal_to_rcv_nxt_is_exact_and_closes_the_receiver():
    conv = established().client("R")
    rep = replay(conv.connection(), LINUX)
    rst = rep.steps[-1]
    assert NOTE_RST_EXACT in rst.notes
    assert (rst.receiver_before, rst.receiver_after) == (State.ESTABLISHED, State.CLOSED)
    assert rep.close is Close.ABORTIVE


def test_rst_in_window_but_not_exact_changes_no_state():
    conv = established().client("R", seq=1000 + 1 + 100)
    rep = replay(conv.connection(), LINUX)
    rst = rep.steps[-1]
    assert NOTE_RST_IN_WINDOW in rst.notes
    assert rst.receiver_after is State.ESTABLISHED
    assert rep.final_state[S] is State.ESTABLISHED


def test_rst_out_of_window_changes_no_state():
    conv = established().client("R", seq=1000 + 1 + 10_000_000)
    rep = replay(conv.connection(), LINUX)
    rst = rep.steps[-1]
    assert NOTE_RST_OUT_OF_WINDOW in rst.notes
    assert rst.receiver_after is State.ESTABLISHED
    assert [t.to_state for t in rep.transitions if t.endpoint is S][-1] is State.ESTABLISHED


def test_rst_below_rcv_nxt_is_out_of_window():
    conv = established().client("PA", length=100).server("A").client("R", seq=1001)
    rep = replay(conv.connection(), LINUX)
    assert NOTE_RST_OUT_OF_WINDOW in rep.steps[-1].notes
    assert rep.final_state[S] is State.ESTABLISHED


def test_window_scale_from_both_syns_widens_the_rst_window():
    conv = Conversation().client("S", wscale=7).server("SA", wscale=7).client("A").server("A", window=1000)
    conv.client("R", seq=1001 + 100_000)  # beyond the server's 1000 (raw), within 1000 << 7
    rep = replay(conv.connection(), LINUX)
    assert NOTE_RST_IN_WINDOW in rep.steps[-1].notes


def test_rst_in_syn_sent_is_acceptable_only_if_it_acks_the_syn():
    conv = Conversation().client("S").server("RA", seq=0, ack=1000 + 5)
    rep = replay(conv.connection(), LINUX)
    assert NOTE_RST_OUT_OF_WINDOW in rep.steps[-1].notes
    assert rep.final_state[C] is State.SYN_SENT


def test_rst_to_syn_received_returns_a_passive_endpoint_to_listen():
    conv = Conversation().client("S").server("SA").client("R", seq=1001)
    rep = replay(conv.connection(), LINUX)
    assert rep.steps[-1].receiver_after is State.LISTEN
    assert rep.final_state == {C: State.CLOSED, S: State.LISTEN}


def test_rst_in_every_synchronized_state_closes_the_receiver_when_exact():
    # ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING and LAST-ACK each meet an exact RST.
    cases = {
        State.FIN_WAIT_1: lambda c: c.client("FA").server("R"),
        State.FIN_WAIT_2: lambda c: c.client("FA").server("A").server("R"),
        State.CLOSE_WAIT: lambda c: c.server("FA").client("A").server("R"),
        State.LAST_ACK: lambda c: c.server("FA").client("A").client("FA").server("R"),
    }
    for state, build in cases.items():
        rep = replay(build(established()).connection(), LINUX)
        rst = rep.steps[-1]
        assert (rst.receiver_before, rst.receiver_after) == (state, State.CLOSED), state
        assert NOTE_RST_EXACT in rst.notes


def test_rst_received_in_closing_closes():
    conv = established().client("FA", dt=0.05)
    conv.server("FA", ack=1001, dt=0.0001).server("R", seq=conv.next_seq[1], dt=0.01)
    rep = replay(conv.connection(), LINUX)
    assert rep.steps[-1].receiver_before is State.CLOSING
    assert rep.steps[-1].receiver_after is State.CLOSED


def test_time_wait_assassinated_by_exact_rst_is_recorded_as_ended_by_rst():
    conv = established().client("FA").server("A").server("FA").client("A")
    conv.server("R", seq=conv.next_seq[1], dt=1.0)
    rep = replay(conv.connection(), LINUX)
    rst = rep.steps[-1]
    assert (rst.receiver_before, rst.receiver_after) == (State.TIME_WAIT, State.CLOSED)
    assert rep.time_wait.ended_by == "rst"
    assert rep.time_wait.ended_time == rst.segment.time
    assert "RFC 1337" in rep.transitions[-1].rfc


def test_time_wait_expires_within_the_capture_after_profile_duration():
    conv = established().client("FA").server("A").server("FA").client("A")
    conv.server("A", length=0, dt=LINUX.time_wait + 5)  # a late stray ACK keeps the capture going
    rep = replay(conv.connection(), LINUX)
    tw = rep.time_wait
    expiry = rep.transitions[-1] if rep.transitions[-1].cause == "2*MSL expired" else None
    assert expiry is not None and expiry.endpoint is C
    assert (expiry.from_state, expiry.to_state) == (State.TIME_WAIT, State.CLOSED)
    assert expiry.time == tw.entered_time + LINUX.time_wait
    assert tw.ended_by == "expired"
    assert rep.final_state[C] is State.CLOSED


def test_time_wait_still_running_at_capture_end_stays_time_wait():
    conv = established().client("FA").server("A").server("FA").client("A")
    rep = replay(conv.connection(), LINUX)
    assert rep.final_state[C] is State.TIME_WAIT
    assert rep.time_wait.ended_by == "running"
    assert rep.time_wait.ended_time is None


def test_time_wait_expires_by_a_later_capture_end_given_by_the_caller():
    conv = established().client("FA").server("A").server("FA").client("A")
    conn = conv.connection()
    rep = replay(conn, LINUX, capture_end=conn.end + LINUX.time_wait)
    assert rep.final_state[C] is State.CLOSED
    assert rep.time_wait.ended_by == "expired"


def test_retransmitted_fin_restarts_the_time_wait_timer():
    conv = established().client("FA").server("A").server("FA").client("A")
    conv.server("FA", seq=conv.next_seq[1] - 1, dt=30.0).client("A")
    conv.server("A", dt=LINUX.time_wait - 10)  # after the first deadline, before the restarted one
    rep = replay(conv.connection(), LINUX)
    assert NOTE_TIME_WAIT_RESTART in rep.steps[-3].notes
    assert rep.final_state[C] is State.TIME_WAIT
    assert rep.time_wait.restarted_time == rep.steps[-3].segment.time


def test_segment_after_time_wait_expired_meets_a_closed_endpoint():
    conv = established().client("FA").server("A").server("FA").client("A")
    conv.server("FA", seq=conv.next_seq[1] - 1, dt=LINUX.time_wait + 1)
    rep = replay(conv.connection(), LINUX)
    assert rep.steps[-1].receiver_before is State.CLOSED
    assert rep.time_wait.ended_by == "expired"


def test_rst_from_a_sender_that_keeps_talking_is_not_an_abort():
    # A RST answering an unacceptable segment (or injected) leaves its sender's state alone.
    conv = established().client("R", seq=1000 + 1 + 10_000_000)
    conv.client("PA", seq=1001, length=10).server("A", ack=1011)
    rep = replay(conv.connection(), LINUX)
    assert rep.steps[3].sender_after is State.ESTABLISHED
    assert rep.final_state == {C: State.ESTABLISHED, S: State.ESTABLISHED}
    assert rep.anomalies == []


def test_rst_tearing_down_last_ack_after_both_fins_were_acked_is_abortive():
    conv = established().client("FA").server("A").server("FA").client("A")
    conv.server("FA", seq=conv.next_seq[1] - 1, dt=0.2).client("R", seq=conv.next_seq[0], dt=0.0001)
    rep = replay(conv.connection(), LINUX)
    assert rep.close is Close.ABORTIVE


def test_syn_sent_answering_a_bad_syn_ack_with_rst_stays_in_syn_sent():
    conv = Conversation().client("S").server("SA", ack=1000 + 1001)
    conv.client("R", seq=1000 + 1001).client("S", seq=1000, dt=0.01)
    conv.server("SA", seq=5000, ack=1001).client("A", seq=1001, ack=5001)
    rep = replay(conv.connection(), LINUX)
    assert rep.steps[2].sender_after is State.SYN_SENT
    assert [a.kind for a in rep.anomalies] == ["ack-of-unsent", "unexpected-segment"]
    assert all(not a.capture_quality for a in rep.anomalies)
    assert rep.final_state == {C: State.ESTABLISHED, S: State.ESTABLISHED}
