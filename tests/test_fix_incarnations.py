"""A reused 4-tuple splits into its incarnations even when the capture lost a packet of the seam.

Review item A1.  samples/tw-reuse-client.pcap holds two connections on one tuple: frames 1-11 (the
client closes first, frame 8; the server's FIN is frame 10) and frames 12-22 (the client reopens
2 s later: SYN 12, SYN-ACK 13).  Each test derives a capture from it the way a real capture goes
wrong (a packet lost, started late, one direction only, two taps merged) and expects what a person
reads in it: two connections, and no error or warning, only capture-quality notes at most.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dpkt

from pcapcheck.analysis import analyze
from pcapcheck.config import load_config
from tests.builders import Conversation
from tests.test_connections_rebuild import rebuilt

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CLIENT_ADDR = bytes([198, 18, 0, 1])


def derive(tmp_path: Path, sample: str, keep: Callable[[int, float, bytes], float | None]) -> str:
    """Write ``sample`` again keeping packet (frame, ts, bytes) at the time ``keep`` returns (None: drop)."""
    out = tmp_path / f"derived-{sample}"
    with open(SAMPLES / sample, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        packets = []
        for frame, (ts, buf) in enumerate(reader, start=1):
            new_ts = keep(frame, ts, buf)
            if new_ts is not None:
                packets.append((new_ts, buf))
        linktype = reader.datalink()
    packets.sort(key=lambda p: p[0])  # a merge of two taps is in time order
    with open(out, "wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=linktype, nano=True)
        for ts, buf in packets:
            writer.writepkt(buf, ts=ts)
    return str(out)


def without(*frames: int) -> Callable[[int, float, bytes], float | None]:
    return lambda frame, ts, buf: None if frame in frames else ts


def only(first: int, last: int) -> Callable[[int, float, bytes], float | None]:
    return lambda frame, ts, buf: ts if first <= frame <= last else None


def sent_by_client(buf: bytes) -> bool:
    return dpkt.ethernet.Ethernet(buf).data.src == CLIENT_ADDR


def verdict(path: str):
    result = analyze([path], load_config(None))
    alarms = [(f.rule, f.severity.value, f.frame) for f in result.findings if f.severity.value in ("error", "warning")]
    return len(result.connections), alarms


def test_lost_syn_of_a_reused_tuple_opens_a_new_incarnation_at_its_syn_ack(tmp_path):
    assert verdict(derive(tmp_path, "tw-reuse-client.pcap", without(12))) == (2, [])


def test_capture_starting_during_the_first_close_still_sees_the_reopening(tmp_path):
    # The server's FIN (frame 10) is the first packet: the client's SYN after it opens a new connection.
    assert verdict(derive(tmp_path, "tw-reuse-client.pcap", only(10, 22))) == (2, [])
    assert verdict(derive(tmp_path, "tw-reuse-client.pcap", only(9, 22))) == (2, [])


def test_client_side_only_capture_reopens_after_the_clients_own_fin(tmp_path):
    client_only = derive(tmp_path, "tw-reuse-client.pcap", lambda frame, ts, buf: ts if sent_by_client(buf) else None)
    assert verdict(client_only) == (2, [])


def test_lost_server_fin_does_not_merge_the_reopened_connection(tmp_path):
    assert verdict(derive(tmp_path, "tw-reuse-client.pcap", without(10))) == (2, [])


def test_merged_taps_with_the_syn_ack_sorted_before_its_syn_open_the_new_incarnation_there(tmp_path):
    # The server-side tap runs 50 µs early: every server packet sorts before what answers it.
    def early_server(frame, ts, buf):
        return ts if sent_by_client(buf) else ts - 0.00005

    assert verdict(derive(tmp_path, "tw-reuse-client.pcap", early_server)) == (2, [])


def test_lost_syn_after_a_short_time_wait_is_no_bad_syn_ack(tmp_path):
    count, alarms = verdict(derive(tmp_path, "crafted-short-time-wait.pcap", without(9)))
    assert count == 2 and "synack-bad-ack" not in [rule for rule, _, _ in alarms]


def test_syn_ack_of_a_lost_syn_after_the_handshake_starts_a_connection_with_the_tuple_roles():
    conv = Conversation()
    conv.client("S").server("SA").client("A").client("FA").server("FA").client("A")
    conv.server("SA", seq=70_000, ack=90_001).client("A", seq=90_001, ack=70_001)  # its SYN was lost
    first, second = rebuilt(conv)
    assert (second.incarnation, second.first_frame, str(second.client)) == (2, 7, "198.18.0.1:40000")
    assert second.roles_inferred and second.server_isn == 70_000


def test_retransmitted_syn_ack_after_the_handshake_ack_stays_in_its_connection():
    conv = Conversation()
    conv.client("S").server("SA").client("A").server("SA", seq=5000, ack=1001).client("A")
    assert len(rebuilt(conv)) == 1


def test_syn_far_outside_an_established_connections_window_is_a_new_incarnation():
    # RFC 9293 §3.5.2 Figure 10: the client rebooted and opens again from a fresh ISN.
    conv = Conversation()
    conv.client("S").server("SA").client("A").client("PA", length=10).server("A")
    conv.client("S", seq=3_000_000)
    assert [c.client_isn for c in rebuilt(conv)] == [1000, 3_000_000]
