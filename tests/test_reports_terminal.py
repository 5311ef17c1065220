"""The terminal summary is readable without the HTML; the progress bar appears only for big captures."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from pcapcheck.reports.terminal import PROGRESS_MIN_BYTES, print_summary, progress_reader
from tests.test_reports_sample import sample_result


def summary_text(result) -> str:
    console = Console(record=True, width=200, force_terminal=False)
    print_summary(result, console)
    return console.export_text()


def test_summary_counts_connections_by_how_they_closed():
    assert "4 connections: 2 graceful, 1 abortive, 1 open" in summary_text(sample_result())


def test_summary_lists_rules_with_severity_and_count():
    text = summary_text(sample_result())
    line = next(line for line in text.splitlines() if line.startswith("rst-instead-of-final-ack"))
    assert line.split("│")[1].strip() == "error" and line.split("│")[2].strip() == "1"


def test_worst_findings_come_first_with_frame_numbers():
    lines = [line for line in summary_text(sample_result()).splitlines() if " frame " in line]
    assert [line.split()[:3] for line in lines] == [
        ["error", "frame", "8"],
        ["warning", "frame", "2004"],
        ["info", "frame", "641"],
    ]
    text = [line.rstrip() for line in summary_text(sample_result()).splitlines()]
    at = text.index("error   frame 8  rst-instead-of-final-ack (client at fault)")
    assert text[at + 1 : at + 3] == [
        "        conn 1 198.18.0.1:40001 → 198.18.0.2:8080",
        "        RST sent instead of the final ACK (frame 8)",
    ]


def test_verdict_line_says_whether_the_gate_fails():
    assert "--fail-on error: FAIL (1 at or above error)" in summary_text(sample_result())
    assert "--fail-on never: PASS" in summary_text(sample_result(fail_on="never"))


def test_rich_markup_in_a_message_is_printed_literally():
    result = sample_result()
    result.findings[0] = dataclasses.replace(result.findings[0], message="odd [bold]frame[/bold] 8")
    assert "odd [bold]frame[/bold] 8" in summary_text(result)


def test_no_progress_bar_when_disabled_or_for_a_small_capture(tmp_path):
    small = tmp_path / "small.pcap"
    small.write_bytes(b"\0" * 1000)
    console = Console(file=open(tmp_path / "out", "w"), force_terminal=True)
    with progress_reader([str(small)], enabled=True, console=console) as progress:
        assert progress is None
    big = tmp_path / "big.pcap"
    with open(big, "wb") as handle:
        handle.truncate(PROGRESS_MIN_BYTES + 1)
    with progress_reader([str(big)], enabled=False, console=console) as progress:
        assert progress is None


def test_progress_bar_counts_packets_for_a_big_capture(tmp_path):
    big = tmp_path / "big.pcap"
    with open(big, "wb") as handle:
        handle.truncate(PROGRESS_MIN_BYTES + 1)
    out = tmp_path / "out"
    with open(out, "w") as stream:
        console = Console(file=stream, force_terminal=True, width=120)
        with progress_reader([str(big)], enabled=True, console=console) as progress:
            assert callable(progress)
            progress(1500)
            progress(500)
    assert "2,000 packets read" in out.read_text()
