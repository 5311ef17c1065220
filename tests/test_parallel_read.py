"""A pcap file read under --jobs (pcapcheck.parallel_read): walked here, decoded by worker processes,
it gives the very bucket rows, capture facts and errors of the one-process read."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

import pcapcheck.capture.source as source
import pcapcheck.parallel_read as parallel_read
import pcapcheck.partition as partition
from pcapcheck.capture import open_capture
from pcapcheck.errors import PcapcheckError
from pcapcheck.partition import read_capture
from pcapcheck.segments import SEGMENT_DTYPE
from tests.test_jobs import corrupt_record

DATA = Path(__file__).resolve().parent / "data"
PCAPS = ["real-eth.pcap", "incarnations.pcap", "real-eth-nsec.pcap", "big-endian-nsec.pcap", "real-sll2.pcap", "ipv6-ext.pcap"]
pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def read_both(path: Path, workers: int = 2, buckets: int = 5):
    """(one process's Held and CaptureInfo, the workers' Held and CaptureInfo) of ``path``."""
    one = open_capture(str(path))
    serial = read_capture(one.batches(), in_memory=0, min_buckets=buckets, expected_bytes=path.stat().st_size)
    many = open_capture(str(path))
    parallel = parallel_read.read_in_processes(many, workers, min_buckets=buckets, expected_bytes=path.stat().st_size)
    return (serial, one.info), (parallel, many.info)


@pytest.mark.parametrize("name", PCAPS)
def test_each_bucket_holds_the_rows_of_the_one_process_read_byte_for_byte(name, monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 700)  # many chunks, records across chunk ends, every worker busy
    (serial, info), (parallel, parallel_info) = read_both(DATA / name, workers=3)
    assert parallel.partition.writers == 3 and parallel.partition.buckets == serial.partition.buckets
    for b in range(serial.partition.buckets):
        assert parallel.partition.rows(b).tobytes() == serial.partition.rows(b).tobytes()
    assert parallel.partition.segments == serial.partition.segments > 0
    assert parallel_info == info and parallel.error is None


def test_the_workers_take_the_chunks_in_turn_and_each_bucket_comes_back_in_capture_order(monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 700)
    (_, _), (parallel, _) = read_both(DATA / "real-eth.pcap", workers=3)
    part = parallel.partition
    assert part.cut is None
    for w in range(3):  # every worker wrote rows
        assert sum(len(np.fromfile(part.path(b, w), dtype=SEGMENT_DTYPE)) for b in range(part.buckets))
    for b in range(part.buckets):
        assert (np.diff(part.rows(b)["frame"].astype(np.int64)) > 0).all()


def test_a_worker_holds_at_most_pending_chunks_and_then_the_walk_waits():
    receive, send = multiprocessing.Pipe(duplex=False)
    sender = parallel_read._Sender(send)
    chunk = np.zeros(40_000, dtype=np.uint32)  # 160 KB: more than the pipe holds
    try:
        # One goes into the pipe (and waits there for a reader), PENDING wait behind it.
        accepted = [sender.send((k, chunk), timeout=0.5) for k in range(parallel_read.PENDING + 3)]
        assert accepted == [True] * (parallel_read.PENDING + 1) + [False, False]
        assert receive.recv()[0] == 0  # a reader takes one: room for one more
        assert sender.send(("next", chunk), timeout=2)
    finally:
        receive.close()  # the sender's thread sees the pipe break and drops the rest
        sender.close()


def test_a_walk_made_to_wait_reads_the_same(monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 700)
    monkeypatch.setattr(parallel_read, "PENDING", 1)
    real = parallel_read.decode

    def slow(*args):
        time.sleep(0.01)
        return real(*args)

    monkeypatch.setattr(parallel_read, "decode", slow)
    (serial, info), (parallel, parallel_info) = read_both(DATA / "real-eth.pcap")
    assert parallel_info == info
    for b in range(serial.partition.buckets):
        assert parallel.partition.rows(b).tobytes() == serial.partition.rows(b).tobytes()


def test_a_corrupt_record_part_way_ends_the_reading_with_the_records_before_it_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 700)
    broken = corrupt_record(DATA / "real-eth.pcap", tmp_path / "broken.pcap", 30)
    (serial, info), (parallel, parallel_info) = read_both(broken)
    assert parallel.error == serial.error and "record 30" in parallel.error
    assert parallel_info == info and info.packets == 29
    for b in range(serial.partition.buckets):
        assert parallel.partition.rows(b).tobytes() == serial.partition.rows(b).tobytes()


def test_a_last_record_cut_short_is_the_same_warning():
    (serial, info), (parallel, parallel_info) = read_both(DATA / "cut-last-record.pcap")
    assert parallel_info.warnings == info.warnings and any("cut short" in w for w in info.warnings)
    assert parallel_info == info


@pytest.mark.parametrize("names", [["real-eth.pcapng"], ["real-eth.pcap.gz"], ["ring_00000_20261124195115.pcap", "ring_00001_20261124195115.pcap"]])
def test_anything_but_one_plain_pcap_file_is_left_to_the_one_process_read(names):
    capture = open_capture([str(DATA / n) for n in names])
    assert parallel_read.read_in_processes(capture, 2, min_buckets=4, expected_bytes=10**6) is None
    assert sum(len(b) for b in capture.batches()) > 0  # and the capture is still there to read


def test_a_worker_that_cannot_write_its_buckets_is_the_run_s_error(monkeypatch):
    def full_disk(*args, **kwargs):
        raise PcapcheckError("/tmp/x: cannot write the temporary bucket files: No space left on device")

    monkeypatch.setattr(parallel_read, "decode", full_disk)
    capture = open_capture(str(DATA / "real-eth.pcap"))
    held = parallel_read.read_in_processes(capture, 2, min_buckets=4, expected_bytes=10**6)
    assert held.error == "/tmp/x: cannot write the temporary bucket files: No space left on device"


def test_a_full_disk_under_a_worker_is_the_run_s_error_in_one_line(monkeypatch):
    real = partition.Partition.path
    monkeypatch.setattr(partition.Partition, "path", lambda self, b, w=0: "/dev/full" if w == 1 else real(self, b, w))
    monkeypatch.setattr(source, "CHUNK_SIZE", 700)
    capture = open_capture(str(DATA / "real-eth.pcap"))
    held = parallel_read.read_in_processes(capture, 2, min_buckets=4, expected_bytes=10**6)
    assert held.error.endswith("cannot write the temporary bucket files: No space left on device")
    assert capture.info.packets < 48  # the capture as if it ended before the first chunk not written


def test_a_full_disk_in_one_process_is_the_run_s_error_too(monkeypatch):
    monkeypatch.setattr(partition.Partition, "path", lambda self, b, w=0: "/dev/full")
    capture = open_capture(str(DATA / "real-eth.pcap"))
    held = read_capture(capture.batches(), in_memory=0, min_buckets=2, expected_bytes=10**6)
    assert held.error.endswith("cannot write the temporary bucket files: No space left on device")


def large_pcap(path: Path, copies: int) -> Path:
    """real-eth.pcap's 48 records again and again: a file of several 4 MB chunks."""
    data = (DATA / "real-eth.pcap").read_bytes()
    path.write_bytes(data[:24] + data[24:] * copies)
    return path


