"""Report text spilled by a partitioned run comes back byte for byte (pcapcheck.text_records).

The specification: records written in chunks to several files come back in the order a sequence
names their files, each exactly as written (non-ASCII text and empty records included), from any
place on; and ``joined`` puts each head in front of its record and the separator between records
only, copying the records' text once.
"""

from __future__ import annotations

import numpy as np

from pcapcheck.text_records import interleave, joined, write_records

# Two files' records: ASCII, a raw "§" (the JSON's RFC references), an empty one, a long one.
RECORDS = {
    0: ["a1", '"rfc":"RFC 9293 §3.10.4"', "", "a4", "x" * 5000],
    1: ["b1", "b2§", "b3"],
}
SEQUENCE = np.asarray([0, 1, 0, 0, 1, 1, 0, 0], dtype=np.uint16)


def _spilled(tmp_path) -> dict[int, str]:
    paths = {}
    for b, texts in RECORDS.items():
        paths[b] = str(tmp_path / f"text-{b}")
        with open(paths[b], "wb") as handle:
            # Two chunks: a file's records span chunks as a bucket's pieces do.
            write_records(handle, texts[:2])
            write_records(handle, texts[2:])
    return paths


def _expected(sequence: np.ndarray, skip: dict[int, int] | None = None) -> list[bytes]:
    taken = dict(skip or {})
    out = []
    for b in sequence.tolist():
        out.append(RECORDS[b][taken.get(b, 0)].encode("utf-8"))
        taken[b] = taken.get(b, 0) + 1
    return out


def test_records_come_back_in_the_sequences_order_byte_for_byte(tmp_path, monkeypatch):
    paths = _spilled(tmp_path)
    monkeypatch.setattr("pcapcheck.text_records.MERGE_SLICE", 3)  # slices that cut the chunks
    got = [(start, [bytes(r) for r in records]) for start, records in interleave(SEQUENCE, paths.__getitem__)]
    assert [start for start, _ in got] == [0, 3, 6]
    assert [r for _, records in got for r in records] == _expected(SEQUENCE)


def test_records_from_a_place_on_skip_each_files_earlier_records(tmp_path):
    paths = _spilled(tmp_path)
    got = [bytes(r) for _, records in interleave(SEQUENCE[3:], paths.__getitem__, {0: 2, 1: 1}) for r in records]
    assert got == _expected(SEQUENCE[3:], {0: 2, 1: 1})


def test_joined_puts_each_head_before_its_record_and_the_separator_between_records():
    texts = [memoryview(b'"a":1}'), memoryview(b""), memoryview('"b":"§"}'.encode())]
    heads = [b'{"id":%d,' % n for n in (1, 2, 3)]
    assert joined(heads, texts, b",") == '{"id":1,"a":1},{"id":2,,{"id":3,"b":"§"}'.encode()
    assert joined([b"1,", b"2,"], [memoryview(b"x\r\n"), memoryview(b"y\r\n")], b"") == b"1,x\r\n2,y\r\n"
    assert joined([b"1,"], [memoryview(b"x")], b",") == b"1,x"
    assert joined([], [], b",") == b""
