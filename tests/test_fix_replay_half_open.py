"""Replay: half-open connection recovery, RFC 9293 §3.5.2 Figure 10 (review item A10).

The client crashes and reopens the tuple with a SYN of a new ISN; the server, still ESTABLISHED,
answers with a challenge ACK (RFC 5961 §4); the client, in SYN-SENT, answers that ACK with
<SEQ=SEG.ACK><CTL=RST> (§3.10.7.3), which resets the server's old connection; then the SYN again.
The RST comes from SYN-SENT: no abort of an established connection by its sender.
"""

from pcapcheck.profiles import PROFILES
from pcapcheck.replay import end_time_wait_by_new_incarnation, replay
from pcapcheck.replay.model import ANOMALY_ACK_UNSEEN_DATA, Close, State
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
C, S = Side.CLIENT, Side.SERVER


def crash_and_reconnect(conv: Conversation) -> Conversation:
    conv.client("S", seq=900_000, dt=30).server("A", seq=5001, ack=1011).client("R", seq=1011, ack=0)
    return conv


def test_rst_answering_the_challenge_ack_comes_from_syn_sent_and_resets_the_old_server():
    conv = Conversation().client("S").server("SA").client("A").client("PA", length=10).server("A")
    rep = replay(crash_and_reconnect(conv).connection(), LINUX)
    rst = rep.steps[-1]
    assert (rst.sender_before, rst.receiver_before, rst.receiver_after) == (
        State.SYN_SENT,
        State.ESTABLISHED,
        State.CLOSED,
    )
    client_path = [(t.from_state, t.to_state) for t in rep.transitions if t.endpoint is C]
    assert client_path[-3:] == [
        (State.ESTABLISHED, State.CLOSED),  # the crash: the connection state was lost
        (State.CLOSED, State.SYN_SENT),
        (State.SYN_SENT, State.CLOSED),
    ]


def test_new_incarnation_holding_the_old_challenge_ack_shows_no_capture_gap():
    # The connection rebuilder opens the new incarnation at the SYN: the challenge ACK and the
    # RST (numbers from the old connection's spaces) land in it, before the server's SYN-ACK.
    conv = Conversation(client_isn=900_000, server_isn=70_000).client("S")
    conv.server("A", seq=5001, ack=1011).client("R", seq=1011, ack=0)
    conv.client("S", seq=900_000, dt=1).server("SA").client("A").client("FA").server("FA").client("A")
    rep = replay(conv.connection(incarnation=2), LINUX)
    assert ANOMALY_ACK_UNSEEN_DATA not in [a.kind for a in rep.anomalies]
    assert rep.final_state == {C: State.TIME_WAIT, S: State.CLOSED}


def test_next_incarnations_challenge_exchange_closes_the_half_open_previous_one():
    # The rebuilder splits at the crashed client's SYN: the previous incarnation alone ends
    # ESTABLISHED on both sides; the next one's SYN and the RST answering the challenge ACK end it.
    old = Conversation().client("S").server("SA").client("A").client("PA", length=10).server("A")
    previous = replay(old.connection(), LINUX)
    new = Conversation(client_isn=900_000, server_isn=70_000, start=old.time + 30).skip_frame(5).client("S")
    new.server("A", seq=5001, ack=1011).client("R", seq=1011, ack=0)
    new.client("S", seq=900_000, dt=1).server("SA").client("A")
    assert end_time_wait_by_new_incarnation(previous, new.connection(id=2, incarnation=2, previous_id=1))
    assert previous.final_state == {C: State.CLOSED, S: State.CLOSED}
    assert [(t.endpoint, t.frame) for t in previous.transitions[-2:]] == [(C, 6), (S, 8)]
    assert previous.close is Close.ABORTIVE


def test_next_incarnation_after_a_graceful_close_leaves_the_previous_states_alone():
    old = Conversation().client("S").server("SA").client("A").client("FA").server("FA").client("A")
    previous = replay(old.connection(), LINUX, capture_end=old.time + 100)
    before = dict(previous.final_state)
    new = Conversation(client_isn=900_000, server_isn=70_000, start=old.time + 120).client("S").server("SA")
    assert not end_time_wait_by_new_incarnation(previous, new.connection(id=2, incarnation=2, previous_id=1))
    assert previous.final_state == before
