"""``--jobs N``: the connections of one capture analysed by N processes, merged into one result.

Every TCP connection lives on one 4-tuple.  What one connection's analysis reads beyond its own
segments is the previous incarnation on the same tuple, the capture's last timestamp (TIME-WAIT
expiry) and, to guess the roles of a mid-stream pickup, how many peers talk to each endpoint.  So
the work shards by a stable hash of the canonical (unordered) 4-tuple, which keeps incarnations
together, and each process reads the whole capture (decoding is vectorised and cheap), which gives
it the last timestamp and the peer counts; it keeps its shard's rows (``rebuild_subset``) and
rebuilds, replays and checks those connections.  The parent is shard 0 itself; it also supplies
the capture info (packet counts, times, warnings), since it read every packet as one process does.

The merge makes the result identical to one process: connection ids renumbered 1-based in order
of first frame (what ``rebuild`` does over the whole capture), findings remapped and sorted as
``analyze`` sorts them, and an error part-way cuts every shard where one process would have stopped.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .analysis import ConnectionReport, ConnectionsAnalysis, analyze_connections
from .capture import CaptureInfo, open_capture
from .catalogue import RuleSpec
from .config import Config
from .connections import Endpoint, rebuild_subset
from .errors import ConfigError, PcapcheckError
from .profiles import Profile
from .replay.model import Transition

# How long the parent waits for a worker's message before checking that the worker still lives.
POLL_SECONDS = 0.5


def resolve_jobs(jobs: int) -> int:
    """The number of processes for ``--jobs``: 0 means one per core available to this process."""
    if jobs < 0:
        raise ConfigError(f"--jobs must be 0 (one per core) or a positive number, not {jobs}")
    if jobs == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    return jobs


# --- which shard a row belongs to ---------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: the multiplier of splitmix64
_SHIFT = np.uint64(31)


def tuple_shard(rows: np.ndarray, shards: int) -> np.ndarray:
    """Shard (0..shards-1) of each row: a hash of its canonical 4-tuple, the same in every process.

    Canonical = the lower (address, port) endpoint first, so both directions of a connection, and
    every incarnation on its tuple, land in one shard.  Python's hash() is salted per process,
    hence this explicit mix of the address halves and ports.
    """
    src = np.ascontiguousarray(rows["src"]).view(">u8").astype(np.uint64)
    dst = np.ascontiguousarray(rows["dst"]).view(">u8").astype(np.uint64)
    sport = rows["sport"].astype(np.uint64)
    dport = rows["dport"].astype(np.uint64)
    s_hi, s_lo, d_hi, d_lo = src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]
    higher = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (sport > dport))))
    columns = (
        np.where(higher, d_hi, s_hi),
        np.where(higher, d_lo, s_lo),
        np.where(higher, dport, sport),
        np.where(higher, s_hi, d_hi),
        np.where(higher, s_lo, d_lo),
        np.where(higher, sport, dport),
    )
    h = np.zeros(len(rows), dtype=np.uint64)
    for column in columns:
        h = (h ^ column) * _GOLDEN  # uint64 arithmetic wraps modulo 2**64, which a hash wants
        h ^= h >> _SHIFT
    return (h % np.uint64(shards)).astype(np.int64)


# --- one shard ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ShardTask:
    """Everything a worker needs; picklable for the spawn start method."""

    paths: list[str]
    reader: str
    shards: int
    config: Config
    catalogue: dict[str, RuleSpec]
    profile: Profile


def analyze_shard(
    task: ShardTask, shard: int, progress: Callable[[int], None] | None = None
) -> tuple[CaptureInfo, ConnectionsAnalysis]:
    """Read the whole capture, keep the connections of ``shard``, replay and check them.

    Raises PcapcheckError only when the capture cannot be opened; later errors are in the outcome.
    """
    capture = open_capture(task.paths, reader=task.reader)

    def batches():
        for batch in capture.batches():
            if progress is not None:
                progress(len(batch))
            yield batch

    def keep(rows: np.ndarray) -> np.ndarray:
        return tuple_shard(rows, task.shards) == shard

    outcome = analyze_connections(
        rebuild_subset(batches(), keep),
        capture=capture.info,
        profile=task.profile,
        config=task.config,
        catalogue=task.catalogue,
    )
    return capture.info, outcome


def _worker(messages, task: ShardTask, shard: int) -> None:
    """Process entry point: one message back, the shard's outcome or why there is none."""
    try:
        _, outcome = analyze_shard(task, shard)
        messages.put(("done", shard, pack_outcome(outcome)))
    except PcapcheckError as err:
        # The capture did not open: the parent's own open fails the same way and raises it.
        messages.put(("input", shard, str(err)))
    except BaseException:  # a bug, not bad input: the parent raises it with this traceback
        messages.put(("crash", shard, traceback.format_exc()))


# --- the parent ---------------------------------------------------------------------------------


