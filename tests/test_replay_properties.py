"""Replay: properties that must hold whatever the capture's small disorders.

A capture may hold the same packet twice, or two packets close in time in the wrong order (two
CPUs timestamping, merged files).  Neither may change what the endpoints went through.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from pcapcheck.profiles import PROFILES
from pcapcheck.replay import replay
from pcapcheck.segments import Side
from tests.builders import Conversation

LINUX = PROFILES["linux"]
CLOSE_GAP = 1e-4  # "close in time": packets this near may be captured in either order
GAPS = st.sampled_from([0.00002, 0.001, 0.03])


@st.composite
def conversations(draw) -> Conversation:
    gap = lambda: draw(GAPS)  # noqa: E731
    conv = Conversation().client("S").server("SA", dt=gap()).client("A", dt=gap())
    for _ in range(draw(st.integers(0, 4))):
        side = draw(st.sampled_from(["client", "server"]))
        getattr(conv, side)("PA", length=draw(st.integers(1, 1400)), dt=gap())
        if draw(st.booleans()):
            getattr(conv, "server" if side == "client" else "client")("A", dt=gap())
    closer, peer = draw(st.sampled_from([("client", "server"), ("server", "client")]))
    ending = draw(st.sampled_from(["graceful", "half-close", "abort", "lost-final-ack"]))
    send = lambda who, flags, **kw: getattr(conv, who)(flags, dt=kw.pop("dt", gap()), **kw)  # noqa: E731
    if ending == "abort":
        send(closer, "RA")
        return conv
    send(closer, "FA")
    send(peer, "A")
    if ending == "half-close":
        send(peer, "PA", length=100)
        send(closer, "A")
    send(peer, "FA")
    send(closer, "A")
    if ending == "lost-final-ack":
        side = 1 if peer == "server" else 0
        send(peer, "FA", seq=conv.next_seq[side] - 1, dt=0.3)
        send(closer, "A")
    return conv


LETTER = {v: k for k, v in {"S": 0x02, "A": 0x10, "F": 0x01, "R": 0x04, "P": 0x08}.items()}


def _spec(records: list[dict]) -> tuple:
    """A compact, readable form of the records: (side, flags, seq, ack, length, microseconds)."""
    t0 = records[0]["time"]
    return tuple(
        (
            "CS"[r["side"]],
            "".join(letter for bit, letter in LETTER.items() if r["flags"] & bit),
            r["seq"],
            r["ack"],
            r["length"],
            round((r["time"] - t0) * 1e6),
        )
        for r in records
    )


@st.composite
def disorders(draw):
    """A conversation, and the same with some segments captured twice and some adjacent pairs
    (each segment in at most one pair, so none moves more than one place) captured swapped."""
    records = draw(conversations()).records
    original = _spec(records)
    n = len(records)
    swaps = sorted(set(draw(st.lists(st.integers(0, n - 2), max_size=2))))
    taken: set[int] = set()
    for k in swaps:
        if k in taken or k + 1 in taken or not _may_swap(records[k], records[k + 1]):
            continue
        taken.update((k, k + 1))
        a, b = records[k], records[k + 1]
        records[k], records[k + 1] = dict(b, time=a["time"]), dict(a, time=b["time"])
    for k in sorted(set(draw(st.lists(st.integers(0, n - 1), max_size=2))), reverse=True):
        records.insert(k + 1, dict(records[k]))
    return original, _spec(records)


def _may_swap(a: dict, b: dict) -> bool:
    """Close in time, and no RST involved: RFC 5961 §3.2 judges a RST by what arrived before it,
    so the order around a RST is what the endpoints really lived, not a capture artefact."""
    return b["time"] - a["time"] < CLOSE_GAP and not (a["flags"] | b["flags"]) & 0x04


def connection_of(spec: tuple):
    conv = Conversation()
    start = conv.time
    for side, flags, seq, ack, length, micros in spec:
        conv.send("CS".index(side), flags, seq=seq, ack=ack, length=length, dt=0)
        conv.records[-1]["time"] = start + micros / 1e6
    return conv.connection()


def _to_states(rep, side):
    return [t.to_state for t in rep.transitions if t.endpoint is side]


@settings(max_examples=100, deadline=None)
@given(disorders())
def test_duplicates_and_close_swaps_change_no_endpoints_path_or_final_state(pair):
    original, disordered = pair
    before, after = replay(connection_of(original), LINUX), replay(connection_of(disordered), LINUX)
    for side in (Side.CLIENT, Side.SERVER):
        assert _to_states(after, side) == _to_states(before, side), side
    assert after.final_state == before.final_state
    assert after.close is before.close


@settings(max_examples=50, deadline=None)
@given(conversations())
def test_every_segment_has_exactly_one_step_in_capture_order(conv):
    conn = conv.connection()
    rep = replay(conn, LINUX)
    assert [s.segment.frame for s in rep.steps] == [int(f) for f in conn.rows["frame"]]
    for side in (Side.CLIENT, Side.SERVER):
        moves = [t for t in rep.transitions if t.endpoint is side]
        assert all(a.to_state is b.from_state for a, b in zip(moves, moves[1:]))
