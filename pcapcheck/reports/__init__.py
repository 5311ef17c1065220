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
    if jobs > 1 and len(writers) > 1 and "fork" in multiprocessing.get_all_start_methods():
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
    try:
        write(result, path)
    except PcapcheckError as err:
        return err
    return None


def _write_in_processes(result: "AnalysisResult", writers: list, jobs: int) -> list[Exception | None]:
    """``_written`` of every writer, the writers dealt round-robin to ``jobs`` lanes: this process
    runs the first lane, forked children the others (they read the result as this process holds
    it, the run's temporary files included, and change nothing in it).  Every child is waited for,
    whatever happens here: its reports are written whole or not at all (reports.atomic).  A bug in
    a child comes back as a RuntimeError with its traceback; a child killed from outside as one
    line, like bad input."""
    count = min(jobs, len(writers))
    lanes = [list(range(k, len(writers), count)) for k in range(count)]
    context = multiprocessing.get_context("fork")
    children = []
    errors: list[Exception | None] = [None] * len(writers)
    try:
        for lane in lanes[1:]:
            receive, send = context.Pipe(duplex=False)
            child = context.Process(
                target=_lane, args=(send, result, [writers[i] for i in lane]), daemon=True, name="pcapcheck-report"
            )
            child.start()
            send.close()
            children.append((child, receive, lane))
        for i in lanes[0]:
            errors[i] = _written(result, writers[i])
    finally:
        outcomes = [_outcome(child, receive) for child, receive, _ in children]
    for (_, _, lane), (kind, said) in zip(children, outcomes):
        if kind == "crash":
            raise RuntimeError(f"a report writer process failed:\n{said}")
        if kind == "died":
            raise ReportWriteError(said)
        for i, message in zip(lane, said):
            errors[i] = None if message is None else ReportWriteError(message)
    return errors


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


def _lane(send, result: "AnalysisResult", lane: list) -> None:
    """A child's work: its writers, then one message: ("done", each one's error message or None),
    or ("crash", a traceback)."""
    try:
        said = [_written(result, writer) for writer in lane]
        send.send(("done", [None if error is None else str(error) for error in said]))
    except BaseException:  # a bug, not bad input: the parent raises it with this traceback
        send.send(("crash", traceback.format_exc()))
    finally:
        send.close()