def start_method() -> str:
    """fork where the platform has it (the workers inherit the loaded catalogue), else spawn."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def analyze_sharded(
    paths: list[str],
    shards: int,
    *,
    config: Config,
    catalogue: dict[str, RuleSpec],
    profile: Profile,
    reader: str = "dpkt",
    progress: Callable[[int], None] | None = None,
    method: str | None = None,
) -> tuple[CaptureInfo, ConnectionsAnalysis]:
    """Analyse ``paths`` in ``shards`` processes (this one is shard 0); the merged outcome."""
    task = ShardTask(paths, reader, shards, config, catalogue, profile)
    context = multiprocessing.get_context(method or start_method())
    messages = context.Queue()
    # Workers start before this process opens the capture, so none inherits its open files.
    workers = {
        shard: context.Process(
            target=_worker, args=(messages, task, shard), daemon=True, name=f"pcapcheck-shard-{shard}"
        )
        for shard in range(1, shards)
    }
    try:
        for worker in workers.values():
            worker.start()
        info, own = analyze_shard(task, 0, progress)
        outcomes = {0: own, **_collect(messages, workers)}
    finally:
        for worker in workers.values():
            if worker.is_alive():
                worker.terminate()
            worker.join()
        messages.close()
    return info, merge_outcomes([outcomes[shard] for shard in range(shards)])


def _collect(messages, workers: dict) -> dict[int, ConnectionsAnalysis]:
    """Each worker's outcome; a worker that crashed or died raises here."""
    outcomes: dict[int, ConnectionsAnalysis] = {}
    while len(outcomes) < len(workers):
        try:
            kind, shard, payload = messages.get(timeout=POLL_SECONDS)
        except queue_module.Empty:
            dead = [s for s, w in workers.items() if s not in outcomes and w.exitcode is not None]
            if dead:
                try:  # a worker flushes its message before it exits: one last look
                    kind, shard, payload = messages.get(timeout=POLL_SECONDS)
                except queue_module.Empty:
                    # Killed from outside (out of memory, a signal): say so in one line, as for bad input.
                    code = workers[dead[0]].exitcode
                    raise PcapcheckError(
                        f"analysis process {dead[0] + 1} of {len(workers) + 1} died (exit code {code}); "
                        "try fewer --jobs"
                    ) from None
            else:
                continue
        if kind == "done":
            outcomes[shard] = unpack_outcome(payload)
        elif kind == "input":
            # This process opened the same capture without error: the file changed under us.
            raise PcapcheckError(payload)
        else:
            raise RuntimeError(f"pcapcheck shard worker {shard} failed:\n{payload}")
    return outcomes


# What a worker sends back.  Transitions travel as plain tuples: a frozen dataclass pickles and
# unpickles field by field, and the transfer is the part of --jobs that does not run in parallel.
_REPORT_FIELDS = ConnectionReport.__slots__
_ENDPOINT_FIELDS = ("client", "server")


def pack_outcome(outcome: ConnectionsAnalysis) -> tuple:
    return [_report_values(r) for r in outcome.reports], outcome.findings, outcome.error, outcome.error_frame


def unpack_outcome(packed: tuple) -> ConnectionsAnalysis:
    reports, findings, error, error_frame = packed
    return ConnectionsAnalysis([_report_from(values) for values in reports], findings, error, error_frame)


def _report_values(report: ConnectionReport) -> tuple:
    values = []
    for name in _REPORT_FIELDS:
        value = getattr(report, name)
        if name == "transitions":
            value = [(t.time, t.frame, t.endpoint, t.from_state, t.to_state, t.cause, t.rfc) for t in value]
        elif name in _ENDPOINT_FIELDS:
            value = (value.addr, value.port)
        values.append(value)
    return tuple(values)


def _report_from(values: tuple) -> ConnectionReport:
    fields = dict(zip(_REPORT_FIELDS, values))
    fields["transitions"] = [Transition(*t) for t in fields["transitions"]]
    for name in _ENDPOINT_FIELDS:
        fields[name] = Endpoint(*fields[name])
    return ConnectionReport(**fields)


def merge_outcomes(outcomes: list[ConnectionsAnalysis]) -> ConnectionsAnalysis:
    """One outcome from the shards' (index = shard), numbered and ordered as one process makes it.

    Ids: 1-based in order of first frame, as ``rebuild`` numbers them (frames are unique, so no
    tie).  An error cuts every shard at the earliest point any shard stopped: one process walks the
    connections in id order and stops at the first error.
    """
    failed = [o for o in outcomes if o.error is not None]
    error = error_frame = None
    if failed:
        first = min(failed, key=lambda o: -1 if o.error_frame is None else o.error_frame)
        error, error_frame = first.error, first.error_frame
    cut = -1 if error is not None and error_frame is None else error_frame

    def kept(first_frame: int) -> bool:
        return cut is None or first_frame < cut

    ordered = sorted(
        (
            (report.first_frame, shard, report)
            for shard, o in enumerate(outcomes)
            for report in o.reports
            if kept(report.first_frame)
        ),
        key=lambda item: (item[0], item[1]),
    )
    new_id: dict[tuple[int, int], int] = {}
    reports = []
    for number, (_, shard, report) in enumerate(ordered, start=1):
        new_id[(shard, report.id)] = number
        report.id = number
        reports.append(report)
    numbered = [
        (new_id[(shard, f.connection)], shard, index, f)
        for shard, o in enumerate(outcomes)
        for index, f in enumerate(o.findings)
        if (shard, f.connection) in new_id
    ]
    # Connection by connection, each in the order its checks emitted: what one process collects.
    numbered.sort(key=lambda item: (item[0], item[2]))
    findings = [replace(f, connection=number) for number, _, _, f in numbered]
    return ConnectionsAnalysis(reports, findings, error, error_frame)
