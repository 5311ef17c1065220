"""Replay: how connections open and close, as exact transition sequences per endpoint."""

from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.replay.model import NOTE_ACKS_FIN, NOTE_RETRANSMISSION, Close, State
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
C, S = Side.CLIENT, Side.SERVER


def path(rep, side):
    """The states an endpoint went through: its first from-state, then every to-state."""
    moves = [t for t in rep.transitions if t.endpoint is side]
    return [moves[0].from_state.value] + [t.to_state.value for t in moves] if moves else []


def handshake():
    return Conversation().client("S").server("SA").client("A")


def test_client_closing_first_ends_with_client_in_time_wait_and_server_closed():
    conv = handshake().client("FA").server("A").server("FA").client("A")
    rep = replay(conv.connection(), LINUX)
    assert path(rep, C) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert path(rep, S) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert rep.final_state == {C: State.TIME_WAIT, S: State.CLOSED}
    assert rep.close is Close.GRACEFUL
    assert rep.anomalies == []


def test_server_closing_first_puts_the_server_in_time_wait():
    conv = handshake().server("FA").client("A").client("FA").server("A")
    rep = replay(conv.connection(), LINUX)
    assert path(rep, S) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert path(rep, C) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert rep.time_wait.endpoint is S
    assert rep.close is Close.GRACEFUL


def test_fin_ack_acknowledging_our_fin_passes_fin_wait_2_on_the_way_to_time_wait():
    # §3.10.7.4: the ACK field (fifth check) is processed before the FIN bit (eighth check).
    conv = handshake().client("FA").server("FA").client("A")
    rep = replay(conv.connection(), LINUX)
    assert path(rep, C) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    fin_ack = [t for t in rep.transitions if t.endpoint is C][-2:]
    assert fin_ack[0].frame == fin_ack[1].frame == 5
    assert path(rep, S) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]


def test_simultaneous_close_passes_through_closing_on_both_sides():
    conv = handshake().client("FA", dt=0.05)
    conv.server("FA", ack=conv.isn[0] + 1, dt=0.0001)  # sent before the client's FIN arrived
    conv.client("A", dt=0.001).server("A", dt=0.0001)
    rep = replay(conv.connection(), LINUX)
    closing = ["ESTABLISHED", "FIN-WAIT-1", "CLOSING", "TIME-WAIT"]
    assert path(rep, C)[2:] == closing
    assert path(rep, S)[2:] == closing
    assert {tw.endpoint for tw in rep.time_waits} == {C, S}
    assert rep.close is Close.GRACEFUL


def test_simultaneous_open_goes_syn_sent_to_syn_received_on_both_sides():
    conv = Conversation()
    conv.client("S").server("S", dt=0.0001)
    conv.client("SA", seq=conv.isn[0], dt=0.001).server("SA", seq=conv.isn[1], dt=0.0001)
    rep = replay(conv.connection(), LINUX)
    expected = ["CLOSED", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]
    assert path(rep, C) == expected
    assert path(rep, S) == expected
    assert rep.anomalies == []


def test_half_close_lets_data_flow_from_the_close_wait_side():
    conv = handshake().client("FA").server("A")
    conv.server("PA", length=500).client("A").server("PA", length=500).client("A")
    conv.server("FA").client("A")
    rep = replay(conv.connection(), LINUX)
    assert path(rep, C) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    data_steps = [s for s in rep.steps if s.segment.length]
    assert all(s.sender_before is State.CLOSE_WAIT and s.receiver_after is State.FIN_WAIT_2 for s in data_steps)
    assert rep.anomalies == []


def test_fin_is_acknowledged_only_by_ack_of_fin_plus_one():
    conv = handshake().client("FA")
    fin = conv.next_seq[0] - 1
    conv.server("A", ack=fin)  # acknowledges everything before the FIN, not the FIN
    rep = replay(conv.connection(), LINUX)
    assert rep.final_state[C] is State.FIN_WAIT_1
    assert NOTE_ACKS_FIN not in rep.steps[-1].notes


def test_ack_of_exactly_fin_plus_one_is_noted_as_acking_the_fin():
    conv = handshake().client("FA").server("A")
    rep = replay(conv.connection(), LINUX)
    assert NOTE_ACKS_FIN in rep.steps[-1].notes
    assert rep.final_state[C] is State.FIN_WAIT_2


