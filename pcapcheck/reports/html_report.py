"""HTML report: one self-contained page (inline CSS and SVG; no scripts, fonts or network).

Overview, a findings table linked to their connections, and for each connection with findings a
ladder diagram (ladder.py) with both endpoints' states along their lifelines.  Every string that
comes from a capture (file names, pcapng comments, interface names) goes through jinja2's
autoescape; nothing is marked safe.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .. import __version__
from ..findings import Finding
from .atomic import write_text_atomically
from .document import close_counts, fail_on_of, rule_counts, severity_counts, worst_first
from .gate import failing_count
from .ladder import CONTEXT, build_ladder

if TYPE_CHECKING:
    from ..analysis import AnalysisResult, ConnectionReport

TEMPLATE = "report.html.j2"
# Beyond this many rows the all-connections table would make the page slow to open; the CSV has all.
MAX_CONNECTION_ROWS = 2000
# Ladder diagrams cost ~1 KB per drawn segment: draw the worst connections, list the rest.
MAX_LADDERS = 200
MAX_FINDING_ROWS = 2000


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("pcapcheck.reports", "templates"),
        autoescape=True,  # always on: capture text is untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _utc(t: float | None) -> str:
    if t is None:
        return "–"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _connection_view(conn: "ConnectionReport", findings: list[Finding], context: int, draw: bool) -> dict[str, Any]:
    by_frame: dict[int, list[str]] = defaultdict(list)
    worst: dict[int, Finding] = {}
    for f in findings:
        by_frame[f.frame].append(f.rule)
        if f.frame not in worst or f.severity.rank > worst[f.frame].severity.rank:
            worst[f.frame] = f
    ladder = None
    if conn.steps and draw:
        ladder = build_ladder(
            str(conn.client), str(conn.server), conn.steps, conn.transitions, dict(by_frame), context,
            anchor_prefix=f"c{conn.id}-", severity_by_frame={k: f.severity.value for k, f in worst.items()},
        )  # fmt: skip
    drawn = {a.frame for a in ladder.arrows} if ladder else set()
    return {
        "conn": conn,
        "anchor": f"conn-{conn.id}",
        "findings": findings,
        "ladder": ladder,
        "drawn_frames": drawn,
        "omitted": bool(conn.steps) and not draw,
        "duration": conn.duration,
    }


def build_context(result: "AnalysisResult", context: int = CONTEXT) -> dict[str, Any]:
    by_conn: dict[int, list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_conn[f.connection].append(f)
    flagged = [c for c in result.connections if c.id in by_conn] if by_conn else []
    conns = {c.id: c for c in flagged}
    worst_rank = {c.id: max(f.severity.rank for f in by_conn[c.id]) for c in flagged}
    drawn_ids = {c.id for c in sorted(flagged, key=lambda c: (-worst_rank[c.id], c.id))[:MAX_LADDERS]}
    sections = [_connection_view(c, by_conn[c.id], context, c.id in drawn_ids) for c in flagged]
    drawn = {s["conn"].id: s["drawn_frames"] for s in sections}

    rows = []
    for f in worst_first(result.findings, MAX_FINDING_ROWS):
        conn = conns.get(f.connection)
        if f.frame in drawn.get(f.connection, ()):
            link = f"#c{f.connection}-f{f.frame}"
        elif conn is not None:
            link = f"#conn-{f.connection}"
        else:
            link = ""
        spec = result.rules.get(f.rule)
        rows.append(
            {
                "f": f,
                "title": spec.title if spec else "",
                "link": link,
                "where": f"{conn.client} → {conn.server}" if conn else "",
            }
        )

    fired = [result.rules[rule] for rule, _s, _n in rule_counts(result.findings) if rule in result.rules]
    cap = result.capture
    fail_on = fail_on_of(result)
    failed = failing_count(result.findings, fail_on)
    return {
        "version": __version__,
        "title": "pcapcheck: " + (", ".join(Path(p).name for p in cap.paths) or "no capture"),
        "capture": cap,
        "capture_names": [Path(p).name for p in cap.paths],
        "first_time": _utc(cap.first_time),
        "last_time": _utc(cap.last_time),
        "span": (cap.last_time - cap.first_time) if cap.first_time is not None and cap.last_time is not None else None,
        "profile": result.profile,
        "fail_on": fail_on,
        "verdict": "incomplete" if result.error else ("fail" if failed else "pass"),
        "failed": failed,
        "error": result.error,
        "suppressed": result.suppressed,
        "closes": close_counts(result),
        "severities": severity_counts(result.findings),
        "rule_counts": rule_counts(result.findings),
        "n_connections": len(result.connections),
        "finding_rows": rows,
        "findings_total": len(result.findings),
        "findings_cut": len(result.findings) > MAX_FINDING_ROWS,
        "rule_titles": {rule_id: spec.title for rule_id, spec in result.rules.items()},
        "fired_rules": fired,
        "sections": sections,
        "all_connections": result.connections[:MAX_CONNECTION_ROWS],
        "connections_cut": max(0, len(result.connections) - MAX_CONNECTION_ROWS),
        "with_findings": set(by_conn),
        "context": context,
        "max_ladders": MAX_LADDERS,
    }


def render_html(result: "AnalysisResult", context: int = CONTEXT) -> str:
    return _environment().get_template(TEMPLATE).render(**build_context(result, context))


def write_html(result: "AnalysisResult", path: str | os.PathLike) -> None:
    write_text_atomically(path, render_html(result))
