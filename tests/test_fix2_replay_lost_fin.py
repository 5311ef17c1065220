"""Replay: a FIN the capture lost together with a neighbouring packet (second review, items 4, 8).

A FIN occupies one sequence number (RFC 9293 §3.4) and a RST from a synchronized endpoint carries
SND.NXT, one past its FIN.  So the FIN is proven by the peer's ACKs stepping by one onto the sender's
SND.NXT, by the sender's own RST at one past what the capture saw of it, or by a RST's ACK field.
A FIN that answered the peer's FIN acknowledged it.  Inputs are real samples with frames dropped
(as ``editcap FILE OUT frames...`` would); expectations come from reading the original captures.
"""

from __future__ import annotations

from tests.samples_support import all_samples, verdict_without_frames

SAMPLES = {s.name: s for s in all_samples()}
CLIENT = "198.18.0.1"


def _verdict(name: str, *frames: int):
    verdict = verdict_without_frames(SAMPLES[name], list(frames))
    faults = sorted((f[0], f[1], f[3], f[4]) for f in verdict.findings if f[1] in ("error", "warning"))
    notes = sorted(f[0] for f in verdict.findings if f[1] == "info")
    return verdict, faults, notes


def _states(verdict) -> dict[str, str]:
    ((_, states, _),) = verdict.connections
    return {ep.split(":")[0]: state for ep, state in states}


def test_fin_lost_with_its_data_is_proven_by_the_ack_step_and_the_rst_is_still_instead_of_the_final_ack():
    # tw-buckets-zero-orphan without frames 4 (the request) and 6 (the client's FIN at 24): the
    # server ACKs 24 (frame 5), then 25 (frame 7): one sequence number more; the client's RST
    # (frame 9) carries seq 25.  The client had closed, so its RST to the server's FIN (frame 8)
    # is still a RST instead of the final ACK, not an abort "without sending FIN".
    _, faults, notes = _verdict("tw-buckets-zero-orphan", 4, 6)
    assert faults == [("rst-instead-of-final-ack", "error", f"{CLIENT}:40026", 9)]
    assert "capture-gap" in notes


def test_fin_lost_with_its_data_before_a_retransmitted_fin_gives_one_verdict_on_the_rst():
    # tw-not-kept-rst without frames 4 and 6: the client's final ACK (frame 9) is captured, the
    # server retransmits its FIN (frame 10) and the client answers RST (frame 11).  That RST
    # answers a retransmitted FIN; it is no abort of a connection that never sent its FIN.
    _, faults, notes = _verdict("tw-not-kept-rst", 4, 6)
    assert faults == [("rst-answers-fin-retransmit", "error", f"{CLIENT}:40006", 11)]
    assert "capture-gap" in notes


def test_both_fins_lost_are_proven_by_the_rst_sequence_and_acknowledgement_numbers():
    # crafted-rst-instead-of-final-ack without both FINs (frames 6, 7): the client's RST,ACK
    # (frame 8) carries seq 102 (one past its data: its FIN at 101) and ack 2 (the server's FIN at
    # 1).  The server went through LAST-ACK and the RST closed it; it did not stay ESTABLISHED.
    verdict, faults, notes = _verdict("crafted-rst-instead-of-final-ack", 6, 7)
    assert [f for f in faults if f[0] == "abortive-close"] == []
    assert _states(verdict)["198.18.0.2"] == "CLOSED"
    assert "capture-gap" in notes


def test_fin_lost_with_the_peers_ack_is_proven_by_the_rst_one_past_it():
    # crafted-time-wait-assassination without frames 7 (the client's FIN at 1) and 8 (the
    # server's ACK 2): the client's RST (frame 9) carries seq 2, its SND.NXT after the FIN.
    _, faults, notes = _verdict("crafted-time-wait-assassination", 7, 8)
    assert [f for f in faults if f[0] == "abortive-close"] == []
    assert "capture-gap" in notes


def test_lost_ack_and_fin_of_the_passive_closer_still_close_gracefully():
    # graceful-client-close without the server's ACK 25 (frame 9) and FIN (frame 10): the
    # client's ACK 33 (frame 11) proves the FIN at 32, which answered the client's FIN at 24 and
    # so acknowledged it.  The client is in TIME-WAIT, the server CLOSED, the close graceful.
    verdict, faults, notes = _verdict("graceful-client-close", 9, 10)
    assert _states(verdict) == {CLIENT: "TIME-WAIT", "198.18.0.2": "CLOSED"}
    ((_, _, close),) = verdict.connections
    assert close == "graceful"
    assert faults == []
    assert notes == ["capture-gap"]


def test_rst_carrying_both_lost_fins_takes_the_server_through_last_ack():
    # Client data 1001..1100 acked; both FINs lost (the client's at 1101, the server's at 5001);
    # the client's RST,ACK carries seq 1102 (its SND.NXT past its FIN) and ack 5002 (past the
    # server's FIN).  The server answered the client's FIN with its own: CLOSE-WAIT, LAST-ACK, and
    # the exact RST closes it.
    from pcapcheck.profiles import PROFILES
    from pcapcheck.replay import replay
    from pcapcheck.replay.model import ANOMALY_ACK_UNSEEN_DATA, State
    from pcapcheck.segments import Side
    from tests.builders import Conversation

    conv = Conversation().client("S").server("SA").client("A").client("PA", length=100).server("A")
    conv.client("RA", seq=1102, ack=5002)
    rep = replay(conv.connection(), PROFILES["linux"])
    server_path = [(t.from_state, t.to_state) for t in rep.transitions if t.endpoint is Side.SERVER]
    assert server_path[-3:] == [
        (State.ESTABLISHED, State.CLOSE_WAIT),
        (State.CLOSE_WAIT, State.LAST_ACK),
        (State.LAST_ACK, State.CLOSED),
    ]
    client_path = [(t.from_state, t.to_state) for t in rep.transitions if t.endpoint is Side.CLIENT]
    assert (State.ESTABLISHED, State.FIN_WAIT_1) in client_path
    assert [a.capture_quality for a in rep.anomalies if a.kind == ANOMALY_ACK_UNSEEN_DATA] == [True]
