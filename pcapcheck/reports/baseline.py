"""Baselines: record today's findings so a pre-merge check flags only new problems.

A finding is matched by a *fingerprint* that survives a re-capture of the same test run:

* the rule id;
* the endpoint at fault, by role ("client", "server", or none for capture notes);
* the server's address and port (the service under test: stable across runs);
* the client's address (the test host: stable), but NOT its port.

Left out on purpose, because each changes when the same traffic is captured again: the client's
ephemeral port, frame numbers and times, connection ids (they follow capture order, which other
traffic shifts) and the incarnation number (it counts reuses of one 4-tuple, and a new ephemeral
port makes a new tuple).

Matching counts occurrences: a baseline that recorded a fingerprint N times suppresses at most N
findings with it, so a problem that starts happening more often is still reported.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ConfigError
from ..findings import Finding
from .atomic import write_atomically
from .document import connections_by_id

if TYPE_CHECKING:
    from ..analysis import AnalysisResult, ConnectionReport

BASELINE_FORMAT = "pcapcheck-baseline"
BASELINE_VERSION = 1

Fingerprint = tuple[str, str | None, str, int, str]  # rule, endpoint role, server addr, server port, client addr


def fingerprint(finding: Finding, conn: "ConnectionReport | None") -> Fingerprint:
    role = finding.endpoint.value if finding.endpoint is not None else None
    if conn is None:  # a finding about no known connection: only its rule and role identify it
        return (finding.rule, role, "", 0, "")
    return (finding.rule, role, conn.server.addr, conn.server.port, conn.client.addr)


def fingerprints(result: "AnalysisResult") -> list[Fingerprint]:
    by_id = connections_by_id(result.connections, {f.connection for f in result.findings})
    return [fingerprint(f, by_id.get(f.connection)) for f in result.findings]


def _entry(fp: Fingerprint, count: int) -> dict[str, Any]:
    rule, role, server_addr, server_port, client_addr = fp
    return {"rule": rule, "endpoint": role, "server_addr": server_addr, "server_port": server_port,
            "client_addr": client_addr, "count": count}  # fmt: skip


def write_baseline_file(result: "AnalysisResult", path: str | os.PathLike) -> None:
    """Record every current finding's fingerprint with how often it occurs."""
    counts = Counter(fingerprints(result))
    entries = [_entry(fp, n) for fp, n in sorted(counts.items(), key=lambda item: tuple(map(str, item[0])))]
    document = {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "tool_version": __version__,
        "captures": [Path(p).name for p in result.capture.paths],
        "entries": entries,
    }

    def write(handle):
        json.dump(document, handle, indent=2)
        handle.write("\n")

    write_atomically(path, write)


def read_baseline(path: str | os.PathLike) -> Counter:
    """Fingerprint -> recorded count.  A missing or malformed file is a ConfigError naming it."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: baseline file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not a pcapcheck baseline ({err})") from None
    if not isinstance(document, dict) or document.get("format") != BASELINE_FORMAT:
        raise ConfigError(f"{path}: not a pcapcheck baseline (missing \"format\": \"{BASELINE_FORMAT}\")")
    if document.get("version") != BASELINE_VERSION:
        raise ConfigError(f"{path}: baseline version {document.get('version')!r} is not supported")
    counts: Counter = Counter()
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: field 'entries' must be a list")
    for i, entry in enumerate(entries):
        try:
            fp = (str(entry["rule"]), entry["endpoint"], str(entry["server_addr"]), int(entry["server_port"]),
                  str(entry["client_addr"]))  # fmt: skip
            count = int(entry.get("count", 1))
        except (TypeError, KeyError, ValueError) as err:
            raise ConfigError(f"{path}: entry {i + 1}: missing or bad field ({err})") from None
        if fp[1] not in (None, "client", "server") or count < 1:
            raise ConfigError(f"{path}: entry {i + 1}: bad endpoint or count")
        counts[fp] += count
    return counts


def apply_baseline(result: "AnalysisResult", path: str | os.PathLike) -> None:
    """Drop findings the baseline recorded (each recorded occurrence suppresses one), count them."""
    remaining = read_baseline(path)
    by_id = connections_by_id(result.connections, {f.connection for f in result.findings})
    kept: list[Finding] = []
    suppressed = 0
    for finding in result.findings:
        fp = fingerprint(finding, by_id.get(finding.connection))
        if remaining[fp] > 0:
            remaining[fp] -= 1
            suppressed += 1
        else:
            kept.append(finding)
    result.findings = kept
    result.suppressed += suppressed
