"""False alarms found by the review, pinned down on the real replay of builder conversations.

Each test is one conversation whose correct verdict was read from the RFC, run through the real
replay (not hand-set states) and the registry, so the test fails if either side regresses.
"""

from __future__ import annotations

from pcapcheck.config import Config
from pcapcheck.profiles import get_profile
from pcapcheck.replay import replay
from tests.builders import Conversation
from tests.test_checks_support import last_time, run_rule


def findings(rule: str, conv: Conversation, *, capture_end: float | None = None, config: Config | None = None):
    conn = conv.connection()
    end = last_time(conv) + 1000 if capture_end is None else capture_end
    rep = replay(conn, get_profile("linux"), end)
    return run_rule(rule, conn, rep, capture_end=end, config=config)


# A2: TCP Fast Open ---------------------------------------------------------------------------


def test_synack_acknowledging_fast_open_data_on_the_syn_is_correct():
    # RFC 7413 §4.2: the server accepted the 18 bytes on the SYN, so it acks ISN + 1 + 18.
    conv = Conversation().client("S", length=18).server("SA", ack=1000 + 1 + 18).client("A")
    assert findings("synack-bad-ack", conv) == []


def test_synack_declining_fast_open_data_acks_only_the_syn():
    conv = Conversation().client("S", length=18).server("SA", ack=1001).client("A", seq=1001)
    assert findings("synack-bad-ack", conv) == []


def test_synack_acking_beyond_the_syn_data_is_still_bad():
    conv = Conversation().client("S", length=18).server("SA", ack=1000 + 1 + 30)
    [f] = findings("synack-bad-ack", conv)
    assert f.frame == 2 and "ISN 1000" in f.message


# A3: abort on data (RFC 1122 §4.2.2.13) ------------------------------------------------------


def _closed_client_then_server_data_with_fin() -> Conversation:
    # The client closes; the server's last 31 bytes arrive on its FIN; the closed client resets.
    return (
        Conversation()
        .client("S").server("SA").client("A")
        .client("FA").server("A")
        .server("FPA", length=31)
        .client("R", dt=0.0001)
    )


def test_rst_answering_data_that_arrived_after_close_is_not_rst_instead_of_final_ack():
    assert findings("rst-instead-of-final-ack", _closed_client_then_server_data_with_fin()) == []


def test_rst_answering_data_that_arrived_after_close_is_an_abort_on_data_warning():
    [f] = findings("abortive-close", _closed_client_then_server_data_with_fin())
    assert (f.frame, f.endpoint.value, f.rfc) == (7, "client", "RFC 1122 §4.2.2.13")


def test_rst_answering_a_bare_fin_is_still_rst_instead_of_final_ack():
    conv = Conversation().client("S").server("SA").client("A").client("FA").server("A").server("FA").client("R")
    [f] = findings("rst-instead-of-final-ack", conv)
    assert f.frame == 7
    assert findings("abortive-close", conv) == []


# A6: the FIN-WAIT-2 timer is fin-wait-2-timeout's parameter -----------------------------------


def _fin_answered_by_rst_after(seconds: float) -> Conversation:
    return (
        Conversation()
        .client("S").server("SA").client("A")
        .client("FA").server("A")
        .server("FA", dt=seconds)
        .client("R")
    )


def test_rst_after_the_users_fin_wait_2_timeout_is_not_rst_instead_of_final_ack():
    config = Config(params={"fin-wait-2-timeout": {"fin_wait_2": 1}})
    assert findings("rst-instead-of-final-ack", _fin_answered_by_rst_after(5), config=config) == []


def test_rst_within_the_fin_wait_2_timeout_is_rst_instead_of_final_ack():
    # 5 s is well within the Linux profile's 60 s.
    assert [f.frame for f in findings("rst-instead-of-final-ack", _fin_answered_by_rst_after(5))] == [7]


# A7: SYN copies and new attempts are not early retransmissions --------------------------------


def test_same_syn_captured_twice_by_merged_taps_is_not_an_early_retransmission():
    # Two taps 2 ms apart each saw the one SYN: same seq, same TSval, same options.
    conv = Conversation().client("S", ts=(7000, 0), mss=1460).client("S", seq=1000, ts=(7000, 0), mss=1460, dt=0.002)
    assert findings("syn-retransmit-too-early", conv) == []


