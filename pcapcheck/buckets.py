"""A partitioned capture (pcapcheck.partition) analysed bucket by bucket, with reports on disk.

Each bucket holds whole tuples, so each of its connections comes out of ``rebuild`` exactly as from
the whole capture, given the whole capture's peer counts (``Partition.listener_rows``) and last
timestamp.  ``assemble`` numbers and orders connections and findings as one in-memory run does:
ids in order of first frame, findings in the run's order (pcapcheck.finding_store), and an error
cuts every bucket where one run walking the connections in id order stops.
Buckets are independent, so ``--jobs`` (pcapcheck.shard) analyses them in several processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .analysis import ConnectionsAnalysis, analyze_table, run_memo
from .capture import CaptureInfo
from .catalogue import RuleSpec
from .config import Config
from .connections import Connection, ConnectionTable, _listener_counts, _split_connections, connection_table
from .finding_store import FindingStore, SpilledFindings, write_findings
from .findings import Finding
from .partition import ListenerRows, Partition
from .profiles import Profile
from .replay.memo import ReplayMemo
from .store import ConnectionStore, Render, Written, write_bucket


@dataclass(slots=True)
class BucketOutcome:
    """What analysing one bucket leaves in memory; its reports are in the store's directory."""

    bucket: int
    written: Written  # its connections' first frames and closes, in its id order
    # Written by the process that analysed the bucket; a list (connection = the id within the
    # bucket, in emission order) is written when assembled.
    findings: SpilledFindings | list[Finding]
    error: str | None = None
    error_frame: int | None = None


def rebuild_bucket(rows: np.ndarray, listener_rows: ListenerRows | np.ndarray) -> Iterator[Connection]:
    """``rebuild`` of one bucket's rows; roles guessed from the whole capture's peer counts
    (``listener_rows``: the partition's, or rows holding every (sender, receiver) pair)."""
    table = bucket_table(rows, listener_rows)
    if table is not None:
        yield from table.connections()


def bucket_table(rows: np.ndarray, listener_rows: ListenerRows | np.ndarray) -> ConnectionTable | None:
    """``rebuild_bucket``'s connections as one table (None: an empty bucket)."""
    if not len(rows):
        return None
    split = _split_connections(rows)
    if isinstance(listener_rows, ListenerRows):
        split.peer_counts = listener_rows.counts
    else:
        split.peer_counts = lambda: _listener_counts(listener_rows)
    del rows
    return connection_table(split)


def analyze_bucket(
    partition: Partition,
    bucket: int,
    listener_rows: ListenerRows | np.ndarray,
    directory: str,
    *,
    capture: CaptureInfo,
    profile: Profile,
    config: Config,
    catalogue: dict[str, RuleSpec],
    memo: ReplayMemo | None = None,
    render: Render | None = None,
    steps: bool = True,
    all_reports: bool = True,
    by_id: bool = True,
) -> BucketOutcome:
    """One bucket analysed, its reports and findings written to ``directory``.  ``all_reports``
    False: only the reports of connections with findings stay readable, and with ``by_id`` False
    none (analysis.analyze)."""
    table = bucket_table(partition.rows(bucket), listener_rows)
    if table is None:
        outcome = ConnectionsAnalysis([], [])
    else:
        outcome = analyze_table(
            table, capture=capture, profile=profile, config=config, catalogue=catalogue, memo=memo, steps=steps
        )
    del table
    keep = None if all_reports else [f.connection - 1 for f in outcome.findings] if by_id else []  # ids within the bucket
    written = write_bucket(directory, bucket, outcome.reports, render, keep)
    # The renderer (reports.fragments.Renderer) makes the findings' text too.
    findings = write_findings(directory, bucket, outcome.findings, getattr(render, "findings", None))
    return BucketOutcome(bucket, written, findings, outcome.error, outcome.error_frame)


def analyze_bucket_range(
    partition: Partition,
    buckets: Iterable[int],
    directory: str,
    *,
    capture: CaptureInfo,
    profile: Profile,
    config: Config,
    catalogue: dict[str, RuleSpec],
    render: Render | None = None,
    steps: bool = True,
    all_reports: bool = True,
    by_id: bool = True,
) -> list[BucketOutcome]:
    """``buckets`` of the partition, one after the other in this process, reports to ``directory``."""
    listener_rows = partition.listener_rows()
    memo = run_memo(capture, profile, config, catalogue)  # templates learnt in one bucket serve all
    return [
        analyze_bucket(
            partition, bucket, listener_rows, directory,
            capture=capture, profile=profile, config=config, catalogue=catalogue, memo=memo, render=render,
            steps=steps, all_reports=all_reports, by_id=by_id,
        )  # fmt: skip
        for bucket in buckets
    ]


def analyze_buckets(partition: Partition, store: ConnectionStore, **settings) -> ConnectionsAnalysis:
    """Every bucket in this process; ``settings`` as for ``analyze_bucket_range``."""
    return assemble(store, analyze_bucket_range(partition, range(partition.buckets), store.directory, **settings))


def assemble(store: ConnectionStore, outcomes: list[BucketOutcome]) -> ConnectionsAnalysis:
    """One outcome from every bucket's, numbered and ordered as one in-memory run makes it."""
    # The findings read their files from the store's directory: the store keeps it.
    findings = FindingStore(store.directory, keep_alive=store)
    for outcome in outcomes:
        store.adopt(outcome.bucket, outcome.written)
        spilled = outcome.findings
        if not isinstance(spilled, SpilledFindings):
            spilled = write_findings(store.directory, outcome.bucket, spilled)
        findings.add(outcome.bucket, outcome.written.first_frames, spilled)
    failed = [o for o in outcomes if o.error is not None]
    error = error_frame = None
    if failed:
        first = min(failed, key=lambda o: -1 if o.error_frame is None else o.error_frame)
        error, error_frame = first.error, first.error_frame
        cut = -1 if error_frame is None else error_frame
        store.cut_at(cut)
        findings.cut_at(cut)
    return ConnectionsAnalysis(store, findings, error, error_frame)
