"""Several capture files as one timeline (a tcpdump -C/-G ring buffer), merged by timestamp.

Like ``heapq.merge`` over the files' records, but a batch at a time: a record may be emitted once
no file can still deliver an earlier one.  Each file's own order is kept (the merge key is the
running maximum of its timestamps), so a file with a few out-of-order stamps cannot reorder its own
records.  ``frame`` becomes the 1-based position of the record in the merged timeline, counting
every record, TCP or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import CaptureError
from ..segments import empty_batch
from .decode import Decoded
from .frames import take_rows


@dataclass(slots=True)
class _Pending:
    keys: np.ndarray  # merge key per record (running max of timestamps)
    first_file_frame: int  # file_frame of keys[0]
    segments: np.ndarray  # TCP rows among those records


class _Stream:
    def __init__(self, index: int, chunks: Iterator[Decoded]):
        self.index = index
        self.chunks = chunks
        self.pending: list[_Pending] = []
        self.running_max = np.iinfo(np.int64).min
        self.done = False

    def pull(self) -> None:
        """Load the next chunk (marks the stream done at its end; lets CaptureError through)."""
        try:
            chunk = next(self.chunks)
        except StopIteration:
            self.done = True
            return
        keys = np.maximum.accumulate(np.maximum(chunk.record_ts, self.running_max)) if chunk.records else chunk.record_ts
        if len(keys):
            self.running_max = int(keys[-1])
        self.pending.append(_Pending(keys, chunk.first_file_frame, chunk.segments))

    def horizon(self) -> int | None:
        return int(self.pending[-1].keys[-1]) if self.pending and len(self.pending[-1].keys) else None


def merge(sources: list[Iterator[Decoded]]) -> Iterator[np.ndarray]:
    streams = [_Stream(i, src) for i, src in enumerate(sources)]
    next_frame = 1
    failure: CaptureError | None = None
    while True:
        try:
            for s in streams:
                while not s.done and not any(len(p.keys) for p in s.pending):
                    s.pull()
        except CaptureError as err:  # damage in one file: flush what is held, then re-raise
            failure = err
        live = [s for s in streams if s.pending]
        if not live:
            if failure is not None:
                raise failure
            break
        # Records up to the earliest "last key held" among files that may still deliver more are safe.
        open_horizons = [s.horizon() for s in streams if not s.done and s.horizon() is not None]
        limit = min(open_horizons) if open_horizons and failure is None else np.iinfo(np.int64).max
        batch, next_frame = _emit(live, limit, next_frame)
        if len(batch):
            yield batch
        if failure is not None:
            raise failure
        if all(s.done and not s.pending for s in streams):
            break


def _emit(streams: list[_Stream], limit: int, next_frame: int) -> tuple[np.ndarray, int]:
    keys, files, file_frames, segments = [], [], [], []
    for s in streams:
        while s.pending:
            p = s.pending[0]
            take = int(np.searchsorted(p.keys, limit, side="right"))
            if take == 0:
                break
            keys.append(p.keys[:take])
            files.append(np.full(take, s.index, dtype=np.int64))
            file_frames.append(p.first_file_frame + np.arange(take, dtype=np.int64))
            last_frame = p.first_file_frame + take
            in_range = p.segments["file_frame"] < last_frame
            segments.append(p.segments[in_range])
            if take == len(p.keys):
                s.pending.pop(0)
            else:
                s.pending[0] = _Pending(p.keys[take:], last_frame, p.segments[~in_range])
                break
    if not keys:
        return empty_batch(0), next_frame
    keys_all = np.concatenate(keys)
    files_all = np.concatenate(files)
    ff_all = np.concatenate(file_frames)
    order = np.lexsort((ff_all, files_all, keys_all))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    # Look up each segment's record: records of one file are contiguous and consecutive here.
    seg = np.concatenate(segments) if segments else empty_batch(0)
    if len(seg):
        where = _record_positions(seg, files, file_frames)
        seg["frame"] = next_frame + rank[where]
        seg = take_rows(seg, np.argsort(seg["frame"], kind="stable"))
    return seg, next_frame + len(keys_all)


def _record_positions(seg: np.ndarray, files: list[np.ndarray], file_frames: list[np.ndarray]) -> np.ndarray:
    """Index into the concatenated record arrays of each segment's record."""
    where = np.empty(len(seg), dtype=np.int64)
    pos = 0
    seg_file = seg["file_index"].astype(np.int64)
    seg_ff = seg["file_frame"].astype(np.int64)
    for f, ff in zip(files, file_frames):
        m = (seg_file == f[0]) & (seg_ff >= ff[0]) & (seg_ff <= ff[-1])
        where[m] = pos + (seg_ff[m] - ff[0])
        pos += len(ff)
    return where
