"""Stage 6: reports (terminal, JSON, CSV, HTML, JUnit, SARIF), all written atomically.

Contract: ``write_reports(result, *, json_path, csv_dir, html_path, junit_path, sarif_path)``.
Each path may be None (that report is not wanted).  Every report is written even when
``result.error`` is set, with what was computed before the run stopped, and carries the error.

With ``jobs`` > 1 (the CLI's --jobs) the report files are written by that many processes at once:
a large capture's JSON is a GB, and its CSV a quarter of that.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PcapcheckError
from .atomic import ReportWriteError

if TYPE_CHECKING:
    from ..analysis import AnalysisResult

PathLike = str | os.PathLike | None
Writer = Callable[["AnalysisResult", str | os.PathLike], None]


def write_reports(
    result: "AnalysisResult",
    *,
    json_path: PathLike = None,
    csv_dir: PathLike = None,
    html_path: PathLike = None,
    junit_path: PathLike = None,
    sarif_path: PathLike = None,
    jobs: int = 1,
) -> None:
    """Write each report asked for.  One that cannot be written does not keep the others from
    being written: the first error (in the order above) is raised once every writer has run."""
    writers = _writers(json_path, csv_dir, html_path, junit_path, sarif_path)
    if jobs > 1 and writers and "fork" in multiprocessing.get_all_start_methods():
        errors = _write_in_processes(result, writers, jobs)
    else:
        errors = [_written(result, writer) for writer in writers]
    first = next((error for error in errors if error is not None), None)
    if first is not None:
        raise first


def _writers(json_path, csv_dir, html_path, junit_path, sarif_path) -> list[tuple[Writer, str | os.PathLike]]:
    # Each writer is imported when its report is wanted: jinja2 alone costs a CI run ~20 ms.
    out: list[tuple[Writer, str | os.PathLike]] = []
    if json_path is not None:
        from .json_report import write_json

        out.append((write_json, json_path))
    if csv_dir is not None:
        from .csv_report import write_csv

        out.append((write_csv, csv_dir))
    if html_path is not None:
        from .html_report import write_html

        out.append((write_html, html_path))
    if junit_path is not None:
        from .junit import write_junit

        out.append((write_junit, junit_path))
    if sarif_path is not None:
        from .sarif import write_sarif

        out.append((write_sarif, sarif_path))
    return out


def _written(result: "AnalysisResult", writer: tuple[Writer, str | os.PathLike]) -> PcapcheckError | None:
    """Run one writer: None, or why its report could not be written (bad input, a full disk)."""
    write, path = writer
    return _attempt(lambda: write(result, path))


def _attempt(write: Callable[[], None]) -> PcapcheckError | None:
    try:
        write()
    except PcapcheckError as err:
        return err
    return None


def _write_in_processes(result: "AnalysisResult", writers: list, jobs: int) -> list[Exception | None]:
    """``_written`` of every writer, in ``jobs`` lanes: this process runs the first lane, forked
    children the others (they read the result as this process holds it, the run's temporary files
    included, and change nothing in it).  The writers are dealt round-robin; the JSON of a
    partitioned run is cut into a piece per lane (json_report.document_pieces), sized so that the
    lanes carry about as many bytes each, and the pieces go into one file (atomic.PiecewiseFile).
    Every child is waited for, whatever happens here: its reports are written whole or not at all
    (reports.atomic).  A bug in a child comes back as a RuntimeError with its traceback; a child
    killed from outside as one line, like bad input."""
    try:
        split = _split_json(result, writers, jobs)
    except PcapcheckError:  # e.g. the spilled text cannot be read: the JSON's own writer says so
        split = None
    if split is None and len(writers) == 1:
        return [_written(result, writers[0])]
    children = []
    try:
        lanes = _lanes(writers, jobs, split)
        unit_errors: list[list[PcapcheckError | None]] = [[None] * len(lane) for lane in lanes]
        context = multiprocessing.get_context("fork")
        try:
            for k, lane in enumerate(lanes[1:], start=1):
                receive, send = context.Pipe(duplex=False)
                child = context.Process(target=_lane, args=(send, result, lane), daemon=True, name="pcapcheck-report")
                child.start()
                send.close()
                children.append((child, receive, k))
            unit_errors[0] = _run_lane(result, lanes[0])
        finally:
            outcomes = [_outcome(child, receive) for child, receive, _ in children]
        for (_, _, k), (kind, said) in zip(children, outcomes):
            if kind == "crash":
                raise RuntimeError(f"a report writer process failed:\n{said}")
            if kind == "died":
                raise ReportWriteError(said)
            unit_errors[k] = [None if message is None else ReportWriteError(message) for message in said]
    except BaseException:
        if split is not None:
            split[1].abort()
        raise
    errors: list[Exception | None] = [None] * len(writers)
    for lane, said in zip(lanes, unit_errors):
        for (owner, _), error in zip(lane, said):
            if error is not None and errors[owner] is None:
                errors[owner] = error
    if split is not None:
        owner, piecewise, _ = split
        if errors[owner] is not None:
            piecewise.abort()
        else:
            try:
                piecewise.commit()
            except ReportWriteError as err:
                errors[owner] = err
    return errors


# A lane's work: (index of the writer it belongs to, write(result)), each raising PcapcheckError
# when its report cannot be written.
Unit = tuple[int, Callable[["AnalysisResult"], None]]


def _split_json(result: "AnalysisResult", writers: list, jobs: int):
    """(index of the JSON writer, its PiecewiseFile, the pieces: json_report.document_pieces)
    when the JSON is written in pieces, one a lane; else None."""
    from .atomic import PiecewiseFile, replaceable
    from .json_report import document_pieces, write_json

    owner = next((i for i, (write, _) in enumerate(writers) if write is write_json), None)
    store = result.connections
    if owner is None or not hasattr(store, "record_sizes") or not replaceable(writers[owner][1]):
        return None  # not a file to write at offsets (e.g. --json /dev/stdout): one piece
    from .csv_report import write_csv
    from .fragments import CSV, ID_PREFIX, JSON

    sizes = store.record_sizes(JSON, ID_PREFIX[JSON])
    if sizes is None:
        return None
    # What the other writers carry to their lanes: the CSV about its connections' bytes (it writes
    # about as fast a byte as the JSON), the rest too little to count.
    loads = [0.0] * jobs
    for i, lane in _dealt(writers, owner, jobs):
        if writers[i][0] is write_csv:
            loads[lane] += float(store.text_bytes(CSV) or 0)
    level = (float(sizes.sum()) + sum(loads)) / jobs
    pieces = document_pieces(result, [max(0.0, level - load) for load in loads], sizes)
    try:
        piecewise = PiecewiseFile(writers[owner][1])
    except ReportWriteError:
        return None  # the one-file writer says the same, in its turn
    return owner, piecewise, pieces


def _lanes(writers: list, jobs: int, split) -> list[list[Unit]]:
    lanes: list[list[Unit]] = [[] for _ in range(jobs)]
    owner = None
    if split is not None:
        owner, piecewise, pieces = split
        for k, offset, write in pieces:
            lanes[k].append((owner, lambda _, o=offset, w=write: piecewise.write_piece(o, w)))
    for i, lane in _dealt(writers, owner, jobs):
        write, path = writers[i]
        lanes[lane].append((i, lambda r, write=write, path=path: write(r, path)))
    return [lane for lane in lanes if lane] or [[]]


def _dealt(writers: list, split_owner: int | None, jobs: int) -> list[tuple[int, int]]:
    """(writer, lane) of every writer but the one written in pieces, round-robin."""
    return [(i, k % jobs) for k, i in enumerate(i for i in range(len(writers)) if i != split_owner)]


def _run_lane(result: "AnalysisResult", lane: list[Unit]) -> list[PcapcheckError | None]:
    """Each unit's error, or None."""
    return [_attempt(lambda: write(result)) for _, write in lane]


def _outcome(child, receive) -> tuple[str, object]:
    """A child's one message, once it has ended."""
    try:
        outcome = receive.recv()
    except (EOFError, OSError):  # it died without a word (killed, out of memory)
        child.join()
        outcome = ("died", f"a report writer process died (exit code {child.exitcode}); try fewer --jobs")
    child.join()
    receive.close()
    return outcome


def _lane(send, result: "AnalysisResult", lane: list[Unit]) -> None:
    """A child's work: its units, then one message: ("done", each one's error message or None),
    or ("crash", a traceback)."""
    try:
        send.send(("done", [None if error is None else str(error) for error in _run_lane(result, lane)]))
    except BaseException:  # a bug, not bad input: the parent raises it with this traceback
        send.send(("crash", traceback.format_exc()))
    finally:
        send.close()