FAILING_SCRIPT = """
import sys, time
import pcapcheck.capture.source as source
import pcapcheck.parallel_read as parallel_read
from pcapcheck.capture import open_capture
from pcapcheck.errors import PcapcheckError
real = parallel_read.decode

def full_on_chunk_4(frames, file_index):
    # Chunks of 256 KB hold about 1,800 records: chunk 4 (worker 0's third) starts near record
    # 7,200, with a hundred chunks still to walk and worker 0's queue full.
    time.sleep(0.05)
    if 6_500 < frames.first_file_frame < 8_500:
        raise PcapcheckError("no space left")
    return real(frames, file_index)

parallel_read.decode, parallel_read.PENDING, source.CHUNK_SIZE = full_on_chunk_4, 1, 256 * 1024
held = parallel_read.read_in_processes(open_capture(sys.argv[1]), 2, min_buckets=4, expected_bytes=10**9)
print(held.error)
"""


def test_a_worker_that_fails_with_chunks_still_coming_stops_the_walk(tmp_path):
    import subprocess
    import sys

    big = large_pcap(tmp_path / "big.pcap", 4000)  # 28 MB: about 110 chunks of 256 KB
    done = subprocess.run(
        [sys.executable, "-c", FAILING_SCRIPT, str(big)], capture_output=True, text=True, timeout=60
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no space left"


def test_what_a_failing_worker_did_not_write_cuts_the_capture_there(monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 700)
    real = parallel_read.decode

    def full_from_frame_20(frames, file_index):
        if frames.first_file_frame + len(frames) > 20:
            raise PcapcheckError("/tmp/x: cannot write the temporary bucket files: No space left on device")
        return real(frames, file_index)

    monkeypatch.setattr(parallel_read, "decode", full_from_frame_20)
    (serial, info), (parallel, parallel_info) = read_both(DATA / "real-eth.pcap")
    assert parallel.error.endswith("No space left on device")
    kept = np.concatenate([parallel.partition.rows(b) for b in range(parallel.partition.buckets)])
    assert 0 < len(kept) == parallel_info.tcp_packets < info.tcp_packets
    assert kept["frame"].max() < 20 and parallel_info.packets < 20
    # Every frame before the cut, none after: the capture as if it ended there.
    before = np.concatenate([serial.partition.rows(b) for b in range(serial.partition.buckets)])
    assert sorted(kept["frame"].tolist()) == sorted(f for f in before["frame"].tolist() if f <= parallel_info.packets)


def test_a_worker_killed_from_outside_is_one_line(monkeypatch):
    monkeypatch.setattr(parallel_read, "decode", lambda *a: os._exit(9))
    capture = open_capture(str(DATA / "real-eth.pcap"))
    with pytest.raises(PcapcheckError, match=r"died \(exit code 9\)"):
        parallel_read.read_in_processes(capture, 2, min_buckets=4, expected_bytes=10**6)


def test_a_bug_in_a_worker_comes_back_with_its_traceback(monkeypatch):
    def bug(*args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(parallel_read, "decode", bug)
    capture = open_capture(str(DATA / "real-eth.pcap"))
    with pytest.raises(RuntimeError, match="ZeroDivisionError: a bug"):
        parallel_read.read_in_processes(capture, 2, min_buckets=4, expected_bytes=10**6)


ORPHAN_SCRIPT = """
import os, sys, time
import pcapcheck.capture.source as source
import pcapcheck.parallel_read as parallel_read
from pcapcheck.capture import open_capture
from pcapcheck.capture.pcap import PcapFile
decode, walk, marks = parallel_read.decode, PcapFile._walk, sys.argv[2]

def marking(*args):  # in a worker: say who it is
    with open(os.path.join(marks, str(os.getpid())), "w"):
        pass
    return decode(*args)

def slow(*args):  # here: still walking when killed, so the workers wait for more
    time.sleep(0.1)
    return walk(*args)

parallel_read.decode, PcapFile._walk = marking, slow
source.CHUNK_SIZE = os.path.getsize(sys.argv[1]) // 20
parallel_read.read_in_processes(open_capture(sys.argv[1]), 2, min_buckets=4, expected_bytes=os.path.getsize(sys.argv[1]))
"""


def test_the_workers_end_when_the_reading_process_is_killed(tmp_path):
    import subprocess
    import sys

    marks = tmp_path / "workers"
    marks.mkdir()
    # Killed, it cannot remove its temporary directory: let that be under tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    reading = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(DATA / "real-eth.pcap"), str(marks)], env=env)
    try:
        for _ in range(400):  # both workers busy: each has left its mark (20 s at most)
            if len(list(marks.iterdir())) >= 2:
                break
            time.sleep(0.05)
        workers = [int(p.name) for p in marks.iterdir()]
        assert len(workers) == 2
    finally:
        reading.kill()
        reading.wait()
    for _ in range(400):  # 20 s at most
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]
        if not alive:
            break
        time.sleep(0.05)
    assert alive == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def test_a_bucket_file_a_failing_worker_never_made_reads_as_empty(monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 700)
    (serial, _), (parallel, _) = read_both(DATA / "real-eth.pcap", workers=3)
    part = parallel.partition
    for b in range(part.buckets):
        expected = part.rows(b)
        gone = part.path(b, 2)
        kept = np.fromfile(gone, dtype=SEGMENT_DTYPE)
        os.unlink(gone)
        assert part.rows(b).tobytes() == expected[~np.isin(expected["frame"], kept["frame"])].tobytes()


def test_a_small_file_is_cut_into_chunks_enough_to_keep_every_worker_busy():
    # A worker waits for its first chunk to be walked, and the run for the last one to be decoded.
    assert parallel_read.chunk_size(25_000_000, 2) == 25_000_000 // (2 * parallel_read.CHUNKS_PER_WORKER)
    assert parallel_read.chunk_size(3_000_000, 2) == parallel_read.MIN_CHUNK
    assert parallel_read.chunk_size(400_000_000, 2) == source.CHUNK_SIZE
