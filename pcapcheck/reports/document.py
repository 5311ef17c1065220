"""The report document: one plain-data view of an AnalysisResult that every file format shares.

JSON writes it (streamed: json_report), CSV flattens its connection and finding records, JUnit/SARIF/HTML
read the same records, so a field has one name and one meaning in every report.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..findings import Finding, Severity
from ..replay.model import Transition, TransitionPattern

if TYPE_CHECKING:  # reports read the analysis result; they never run the pipeline
    from ..analysis import AnalysisResult, ConnectionReport

TOOL_NAME = "pcapcheck"
FAIL_ON_VALUES = ("error", "warning", "info", "never")
SEVERITY_ORDER = ("error", "warning", "info")
CLOSE_ORDER = ("graceful", "abortive", "refused", "incomplete", "open")


def fail_on_of(result: "AnalysisResult") -> str:
    """The --fail-on threshold of the run ("error" when the config does not say)."""
    return str(getattr(result.config, "fail_on", None) or "error")


def transition_record(t: Transition) -> dict[str, Any]:
    return {
        "time": t.time,
        "frame": t.frame,
        "endpoint": t.endpoint.value,
        "from": t.from_state.value,
        "to": t.to_state.value,
        "cause": t.cause,
        "rfc": t.rfc,
    }


class PatternTexts:
    """What a writer compiles once per TransitionPattern (one per memo template), found again by the
    pattern's identity: the entry holds the pattern, so its id is not reused while cached.  Bounded:
    full, it starts afresh."""

    def __init__(self, compile: Callable[["TransitionPattern"], tuple], limit: int = 4096):
        self._compile = compile
        self._limit = limit
        self._entries: dict[int, tuple] = {}

    def get(self, pattern: "TransitionPattern") -> tuple:
        """(pattern, *compile(pattern))."""
        entry = self._entries.get(id(pattern))
        if entry is None or entry[0] is not pattern:
            if len(self._entries) >= self._limit:
                self._entries.clear()
            entry = self._entries[id(pattern)] = (pattern, *self._compile(pattern))
        return entry


def plain_numbers(conn: "ConnectionReport") -> bool:
    """Are the counting fields exact ints?  Only those print the same by hand as json and pandas
    print them (a bool would be "True", a float NaN "nan"): the fast writers check, else fall back."""
    return (
        type(conn.id) is type(conn.incarnation) is type(conn.first_frame) is type(conn.last_frame) is int
        and type(conn.packets) is type(conn.packets_client_to_server) is type(conn.packets_server_to_client) is int
        and type(conn.bytes_client_to_server) is type(conn.bytes_server_to_client) is int
    )


def connection_record(conn: "ConnectionReport") -> dict[str, Any]:
    return {
        "id": conn.id,
        "client": str(conn.client),
        "server": str(conn.server),
        "incarnation": conn.incarnation,
        "roles_inferred": conn.roles_inferred,
        "first_frame": conn.first_frame,
        "last_frame": conn.last_frame,
        "start": conn.start,
        "end": conn.end,
        "duration": conn.duration,
        "packets": conn.packets,
        "packets_client_to_server": conn.packets_client_to_server,
        "packets_server_to_client": conn.packets_server_to_client,
        "bytes_client_to_server": conn.bytes_client_to_server,
        "bytes_server_to_client": conn.bytes_server_to_client,
        "client_final_state": conn.client_final_state,
        "server_final_state": conn.server_final_state,
        "close": conn.close,
        "vantage": conn.vantage,
        "flags_seen": conn.flags_seen,
        "states": [transition_record(t) for t in conn.transitions],
    }


def finding_record(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "connection": finding.connection,
        "endpoint": finding.endpoint.value if finding.endpoint is not None else None,
        "frame": finding.frame,
        "time": finding.time,
        "message": finding.message,
        "rfc": finding.rfc,
        "capture_quality": finding.capture_quality,
    }


def connections_by_id(connections: Iterable["ConnectionReport"], ids: Collection[int]) -> dict[int, "ConnectionReport"]:
    """The connections whose id is in ``ids``, in one pass (none when ``ids`` is empty).

    Reports read ``result.connections`` only by iterating it and taking its length: it may be a
    sequence on disk, too large to index whole.
    """
    wanted = set(ids)
    if not wanted:
        return {}
    # A ConnectionStore or templated.ConnectionReports reads or makes only the reports asked for.
    lookup = getattr(connections, "reports_of", None)
    if lookup is not None:
        return lookup(wanted)
    return {c.id: c for c in connections if c.id in wanted}


def close_counts(result: "AnalysisResult") -> dict[str, int]:
    """Connections by how they ended, in a fixed order (kinds with no connection omitted)."""
    counted = getattr(result.connections, "close_counts", None)  # a ConnectionStore counts without a pass
    counts = counted() if counted is not None else Counter(c.close for c in result.connections)
    ordered = {kind: counts.pop(kind) for kind in CLOSE_ORDER if kind in counts}
    ordered.update(sorted(counts.items()))
    return ordered


def kind_counts(findings: Iterable[Finding]) -> Counter:
    """(rule, severity value, capture_quality) -> how many findings: what every count reads."""
    counted = getattr(findings, "kind_counts", None)  # a FindingStore counts without reading its files
    if counted is not None:
        return counted()
    return Counter((f.rule, f.severity.value, f.capture_quality) for f in findings)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts: Counter = Counter()
    for (_rule, severity, _quality), n in kind_counts(findings).items():
        counts[severity] += n
    return {s: counts.get(s, 0) for s in SEVERITY_ORDER}


def rule_counts(findings: Iterable[Finding]) -> list[tuple[str, str, int]]:
    """(rule, severity, count), worst severity first, then most frequent, then by id."""
    counts: Counter = Counter()
    for (rule, severity, _quality), n in kind_counts(findings).items():
        counts[rule, severity] += n
    return sorted(
        ((rule, severity, n) for (rule, severity), n in counts.items()),
        key=lambda item: (-Severity(item[1]).rank, -item[2], item[0]),
    )


def rule_totals(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings by rule, rules in id order."""
    counts: Counter = Counter()
    for (rule, _severity, _quality), n in kind_counts(findings).items():
        counts[rule] += n
    return dict(sorted(counts.items()))


