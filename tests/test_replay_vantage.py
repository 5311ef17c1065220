"""Replay: where the capture was taken, and what that means for delivery."""

from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.replay.model import State, Vantage
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
C, S = Side.CLIENT, Side.SERVER


def handshake(syn_to_synack: float, synack_to_ack: float) -> Conversation:
    conv = Conversation().client("S").server("SA", dt=syn_to_synack).client("A", dt=synack_to_ack)
    return conv.client("PA", length=10, dt=0.001).server("A", dt=0.001)


def with_ttl(conn, client_ttl: int, server_ttl: int):
    conn.rows["ttl"][conn.sender == 0] = client_ttl
    conn.rows["ttl"][conn.sender == 1] = server_ttl
    return conn


def test_capture_at_the_client_shows_a_long_syn_to_syn_ack_gap():
    rep = replay(handshake(0.080, 0.0001).connection(), LINUX)
    assert rep.vantage is Vantage.CLIENT


def test_capture_at_the_server_shows_a_long_syn_ack_to_ack_gap():
    rep = replay(handshake(0.0001, 0.080).connection(), LINUX)
    assert rep.vantage is Vantage.SERVER


def test_capture_in_the_middle_shows_comparable_gaps():
    rep = replay(handshake(0.040, 0.030).connection(), LINUX)
    assert rep.vantage is Vantage.MIDDLE


def test_forwarded_ttl_rules_out_the_host_the_timing_points_at():
    # Timing says "at the client", but the client's packets crossed a router before the capture.
    conn = with_ttl(handshake(0.080, 0.0001).connection(), client_ttl=63, server_ttl=64)
    assert replay(conn, LINUX).vantage is Vantage.UNKNOWN
    conn = with_ttl(handshake(0.0001, 0.080).connection(), client_ttl=64, server_ttl=120)
    assert replay(conn, LINUX).vantage is Vantage.UNKNOWN


def test_initial_ttl_on_one_side_only_does_not_name_the_capturing_host():
    # An initial TTL only says no router sat between the sender and the capture: a router's
    # interface on the client's link sees TTL 64 from the client too (samples/middle-graceful).
    conn = with_ttl(handshake(0.040, 0.030).connection(), client_ttl=64, server_ttl=51)
    assert replay(conn, LINUX).vantage is Vantage.MIDDLE


def test_forwarded_ttls_on_both_sides_without_handshake_mean_the_middle():
    conv = Conversation().client("PA", length=10).server("A")
    conn = with_ttl(conv.connection(), client_ttl=60, server_ttl=50)
    assert replay(conn, LINUX).vantage is Vantage.MIDDLE


def test_at_the_client_a_fin_crossing_the_servers_fin_is_a_simultaneous_close():
    # Captured at the client with a 100 ms round trip: the server's FIN, seen 30 ms after the
    # client's, left the server before the client's FIN could have arrived there.
    conv = handshake(0.100, 0.0001).client("FA", dt=0.5)
    conv.server("FA", ack=conv.next_seq[0] - 1, dt=0.030).client("A", dt=0.0001).server("A", dt=0.1)
    rep = replay(conv.connection(), LINUX)
    assert rep.vantage is Vantage.CLIENT
    assert State.CLOSING in [t.to_state for t in rep.transitions if t.endpoint is S]
    assert State.CLOSING in [t.to_state for t in rep.transitions if t.endpoint is C]


def test_at_the_client_a_reply_fin_acking_ours_is_a_passive_close():
    conv = handshake(0.100, 0.0001).client("FA", dt=0.5)
    conv.server("FA", dt=0.100).client("A", dt=0.0001)
    rep = replay(conv.connection(), LINUX)
    assert [t.to_state.value for t in rep.transitions if t.endpoint is S][-3:] == ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]


def test_ack_followed_by_a_fin_retransmission_sooner_than_a_round_trip_was_not_proven_lost():
    # At the client, the server's FIN retransmission 20 ms after our ACK (round trip 100 ms) was
    # sent before the ACK could arrive: it proves nothing about the ACK.
    conv = handshake(0.100, 0.0001).server("FA", dt=0.5).client("A", dt=0.0001)
    conv.server("FA", seq=conv.next_seq[1] - 1, dt=0.020)
    rep = replay(conv.connection(), LINUX)
    assert rep.steps[-2].delivered is True
    assert rep.final_state[S] is State.FIN_WAIT_2


def test_ack_followed_by_a_fin_retransmission_after_a_round_trip_was_lost():
    conv = handshake(0.100, 0.0001).server("FA", dt=0.5).client("A", dt=0.0001)
    conv.server("FA", seq=conv.next_seq[1] - 1, dt=0.300)
    rep = replay(conv.connection(), LINUX)
    assert rep.steps[-2].delivered is False
    assert rep.steps[-2].receiver_after is State.FIN_WAIT_1


def test_data_acked_sooner_than_the_handshake_round_trip_is_still_received_before_its_ack():
    # The SYN -> SYN-ACK gap includes the server's SYN processing; later ACKs come back faster.
    conv = Conversation().client("S").server("SA", dt=34e-6).client("A", dt=14e-6)
    conv.client("PA", length=23, dt=200e-6).server("A", dt=7e-6)
    rep = replay(conv.connection(), LINUX)
    assert not any("out-of-window" in s.notes for s in rep.steps)
    data = rep.steps[3]
    assert (data.receiver_before, data.receiver_after) == (State.ESTABLISHED, State.ESTABLISHED)
