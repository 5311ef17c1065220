"""SARIF 2.1.0 (OASIS): one rule descriptor per catalogue rule, one result per finding.

The "artifact" a result points at is the capture file; SARIF regions are for text or byte
ranges, so the frame number travels in the region's and the result's property bags (the region
says line 1, which GitHub requires), and the
connection is a logical location ("conn 3 198.18.0.1:40001 → 198.18.0.2:8080").
``partialFingerprints`` carries the baseline fingerprint, so GitHub code scanning recognises the
same problem in the next run's capture even though ports and frame numbers changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import __version__
from ..catalogue import RuleSpec
from ..findings import Finding, Severity
from .atomic import write_atomically
from .baseline import fingerprint
from .document import TOOL_NAME, connections_by_id
from .junit import case_name

if TYPE_CHECKING:
    from ..analysis import AnalysisResult

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def artifact_uri(path: str) -> str:
    """Relative paths stay relative (so the SARIF viewer resolves them in the repo); absolute become file: URIs."""
    p = Path(path)
    if p.is_absolute():
        return p.as_uri()
    return quote(PurePath(path).as_posix(), safe="/")


def rule_name(rule_id: str) -> str:
    """SARIF wants an identifier-like name: 'rst-answers-fin-retransmit' -> 'RstAnswersFinRetransmit'."""
    return "".join(part.capitalize() for part in rule_id.replace("_", "-").split("-") if part)


def rule_descriptor(spec: RuleSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": rule_name(spec.id),
        "shortDescription": {"text": spec.title},
        "fullDescription": {"text": spec.explanation or spec.title},
        "help": {"text": spec.remedy or spec.explanation or spec.title},
        "defaultConfiguration": {"level": LEVELS[spec.severity]},
        "properties": {"category": spec.category, "rfc": list(spec.rfc), "tags": ["tcp", spec.category]},
    }


def _unknown_descriptor(rule_id: str, severity: Severity) -> dict[str, Any]:
    # A finding whose rule is not in the catalogue still needs a valid ruleIndex.
    return {
        "id": rule_id,
        "name": rule_name(rule_id),
        "shortDescription": {"text": rule_id},
        "defaultConfiguration": {"level": LEVELS[severity]},
    }


def _fingerprint_hash(parts: tuple) -> str:
    return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()


def build_sarif(result: "AnalysisResult") -> dict[str, Any]:
    descriptors = [rule_descriptor(spec) for _id, spec in sorted(result.rules.items())]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    for f in result.findings:
        if f.rule not in index:
            index[f.rule] = len(descriptors)
            descriptors.append(_unknown_descriptor(f.rule, f.severity))

    paths = list(result.capture.paths)
    artifacts = [{"location": {"uri": artifact_uri(p)}, "roles": ["analysisTarget"]} for p in paths]
    conns = connections_by_id(result.connections, {f.connection for f in result.findings})

    def to_result(f: Finding) -> dict[str, Any]:
        conn = conns.get(f.connection)
        props = {
            "frame": f.frame,
            "time": f.time,
            "connection": f.connection,
            "endpoint": f.endpoint.value if f.endpoint is not None else None,
            "rfc": f.rfc,
            "capture_quality": f.capture_quality,
        }
        location: dict[str, Any] = {}
        if paths:
            location["physicalLocation"] = {
                "artifactLocation": {"uri": artifact_uri(paths[0]), "index": 0},
                # A capture has no lines, but GitHub code scanning drops results without
                # region.startLine; line 1 stands for "the file", the frame is in the properties
                # (counted over the merged timeline of all capture files given).
                "region": {"startLine": 1, "properties": {"frame": f.frame}},
            }
        if conn is not None:
            location["logicalLocations"] = [{"name": case_name(conn), "kind": "object"}]
        item: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": LEVELS[f.severity],
            "message": {"text": f.message},
            "partialFingerprints": {"pcapcheck/v1": _fingerprint_hash(fingerprint(f, conn))},
            "properties": props,
        }
        if location:
            item["locations"] = [location]
        return item

    invocation: dict[str, Any] = {"executionSuccessful": result.error is None}
    notifications = [{"level": "warning", "message": {"text": w}} for w in result.capture.warnings]
    if result.error is not None:
        notifications.append({"level": "error", "message": {"text": result.error}})
    if notifications:
        invocation["toolExecutionNotifications"] = notifications

    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": descriptors,
                    }
                },
                "artifacts": artifacts,
                "invocations": [invocation],
                "results": [to_result(f) for f in result.findings],
                "properties": {"profile": result.profile.name, "suppressed": result.suppressed},
            }
        ],
    }


def write_sarif(result: "AnalysisResult", path: str | os.PathLike) -> None:
    document = build_sarif(result)

    def write(handle):
        json.dump(document, handle, indent=2, ensure_ascii=False)
        handle.write("\n")

    write_atomically(path, write)