def worst_first(findings: Iterable[Finding], limit: int | None = None) -> list[Finding]:
    """Findings by severity (errors first), capture notes last, then in capture order; the first
    ``limit`` of them only, when given (a large capture's findings are never all held)."""
    if limit is None:
        return sorted(findings, key=_worst_key)
    return heapq.nsmallest(limit, findings, key=_worst_key)  # == sorted(...)[:limit], ties included


def _worst_key(f: Finding) -> tuple:
    return (-f.severity.rank, f.capture_quality, f.frame, f.connection, f.rule)


def document_head(result: "AnalysisResult") -> dict[str, Any]:
    """The document's fields before "connections", in their order."""
    capture = result.capture
    return {
        "tool": {"name": TOOL_NAME, "version": __version__},
        "capture": {
            "paths": list(capture.paths),
            "packets": capture.packets,
            "tcp_packets": capture.tcp_packets,
            "non_tcp_packets": capture.non_tcp_packets,
            "first_time": capture.first_time,
            "last_time": capture.last_time,
            "link_types": list(capture.link_types),
            "truncated_packets": capture.truncated_packets,
            "dropped_by_interface": capture.dropped_by_interface,  # null: the file does not say
            "warnings": list(capture.warnings),
            "comments": list(capture.comments),
        },
        "profile": asdict(result.profile),
        "fail_on": fail_on_of(result),
        "summary": {
            "connections": len(result.connections),
            "close": close_counts(result),
            "findings": severity_counts(result.findings),
            "rules": rule_totals(result.findings),
        },
    }


def document_tail(result: "AnalysisResult") -> dict[str, Any]:
    """The document's fields after "findings", in their order."""
    return {"suppressed": result.suppressed, "error": result.error}


def build_document(result: "AnalysisResult") -> dict[str, Any]:
    """The whole document in memory (json_report streams the same text without building it)."""
    return {
        **document_head(result),
        "connections": [connection_record(c) for c in result.connections],
        "findings": [finding_record(f) for f in result.findings],
        **document_tail(result),
    }
