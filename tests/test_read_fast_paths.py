"""The shortcuts of the reader and the rebuilder give what the straightforward computations give.

Decoding reads the Linux option layouts in place and sums checksums over whole chunks; the
rebuilder sorts batches by tuple without concatenating them, narrows the Python incarnation walk to
the tuples that may need it and unwraps numbers with one running sum.  Each is checked here against
a plain per-row (or per-packet) reference, over many tuples and batch boundaries at once.
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pcapcheck.capture.decode import _word_sums, decode
from pcapcheck.capture.tcp_options import parse_options
from pcapcheck.connections import _first_where, _incarnation_starts, _split_connections, _unwrap

from .builders import Conversation
from .test_reader_robustness import assert_options_decoded, packet_with_options

KINDS = ["S", "SA", "A", "PA", "FA", "R", "RA"]
NUMBERS = [1000, 1001, 1101, 5001, 5012, 1002 + 65537, 5000 + 2**20, 2**31 + 5]
TUPLES = [
    (("198.18.0.1", 40000), ("198.18.0.2", 8080)),
    (("198.18.0.1", 40001), ("198.18.0.2", 8080)),
    (("198.18.0.3", 8080), ("198.18.0.1", 40000)),  # the server side is the lower endpoint here
    (("fd00::1", 40000), ("fd00::2", 8080)),
]

segment = st.tuples(
    st.integers(0, len(TUPLES) - 1),
    st.integers(0, 1),
    st.sampled_from(KINDS),
    st.sampled_from(NUMBERS),
    st.sampled_from(NUMBERS),
)


def interleaved(segments: list[tuple]) -> np.ndarray:
    """One capture's rows: each segment on its tuple, in the order given, frames numbered 1.."""
    conversations = [Conversation(client=c, server=s, client_isn=1000, server_isn=5000) for c, s in TUPLES]
    order = []
    for which, side, flags, seq, ack in segments:
        conversations[which].send(side, flags, seq=seq, ack=ack, length=100 if "P" in flags else 0)
        order.append((which, len(conversations[which].records) - 1))
    per_tuple = [c.rows() for c in conversations]
    rows = np.concatenate([per_tuple[which][k : k + 1] for which, k in order])
    rows["frame"] = rows["file_frame"] = np.arange(1, len(rows) + 1)
    rows["ts_ns"] = 1_700_000_000 * 10**9 + rows["frame"].astype(np.int64) * 1000
    return rows


def endpoints(row) -> frozenset:
    return frozenset({(row["src"].tobytes(), int(row["sport"])), (row["dst"].tobytes(), int(row["dport"]))})


@settings(max_examples=300, deadline=None)
@given(st.lists(segment, min_size=1, max_size=30), st.lists(st.integers(1, 29), max_size=4))
def test_batches_split_into_the_incarnations_the_row_by_row_walk_finds(segments, cuts):
    rows = interleaved(segments)
    bounds = sorted({c for c in cuts if c < len(rows)})
    parts = np.split(rows, bounds)
    split = _split_connections(parts)
    whole = _split_connections(rows)
    assert split.rows.tobytes() == whole.rows.tobytes()
    assert split.starts.tolist() == whole.starts.tolist()

    # Each tuple's rows together, in capture order, cut where the walk over that tuple cuts.
    keys = [endpoints(r) for r in split.rows]
    first = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    assert len(first) == len(set(keys))
    expected = []
    for a, b in zip(first, first[1:] + [len(keys)]):
        frames = split.rows["frame"][a:b].tolist()
        assert frames == sorted(frames)
        expected += [a + c for c in _incarnation_starts(split.rows[a:b], split.direction[a:b])]
    assert split.starts.tolist() == expected


def unwrap_reference(raw: list[int], group: list[int], trusted: list[bool]) -> list[int]:
    def signed(d: int) -> int:
        d &= 0xFFFFFFFF
        return d - (1 << 32) if d >= 1 << 31 else d

    out = list(raw)
    for g in sorted(set(group)):
        rows = [i for i in range(len(raw)) if group[i] == g]
        trusted_rows = [i for i in rows if trusted[i]] or rows
        previous = None
        for i in trusted_rows:
            out[i] = raw[i] if previous is None else out[previous] + signed(raw[i] - raw[previous])
            previous = i
        for i in rows:
            if i in trusted_rows:
                continue
            before = [t for t in trusted_rows if t < i]
            ref = before[-1] if before else trusted_rows[0]
            out[i] = out[ref] + signed(raw[i] - out[ref])
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**32 - 1), st.booleans()), min_size=1, max_size=40))
def test_unwrap_agrees_with_a_row_by_row_unwrap(rows):
    rows = sorted(rows, key=lambda r: r[0])  # grouped, as the rebuilder hands them over
    group = [g for g, _, _ in rows]
    raw = [v for _, v, _ in rows]
    trusted = [t for _, _, t in rows]
    got = _unwrap(np.array(raw, dtype=np.uint32), np.array(group), np.array(trusted))
    assert got.tolist() == unwrap_reference(raw, group, trusted)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.lists(st.integers(1, 39), max_size=6))
def test_first_where_is_the_first_true_row_of_each_connection(mask, cuts):
    starts = sorted({0} | {c for c in cuts if c < len(mask)})
    ends = starts[1:] + [len(mask)]
    expected = [next((i for i in range(a, b) if mask[i]), -1) for a, b in zip(starts, ends)]
    assert _first_where(np.array(mask), np.array(starts), np.array(ends)).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.data())
def test_word_sums_of_byte_ranges_are_their_ones_complement_sums(data, draw):
    ranges = draw.draw(st.lists(st.tuples(st.integers(0, len(data)), st.integers(0, len(data))), min_size=1))
    ranges = [(min(a, b), max(a, b)) for a, b in ranges if a != b]
    if not ranges:
        return
    padded = np.frombuffer(data + bytes(64), dtype=np.uint8)  # the decoder's spare bytes after the chunk
    start = np.array([a for a, _ in ranges])
    stop = np.array([b for _, b in ranges])
    expected = []
    for a, b in ranges:
        piece = data[a:b] + b"\x00" * ((b - a) % 2)
        expected.append(sum(struct.unpack(f"!{len(piece) // 2}H", piece)) % 0xFFFF)
    assert _word_sums(padded, start, stop).tolist() == expected


def linux_syn_options(mss: int, ts_val: int, ts_ecr: int, wscale: int) -> bytes:
    return struct.pack("!BBHBBBBIIBBBB", 2, 4, mss, 4, 2, 8, 10, ts_val, ts_ecr, 1, 3, 3, wscale)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.sampled_from(["syn", "data"]),
    st.lists(st.tuples(st.integers(0, 19), st.integers(0, 255)), max_size=2),
)
def test_linux_option_layouts_read_in_place_as_the_per_packet_parser_reads_them(mss, ts_val, ts_ecr, ws, layout, edits):
    options = bytearray(linux_syn_options(mss, ts_val, ts_ecr, ws) if layout == "syn" else b"\x01\x01\x08\x0a")
    if layout == "data":
        options += struct.pack("!II", ts_val, ts_ecr)
    for where, value in edits:  # a layout almost, but not quite, the usual one takes the walk
        if where < len(options):
            options[where] = value
    (row,) = decode(packet_with_options(bytes(options)), 0).segments
    assert_options_decoded(row, parse_options(bytes(options)))
