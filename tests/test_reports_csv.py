"""CSV reports: connections.csv and findings.csv with the JSON field names as columns."""

from __future__ import annotations

import pandas as pd

from pcapcheck.reports import write_reports
from tests.test_reports_sample import sample_result


def test_connections_csv_has_one_row_per_connection_named_like_json(tmp_path):
    write_reports(sample_result(), csv_dir=tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "connections.csv")
    for column in ("id", "client", "server", "incarnation", "first_frame", "last_frame", "start", "end", "packets",
                   "bytes_client_to_server", "bytes_server_to_client", "client_final_state",
                   "server_final_state", "close", "vantage", "states"):  # fmt: skip
        assert column in table.columns, column
    assert list(table["id"]) == [1, 2, 3, 4]
    assert table.loc[1, "client"] == "[fd00::1]:40002"
    assert table.loc[2, "bytes_client_to_server"] == 600_000


def test_states_column_is_a_compact_transition_list(tmp_path):
    write_reports(sample_result(), csv_dir=tmp_path)
    states = pd.read_csv(tmp_path / "connections.csv").loc[0, "states"]
    assert states.startswith("1 client CLOSED>SYN-SENT; 1 server LISTEN>SYN-RECEIVED; ")
    assert states.endswith("8 client FIN-WAIT-1>CLOSED; 8 server LAST-ACK>CLOSED")


def test_findings_csv_has_one_row_per_finding(tmp_path):
    write_reports(sample_result(), csv_dir=tmp_path)
    table = pd.read_csv(tmp_path / "findings.csv", keep_default_na=False)
    assert list(table.columns) == [
        "rule", "severity", "connection", "endpoint", "frame", "time", "message", "rfc", "capture_quality",
    ]  # fmt: skip
    assert list(table["rule"]) == ["rst-instead-of-final-ack", "capture-gap", "close-wait-leak"]
    assert list(table["endpoint"]) == ["client", "", "server"]
    assert list(table["frame"]) == [8, 641, 2004]


def test_an_empty_run_writes_header_only_files(tmp_path):
    result = sample_result()
    result.connections, result.findings = [], []
    write_reports(result, csv_dir=tmp_path / "new" / "folder")
    assert (tmp_path / "new/folder/findings.csv").read_text().strip() == (
        "rule,severity,connection,endpoint,frame,time,message,rfc,capture_quality"
    )
    assert (tmp_path / "new/folder/connections.csv").read_text().startswith("id,client,server,")
    assert len((tmp_path / "new/folder/connections.csv").read_text().strip().splitlines()) == 1
