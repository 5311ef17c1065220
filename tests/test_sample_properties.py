"""Properties of the verdict on the real captures in samples/, under changes a capture may suffer.

Each test reads a sample's segment rows (pcapcheck.capture.open_capture), transforms them, runs
them through rebuild -> replay -> run_checks, and compares with the untransformed rows.  Frames are
renumbered 1..n after a transformation and findings are mapped back to the frame the segment had in
the original capture, so "the same finding" means the same rule, connection, endpoint and
evidencing segment.  Connections and endpoints are named by address and incarnation, not by id or
role: moving rows may reorder first frames, and when two SYNs cross, which one came "first" (the
client) depends only on where the capture was taken.

The verdict compared is: for each connection each endpoint's final state and the close, plus the
multiset of error and warning findings.  Info findings are left out on purpose: they describe the
capture or name an order-dependent "second" segment (simultaneous-open/-close), and may move.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.samples_support import (
    all_samples,
    crossing_pairs,
    droppable,
    duplicable,
    read_rows,
    reuse_drops,
    verdict_of,
    with_duplicates,
    with_swap,
    without,
)

SAMPLES = {s.name: s for s in all_samples()}
NAMES = sorted(SAMPLES)
# Bounded and derandomized: the same examples on every run, so CI is reproducible.
BOUNDED = settings(
    max_examples=6, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@lru_cache(maxsize=None)
def _rows(name: str):
    return read_rows(SAMPLES[name])


@lru_cache(maxsize=None)
def _baseline(name: str):
    data = _rows(name)
    return verdict_of(data.rows, data.origin, SAMPLES[name], data.capture_end)


def _explain(before, after) -> str:
    lines = []
    if before.connections != after.connections:
        lines.append(f"connections before: {before.connections}\nconnections after:  {after.connections}")
    lost, gained = before.faults() - after.faults(), after.faults() - before.faults()
    lines += [f"  lost   {f}" for f in lost] + [f"  gained {f}" for f in gained]
    return "\n".join(lines)


@pytest.mark.parametrize("name", NAMES)
@BOUNDED
@given(data=st.data())
def test_duplicated_segments_change_no_verdict(name, data):
    """(a) Exact copies of up to three segments, each right after its original with the same
    timestamp, change neither any final state or close nor any error/warning finding.

    Why: a network or capture duplicate is, to the receiver, a segment whose sequence space was
    already received; RFC 9293 §3.10.7.4 has it acknowledged and dropped without a state change.
    Only segments without SYN, FIN and RST are copied: in the rows (no IP ID) a copy of those is
    indistinguishable from the endpoint retransmitting it, which some rules legitimately read.
    """
    rows = _rows(name)
    candidates = duplicable(rows.rows)
    if not candidates:
        pytest.skip("no segment without SYN/FIN/RST to duplicate")
    chosen = data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True), label="rows")
    before = _baseline(name)
    after = verdict_of(*with_duplicates(rows, chosen), SAMPLES[name], rows.capture_end)
    assert after.connections == before.connections and after.faults() == before.faults(), (
        f"{name}: duplicating rows {chosen} changed the verdict:\n{_explain(before, after)}"
    )


@pytest.mark.parametrize("name", NAMES)
@BOUNDED
@given(data=st.data())
def test_crossing_segments_seen_in_the_other_order_change_no_verdict(name, data):
    """(b) Swapping two adjacent segments less than 1 ms apart that crossed on the wire (different
    connections, or one connection's two directions where both carry data/SYN/FIN and neither
    acknowledges the other) changes neither any final state or close nor any error/warning finding.

    Why: such segments were each sent before the other arrived; their order in a capture depends
    only on where the capture was taken, and a verdict about the endpoints must not depend on that.
    Timestamps stay in place (each moves by under 1 ms), so time-based rules see the same timing.
    """
    rows = _rows(name)
    pairs = crossing_pairs(rows.rows)
    if not pairs:
        pytest.skip("no crossing segments in this capture")
    i = data.draw(st.sampled_from(pairs), label="swap at")
    before = _baseline(name)
    after = verdict_of(*with_swap(rows, i), SAMPLES[name], rows.capture_end)
    assert after.connections == before.connections and after.faults() == before.faults(), (
        f"{name}: swapping rows {i} and {i + 1} (frames {rows.origin[i]}, {rows.origin[i + 1]}) changed "
        f"the verdict:\n{_explain(before, after)}"
    )


@pytest.mark.parametrize("name", NAMES)
@BOUNDED
@given(data=st.data())
def test_one_segment_lost_from_the_capture_only_moves_its_own_evidence(name, data):
    """(c) Dropping one data segment or pure ACK from the capture (not a SYN, FIN or RST, not the
    first ACK of a SYN, not an ACK of a FIN - see ``droppable``) leaves every final state and close
    as it was, and changes the error/warning findings only where the dropped segment was itself
    the evidence: a finding whose frame was the dropped one may vanish, or reappear on a later
    segment with the same rule, connection and endpoint.  No other error or warning may appear or
    vanish - in particular a sample clean of errors stays clean of errors.

    Why: what remains still shows the same opens and closes; the gap it leaves (an ACK of data
    never seen, data never ACKed but covered by a later cumulative ACK) is capture loss, which a
    correct analysis reports as a capture-quality note (info), never as an endpoint's fault.
    """
    rows = _rows(name)
    candidates = droppable(rows.rows)
    if not candidates:
        pytest.skip("no droppable segment in this capture")
    i = data.draw(st.sampled_from(candidates), label="drop")
    dropped = int(rows.origin[i])
    before = _baseline(name)
    after = verdict_of(*without(rows, i), SAMPLES[name], rows.capture_end)
    assert after.connections == before.connections, (
        f"{name}: dropping frame {dropped} changed a final state or close:\n{_explain(before, after)}"
    )
    evidenced_by_drop = {(f[0], f[2], f[3]) for f in before.faults() if f[4] == dropped}
    changed = (before.faults() - after.faults()) + (after.faults() - before.faults())
    unexplained = [f for f in changed if (f[0], f[2], f[3]) not in evidenced_by_drop]
    assert not unexplained, (
        f"{name}: dropping frame {dropped} changed findings it was not the evidence of: {unexplained}\n"
        f"{_explain(before, after)}"
    )


REUSE_BOUNDED = settings(
    max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
REUSED = [n for n in NAMES if reuse_drops(_rows(n).rows)]


@pytest.mark.parametrize("name", REUSED)
@REUSE_BOUNDED
@given(data=st.data())
def test_losing_the_packet_between_two_incarnations_adds_no_fault(name, data):
    """(d) Dropping the SYN or the SYN-ACK that opens a later incarnation of a 4-tuple, or one FIN of
    an incarnation the tuple is reused after, adds no error or warning finding: per rule,
    connection and endpoint there are at most as many as before.  Findings the dropped packet was
    the evidence of may vanish or move to another frame of the same connection; capture-quality
    notes (info) may appear.

    Why: the packets left still show a closed connection followed by a new one - a SYN with a new
    ISN after its sender's own FIN, or a SYN-ACK acknowledging an ISN the connection never had;
    the missing packet is capture loss, a capture-quality matter, never an endpoint's fault.
    """
    rows = _rows(name)
    i = data.draw(st.sampled_from(reuse_drops(rows.rows)), label="drop")
    dropped = int(rows.origin[i])
    before = _baseline(name)
    after = verdict_of(*without(rows, i), SAMPLES[name], rows.capture_end)

    def by_connection(verdict):
        return Counter(f[:4] for f in verdict.faults().elements())

    gained = by_connection(after) - by_connection(before)
    assert not gained, (
        f"{name}: dropping frame {dropped} added faults {sorted(gained)}\n{_explain(before, after)}"
    )


def test_transformations_keep_time_order_and_original_frames():
    """The harness itself: every transformation keeps timestamps non-decreasing and maps each row
    back to a frame of the original capture (else the properties above would compare nonsense)."""
    name = "crafted-short-time-wait" if "crafted-short-time-wait" in SAMPLES else NAMES[0]
    rows = _rows(name)
    original = set(int(f) for f in rows.origin)
    cases = [with_duplicates(rows, duplicable(rows.rows)[:2]), without(rows, droppable(rows.rows)[0])]
    if crossing_pairs(rows.rows):
        cases.append(with_swap(rows, crossing_pairs(rows.rows)[0]))
    for new_rows, origin in cases:
        ts = [int(t) for t in new_rows["ts_ns"]]
        assert ts == sorted(ts)
        assert set(int(f) for f in origin) <= original
        assert len(new_rows) == len(origin)
