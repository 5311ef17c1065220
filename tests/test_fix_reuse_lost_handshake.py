"""Reuse of a 4-tuple during TIME-WAIT, judged when the capture lost part of the new handshake.

The holder of TIME-WAIT took part in the new incarnation if it sent the SYN, or accepted it: its
SYN-ACK, or (SYN-ACK lost) the replay taking it from SYN-RECEIVED into the connection.  When the
capture lost the SYN itself, the SYN-ACK answering it proves it: the SYN's ISN is the SYN-ACK's
ACK - 1 (RFC 9293 §3.4) and its TSval the SYN-ACK's TSecr (RFC 7323 §4.3).  Inputs: real samples
with frames dropped, as ``editcap FILE OUT N`` would.
"""

from __future__ import annotations

from tests.samples_support import all_samples, verdict_without_frames

SAMPLES = {s.name: s for s in all_samples()}
REUSE_RULES = ("time-wait-reuse", "short-time-wait")


def _reuse_findings(name: str, *frames: int) -> list[tuple]:
    verdict = verdict_without_frames(SAMPLES[name], frames)
    return sorted((f[0], f[1], f[3], f[4]) for f in verdict.findings if f[0] in REUSE_RULES)


def test_server_reuse_with_newer_timestamp_is_still_time_wait_reuse_when_its_synack_was_lost():
    # tw-reuse-server: the server entered TIME-WAIT at frame 10; the client's new SYN (frame 12,
    # TSval 265858707 > the old 265857607) is answered by SYN-ACK frame 13, dropped here; the
    # client's ACK (frame 14) and the rest of the connection show the server accepted it.
    assert _reuse_findings("tw-reuse-server", 13) == [("time-wait-reuse", "info", "198.18.0.2:8080", 12)]


def test_server_reuse_is_stated_at_the_synack_when_the_capture_lost_the_new_syn():
    # Frame 12 (the SYN) dropped: the server's SYN-ACK (frame 13) echoes TSecr 265858707, the SYN's
    # TSval, newer than the old connection's last client TSval: the same safeguard, at frame 13.
    assert _reuse_findings("tw-reuse-server", 12) == [("time-wait-reuse", "info", "198.18.0.2:8080", 13)]


def test_client_reopening_from_time_wait_is_stated_at_the_synack_when_the_capture_lost_its_syn():
    # tw-reuse-client: the client (TIME-WAIT since frame 10) reopens with SYN frame 12, dropped;
    # SYN-ACK frame 13 echoes the SYN's TSval, newer than the client's old last one.
    assert _reuse_findings("tw-reuse-client", 12) == [("time-wait-reuse", "info", "198.18.0.1:40014", 13)]


def test_short_time_wait_survives_the_capture_losing_the_new_syn():
    # crafted-short-time-wait: no timestamps anywhere; the client enters TIME-WAIT at frame 7 and
    # reopens 1 s later (SYN frame 9, dropped here).  The SYN-ACK (frame 10) proves the SYN was sent
    # by then, so the reuse came at most 1 s after TIME-WAIT began, with no timestamp safeguard.
    assert _reuse_findings("crafted-short-time-wait", 9) == [("short-time-wait", "error", "198.18.0.1:40002", 10)]
