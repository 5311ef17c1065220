"""``pcapcheck flows``: one row per connection."""

from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from pcapcheck.capture import open_capture
from pcapcheck.cli import app
from pcapcheck.connections import rebuild
from pcapcheck.reports.flows import print_flows

from .test_capture_support import DATA


def flows_text(*names: str) -> str:
    capture = open_capture([str(DATA / n) for n in names])
    conns = list(rebuild(capture.batches()))
    console = Console(width=200, record=True, highlight=False)
    print_flows(conns, capture.info, console)
    return console.export_text()


def test_each_connection_is_one_row_with_endpoints_frames_counts_and_flags():
    rows = [line for line in flows_text("real-eth.pcap").splitlines() if line.startswith("│")]
    assert len(rows) == 6
    cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
    assert cells[0] == ["1", "198.18.0.1:54484", "198.18.0.2:8080", "1", "1-10", "6/1000", "4/200", "SFP."]
    assert cells[2][:5] == ["3", "198.18.0.1:40001", "198.18.0.2:8081", "2", "21-30"]
    assert cells[3][-1] == "SR."
    assert cells[5][1:3] == ["[fd00::1]:49220", "[fd00::2]:8080"]  # brackets are text, not markup


def test_inferred_roles_are_marked_and_explained():
    text = flows_text("midstream.pcap")
    assert "198.18.0.3:50000 ?" in text
    assert "? = no SYN seen" in text


def test_the_title_counts_connections_and_packets():
    assert flows_text("ipv4-options.pcap").splitlines()[0].strip() == "1 TCP connections in 9 of 11 packets"


def test_flows_command_exits_0_and_prints_the_table():
    result = CliRunner().invoke(app, ["flows", str(DATA / "real-sll2.pcap")])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].strip() == "6 TCP connections in 48 of 48 packets"