def test_syn_resent_with_a_fresh_tsval_200_ms_later_is_an_early_retransmission():
    conv = Conversation().client("S", ts=(7000, 0), mss=1460).client("S", seq=1000, ts=(7200, 0), mss=1460, dt=0.2)
    assert [f.frame for f in findings("syn-retransmit-too-early", conv)] == [2]


def test_syn_after_the_openers_own_rst_is_a_new_attempt_not_a_retransmission():
    # The SYN-ACK the client reset was not captured; its RST proves it answered something.
    conv = Conversation().client("S").client("R", seq=2001, dt=0.006).client("S", seq=1000, dt=0.011)
    assert findings("syn-retransmit-too-early", conv) == []


# A12: a RST the receiver's later ACKs prove was not accepted closed nothing -------------------


def test_data_acknowledged_after_a_rst_in_a_midstream_capture_is_not_data_after_rst():
    # editcap -r crafted-rst-out-of-window.pcap 6-11: the capture starts at a RST whose window the
    # replay cannot judge; the server then ACKs the client's new data, so it never closed.
    conv = Conversation(client_isn=7000100, server_isn=1262488711)
    conv.client("R", seq=1080741925)
    conv.client("PA", seq=7000101, length=100, dt=0.3).server("A").client("FA").server("FA").client("A")
    assert findings("data-after-rst", conv) == []


def test_data_after_an_accepted_rst_that_nobody_acknowledges_is_data_after_rst():
    conv = Conversation().client("S").server("SA").client("A").client("R").client("PA", length=100, dt=0.3)
    [f] = findings("data-after-rst", conv)
    assert (f.frame, f.endpoint.value) == (5, "client")


# A8 (checks' side): a FIN the capture lost, proved by the peer's ACK, ends CLOSE-WAIT -----------


def test_fin_lost_by_the_capture_but_acknowledged_by_the_peer_is_not_a_close_wait_leak():
    # editcap graceful-client-close.pcap 10, then 70 s more capture: the server's FIN is missing,
    # but the client's ACK of seq FIN + 1 proves the server closed 60 ms after the client's FIN.
    conv = Conversation().client("S").server("SA").client("A").client("FA").server("A", dt=0.04)
    server_fin = conv.next_seq[1]
    conv.client("A", ack=server_fin + 1, dt=0.06)
    assert findings("close-wait-leak", conv, capture_end=last_time(conv) + 70) == []


def test_server_that_never_sends_fin_while_the_capture_goes_on_is_a_close_wait_leak():
    conv = Conversation().client("S").server("SA").client("A").client("FA").server("A", dt=0.04)
    [f] = findings("close-wait-leak", conv, capture_end=last_time(conv) + 70)
    assert (f.frame, f.endpoint.value) == (4, "server")


# A4 on a real capture: a packet the capture lost is no proof of a missing retransmission --------


def _sample_without(name: str, frame: int):
    """The sample's verdict with one frame dropped from the capture (as `editcap IN OUT frame`)."""
    from pathlib import Path

    from tests.samples_support import load_sample, read_rows, verdict_of

    sample = load_sample(Path(__file__).resolve().parent.parent / "samples" / f"{name}.toml")
    rows = read_rows(sample)
    keep = rows.origin != frame
    return verdict_of(rows.rows[keep], rows.origin[keep], sample, rows.capture_end)


def test_server_ack_of_the_fin_lost_by_the_capture_is_not_missing_fin_retransmit():
    # close-wait-leak.pcap without frame 7 (the server's ACK of the client's FIN): nothing the
    # capture shows proves the client was left unacknowledged.
    verdict = _sample_without("close-wait-leak", 7)
    assert not [f for f in verdict.findings if f[0] == "missing-fin-retransmit"]


def test_rst_to_the_fin_after_reading_the_peers_half_close_data_is_rst_instead_of_final_ack():
    # shutdown(SHUT_WR), then the client reads and ACKs the server's data: a half-close, not an
    # abort on data; the RST to the server's bare FIN is still wrong.
    conv = (
        Conversation()
        .client("S").server("SA").client("A")
        .client("FA").server("A")
        .server("PA", length=50).client("A")
        .server("FA").client("R")
    )
    assert [f.frame for f in findings("rst-instead-of-final-ack", conv)] == [9]
    assert findings("abortive-close", conv) == []
