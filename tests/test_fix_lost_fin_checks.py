"""Checks that must survive the capture losing a FIN the peer's ACK proves was sent.

The replay infers such a FIN (replay.facts.lost_fins) and takes the sender through its close; a
check judging "the closer had sent its FIN" reads that, not the captured segments.  Inputs are the
real samples with one row dropped (pcapcheck.capture rows, as tests/test_sample_properties.py does).
"""

from __future__ import annotations

from tests.samples_support import all_samples, verdict_without_frames

SAMPLES = {s.name: s for s in all_samples()}


def _faults_without_frame(name: str, frame: int) -> list[tuple]:
    """Error/warning findings (rule, severity, endpoint address, original frame) with ``frame`` dropped."""
    verdict = verdict_without_frames(SAMPLES[name], [frame])
    return sorted((f[0], f[1], f[3], f[4]) for f in verdict.findings if f[1] in ("error", "warning"))


def test_orphan_rst_to_the_peers_fin_is_still_an_error_when_the_capture_lost_the_closers_fin():
    # fin-wait-2-orphan-timeout: the client closes (frame 8, FIN seq 24), the server ACKs 25 (frame 9),
    # sends its FIN 2.5 s later (frame 10), well inside FIN-WAIT-2's 60 s, and the client answers RST
    # (frame 11).  Without frame 8, the server's ACK 25 of one unseen sequence number proves the FIN.
    assert _faults_without_frame("fin-wait-2-orphan-timeout", 8) == [
        ("rst-instead-of-final-ack", "error", "198.18.0.1:40029", 11)
    ]


def test_tw_buckets_zero_rst_is_still_an_error_when_the_capture_lost_the_closers_fin():
    # tw-buckets-zero-orphan: client FIN frame 6, server ACK frame 7, server FIN frame 8, client RST
    # frame 9 (no TIME-WAIT bucket to hold the connection); frame 6 dropped.
    assert _faults_without_frame("tw-buckets-zero-orphan", 6) == [
        ("rst-instead-of-final-ack", "error", "198.18.0.1:40026", 9)
    ]
