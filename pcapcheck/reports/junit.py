"""JUnit XML: one test case per connection, so GitLab and Jenkins list connections like tests.

A connection with findings at or above --fail-on is a failed test case (one <failure> listing
them all: many CI viewers show only the first failure element).  Its other findings, and the
findings of passing connections, go to <system-out>.  A run that stopped on bad input gets an
extra "capture" test case with an <error>.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..findings import Finding
from .atomic import write_atomically
from .document import fail_on_of
from .gate import fails

if TYPE_CHECKING:
    from ..analysis import AnalysisResult, ConnectionReport


def case_name(conn: "ConnectionReport") -> str:
    return f"conn {conn.id} {conn.client} → {conn.server}"


def finding_line(f: Finding) -> str:
    who = f" [{f.endpoint.value}]" if f.endpoint is not None else ""
    return f"{f.severity.value}: {f.rule}{who} frame {f.frame}: {f.message}" + (f" ({f.rfc})" if f.rfc else "")


def _suite_name(result: "AnalysisResult") -> str:
    names = [Path(p).name for p in result.capture.paths]
    return "pcapcheck " + (", ".join(names) if names else "(no capture)")


def _add_case(suite: ET.Element, classname: str, name: str, seconds: float, findings: list[Finding],
              fail_on: str) -> tuple[int, int]:  # fmt: skip
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{max(seconds, 0.0):.6f}")
    failed = [f for f in findings if fails(f, fail_on)]
    passed = [f for f in findings if not fails(f, fail_on)]
    if failed:
        first = failed[0]
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        failure = ET.SubElement(case, "failure", message=f"{first.rule}: {first.message}{more}", type=first.rule)
        failure.text = "\n".join(finding_line(f) for f in failed)
    if passed:
        ET.SubElement(case, "system-out").text = "\n".join(finding_line(f) for f in passed)
    return (1, 1 if failed else 0)


def _counts(result: "AnalysisResult", by_conn: dict[int, list[Finding]], fail_on: str) -> tuple[int, int, int, list[Finding]]:
    """(tests, failures, errors, orphan findings) without a pass over the connections: ids run 1..n."""
    n = len(result.connections)
    tests = n
    failures = sum(1 for cid, fs in by_conn.items() if 1 <= cid <= n and any(fails(f, fail_on) for f in fs))
    orphans = [f for cid, fs in by_conn.items() if not 1 <= cid <= n for f in fs]
    errors = 0
    if orphans or result.error is not None:
        tests += 1
        failures += 1 if any(fails(f, fail_on) for f in orphans) else 0
        errors = 1 if result.error is not None else 0
    return tests, failures, errors, orphans


def _skeleton(result: "AnalysisResult", by_conn: dict[int, list[Finding]], fail_on: str) -> tuple[ET.Element, ET.Element, list[Finding]]:
    """The document without the connections' test cases: (root, suite, orphan findings)."""
    root = ET.Element("testsuites", name="pcapcheck")
    start = result.capture.first_time
    suite = ET.SubElement(root, "testsuite", name=_suite_name(result))
    if start is not None:
        suite.set("timestamp", datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(suite, "properties")
    for key, value in (("profile", result.profile.name), ("fail_on", fail_on), ("suppressed", str(result.suppressed))):
        ET.SubElement(props, "property", name=key, value=value)
    tests, failures, errors, orphans = _counts(result, by_conn, fail_on)
    duration = (result.capture.last_time or 0.0) - (result.capture.first_time or 0.0)
    for element in (root, suite):
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
        element.set("time", f"{max(duration, 0.0):.6f}")
    suite.set("skipped", "0")
    return root, suite, orphans


def _findings_by_connection(result: "AnalysisResult") -> dict[int, list[Finding]]:
    by_conn: dict[int, list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_conn[f.connection].append(f)
    return by_conn


def _classname(result: "AnalysisResult") -> str:
    return "pcapcheck." + (Path(result.capture.paths[0]).stem if result.capture.paths else "capture")


def _capture_case(suite: ET.Element, result: "AnalysisResult", classname: str, orphans: list[Finding], fail_on: str) -> None:
    if orphans or result.error is not None:
        _add_case(suite, classname, "capture", 0.0, orphans, fail_on)
        if result.error is not None:
            case = suite.findall("testcase")[-1]
            ET.SubElement(case, "error", message=result.error, type="input-error").text = (
                "the run stopped early on bad input; connections after this point were not analysed"
            )


def build_junit(result: "AnalysisResult") -> ET.ElementTree:
    """The whole document as one tree: the reference ``write_junit`` streams the same bytes from."""
    fail_on = fail_on_of(result)
    by_conn = _findings_by_connection(result)
    root, suite, orphans = _skeleton(result, by_conn, fail_on)
    classname = _classname(result)
    for conn in result.connections:
        _add_case(suite, classname, case_name(conn), conn.duration, by_conn.get(conn.id, []), fail_on)
    _capture_case(suite, result, classname, orphans, fail_on)
    return ET.ElementTree(root)


# Inside <testsuite>, ET.indent puts each child on its own line at this depth.
_CASE_LEVEL = 2
_MARK = "pcapcheck-connections-go-here"


def write_junit(result: "AnalysisResult", path: str | os.PathLike) -> None:
    """``build_junit``, indented, written one connection's test case at a time: a capture of a
    million connections never holds a million elements.  The bytes are the tree's."""
    fail_on = fail_on_of(result)
    by_conn = _findings_by_connection(result)
    root, suite, orphans = _skeleton(result, by_conn, fail_on)
    classname = _classname(result)
    ET.SubElement(suite, _MARK)  # where the connections' test cases go
    _capture_case(suite, result, classname, orphans, fail_on)
    ET.indent(root)
    head, tail = _document_text(ET.ElementTree(root)).split(f"<{_MARK} />")
    between = "\n" + "  " * _CASE_LEVEL  # ET.indent's whitespace between two test cases

    def write(handle) -> None:
        cases = 0
        for conn in result.connections:
            holder = ET.Element("testsuite")
            _add_case(holder, classname, case_name(conn), conn.duration, by_conn.get(conn.id, []), fail_on)
            ET.indent(holder[0], level=_CASE_LEVEL)
            handle.write(head if cases == 0 else between)
            handle.write(ET.tostring(holder[0], encoding="unicode"))
            cases += 1
        # No test case: the properties' whitespace is the marker's own.
        handle.write(tail if cases else head[: -len(between)] + tail)

    write_atomically(path, write)


def _document_text(tree: ET.ElementTree) -> str:
    out = io.StringIO()
    tree.write(out, encoding="unicode", xml_declaration=True)
    return out.getvalue()
