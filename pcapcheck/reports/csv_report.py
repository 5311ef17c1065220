"""CSV reports: connections.csv and findings.csv, one row per connection / finding.

Columns carry the JSON field names.  A connection's transitions become one compact ``states``
column ("frame endpoint FROM>TO; ..."), so a spreadsheet still shows how each side moved without
a nested structure.  Both files are written even when empty (header only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .atomic import ReportWriteError, write_atomically
from .document import connection_record, finding_record

if TYPE_CHECKING:
    from ..analysis import AnalysisResult

CONNECTION_COLUMNS = [
    "id", "client", "server", "incarnation", "roles_inferred", "first_frame", "last_frame", "start", "end",
    "duration", "packets", "packets_client_to_server", "packets_server_to_client", "bytes_client_to_server",
    "bytes_server_to_client", "client_final_state", "server_final_state", "close", "vantage", "flags_seen",
    "states",
]  # fmt: skip
FINDING_COLUMNS = ["rule", "severity", "connection", "endpoint", "frame", "time", "message", "rfc", "capture_quality"]


def states_text(states: list[dict]) -> str:
    """Transitions as 'frame endpoint FROM>TO' joined by '; ' (e.g. '3 client SYN-SENT>ESTABLISHED')."""
    return "; ".join(f"{s['frame']} {s['endpoint']} {s['from']}>{s['to']}" for s in states)


def connections_frame(result: "AnalysisResult") -> pd.DataFrame:
    records = [connection_record(c) for c in result.connections]
    for record in records:
        record["states"] = states_text(record["states"])
    return pd.DataFrame.from_records(records, columns=CONNECTION_COLUMNS)


def findings_frame(result: "AnalysisResult") -> pd.DataFrame:
    return pd.DataFrame.from_records([finding_record(f) for f in result.findings], columns=FINDING_COLUMNS)


def write_csv(result: "AnalysisResult", folder: str | os.PathLike) -> None:
    directory = Path(folder)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportWriteError(f"{directory}: cannot create the CSV folder: {err.strerror or err}") from None
    for name, frame in (("connections.csv", connections_frame(result)), ("findings.csv", findings_frame(result))):
        # float_format keeps microseconds of epoch times without pandas' scientific notation.
        write_atomically(directory / name, lambda handle, frame=frame: frame.to_csv(handle, index=False, float_format="%.6f"))
