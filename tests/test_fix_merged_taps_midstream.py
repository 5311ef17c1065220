"""capture-midstream on captures merged from two taps, and its text when the SYN was lost.

Two taps (one per direction) merged with a clock offset capture a SYN-ACK a few µs before the SYN
it answers.  The replay orders them causally (SYN first, from CLOSED); the capture saw the
connection's opening, so it did not start mid-stream.  Inputs: the real sample tw-reuse-client's
rows, the server's direction shifted 50 µs earlier and merged by time as mergecap does.
"""

from __future__ import annotations

import numpy as np

from pcapcheck.catalogue import load_catalogue
from pcapcheck.checks import run_checks
from pcapcheck.connections import rebuild
from pcapcheck.replay import replay
from tests.samples_support import all_samples, config_for, read_rows, renumbered

SAMPLES = {s.name: s for s in all_samples()}
CLIENT_PORT = 40014  # tw-reuse-client's client port


def _findings(name: str, rows) -> list:
    """Every finding on ``rows`` (frames renumbered 1..n in row order), as analyze wires the stages."""
    rows, _ = renumbered(rows, rows["frame"])
    config = config_for(SAMPLES[name])
    catalogue = load_catalogue(config.extra_rule_dirs)
    config.validate(catalogue)
    profile = config.profile_for_run()
    end = float(rows["ts_ns"][-1]) / 1e9 + 1000
    found, previous = [], None
    for conn in rebuild([rows]):
        rep = replay(conn, profile)
        found += run_checks(conn, rep, previous=previous, capture_end=end, config=config, catalogue=catalogue)
        previous = (conn, rep)
    return found


def _merged_taps(name: str, server_offset_ns: int):
    rows = read_rows(SAMPLES[name]).rows.copy()
    from_server = rows["sport"] != CLIENT_PORT
    rows["ts_ns"][from_server] += server_offset_ns
    return rows[np.argsort(rows["ts_ns"], kind="stable")]


def test_synack_captured_just_before_its_syn_by_merged_taps_is_not_a_midstream_start():
    rows = _merged_taps("tw-reuse-client", -50_000)
    first_two = [(int(r["flags"]) & 0x12) for r in rows[:2]]
    assert first_two == [0x12, 0x02]  # the harness did put the SYN-ACK first
    assert [f for f in _findings("tw-reuse-client", rows) if f.rule == "capture-midstream"] == []


def test_midstream_note_on_a_lost_syn_says_the_first_captured_segment_was_the_synack():
    # tw-reuse-client without its first SYN (frame 1): the connection's first segment is the SYN-ACK.
    data = read_rows(SAMPLES["tw-reuse-client"])
    rows = data.rows[data.rows["frame"] != 1]
    [note] = [f for f in _findings("tw-reuse-client", rows) if f.rule == "capture-midstream"]
    assert note.frame == 1 and note.capture_quality
    assert "first captured segment is the SYN-ACK (frame 1)" in note.message
    assert "the SYN it answers was not captured" in note.message

