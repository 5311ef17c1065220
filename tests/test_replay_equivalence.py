"""Replay's fast paths give exactly what the reference computations give.

Short connections are replayed over Python lists instead of numpy columns (numpy's fixed cost per
call outweighs the work on ten segments): Segment objects built from whole columns, the event keys
of the timeline, the handshake legs and TTLs of the vantage point, the unseen holes of the facts.
Each fast path must agree with its numpy reference on every sample capture and on generated
conversations full of retransmissions, gaps, reordering, RSTs and missing handshakes.  The checks
skip rules a connection cannot trigger (no RST, no FIN, no SYN); that must change no finding.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapcheck.checks as checks
from pcapcheck.capture import open_capture
from pcapcheck.catalogue import load_catalogue
from pcapcheck.checks import run_checks
from pcapcheck.connections import Connection, rebuild, segment_at, segment_columns, segment_list
from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay, timeline
from pcapcheck.replay.facts import find_controls, unseen_holes
from pcapcheck.replay.timeline import _event_keys, event_keys_small, event_order
from pcapcheck.replay.vantage import Legs, handshake_legs, infer_vantage, initial_ttl
from pcapcheck.segments import Side
from tests.builders import Conversation
from tests.samples_support import all_samples, config_for

LINUX = PROFILES["linux"]
SAMPLES = all_samples()


def _sample_connections() -> list[tuple[str, Connection]]:
    found = []
    for sample in SAMPLES:
        for conn in rebuild(open_capture(sample.capture_paths).batches()):
            found.append((f"{sample.name}#{conn.id}", conn))
    return found


SAMPLE_CONNECTIONS = _sample_connections()


def _reference_segments(conn: Connection) -> list:
    bases = (conn.base(Side.CLIENT), conn.base(Side.SERVER))
    return [segment_at(conn, i, bases) for i in range(conn.packets)]


def _assert_fast_paths_agree(conn: Connection) -> None:
    """Every list-based computation of one connection equals its numpy reference."""
    cols = segment_columns(conn)
    segments = segment_list(conn, cols)
    assert segments == _reference_segments(conn)
    assert handshake_legs(conn, cols) == handshake_legs(conn)
    for side in (0, 1):
        assert initial_ttl(conn, side, cols) == initial_ttl(conn, side)
        assert unseen_holes(conn, side, cols) == unseen_holes(conn, side)
    if not segments:
        return
    controls = find_controls(segments)
    _, measured = infer_vantage(conn)
    for legs in (measured, Legs(0, 0, False), Legs(2_000_000, 50_000, True)):
        keys, consistent = _event_keys(conn, controls, legs)
        receive, send, small_consistent = event_keys_small(cols, controls, legs)
        assert (receive + send, small_consistent) == (keys.tolist(), consistent)
        small_order = event_order(conn, controls, legs, cols)
        saved = timeline.SMALL_CONNECTION
        timeline.SMALL_CONNECTION = -1  # the numpy path for every connection
        try:
            assert small_order == event_order(conn, controls, legs)
        finally:
            timeline.SMALL_CONNECTION = saved


@pytest.mark.parametrize("name,conn", SAMPLE_CONNECTIONS, ids=[name for name, _ in SAMPLE_CONNECTIONS])
def test_list_computations_equal_numpy_ones_on_every_sample_connection(name, conn):
    _assert_fast_paths_agree(conn)


def test_event_order_is_the_same_above_and_below_the_small_connection_limit(monkeypatch):
    fast = {}
    for name, conn in SAMPLE_CONNECTIONS:
        fast[name] = replay(conn, LINUX)
    monkeypatch.setattr(timeline, "SMALL_CONNECTION", -1)  # every connection through numpy
    for name, conn in SAMPLE_CONNECTIONS:
        assert replay(conn, LINUX) == fast[name], name


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_skipping_rules_a_connection_cannot_trigger_changes_no_finding(sample, monkeypatch):
    config = config_for(sample)
    catalogue = load_catalogue(config.extra_rule_dirs)
    capture = open_capture(sample.capture_paths)

    def all_findings():
        found, previous = [], {}
        for conn in rebuild(open_capture(sample.capture_paths).batches()):
            rep = replay(conn, LINUX, capture_end=capture.info.last_time)
            key = tuple(sorted((conn.client, conn.server)))
            found += run_checks(
                conn,
                rep,
                previous=previous.get(key),
                capture_end=capture.info.last_time,
                config=config,
                catalogue=catalogue,
            )
            previous[key] = (conn, rep)
        return found

    skipping = all_findings()
    monkeypatch.setattr(checks, "NEEDS", {rule: 0 for rule in checks.NEEDS})
    monkeypatch.setattr(checks, "_last_plan", None)
    assert skipping == all_findings()


# --- generated conversations -------------------------------------------------------------------

FLAGS = st.sampled_from(["S", "SA", "A", "PA", "FA", "FPA", "R", "RA", "A", "PA"])
DT = st.sampled_from([0.00002, 0.001, 0.03, 0.4, -0.0004])


@st.composite
def chaotic_conversations(draw) -> Connection:
    """Any mix of segments: retransmitted, beyond a gap, reordered, a handshake or none, RSTs."""
    conv = Conversation(client_isn=draw(st.sampled_from([1000, 0xFFFFFF00])), server_isn=5000)
    for _ in range(draw(st.integers(1, 24))):
        side = draw(st.integers(0, 1))
        flags = draw(FLAGS)
        length = draw(st.sampled_from([0, 0, 1, 100, 1448])) if "P" in flags or "F" in flags else 0
        shift = draw(st.sampled_from([0, 0, 0, -1, -100, 1448]))
        seq = conv.next_seq[side] + shift if shift else None
        ack_shift = draw(st.sampled_from([0, 0, -1, 1, 3000]))
        ack = conv.next_seq[1 - side] + ack_shift if ack_shift and "A" in flags else None
        ts = (draw(st.integers(1, 1000)), 0) if draw(st.booleans()) else None
        wscale = draw(st.sampled_from([None, 7])) if "S" in flags else None
        conv.send(side, flags, length=length, seq=seq, ack=ack, dt=draw(DT), ts=ts, wscale=wscale)
    conn = conv.connection()
    ttls = draw(st.sampled_from([(64, 64), (64, 61), (57, 128), (255, 255)]))
    conn.rows["ttl"] = [ttls[s] for s in conn.sender.tolist()]
    return conn


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chaotic_conversations())
def test_list_computations_equal_numpy_ones_on_generated_conversations(conn):
    _assert_fast_paths_agree(conn)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chaotic_conversations())
def test_replay_of_generated_conversations_does_not_depend_on_the_path_taken(conn):
    fast = replay(conn, LINUX)
    saved = timeline.SMALL_CONNECTION
    timeline.SMALL_CONNECTION = -1
    try:
        reference = replay(conn, LINUX)
    finally:
        timeline.SMALL_CONNECTION = saved
    assert fast == reference
    assert [step.segment for step in fast.steps] == _reference_segments(conn)