def test_abortive_close_by_rst_from_established():
    conv = handshake().client("PA", length=10).server("A").server("RA")
    rep = replay(conv.connection(), LINUX)
    assert path(rep, S)[-2:] == ["ESTABLISHED", "CLOSED"]
    assert path(rep, C)[-2:] == ["ESTABLISHED", "CLOSED"]
    assert rep.close is Close.ABORTIVE


def test_connection_refused_leaves_server_closed_and_client_closed_by_rst():
    conv = Conversation().client("S")
    conv.server("RA", seq=0)
    rep = replay(conv.connection(), LINUX)
    assert path(rep, C) == ["CLOSED", "SYN-SENT", "CLOSED"]
    assert path(rep, S) == []
    assert rep.final_state == {C: State.CLOSED, S: State.CLOSED}
    assert rep.close is Close.REFUSED


def test_syn_retransmissions_without_answer_stay_in_syn_sent():
    conv = Conversation().client("S").client("S", seq=1000, dt=1.0).client("S", seq=1000, dt=2.0)
    rep = replay(conv.connection(), LINUX)
    assert path(rep, C) == ["CLOSED", "SYN-SENT"]
    assert [NOTE_RETRANSMISSION in s.notes for s in rep.steps] == [False, True, True]
    assert [s.delivered for s in rep.steps] == [False, False, True]
    assert rep.close is Close.INCOMPLETE
    assert rep.final_state[C] is State.SYN_SENT


def test_retransmitted_syn_ack_after_lost_ack_is_noted_and_changes_nothing():
    conv = Conversation().client("S").server("SA").client("A")
    conv.server("SA", seq=5000, dt=1.0).client("A")
    rep = replay(conv.connection(), LINUX)
    assert NOTE_RETRANSMISSION in rep.steps[3].notes
    assert rep.steps[2].delivered is False  # the first ACK never reached the server
    assert path(rep, S) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]
    established = next(t for t in rep.transitions if t.endpoint is S and t.to_state is State.ESTABLISHED)
    assert established.frame == 5


def test_lost_final_ack_is_retransmitted_and_reacked():
    conv = handshake().client("FA").server("A").server("FA").client("A")
    conv.server("FA", seq=conv.next_seq[1] - 1, dt=0.2).client("A")
    rep = replay(conv.connection(), LINUX)
    first_ack, refin, reack = rep.steps[-3], rep.steps[-2], rep.steps[-1]
    assert first_ack.delivered is False and first_ack.receiver_after is State.LAST_ACK
    assert NOTE_RETRANSMISSION in refin.notes
    assert refin.receiver_before is State.TIME_WAIT and refin.receiver_after is State.TIME_WAIT
    assert reack.receiver_before is State.LAST_ACK and reack.receiver_after is State.CLOSED
    assert path(rep, S)[-2:] == ["LAST-ACK", "CLOSED"]
    assert rep.time_wait.restarted_time == refin.segment.time
    assert rep.close is Close.GRACEFUL
    assert rep.anomalies == []


def test_rst_answering_a_retransmitted_fin_shows_time_wait_state_dropped():
    conv = handshake().client("FA").server("A").server("FA").client("A")
    conv.server("FA", seq=conv.next_seq[1] - 1, dt=0.2)
    conv.client("R", seq=conv.next_seq[0], dt=0.0001)
    rep = replay(conv.connection(), LINUX)
    refin, rst = rep.steps[-2], rep.steps[-1]
    assert refin.receiver_before is State.TIME_WAIT and refin.receiver_after is State.CLOSED
    assert "state-dropped" in refin.notes
    assert rst.sender_before is State.CLOSED
    assert "rst-exact" in rst.notes
    assert path(rep, C)[-2:] == ["TIME-WAIT", "CLOSED"]
    assert path(rep, S)[-2:] == ["LAST-ACK", "CLOSED"]
    assert rep.time_wait.ended_by == "dropped"
    assert rep.time_wait.ended_time == refin.segment.time


def test_every_transition_cites_its_rfc_section():
    conv = handshake().client("FA").server("A").server("FA").client("A")
    rep = replay(conv.connection(), LINUX)
    assert all(t.rfc.startswith("RFC 9293 §3.10") for t in rep.transitions)
