"""Replay: what the capture itself missed is a capture-quality note, never the endpoints' fault."""

from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.replay.model import NOTE_ACKS_UNSEEN, NOTE_DUPLICATE, Close, State, Vantage
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
C, S = Side.CLIENT, Side.SERVER


def path(rep, side):
    moves = [t for t in rep.transitions if t.endpoint is side]
    return [moves[0].from_state.value] + [t.to_state.value for t in moves] if moves else []


def kinds(rep):
    return [(a.kind, a.capture_quality) for a in rep.anomalies]


def test_midstream_pickup_infers_established_from_data_and_notes_it():
    conv = Conversation().client("PA", length=100).server("A").client("FA").server("FA").client("A")
    rep = replay(conv.connection(), LINUX)
    assert kinds(rep) == [("midstream-start", True)]
    assert rep.steps[0].sender_before is State.UNKNOWN
    assert path(rep, C) == ["UNKNOWN", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert path(rep, S) == ["UNKNOWN", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert rep.close is Close.GRACEFUL


def test_midstream_pickup_at_a_fin_infers_the_closing_states():
    conv = Conversation().server("FA").client("A").client("FA").server("A")
    rep = replay(conv.connection(), LINUX)
    assert kinds(rep) == [("midstream-start", True)]
    assert path(rep, S) == ["UNKNOWN", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert path(rep, C) == ["UNKNOWN", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]


def test_capture_starting_at_the_syn_ack_infers_a_listener_and_a_syn_sent_client():
    conv = Conversation().server("SA", ack=1001).client("A", seq=1001)
    rep = replay(conv.connection(), LINUX)
    assert kinds(rep) == [("midstream-start", True)]
    assert path(rep, S) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]
    assert path(rep, C) == ["UNKNOWN", "SYN-SENT", "ESTABLISHED"]


def test_ack_of_data_the_capture_never_saw_is_a_capture_gap_not_a_fault():
    conv = Conversation().client("S").server("SA").client("A").client("PA", length=100)
    conv.client("PA", length=100, seq=1001 + 200)  # the 100 bytes in between were not captured
    conv.server("A", ack=1001 + 300)
    rep = replay(conv.connection(), LINUX)
    assert NOTE_ACKS_UNSEEN in rep.steps[-1].notes
    assert kinds(rep) == [("ack-unseen-data", True)]
    assert rep.anomalies[0].detail["unseen_bytes"] == 200
    assert rep.anomalies[0].endpoint is S


def test_ack_of_a_fin_the_capture_lost_is_a_capture_gap():
    conv = Conversation().client("S").server("SA").client("A").client("PA", length=100)
    conv.skip_frame().server("A", ack=1001 + 101)  # acks the data and a FIN the capture lost
    rep = replay(conv.connection(), LINUX)
    assert NOTE_ACKS_UNSEEN in rep.steps[-1].notes
    assert ("ack-unseen-data", True) in kinds(rep)


def client_side_only(conv: Conversation):
    conn = conv.connection()
    keep = conn.sender == 0
    conn.rows, conn.sender, conn.seq, conn.ack = conn.rows[keep], conn.sender[keep], conn.seq[keep], conn.ack[keep]
    return conn


def test_only_one_direction_captured_leaves_the_silent_side_unknown():
    conv = Conversation().client("S").server("SA").client("A").client("PA", length=23)
    conv.server("PA", length=31).client("A").client("FA").server("FA").client("A")
    rep = replay(client_side_only(conv), LINUX)
    missing = [a for a in rep.anomalies if a.kind == "one-direction-missing"]
    assert [(a.endpoint, a.capture_quality) for a in missing] == [(S, True)]
    assert not any(NOTE_ACKS_UNSEEN in s.notes for s in rep.steps)
    assert path(rep, S) == []
    assert all(s.receiver_before is State.UNKNOWN for s in rep.steps)
    # The client's own ACKs tell the rest: the last one steps over the server's FIN.
    assert path(rep, C) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert rep.final_state == {C: State.TIME_WAIT, S: State.UNKNOWN}
    assert rep.close is Close.GRACEFUL


def test_one_direction_without_a_fin_step_in_the_acks_stays_open():
    conv = Conversation().client("S").server("SA").client("A").server("PA", length=31).client("A")
    rep = replay(client_side_only(conv), LINUX)
    assert rep.final_state == {C: State.ESTABLISHED, S: State.UNKNOWN}
    assert rep.close is Close.OPEN


def test_exact_duplicate_segment_is_noted_and_changes_nothing():
    conv = Conversation().client("S").server("SA").client("A").client("A")
    rep = replay(conv.connection(), LINUX)
    assert NOTE_DUPLICATE in rep.steps[-1].notes
    assert rep.steps[-1].receiver_before is rep.steps[-1].receiver_after is State.ESTABLISHED


def test_sequence_numbers_wrapping_past_2_32_replay_like_any_other():
    conv = Conversation(client_isn=2**32 - 10, server_isn=2**32 - 3)
    conv.client("S").server("SA").client("A")
    conv.client("PA", length=100).server("PA", length=50).client("A")
    conv.client("FA").server("A").server("FA").client("A")
    conn = conv.connection()
    assert conn.rows["seq"][-1] < 1000 and conn.seq[-1] > 2**32  # raw wrapped, unwrapped grows
    rep = replay(conn, LINUX)
    assert path(rep, C) == ["CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert path(rep, S) == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert rep.anomalies == []
    assert rep.close is Close.GRACEFUL


def test_segment_beyond_the_senders_own_fin_is_unexpected():
    conv = Conversation().client("S").server("SA").client("A").client("FA")
    conv.client("PA", length=10)
    rep = replay(conv.connection(), LINUX)
    assert kinds(rep) == [("unexpected-segment", False)]
    assert rep.anomalies[0].detail["client_state"] == "FIN-WAIT-1"


def test_unexplained_segment_in_a_capture_with_gaps_counts_as_capture_quality():
    conv = Conversation().client("PA", length=10).client("FA").client("PA", length=10).server("A")
    rep = replay(conv.connection(), LINUX)
    assert ("unexpected-segment", True) in kinds(rep)


def test_empty_connection_replays_to_nothing():
    conn = Conversation().client("S").connection()
    conn.rows, conn.sender, conn.seq, conn.ack = conn.rows[:0], conn.sender[:0], conn.seq[:0], conn.ack[:0]
    rep = replay(conn, LINUX)
    assert rep.steps == [] and rep.transitions == [] and rep.vantage is Vantage.UNKNOWN

