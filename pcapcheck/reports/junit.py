"""JUnit XML: one test case per connection, so GitLab and Jenkins list connections like tests.

A connection with findings at or above --fail-on is a failed test case (one <failure> listing
them all: many CI viewers show only the first failure element).  Its other findings, and the
findings of passing connections, go to <system-out>.  A run that stopped on bad input gets an
extra "capture" test case with an <error>.
"""

from __future__ import annotations

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


def build_junit(result: "AnalysisResult") -> ET.ElementTree:
    fail_on = fail_on_of(result)
    by_conn: dict[int, list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_conn[f.connection].append(f)

    root = ET.Element("testsuites", name="pcapcheck")
    start = result.capture.first_time
    suite = ET.SubElement(root, "testsuite", name=_suite_name(result))
    if start is not None:
        suite.set("timestamp", datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(suite, "properties")
    for key, value in (("profile", result.profile.name), ("fail_on", fail_on), ("suppressed", str(result.suppressed))):
        ET.SubElement(props, "property", name=key, value=value)

    classname = "pcapcheck." + (Path(result.capture.paths[0]).stem if result.capture.paths else "capture")
    tests = failures = 0
    known: set[int] = set()  # connections with findings that exist: the others' findings are orphans
    for conn in result.connections:
        findings = by_conn.get(conn.id, [])
        if findings:
            known.add(conn.id)
        t, f = _add_case(suite, classname, case_name(conn), conn.end - conn.start, findings, fail_on)
        tests, failures = tests + t, failures + f
    orphans = [f for cid, fs in by_conn.items() if cid not in known for f in fs]
    errors = 0
    if orphans or result.error is not None:
        t, f = _add_case(suite, classname, "capture", 0.0, orphans, fail_on)
        tests, failures = tests + t, failures + f
        if result.error is not None:
            case = suite.findall("testcase")[-1]
            ET.SubElement(case, "error", message=result.error, type="input-error").text = (
                "the run stopped early on bad input; connections after this point were not analysed"
            )
            errors = 1
    duration = (result.capture.last_time or 0.0) - (result.capture.first_time or 0.0)
    for element in (root, suite):
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
        element.set("time", f"{max(duration, 0.0):.6f}")
    suite.set("skipped", "0")
    return ET.ElementTree(root)


def write_junit(result: "AnalysisResult", path: str | os.PathLike) -> None:
    tree = build_junit(result)
    ET.indent(tree)
    write_atomically(path, lambda handle: tree.write(handle, encoding="unicode", xml_declaration=True))
