"""Replay: a RST in a capture of one direction only (second review, item 5).

With the receiver's segments all missing, its window is unknown, but not unbounded: its RCV.NXT is
at most the sender's SND.NXT and its window at most 65535 << 14 (RFC 7323 §2.3), or 65535 without
window scaling.  A RST beyond that is out of window for any receiver (RFC 9293 §3.10.7.4) and
closes nothing.  Input: crafted-rst-out-of-window with only the client's packets (as
``tcpdump -w OUT 'ip src 198.18.0.1'``): frames 1, 3, 4, 6 (RST seq 2^30 + 101), 7, 9, 11.
"""

from __future__ import annotations

from tests.samples_support import all_samples, verdict_first_sender_only

SAMPLES = {s.name: s for s in all_samples()}
CLIENT = "198.18.0.1"


def _client_only_verdict(name: str):
    return verdict_first_sender_only(SAMPLES[name])


def test_rst_far_beyond_its_senders_own_snd_nxt_closes_nothing_in_a_one_direction_capture():
    verdict = _client_only_verdict("crafted-rst-out-of-window")
    faults = sorted((f[0], f[1], f[4]) for f in verdict.findings if f[1] in ("error", "warning"))
    assert [f for f in faults if f[0] in ("abortive-close", "data-after-rst")] == []
    # The client's ACK 2 (frame 11) of the server's FIN shows the connection went on to a close.
    ((_, states, close),) = verdict.connections
    assert dict(states)[f"{CLIENT}:40007"] == "TIME-WAIT"
    assert "capture-one-direction" in [f[0] for f in verdict.findings]
