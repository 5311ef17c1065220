"""One large pcap file read under ``--jobs``: the record walk here, the decoding in worker processes.

The record walk is a chain (each record's length says where the next begins), so one process
makes it.  What follows it, for each chunk of the file, is independent of every other chunk:
framing, decoding the headers, hashing each segment to its bucket and writing it there, two thirds
of reading a capture.  So this process walks the file chunk by chunk and sends each chunk's place
in the file and its records' positions to the workers in turn; a worker reads the chunk again (from
the page cache, through the descriptor it inherited), decodes it and appends its segments to its
own file of every bucket (partition.Partition with several writers, which reads a bucket back in
frame order, i.e. capture order).

At most PENDING chunks wait for a worker (besides the one being sent and the one it decodes): the
walk, about three times as fast as one worker, waits when every worker has that many waiting, so
memory stays bounded however large the file.

The result is the partition and CaptureInfo that ``partition.read_capture`` makes of the same file,
errors included: a corrupt record part-way ends the reading with the chunks before it analysed,
and so does a worker that cannot write its bucket files (a full disk: the chunks from the first one
it did not finish are left out).  A worker that dies or fails for a bug ends the run, as in
pcapcheck.shard.  Only a plain pcap file qualifies (``Capture.single_pcap``); anything else, or a
system that cannot start the processes, is read as before.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import threading
import traceback
from collections.abc import Callable

import numpy as np

from .capture import Capture, CaptureInfo, ChunkCounts, close_source, count_chunk, source
from .capture.decode import decode
from .capture.source import SLACK
from .errors import CaptureError, PcapcheckError
from .partition import SEGMENTS_PER_BUCKET, Held, Partition, bucket_count, work_directory

# How long this process waits for a worker's word before checking that the workers still live.
POLL_SECONDS = 0.5
# Chunks waiting for a worker (a chunk's record positions: about 120 KB).
PENDING = 8
# Chunks per worker at least, down to MIN_CHUNK bytes a chunk: each worker waits for its first
# chunk to be walked and the run for the last one to be decoded, so a small file in few large
# chunks keeps the workers idle for much of its reading (a 26 MB file in 4 MB chunks: a third).
CHUNKS_PER_WORKER = 6
MIN_CHUNK = 1 << 20


def read_in_processes(
    capture: Capture,
    workers: int,
    *,
    min_buckets: int,
    expected_bytes: int | None,
    progress: Callable[[int], None] | None = None,
) -> Held | None:
    """``capture`` read into a partition by ``workers`` processes; None (nothing read) when it is
    not one plain pcap file or the processes cannot be started."""
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods() or not expected_bytes:
        return None
    file = capture.single_pcap()
    if file is None:
        return None
    workdir = work_directory()
    buckets = max(min_buckets, bucket_count(0, SEGMENTS_PER_BUCKET, expected_bytes))
    try:
        crew = _Crew(file, workdir.name, buckets, workers, capture.info, progress)
    except OSError:  # no processes to be had (a limit reached): one process reads it
        workdir.cleanup()
        return None
    capture.claim()
    held = Held([], workdir=workdir)
    try:
        try:
            for _ in file.fmt.chunks(crew.send, chunk_size(expected_bytes, workers)):
                crew.collect(block=False)
                if crew.error is not None:  # a worker could not go on (a full disk): stop reading
                    break
        except CaptureError as err:  # a corrupt record: what came before it is analysed
            held.error = str(err)
        crew.finish()
    finally:
        crew.stop()
        close_source(capture.info, file)
    held.error = held.error or crew.error
    held.partition = crew.partition()
    return held


def chunk_size(file_bytes: int, workers: int) -> int:
    """Bytes a chunk: source.CHUNK_SIZE, less (down to MIN_CHUNK) for a file that would give a
    worker fewer than CHUNKS_PER_WORKER chunks."""
    full = source.CHUNK_SIZE
    return max(min(MIN_CHUNK, full), min(full, file_bytes // (workers * CHUNKS_PER_WORKER)))


class _Crew:
    """The worker processes, the chunks sent to them and what came back."""

    def __init__(
        self, file, directory: str, buckets: int, workers: int, info: CaptureInfo,
        progress: Callable[[int], None] | None,
    ):  # fmt: skip
        context = multiprocessing.get_context("fork")  # the workers inherit the open file
        self._results = context.Queue()
        pipes = [context.Pipe(duplex=False) for _ in range(workers)]
        self._processes = []
        try:
            for writer in range(workers):
                process = context.Process(
                    target=_worker, args=(pipes, writer, self._results, file, directory, buckets, workers),
                    daemon=True, name=f"pcapcheck-read-{writer}",
                )  # fmt: skip
                process.start()
                self._processes.append(process)
        except BaseException:
            for process in self._processes:
                process.terminate()
                process.join()
            raise
        finally:
            for receive, _ in pipes:
                receive.close()
        self._tasks = [_Sender(send) for _, send in pipes]
        self._file = file
        self._raw = file.fmt.reader.raw
        self._directory = directory
        self._buckets = buckets
        self._progress = progress
        self._sent = 0
        self._first_frames: dict[int, int] = {}  # chunks sent and not yet counted: their first frame
        self._early: dict[int, ChunkCounts] = {}  # chunks back before a chunk sent earlier
        self._counted = 0  # chunks 0.. counted into info, in file order
        self._info = info
        self._segments = 0
        self._said: set[int] = set()  # the workers that have said their last word
        self.error: str | None = None

    def send(self, data: memoryview, positions: np.ndarray, first_frame: int) -> None:
        """PcapFile.chunks' ``make``: the chunk to the next worker.  ``data`` ends where the file
        has been read to."""
        chunk = self._sent
        worker = chunk % len(self._tasks)
        task = (chunk, self._raw.tell() - len(data), len(data), positions.astype(np.uint32), first_frame)
        while not self._tasks[worker].send(task, timeout=POLL_SECONDS):
            self._check_alive()
            self.collect(block=False)
            if worker in self._said:  # it will take no more: the chunk is not read
                return
        self._first_frames[chunk] = first_frame
        self._sent += 1

    def collect(self, *, block: bool) -> None:
        """What the workers said so far (until every one has said its last word, ``block``)."""
        while not block or len(self._said) < len(self._processes):
            try:
                kind, worker, said = self._results.get(block=block, timeout=POLL_SECONDS if block else None)
            except queue_module.Empty:
                if not block:
                    return
                self._check_alive()
                continue
            if kind == "chunk":
                chunk, counts = said
                self._early[chunk] = counts
                if self._progress is not None:
                    self._progress(counts.tcp)
                while self._counted in self._early:  # in file order, as one process counts
                    counts = self._early.pop(self._counted)
                    count_chunk(self._info, self._file, counts)
                    self._segments += counts.tcp
                    del self._first_frames[self._counted]
                    self._counted += 1
            elif kind == "done":
                self._said.add(worker)
            elif kind == "input":
                self._said.add(worker)
                self.error = self.error or said
            else:
                raise RuntimeError(f"pcapcheck capture reading process failed:\n{said}")

    def partition(self) -> Partition:
        """The chunks read, up to the first one a worker did not finish (after a worker's error:
        only the chunks before it were counted), as a partition."""
        cut = self._first_frames.get(self._counted) if self._counted < self._sent else None
        return Partition(
            self._directory, self._buckets, segments=self._segments, writers=len(self._processes), cut=cut
        )

    def _check_alive(self) -> None:
        dead = [p for p in self._processes if p.exitcode is not None and p.exitcode != 0]
        if dead:
            raise PcapcheckError(f"a capture reading process died (exit code {dead[0].exitcode}); try fewer --jobs")

    def finish(self) -> None:
        """No more chunks: each worker closes its files and says its last word."""
        for worker, tasks in enumerate(self._tasks):
            while worker not in self._said and not tasks.send(None, timeout=POLL_SECONDS):
                self._check_alive()
                self.collect(block=False)
        self.collect(block=True)

    def stop(self) -> None:
        failed = len(self._said) < len(self._processes)
        for process in self._processes:
            if failed and process.is_alive():
                process.terminate()
            process.join()
        for tasks in self._tasks:
            tasks.close()
        self._results.close()


class _Sender:
    """One worker's chunks, sent by a thread: the walk does not wait for the worker to take a chunk
    unless PENDING of them wait already.  A pipe, not a multiprocessing.Queue: only its worker holds
    the reading end, so it breaks when the worker ends (and the worker sees its end when this
    process dies, even in the middle of a chunk)."""

    def __init__(self, connection):
        self._connection = connection
        self._waiting: queue_module.Queue = queue_module.Queue(maxsize=PENDING)
        self._thread = threading.Thread(target=self._run, daemon=True, name="pcapcheck-read-send")
        self._thread.start()

    def send(self, task, timeout: float) -> bool:
        """False when PENDING chunks waited all along ``timeout``."""
        try:
            self._waiting.put(task, timeout=timeout)
        except queue_module.Full:
            return False
        return True

    def _run(self) -> None:
        while (task := self._waiting.get()) is not _CLOSE:
            try:
                self._connection.send(task)
            except OSError:  # the worker has ended (BrokenPipeError): the crew learns why from it
                break
        while task is not _CLOSE:  # what is still sent is dropped, so that no sender waits on it
            task = self._waiting.get()

    def close(self) -> None:
        self._waiting.put(_CLOSE)
        self._thread.join()
        self._connection.close()


_CLOSE = object()


def _worker(pipes: list, writer: int, results, file, directory: str, buckets: int, writers: int) -> None:
    """Process entry point: decode and partition each chunk sent, one message per chunk, then
    ("done", ...); or ("input", why) for bad input, ("crash", a traceback) for a bug."""
    for k, (receive, send) in enumerate(pipes):  # inherited: only its own reading end stays open
        send.close()
        if k != writer:
            receive.close()
    tasks = pipes[writer][0]
    try:
        part = Partition.create(directory, buckets, writers=writers, writer=writer)
        fd = file.fmt.reader.raw.fileno()  # pread moves no shared offset
        try:
            while (task := tasks.recv()) is not None:
                chunk, offset, size, positions, first_frame = task
                positions = positions.astype(np.int64)  # sent as 32 bits (a chunk is a few MB)
                buffer = bytearray(size + SLACK)  # decode may read SLACK bytes past the data
                data = memoryview(buffer)[:size]
                try:
                    got = os.preadv(fd, [data], offset)
                except OSError as err:
                    raise PcapcheckError(f"{file.path}: read error: {err.strerror or err}") from None
                if got != size:
                    raise PcapcheckError(f"{file.path}: the file changed while it was read")
                decoded = decode(file.fmt.frames_at(data, positions, first_frame), 0)
                if len(decoded.segments):
                    part.add(decoded.segments, flush=True)  # on disk before it is counted
                results.put(("chunk", writer, (chunk, ChunkCounts.of(decoded))))
        finally:
            part.finish()
        results.put(("done", writer, None))
    except EOFError:  # the reading process died: what is left unsaid would wait at exit for a reader
        results.cancel_join_thread()
    except PcapcheckError as err:
        results.put(("input", writer, str(err)))
    except BaseException:  # a bug, not bad input: the reading process raises it with this traceback
        results.put(("crash", writer, traceback.format_exc()))
