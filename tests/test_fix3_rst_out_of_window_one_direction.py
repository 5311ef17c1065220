"""rst-out-of-window in a capture of one direction only (second review, item 5 remainder).

Input: crafted-rst-out-of-window with only the client's packets (as
``tcpdump -w OUT 'ip src 198.18.0.1'``): frames 1, 3, 4, 6, 7, 9, 11.  The client's RST (frame 6)
carries sequence number 2^30 + 101 while the client's own SND.NXT is 101: beyond any window the
unseen server could have had (RFC 7323 §2.3 caps it at 65535 << 14), so the server must drop it
(RFC 9293 §3.10.7.4, RFC 5961 §3.2) - the same finding the two-direction capture gives, on the
same RST and the same endpoint.
"""

from __future__ import annotations

from tests.samples_support import all_samples, verdict_first_sender_only

SAMPLES = {s.name: s for s in all_samples()}
CLIENT = "198.18.0.1:40007"


def _client_only_verdict(name: str):
    return verdict_first_sender_only(SAMPLES[name])


def test_rst_beyond_any_window_of_the_unseen_receiver_is_rst_out_of_window():
    verdict = _client_only_verdict("crafted-rst-out-of-window")
    faults = sorted((f[0], f[1], f[3], f[4]) for f in verdict.findings if f[1] in ("error", "warning"))
    assert faults == [("rst-out-of-window", "warning", CLIENT, 6)]
    assert "capture-one-direction" in [f[0] for f in verdict.findings]
