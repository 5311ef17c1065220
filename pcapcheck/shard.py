"""``--jobs N``: the connections of one capture analysed by N processes, merged into one result.

Every TCP connection lives on one 4-tuple, and what its analysis reads beyond its own segments is
the previous incarnation on the same tuple, the capture's last timestamp and, to guess the roles of
a mid-stream pickup, how many peers talk to each endpoint.  So analysis reads the capture once and,
with --jobs, always partitions its segments by a hash of the canonical 4-tuple (pcapcheck.partition),
which keeps incarnations together and gives the last timestamp and the peer counts; then N
processes (this one is the first) analyse the buckets, each taking the next bucket not yet taken
when it is done with one (so a process slowed by other work on the machine takes fewer), each
writing its buckets' reports and findings to the shared temporary directory and sending back only
first frames and small arrays that number and count the findings (finding_store.SpilledFindings).
Which process analyses a bucket changes nothing in what comes out of it.

``buckets.assemble`` makes the result identical to one process: connection ids 1-based in order of
first frame (what ``rebuild`` does over the whole capture), findings remapped and ordered as one
process emits them, and an error part-way cuts every bucket where one process would have stopped.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .analysis import ConnectionsAnalysis
from .buckets import BucketOutcome, analyze_bucket_range, assemble
from .capture import CaptureInfo
from .catalogue import RuleSpec
from .config import Config
from .errors import ConfigError, PcapcheckError
from .partition import Partition
from .profiles import Profile
from .store import ConnectionStore

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


# --- one shard ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ShardTask:
    """Everything a worker needs; picklable for the spawn start method."""

    partition: Partition
    directory: str  # where the reports go
    capture: CaptureInfo
    config: Config
    catalogue: dict[str, RuleSpec]
    profile: Profile
    next_bucket: Any  # a shared multiprocessing.Value: the next bucket no process has taken
    render: Callable | None = None  # report text made by the workers (reports.fragments)
    steps: bool = True  # reports keep replay steps (analysis.analyze)
    all_reports: bool = True  # every report stays readable, not only those with findings (analysis.analyze)
    by_id: bool = True  # those with findings stay readable by id (analysis.analyze)


def analyze_shard(task: ShardTask, shard: int) -> list[BucketOutcome]:
    """Analyse the buckets process ``shard`` takes (``task.next_bucket``), one after the other."""
    return analyze_bucket_range(
        task.partition, _taken(task.next_bucket, task.partition.buckets), task.directory,
        capture=task.capture, profile=task.profile, config=task.config, catalogue=task.catalogue, render=task.render,
        steps=task.steps, all_reports=task.all_reports, by_id=task.by_id,
    )  # fmt: skip


def _taken(next_bucket, buckets: int) -> Iterator[int]:
    """The buckets this process takes from the shared counter, until none is left."""
    while True:
        with next_bucket.get_lock():
            bucket = next_bucket.value
            next_bucket.value = bucket + 1
        if bucket >= buckets:
            return
        yield bucket


def _worker(messages, task: ShardTask, shard: int) -> None:
    """Process entry point: one message back, the shard's outcomes or why there are none."""
    try:
        messages.put(("done", shard, analyze_shard(task, shard)))
    except PcapcheckError as err:  # e.g. the temporary directory filled up
        messages.put(("input", shard, str(err)))
    except BaseException:  # a bug, not bad input: the parent raises it with this traceback
        messages.put(("crash", shard, traceback.format_exc()))


# --- the parent ---------------------------------------------------------------------------------


def start_method() -> str:
    """fork where the platform has it (the workers inherit the loaded catalogue), else spawn."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def analyze_in_processes(
    partition: Partition,
    store: ConnectionStore,
    shards: int,
    *,
    capture: CaptureInfo,
    profile: Profile,
    config: Config,
    catalogue: dict[str, RuleSpec],
    render: Callable | None = None,
    steps: bool = True,
    all_reports: bool = True,
    by_id: bool = True,
    method: str | None = None,
) -> ConnectionsAnalysis:
    """The partition's buckets analysed in ``shards`` processes (this one is shard 0), merged."""
    context = multiprocessing.get_context(method or start_method())
    task = ShardTask(
        partition, store.directory, capture, config, catalogue, profile, context.Value("q", 0), render,
        steps, all_reports, by_id,
    )  # fmt: skip
    messages = context.Queue()
    workers = {
        shard: context.Process(
            target=_worker, args=(messages, task, shard), daemon=True, name=f"pcapcheck-shard-{shard}"
        )
        for shard in range(1, shards)
    }
    try:
        for worker in workers.values():
            worker.start()
        outcomes = analyze_shard(task, 0)
        for found in _collect(messages, workers).values():
            outcomes.extend(found)
    finally:
        for worker in workers.values():
            if worker.is_alive():
                worker.terminate()
            worker.join()
        messages.close()
    outcomes.sort(key=lambda o: o.bucket)
    return assemble(store, outcomes)


def _collect(messages, workers: dict) -> dict[int, list[BucketOutcome]]:
    """Each worker's outcomes; a worker that crashed or died raises here."""
    outcomes: dict[int, list[BucketOutcome]] = {}
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
            outcomes[shard] = payload
        elif kind == "input":
            raise PcapcheckError(payload)
        else:
            raise RuntimeError(f"pcapcheck shard worker {shard} failed:\n{payload}")
    return outcomes
