"""A partitioned run's JSON written in pieces by several processes (json_report.document_pieces,
atomic.PiecewiseFile): each piece starts where the one before ends, and together they are the
one-process file byte for byte; a piece that fails leaves no file and no temporary behind."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import warnings
from pathlib import Path

import pytest

import pcapcheck.partition as partition
import pcapcheck.store as store_module
from pcapcheck.analysis import analyze
from pcapcheck.config import load_config
from pcapcheck.reports import json_report, write_reports
from pcapcheck.reports.atomic import PiecewiseFile, ReportWriteError
from pcapcheck.reports.fragments import CSV, ID_PREFIX, JSON, renderer_for

DATA = Path(__file__).resolve().parent / "data"


def analysed_in_buckets():
    """Reused tuples and a mid-stream pickup (7 connections, findings among them), analysed in
    buckets of two segments, their text made ahead and spilled a record a chunk (so that reading
    from a place skips whole chunks and parts of one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
        patch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)
        patch.setattr(store_module, "TEXT_RECORDS", 1)
        result = analyze(
            [str(DATA / "incarnations.pcap"), str(DATA / "midstream.pcap")], load_config(None), steps=False,
            render=renderer_for(json=True, csv=True), all_reports=False, by_id=False,
        )  # fmt: skip
    assert type(result.connections).__name__ == "ConnectionStore" and len(result.connections) > 5
    assert len(result.findings) > 1
    return result


@pytest.fixture(scope="module")
def spilled():
    return analysed_in_buckets()


def one_file(result) -> bytes:
    handle = io.StringIO()
    json_report.write_document(result, handle)
    return handle.getvalue().encode("utf-8")


def in_pieces(result, shares) -> tuple[list[int], list[bytes]]:
    offsets, texts = [], []
    sizes = result.connections.record_sizes(JSON, ID_PREFIX[JSON])
    for _, offset, write in json_report.document_pieces(result, shares, sizes):
        raw = io.BytesIO()
        handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        write(handle)
        handle.flush()
        offsets.append(offset)
        texts.append(raw.getvalue())
    return offsets, texts


@pytest.mark.parametrize("shares", [[1], [1, 1], [1, 0, 1], [0, 1], [1, 0], [3, 1, 2, 5], [1] * 40])
def test_the_pieces_laid_end_to_end_are_the_one_process_json(spilled, shares):
    offsets, texts = in_pieces(spilled, shares)
    assert offsets == [sum(len(t) for t in texts[:k]) for k in range(len(texts))]
    assert b"".join(texts) == one_file(spilled)


def test_a_run_cut_short_is_written_in_pieces_as_in_one_file():
    result = analysed_in_buckets()
    frames = sorted(c["first_frame"] for c in json.loads(one_file(result))["connections"])
    result.connections.cut_at(frames[4])  # as when a bucket's analysis failed there
    result.findings.cut_at(frames[4])
    assert len(result.connections) == 4
    for shares in ([1, 1], [0, 1, 1], [2, 1, 0]):
        assert b"".join(in_pieces(result, shares)[1]) == one_file(result)


def test_a_capture_without_tcp_is_written_by_several_processes_as_by_one(tmp_path):
    udp = tmp_path / "udp.pcap"
    frame = bytes(12) + b"\x08\x00" + bytes.fromhex("4500001c00000000401100000a0000010a000002") + bytes.fromhex("0035003500080000")
    records = b"".join(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame for i in range(5))
    udp.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = analyze([str(udp)], load_config(None), jobs=2, render=renderer_for(json=True, csv=True))
        write_reports(result, json_path=tmp_path / "two.json", csv_dir=tmp_path / "csv", jobs=2)
    write_reports(result, json_path=tmp_path / "one.json")
    assert (tmp_path / "two.json").read_bytes() == (tmp_path / "one.json").read_bytes()
    assert result.capture.packets == 5 and result.capture.tcp_packets == 0


def test_pieces_follow_their_shares(spilled):
    _, texts = in_pieces(spilled, [1, 3])
    whole = sum(len(t) for t in texts)
    assert 0.1 < len(texts[0]) / whole < 0.4  # the findings and the tail ride with the last piece


def test_a_record_size_is_its_bytes_as_joined(spilled):
    store = spilled.connections
    for kind, separator in ((JSON, b","), (CSV, b"")):
        joined = separator.join(store.joined_fragments(kind, ID_PREFIX[kind], separator))
        sizes = store.record_sizes(kind, ID_PREFIX[kind])
        assert len(sizes) == len(store)
        assert int(sizes.sum()) + len(separator) * (len(sizes) - 1) == len(joined)


def test_a_range_of_records_is_the_same_text_as_in_the_whole(spilled):
    store = spilled.connections
    whole = b",".join(store.joined_fragments(JSON, ID_PREFIX[JSON], b","))
    n = len(store)
    for cut in (1, n // 3, n - 1):
        head = b",".join(store.joined_fragments(JSON, ID_PREFIX[JSON], b",", 0, cut))
        tail = b",".join(store.joined_fragments(JSON, ID_PREFIX[JSON], b",", cut, n))
        assert head + b"," + tail == whole


@pytest.mark.parametrize("jobs", [2, 3])
def test_the_json_alone_is_written_in_pieces_by_several_processes(spilled, tmp_path, jobs):
    write_reports(spilled, json_path=tmp_path / "x.json", jobs=jobs)
    assert (tmp_path / "x.json").read_bytes() == one_file(spilled)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_piece_that_cannot_be_written_leaves_no_json_and_the_csv_written(spilled, tmp_path, monkeypatch):
    real = PiecewiseFile.write_piece

    def full_after_the_head(self, offset, write):
        if offset > 0:
            raise ReportWriteError(f"{self.target}: cannot write report: No space left on device")
        real(self, offset, write)

    monkeypatch.setattr(PiecewiseFile, "write_piece", full_after_the_head)
    (tmp_path / "x.json").write_text("the previous report")
    with pytest.raises(ReportWriteError, match="x.json: cannot write report: No space left on device"):
        write_reports(spilled, json_path=tmp_path / "x.json", csv_dir=tmp_path / "csv", jobs=2)
    assert (tmp_path / "x.json").read_text() == "the previous report"
    assert (tmp_path / "csv" / "connections.csv").is_file()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_json_the_disk_cannot_hold_at_the_end_is_an_error_and_no_file(spilled, tmp_path, monkeypatch):
    real_fsync = os.fsync

    def full(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and ".x.json." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ReportWriteError, match="x.json: cannot write report: No space left on device"):
        write_reports(spilled, json_path=tmp_path / "x.json", csv_dir=tmp_path / "csv", jobs=2)
    assert not (tmp_path / "x.json").exists() and (tmp_path / "csv" / "findings.csv").is_file()
    assert not list(tmp_path.glob(".*.tmp"))
