"""Measure one run of a command: wall time, CPU time and peak resident memory of the child.

Peak memory is the child's ``ru_maxrss`` from ``os.wait4`` (kilobytes on Linux): the largest
resident set of the process, or of any descendant it waited for, during its whole life.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    """One run of one tool."""

    tool: str
    seconds: float  # wall clock
    cpu_seconds: float  # user + system
    max_rss_mb: float
    returncode: int
    error: str = ""  # why the run counts as failed; empty when it did its job
    last_stderr: str = ""  # the last stderr line naming an error, else the last non-blank one

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class Summary:
    """Medians over the successful runs of one tool."""

    tool: str
    runs: int
    failures: int
    seconds: float
    cpu_seconds: float
    max_rss_mb: float
    error: str = ""


def measure(tool: str, argv: Sequence[str], ok_codes: Sequence[int] = (0,)) -> Sample:
    """Run ``argv`` with stdout discarded; a return code outside ``ok_codes`` is a failed run.

    Every run starts with nothing left to write back: a 5M-packet pcapcheck run writes about 3 GB
    (its reports and temporary files), and the kernel writing that back slowed the run after it
    (by 0.4 s of 20 s, measured twice on 5M).  The sync is not timed."""
    if hasattr(os, "sync"):  # not on Windows
        os.sync()
    with tempfile.TemporaryFile(mode="w+b") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child is reaped
        stderr.seek(0)
        lines = [line.strip() for line in stderr.read().decode(errors="replace").splitlines() if line.strip()]
        # A traceback's telling line ("ImportError: ...") is rarely the last one once rich wraps it.
        telling = [line for line in lines if "error" in line.lower()]
        last = (telling or lines or [""])[-1]
        error = "" if proc.returncode in ok_codes else f"exit {proc.returncode}: {last or 'no message'}"
    return Sample(
        tool=tool,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        error=error,
        last_stderr=last,
    )


def summarize(tool: str, samples: Sequence[Sample]) -> Summary:
    good = [s for s in samples if s.tool == tool and s.ok]
    bad = [s for s in samples if s.tool == tool and not s.ok]
    if not good:
        return Summary(tool, 0, len(bad), float("nan"), float("nan"), float("nan"), bad[-1].error if bad else "")
    return Summary(
        tool=tool,
        runs=len(good),
        failures=len(bad),
        seconds=statistics.median(s.seconds for s in good),
        cpu_seconds=statistics.median(s.cpu_seconds for s in good),
        # The worst case is what a memory budget has to hold, not the median.
        max_rss_mb=max(s.max_rss_mb for s in good),
        error=bad[-1].error if bad else "",
    )


def count_packets(path: str) -> int:
    """Packets in a capture: capinfos when present (fast, any format), else a dpkt framing loop."""
    if shutil.which("capinfos"):
        done = subprocess.run(["capinfos", "-M", "-c", path], capture_output=True, text=True)
        match = re.search(r"Number of packets:\s+(\d+)", done.stdout)
        if match:
            return int(match.group(1))
    import dpkt

    with open(path, "rb") as fh:
        magic = fh.read(4)
        fh.seek(0)
        reader = dpkt.pcapng.Reader(fh) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
        return sum(1 for _ in reader)


def warm_page_cache(path: str) -> None:
    """Read the file once so the first timed tool does not pay for the disk alone."""
    with open(path, "rb") as fh:
        while fh.read(1 << 22):
            pass
