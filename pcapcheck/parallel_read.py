"""One large pcap file read under ``--jobs``: the record walk here, the decoding in worker processes.

The record walk is a chain (each record's length says where the next begins), so one process
makes it.  What follows it, for each chunk of the file, is independent of every other chunk:
framing, decoding the headers, hashing each segment to its bucket and writing it there, two thirds
of reading a capture.  So this process walks the file chunk by chunk and sends each chunk's place
in the file and its records' positions to the workers in turn; a worker reads the chunk again (from
the page cache), decodes it and appends its segments to its own file of every bucket
(partition.Partition with several writers).  A bucket's rows are then runs of chunks spread over
the workers' files: each worker says how many rows each of its chunks gave each bucket, and
``Partition.rows`` lays the runs out in chunk order, which is capture order.

A worker holds at most PENDING chunks not yet taken: the walk, three times as fast as one worker,
waits when they all hold that many, and memory stays bounded however large the file.

The result is the partition and CaptureInfo that ``partition.read_capture`` makes of the same file,
errors included: a corrupt record part-way ends the reading with the chunks before it analysed.
Only a plain pcap file qualifies (``Capture.single_pcap``); anything else is read as before.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import tempfile
import threading
import traceback
from collections.abc import Callable

import numpy as np

from .capture import Capture, CaptureInfo, ChunkCounts, close_source, count_chunk
from .capture.decode import decode
from .capture.source import SLACK
from .errors import PcapcheckError
from .partition import SEGMENTS_PER_BUCKET, Held, Partition, Runs, bucket_count

# How long this process waits for a worker's word before checking that the workers still live.
POLL_SECONDS = 0.5
# Chunks sent to a worker and not yet taken (a chunk's record positions: about 200 KB).
PENDING = 8


def read_in_processes(
    capture: Capture,
    workers: int,
    *,
    min_buckets: int,
    expected_bytes: int | None,
    progress: Callable[[int], None] | None = None,
) -> Held | None:
    """``capture`` read into a partition by ``workers`` processes; None (nothing read) when it is
    not one plain pcap file or processes cannot be forked."""
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods() or not expected_bytes:
        return None
    file = capture.single_pcap()
    if file is None:
        return None
    held = Held([], workdir=tempfile.TemporaryDirectory(prefix="pcapcheck-"))
    buckets = max(min_buckets, bucket_count(0, SEGMENTS_PER_BUCKET, expected_bytes))
    crew = _Crew(file, held.workdir.name, buckets, workers)
    try:
        try:
            for _ in file.fmt.chunks(crew.send):
                crew.collect(progress, block=False)
                if crew.error is not None:  # a worker could not go on (a full disk): stop reading
                    raise PcapcheckError(crew.error)
        except PcapcheckError as err:
            held.error = str(err)
        crew.finish()
        crew.collect(progress, block=True)
    finally:
        crew.stop()
        close_source(capture.info, file)
    if crew.error is not None and held.error is None:
        held.error = crew.error
    held.partition = crew.partition(capture.info)
    return held


class _Crew:
    """The worker processes, the chunks sent to them and what came back."""

    def __init__(self, file, directory: str, buckets: int, workers: int):
        context = multiprocessing.get_context("fork")  # the workers inherit the open file's format
        self._results = context.Queue()
        pipes = [context.Pipe(duplex=False) for _ in range(workers)]
        senders = [send for _, send in pipes]
        self._processes = [
            context.Process(
                target=_worker, args=(receive, senders, self._results, file, directory, buckets, workers, writer),
                daemon=True, name=f"pcapcheck-read-{writer}",
            )
            for writer, (receive, _) in enumerate(pipes)
        ]  # fmt: skip
        for process in self._processes:
            process.start()
        for receive, _ in pipes:
            receive.close()
        self._tasks = [_Sender(send) for send in senders]
        self._file = file
        self._raw = file.fmt.reader.raw
        self._directory = directory
        self._buckets = buckets
        self._owners: list[int] = []  # the worker of each chunk sent, in file order
        self._back: dict[int, tuple[ChunkCounts, np.ndarray]] = {}  # by chunk: its counts, its rows per bucket
        self._done = 0
        self.error: str | None = None

    def send(self, data: memoryview, positions: np.ndarray, first_frame: int) -> None:
        """PcapFile.chunks' ``make``: the chunk to the next worker.  ``data`` ends where the file
        has been read to."""
        chunk = len(self._owners)
        worker = chunk % len(self._tasks)
        task = (chunk, self._raw.tell() - len(data), len(data), positions.astype(np.uint32), first_frame)
        while not self._tasks[worker].send(task, timeout=POLL_SECONDS):
            self._check_alive()
            self.collect(None, block=False)
        self._owners.append(worker)

    def collect(self, progress: Callable[[int], None] | None, *, block: bool) -> None:
        """What the workers said so far (until every one is done, ``block``)."""
        while not block or self._done < len(self._processes):
            try:
                kind, *said = self._results.get(block=block, timeout=POLL_SECONDS if block else None)
            except queue_module.Empty:
                if not block:
                    return
                self._check_alive()
                continue
            if kind == "chunk":
                chunk, counts, rows = said
                self._back[chunk] = (counts, rows)
                if progress is not None:
                    progress(counts.tcp)
            elif kind == "done":
                self._done += 1
            elif kind == "input":
                self._done += 1
                self.error = self.error or said[0]
            else:
                raise RuntimeError(f"pcapcheck capture reading process failed:\n{said[0]}")

    def partition(self, info: CaptureInfo) -> Partition:
        """The chunks read, up to the first one a worker did not finish (after a worker's error),
        counted into ``info`` in file order, as a partition."""
        kept = next((c for c in range(len(self._owners)) if c not in self._back), len(self._owners))
        for c in range(kept):
            count_chunk(info, self._file, self._back[c][0])
        rows = np.zeros((kept, self._buckets), dtype=np.uint32)
        for c in range(kept):
            rows[c] = self._back[c][1]
        owners = np.asarray(self._owners[:kept], dtype=np.int32)
        return Partition(
            self._directory, self._buckets, segments=int(rows.sum()), writers=len(self._processes),
            runs=Runs(owners, rows),
        )  # fmt: skip

    def _check_alive(self) -> None:
        dead = [p for p in self._processes if p.exitcode is not None and p.exitcode != 0]
        if dead:
            raise PcapcheckError(
                f"a capture reading process died (exit code {dead[0].exitcode}); try fewer --jobs"
            )

    def finish(self) -> None:
        """No more chunks: each worker closes its files and says how many segments it wrote."""
        for tasks in self._tasks:
            while not tasks.send(None, timeout=POLL_SECONDS):
                self._check_alive()

    def stop(self) -> None:
        failed = self._done < len(self._processes)
        for process in self._processes:
            if failed and process.is_alive():
                process.terminate()
            process.join()
        for tasks in self._tasks:
            tasks.close()
        self._results.close()


class _Sender:
    """One worker's chunks, sent by a thread: the walk does not wait for the worker to take a chunk
    unless it holds PENDING of them.  A pipe, not a multiprocessing.Queue: the worker holds no end
    it writes to, so it sees the end of the pipe when this process dies, even in the middle of a
    chunk."""

    def __init__(self, connection):
        self._connection = connection
        self._waiting: queue_module.Queue = queue_module.Queue(maxsize=PENDING)
        self._thread = threading.Thread(target=self._run, daemon=True, name="pcapcheck-read-send")
        self._thread.start()

    def send(self, task, timeout: float) -> bool:
        """False when the worker held PENDING chunks all along ``timeout``."""
        try:
            self._waiting.put(task, timeout=timeout)
        except queue_module.Full:
            return False
        return True

    def _run(self) -> None:
        while (task := self._waiting.get()) is not _CLOSE:
            try:
                self._connection.send(task)
            except OSError:  # the worker is gone (BrokenPipeError): the reading side finds out why
                break
        while task is not _CLOSE:  # gone: what is still sent is dropped, so no sender waits on it
            task = self._waiting.get()

    def close(self) -> None:
        self._waiting.put(_CLOSE)
        self._thread.join()
        self._connection.close()


_CLOSE = object()


def _worker(tasks, senders: list, results, file, directory: str, buckets: int, writers: int, writer: int) -> None:
    """Process entry point: decode and partition each chunk sent, one message per chunk, then
    ("done", segments written); or ("input", why) for bad input, ("crash", a traceback) for a bug."""
    for send in senders:  # inherited: held here, they would keep the pipe open after the sender died
        send.close()
    try:
        part = Partition.create(directory, buckets, writers=writers, writer=writer)
        fd = os.open(file.path, os.O_RDONLY)
        try:
            while (task := tasks.recv()) is not None:
                chunk, offset, size, positions, first_frame = task
                positions = positions.astype(np.int64)  # sent as 32 bits (a chunk is a few MB)
                buffer = bytearray(size + SLACK)  # decode may read SLACK bytes past the data
                data = memoryview(buffer)[:size]
                if os.preadv(fd, [data], offset) != size:
                    raise PcapcheckError(f"{file.path}: the file changed while it was read")
                decoded = decode(file.fmt.frames_at(data, positions, first_frame), 0)
                rows = part.add(decoded.segments) if len(decoded.segments) else np.zeros(buckets, dtype=np.int64)
                results.put(("chunk", chunk, ChunkCounts.of(decoded), rows.astype(np.uint32)))
        finally:
            os.close(fd)
            part.finish()
        results.put(("done",))
    except EOFError:  # the reading process died: what is left unsaid would wait at exit for a reader
        results.cancel_join_thread()
    except PcapcheckError as err:
        results.put(("input", str(err)))
    except BaseException:  # a bug, not bad input: the reading process raises it with this traceback
        results.put(("crash", traceback.format_exc()))

