"""Terminal output: a progress bar while a large capture is read, then a summary readable without the HTML.

The summary says how the connections closed, which rules fired how often, and lists the worst
findings with their frame numbers, so a user can jump straight to them in Wireshark.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import __version__
from .document import close_counts, connections_by_id, fail_on_of, rule_counts, severity_counts, worst_first
from .gate import failing_count

if TYPE_CHECKING:
    from ..analysis import AnalysisResult

# Below this much capture data reading takes well under a second: a bar would only flicker.
PROGRESS_MIN_BYTES = 4 * 1024 * 1024
WORST_SHOWN = 10
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
CLOSE_STYLE = {"graceful": "green", "abortive": "red", "refused": "magenta", "incomplete": "yellow", "open": "blue"}


def _total_bytes(paths: Sequence[str]) -> int:
    total = 0
    for p in paths:
        try:
            total += os.path.getsize(p)
        except OSError:
            pass  # the capture stage reports unreadable files; the bar is only decoration
    return total


def _size_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@contextmanager
def progress_reader(
    paths: Sequence[str], enabled: bool, console: Console
) -> Iterator[Callable[[int], None] | None]:
    """Yield ``progress(n_packets)`` for the capture stage, or None when no bar is wanted.

    The reader reports packets, not bytes, and a capture's packet count is unknown until it has
    been read, so the bar pulses, counts the packets read and shows the time spent; it stays up
    while the connections are replayed, since the reader finishes before the replay does.
    """
    size = _total_bytes(paths)
    if not enabled or size < PROGRESS_MIN_BYTES:
        yield None
        return
    names = ", ".join(Path(p).name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
    with Progress(
        SpinnerColumn(),
        TextColumn("analysing {task.description}", markup=False),  # file names are not markup
        BarColumn(),
        TextColumn("{task.completed:,.0f} packets read"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{names} ({_size_text(size)})", total=None)

        def progress(n_packets: int) -> None:
            bar.advance(task, n_packets)

        yield progress


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _header(result: "AnalysisResult") -> list[Text]:
    cap = result.capture
    names = ", ".join(Path(p).name for p in cap.paths) or "(no capture)"
    title = Text(f"pcapcheck {__version__} · ", style="bold")
    title.append(names, style="bold")
    facts = f"{_count(cap.packets, 'packet')} ({cap.tcp_packets} TCP)"
    if cap.first_time is not None and cap.last_time is not None:
        facts += f" over {cap.last_time - cap.first_time:.3f} s"
    return [title, Text(f"{facts} · profile {result.profile.name}")]


def print_summary(result: "AnalysisResult", console: Console) -> None:
    for line in _header(result):
        console.print(line)

    closes = close_counts(result)
    line = Text(f"{_count(len(result.connections), 'connection')}: ")
    for i, (kind, n) in enumerate(closes.items()):
        if i:
            line.append(", ")
        line.append(f"{n} {kind}", style=CLOSE_STYLE.get(kind, ""))
    if not closes:
        line.append("none")
    console.print(line)

    if result.findings:
        by_rule = Table(title="Findings by rule", title_justify="left", show_edge=False, pad_edge=False)
        by_rule.add_column("rule")
        by_rule.add_column("severity")
        by_rule.add_column("count", justify="right")
        by_rule.add_column("what")
        for rule, severity, n in rule_counts(result.findings):
            spec = result.rules.get(rule)
            by_rule.add_row(
                Text(rule), Text(severity, style=SEVERITY_STYLE[severity]), str(n), Text(spec.title if spec else "")
            )
        console.print(by_rule)

        worst = worst_first(result.findings, WORST_SHOWN)
        conns = connections_by_id(result.connections, {f.connection for f in worst})
        console.print(Text(f"Worst findings ({len(worst)} of {len(result.findings)})", style="italic"))
        # Two lines per finding rather than a table: messages stay readable on an 80-column CI log.
        for f in worst:
            conn = conns.get(f.connection)
            head = Text(f"{f.severity.value:<8}", style=SEVERITY_STYLE[f.severity.value])
            head.append(f"frame {f.frame}", style="bold")
            head.append(f"  {f.rule}")
            if f.endpoint is not None:
                head.append(f" ({f.endpoint.value} at fault)")
            console.print(head)
            where = f"conn {f.connection}" + (f" {conn.client} → {conn.server}" if conn is not None else "")
            console.print(Padding(Text(where, style="dim"), (0, 0, 0, 8)))
            console.print(Padding(Text(f.message), (0, 0, 0, 8)))

    counts = severity_counts(result.findings)
    fail_on = fail_on_of(result)
    verdict = Text(
        f"{_count(len(result.findings), 'finding')}: {_count(counts['error'], 'error')}, "
        f"{_count(counts['warning'], 'warning')}, {counts['info']} info"
    )
    if result.suppressed:
        verdict.append(f"; {result.suppressed} suppressed by the baseline")
    failed = failing_count(result.findings, fail_on)
    verdict.append(f"; --fail-on {fail_on}: ")
    if result.error is not None:
        verdict.append("INCOMPLETE (the run stopped on bad input)", style="bold red")
    elif failed:
        verdict.append(f"FAIL ({failed} at or above {fail_on})", style="bold red")
    else:
        verdict.append("PASS", style="bold green")
    console.print(verdict)
