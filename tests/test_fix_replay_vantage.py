"""Replay: the vantage point is named only when the capture proves it (review item B, vantage).

Handshake legs below the timestamp noise and host turnaround (tens of microseconds) say nothing:
a single-host or loopback capture is "unknown", never "middle" or a side; the checks then need
other evidence (pcapcheck/checks/context.py ``captured_at`` is False for "unknown").
"""

from pathlib import Path

import pytest

from pcapcheck.capture import open_capture
from pcapcheck.connections import rebuild
from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.replay.model import Vantage
from tests.builders import Conversation

LINUX = PROFILES["linux"]


def handshake(syn_to_synack: float, synack_to_ack: float) -> Conversation:
    conv = Conversation().client("S").server("SA", dt=syn_to_synack).client("A", dt=synack_to_ack)
    return conv.client("PA", length=10, dt=0.001).server("A", dt=0.001)


def test_both_legs_within_timer_noise_leave_the_vantage_unknown():
    # 14 us and 21 us: samples/close-wait-leak, captured at the server in one host's namespaces.
    assert replay(handshake(0.000021, 0.000014).connection(), LINUX).vantage is Vantage.UNKNOWN


def test_one_leg_within_noise_is_not_comparable_to_a_slightly_longer_one():
    # 18 us and 60 us (samples/syn-answered-late): neither "middle" nor a tenfold difference.
    assert replay(handshake(0.000060, 0.000018).connection(), LINUX).vantage is Vantage.UNKNOWN


def test_a_long_leg_and_one_within_noise_still_name_the_near_host():
    assert replay(handshake(0.006330, 0.000022).connection(), LINUX).vantage is Vantage.CLIENT


@pytest.mark.parametrize("sample", ["close-wait-leak.pcap", "graceful-client-close.pcap", "middle-graceful.pcap"])
def test_single_host_namespace_captures_do_not_guess_a_vantage(sample):
    # All three were taken on one host (netns, legs of 10-50 us); middle-graceful's router sits on
    # the client's link, so the client's TTL 64 does not put the capture at the client's host.
    capture = open_capture([str(Path(__file__).resolve().parent.parent / "samples" / sample)])
    for conn in rebuild(capture.batches()):
        assert replay(conn, LINUX).vantage is Vantage.UNKNOWN
